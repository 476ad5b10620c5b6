//! Keeps glibc's allocator from growing the resident size each time camera pipelines are
//! rebuilt.
//!
//! Every pipeline rebuild (a camera reconnecting) starts new GStreamer streaming and decoder
//! threads. glibc gives threads their own arenas (up to 8 per core) and raises its mmap threshold
//! to the largest block freed, so frame-sized buffers end up carved from many heaps that stay
//! resident after the pipeline is gone. Measured with 16 cameras all reconnecting every 45 s
//! (docs/measurements/memory.md): RSS 305 → 434 MB over 9 waves and still rising with glibc's defaults;
//! 300 → 316 MB, back to ~270 MB whenever the cameras are down, with the settings below (303 →
//! 300 MB over 8 waves with the final binary), at the same analysed frame rate. GStreamer objects themselves do not leak (the `leaks` tracer counts
//! the same live objects after 2 and after 9 rebuilds).
//!
//! Input: `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` if the operator set them (then glibc
//! already applied them and that setting is left alone). Output: at most [`ARENA_MAX`] arenas,
//! and blocks from [`MMAP_THRESHOLD`] up (decoded frames, model inputs) always in their own
//! mappings, returned to the system when freed instead of fragmenting a heap (glibc otherwise
//! raises this threshold to the size of the largest block freed, up to 32 MiB).

/// Arenas allowed when the environment does not say.
pub const ARENA_MAX: i32 = 2;
/// Allocations of this many bytes or more are separate mappings (glibc's initial default, kept
/// fixed).
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator up as above; call first thing in `main`, before any thread starts.
pub fn tune() {
    for (var, param, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX),
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: mallopt only changes allocator parameters; called before other threads
            // exist. It returns 0 for a parameter it does not know (non-glibc): harmless.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}
