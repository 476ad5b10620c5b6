//! The config file as written: serde structs that mirror the TOML, with spans on every value that
//! validation may complain about. Unknown keys are rejected by serde; defaults live here.

use serde::{Deserialize, Deserializer};
use toml::Spanned;

pub(super) const DEFAULT_MODEL_DESCRIPTION: &str = "models/ssdlite.toml";
pub(super) const DEFAULT_SCORE_THRESHOLD: f32 = 0.35;
pub(super) const DEFAULT_DEVICE: &str = "CPU";
pub(super) const DEFAULT_HINT: &str = "THROUGHPUT";
pub(super) const DEFAULT_PRECISION: &str = "auto";
pub(super) const DEFAULT_BACKEND: &str = "local";
pub(super) const DEFAULT_REMOTE_TIMEOUT_MS: u64 = 2_000;
pub(super) const DEFAULT_REMOTE_IN_FLIGHT: usize = 4;
pub(super) const DEFAULT_PIPELINE: &str = "pipelines/camera.pipeline";
pub(super) const DEFAULT_LATENCY_MS: u32 = 200;
pub(super) const DEFAULT_PROTOCOLS: &str = "tcp";
pub(super) const DEFAULT_QUEUE_FRAMES: usize = 1;
pub(super) const DEFAULT_RETRY_INTERVAL_MS: u64 = 2_000;
pub(super) const DEFAULT_RETRY_MAX_MS: u64 = 60_000;
pub(super) const DEFAULT_STALL_TIMEOUT_MS: u64 = 10_000;
pub(super) const DEFAULT_DETECT_FPS: u32 = 10;
pub(super) const DEFAULT_DECODE: &str = "auto";
/// A camera that sees nothing move is analysed this often (ms; 0: every camera at its
/// detect_fps always).
pub(super) const DEFAULT_IDLE_INTERVAL_MS: u64 = 3_000;
pub(super) const DEFAULT_DB: &str = "storetrack.db";
pub(super) const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1_000;
/// Data older than this many days is deleted (0: kept however old).
pub(super) const DEFAULT_KEEP_DAYS: u32 = 30;
/// The oldest data is deleted while the database uses more than this many MiB (0: no cap).
pub(super) const DEFAULT_MAX_SIZE_MB: u64 = 10_240;

/// A count, or the word `"auto"` meaning "let OpenVINO choose".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountOrAuto {
    /// Let the device choose.
    #[default]
    Auto,
    /// Exactly this many (≥ 1).
    Count(u32),
}

impl<'de> Deserialize<'de> for CountOrAuto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(i64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::S(s) if s == "auto" => Ok(CountOrAuto::Auto),
            Either::N(n) if (1..=1024).contains(&n) => Ok(CountOrAuto::Count(n as u32)),
            _ => Err(serde::de::Error::custom(
                "expected \"auto\" or a whole number from 1 to 1024",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub cameras: Vec<Spanned<RawCamera>>,
    #[serde(default)]
    pub model: RawModel,
    #[serde(default)]
    pub inference: RawInference,
    #[serde(default)]
    pub ingest: RawIngest,
    #[serde(default)]
    pub tracker: crate::track::TrackerParams,
    #[serde(default)]
    pub storage: RawStorage,
    pub floor: Option<Spanned<RawFloor>>,
    #[serde(default)]
    pub zones: Vec<Spanned<RawZone>>,
    #[serde(default)]
    pub analytics: crate::analytics::AnalyticsParams,
    pub api: Option<RawApi>,
    pub events: Option<super::events::RawEvents>,
    #[serde(default)]
    pub lines: Vec<Spanned<crate::analytics::lines::LineSettings>>,
    pub occupancy: Option<Spanned<crate::analytics::occupancy::OccupancySettings>>,
    #[serde(default)]
    pub rules: Vec<Spanned<crate::analytics::rules::RuleSettings>>,
    #[serde(default)]
    pub privacy: RawPrivacy,
}

/// `[privacy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivacy {
    /// Blur the people found in every camera picture the web page serves.
    #[serde(default = "default_blur_people")]
    pub blur_people: bool,
}

impl Default for RawPrivacy {
    fn default() -> Self {
        Self {
            blur_people: default_blur_people(),
        }
    }
}

/// People are blurred unless the config says otherwise: a picture served over the network is
/// the likeliest place for a face to leak, and calibration needs the floor, not the people.
fn default_blur_people() -> bool {
    true
}

/// A list of number lists, each with its position (point pairs, polygon vertices).
pub(super) type SpannedRows = Spanned<Vec<Spanned<Vec<f64>>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFloor {
    pub width: Spanned<f64>,
    pub height: Spanned<f64>,
    pub plan: Option<Spanned<String>>,
    pub scale: Option<Spanned<f64>>,
    pub origin: Option<Spanned<Vec<f64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    pub id: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub polygon: SpannedRows,
    /// People wait here (a queue, `[[zones]] queue = true`).
    pub queue: Option<Spanned<bool>>,
    /// The zone where the queue is served.
    pub service: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub listen: Spanned<String>,
    pub token_env: Option<Spanned<String>>,
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    /// The web page may edit zones, counting lines and calibrations and write the config file.
    #[serde(default)]
    pub allow_setup: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCamera {
    pub id: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub url: Spanned<String>,
    pub detect_fps: Option<Spanned<u32>>,
    pub decode: Option<Spanned<String>>,
    pub homography: Option<Spanned<Vec<f64>>>,
    pub pipeline: Option<Spanned<String>>,
    pub calibration: Option<SpannedRows>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    #[serde(default = "default_model_description")]
    pub description: Spanned<String>,
    pub ir: Option<Spanned<String>>,
    #[serde(default = "default_score_threshold")]
    pub score_threshold: Spanned<f32>,
    pub person_class: Option<u32>,
}

impl Default for RawModel {
    fn default() -> Self {
        Self {
            description: default_model_description(),
            ir: None,
            score_threshold: default_score_threshold(),
            person_class: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInference {
    #[serde(default = "default_device")]
    pub device: Spanned<String>,
    #[serde(default = "default_hint")]
    pub hint: Spanned<String>,
    #[serde(default = "default_precision")]
    pub precision: Spanned<String>,
    #[serde(default)]
    pub requests: CountOrAuto,
    #[serde(default)]
    pub streams: CountOrAuto,
    pub runtime: Option<Spanned<String>>,
    #[serde(default = "default_backend")]
    pub backend: Spanned<String>,
    pub endpoints: Option<Spanned<Vec<Spanned<String>>>>,
    pub model: Option<Spanned<String>>,
    pub version: Option<Spanned<String>>,
    #[serde(default = "default_remote_timeout_ms")]
    pub timeout_ms: Spanned<u64>,
    #[serde(default = "default_remote_in_flight")]
    pub in_flight: Spanned<usize>,
    pub fallback: Option<Spanned<String>>,
}

impl Default for RawInference {
    fn default() -> Self {
        Self {
            device: default_device(),
            hint: default_hint(),
            precision: default_precision(),
            requests: CountOrAuto::Auto,
            streams: CountOrAuto::Auto,
            runtime: None,
            backend: default_backend(),
            endpoints: None,
            model: None,
            version: None,
            timeout_ms: default_remote_timeout_ms(),
            in_flight: default_remote_in_flight(),
            fallback: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIngest {
    #[serde(default = "default_pipeline")]
    pub pipeline: Spanned<String>,
    #[serde(default = "default_latency_ms")]
    pub latency_ms: Spanned<u32>,
    #[serde(default = "default_protocols")]
    pub protocols: Spanned<String>,
    #[serde(default = "default_queue_frames")]
    pub queue_frames: Spanned<usize>,
    #[serde(default = "default_retry_interval_ms")]
    pub retry_interval_ms: Spanned<u64>,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: Spanned<u64>,
    #[serde(default = "default_stall_timeout_ms")]
    pub stall_timeout_ms: Spanned<u64>,
    #[serde(default = "default_detect_fps")]
    pub detect_fps: u32,
    #[serde(default = "default_decode")]
    pub decode: Spanned<String>,
    #[serde(default = "default_idle_interval_ms")]
    pub idle_interval_ms: Spanned<u64>,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            pipeline: default_pipeline(),
            latency_ms: default_latency_ms(),
            protocols: default_protocols(),
            queue_frames: default_queue_frames(),
            retry_interval_ms: default_retry_interval_ms(),
            retry_max_ms: default_retry_max_ms(),
            stall_timeout_ms: default_stall_timeout_ms(),
            detect_fps: DEFAULT_DETECT_FPS,
            decode: default_decode(),
            idle_interval_ms: default_idle_interval_ms(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    #[serde(default = "default_db")]
    pub db: Spanned<String>,
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: Spanned<u64>,
    #[serde(default = "default_keep_days")]
    pub keep_days: Spanned<u32>,
    #[serde(default = "default_max_size_mb")]
    pub max_size_mb: Spanned<u64>,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            db: default_db(),
            flush_interval_ms: default_flush_interval_ms(),
            keep_days: default_keep_days(),
            max_size_mb: default_max_size_mb(),
        }
    }
}

fn unspanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}
fn default_model_description() -> Spanned<String> {
    unspanned(DEFAULT_MODEL_DESCRIPTION.into())
}
fn default_score_threshold() -> Spanned<f32> {
    unspanned(DEFAULT_SCORE_THRESHOLD)
}
fn default_device() -> Spanned<String> {
    unspanned(DEFAULT_DEVICE.into())
}
fn default_hint() -> Spanned<String> {
    unspanned(DEFAULT_HINT.into())
}
fn default_precision() -> Spanned<String> {
    unspanned(DEFAULT_PRECISION.into())
}
fn default_backend() -> Spanned<String> {
    unspanned(DEFAULT_BACKEND.into())
}
fn default_remote_timeout_ms() -> Spanned<u64> {
    unspanned(DEFAULT_REMOTE_TIMEOUT_MS)
}
fn default_remote_in_flight() -> Spanned<usize> {
    unspanned(DEFAULT_REMOTE_IN_FLIGHT)
}
fn default_pipeline() -> Spanned<String> {
    unspanned(DEFAULT_PIPELINE.into())
}
fn default_latency_ms() -> Spanned<u32> {
    unspanned(DEFAULT_LATENCY_MS)
}
fn default_protocols() -> Spanned<String> {
    unspanned(DEFAULT_PROTOCOLS.into())
}
fn default_queue_frames() -> Spanned<usize> {
    unspanned(DEFAULT_QUEUE_FRAMES)
}
fn default_retry_interval_ms() -> Spanned<u64> {
    unspanned(DEFAULT_RETRY_INTERVAL_MS)
}
fn default_retry_max_ms() -> Spanned<u64> {
    unspanned(DEFAULT_RETRY_MAX_MS)
}
fn default_stall_timeout_ms() -> Spanned<u64> {
    unspanned(DEFAULT_STALL_TIMEOUT_MS)
}
fn default_detect_fps() -> u32 {
    DEFAULT_DETECT_FPS
}
fn default_idle_interval_ms() -> Spanned<u64> {
    unspanned(DEFAULT_IDLE_INTERVAL_MS)
}

fn default_decode() -> Spanned<String> {
    unspanned(DEFAULT_DECODE.into())
}
fn default_db() -> Spanned<String> {
    unspanned(DEFAULT_DB.into())
}
fn default_flush_interval_ms() -> Spanned<u64> {
    unspanned(DEFAULT_FLUSH_INTERVAL_MS)
}
fn default_keep_days() -> Spanned<u32> {
    unspanned(DEFAULT_KEEP_DAYS)
}
fn default_max_size_mb() -> Spanned<u64> {
    unspanned(DEFAULT_MAX_SIZE_MB)
}
