//! Keeps glibc's allocator from growing the resident size each time camera pipelines are
//! rebuilt.
//!
//! Every pipeline rebuild (a camera reconnecting) starts new GStreamer streaming and decoder
//! threads; glibc gives threads their own arenas (up to 8 per core) and frame-sized buffers
//! freed in one arena are not reused by another, so each reconnect wave left more memory
//! resident. Measured with 16 cameras reconnecting every 45 s: RSS 303 → 394 MB over 8 waves and
//! still rising with the default; 297 → 323 MB and flat from the third wave with two arenas, at
//! the same analysed frame rate (README, "Memory"). GStreamer objects themselves do not leak
//! (the `leaks` tracer counts the same live objects after 2 and after 9 rebuilds).
//!
//! Input: `MALLOC_ARENA_MAX` if the operator set it (then glibc already applied it and nothing
//! is changed). Output: at most [`ARENA_MAX`] arenas.

/// Arenas allowed when the environment does not say.
pub const ARENA_MAX: i32 = 2;

/// Limits malloc arenas; call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    // Returns 0 on an unsupported parameter (non-glibc), which is harmless.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}
