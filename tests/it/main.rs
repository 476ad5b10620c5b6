//! The integration tests, one module per subject, built as one test binary: each test binary
//! links GStreamer, OpenVINO and tonic, so one binary instead of one per file saves most of the
//! link time. `tests/api_load.rs` and `tests/streams.rs` stay binaries of their own: they
//! measure rates against the whole machine and must not share it with other tests.
//!
//! Tests here run in parallel (`--test-threads=2` in CI): each picks free ports and its own
//! temporary folder. Process-wide state is set once, before the harness starts any thread
//! ([`INIT`]).

mod common;

mod analytics_cli;
mod api;
mod capture_time;
mod cli;
mod crash;
mod decode_behind;
mod disk_full;
mod e2e;
mod events;
mod footfall;
mod frame_skip;
mod geometry;
mod gop_decoding;
mod h265;
mod idle_gating;
mod install;
mod kserve;
mod model_formats;
mod packet_loss;
mod properties;
mod quantize_gate;
mod query_summary;
mod reconnect;
mod reload;
mod simcam_drop;
mod store_analytics;
mod tracking_quality;
mod web;

/// Runs before `main`, while the process has one thread: the environment variable
/// [`common::openvino_env`] may set is set here, not while other tests run (C code in
/// GStreamer and OpenVINO reads the environment without Rust's lock). It never panics: a
/// missing setup fails the tests that need it, each with its message.
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    common::set_openvino_path();
}
