//! storetrack: person trajectories from store RTSP cameras.
//!
//! Data path: [`config`] → per camera [`ingest`] (GStreamer) → [`infer`] (OpenVINO, async
//! request pool) → [`track`] (per-camera tracker) → [`store`] (SQLite writer). [`query`] reads
//! the database; [`api`] serves health, metrics and queries over HTTP; [`simcam`] serves video
//! files as RTSP cameras for demos and tests; [`service`] wires the stages together and speaks
//! the service manager's [`notify`] protocol.

pub mod analytics;
pub mod api;
pub mod config;
pub mod geometry;
pub mod infer;
pub mod ingest;
pub mod live;
pub mod malloc;
pub mod messages;
pub mod mot;
pub mod notify;
pub mod query;
pub mod redact;
pub mod service;
pub mod simcam;
pub mod stats;
pub mod store;
pub mod synth;
pub mod track;

pub use config::{Config, Decode};
pub use service::{RunOptions, Summary, run};

/// The message of a caught panic (`&str` or `String` payloads; empty otherwise).
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
