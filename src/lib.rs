//! storetrack: person trajectories from store RTSP cameras.
//!
//! Data path: [`config`] → per camera [`ingest`] (GStreamer) → [`infer`] (the detector: the
//! local OpenVINO engine or a KServe v2 model-server fleet) → [`track`] (per-camera tracker) →
//! [`analytics`] (floor positions, store-wide trajectories, zone visits) → [`store`] (SQLite
//! writer). [`query`] reads the database (tables, pictures); [`api`] serves health, metrics and
//! the camera-level queries over HTTP; [`service`] wires the stages together and speaks the
//! service manager's [`notify`] protocol; [`events`] delivers live events (MQTT, webhooks).
//! Shared types sit below every stage: [`messages`], [`geometry`], [`resize`], [`time`], [`rng`],
//! [`stats`], [`backoff`]. Development tools: [`synth`], [`mot`],
//! [`simcam`]. The layers and what may import what: `docs/architecture.md`.

#![warn(missing_docs)]

pub mod analytics;
pub mod api;
pub mod backoff;
pub mod config;
pub mod events;
pub mod geometry;
pub mod host;
pub mod infer;
pub mod ingest;
pub mod live;
pub mod malloc;
pub mod messages;
// Development tools (synthetic scenes, MOTChallenge files, the camera simulator): public for the
// binary's `synth`/`track`/`simcam` subcommands, the tests and the benches, not part of the API.
#[doc(hidden)]
pub mod mot;
pub mod notify;
pub mod query;
pub mod redact;
pub mod resize;
pub mod rng;
pub mod service;
#[doc(hidden)]
pub mod simcam;
pub mod stats;
pub mod store;
#[doc(hidden)]
pub mod synth;
pub mod time;
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
