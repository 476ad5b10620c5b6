//! Service configuration: `config.toml` parsed with serde, then validated.
//!
//! Input: the path of a TOML file written by store staff. Output: a [`Config`] whose values are
//! all checked (ids unique, URLs well formed, numbers in range, paths resolved against the
//! config file's folder), or a [`ConfigError`] that lists *every* problem found, each with
//! `file:line:col`.

mod api;
mod camera;
mod events;
mod floor;
mod footfall;
mod position;
pub use footfall::describe as describe_footfall;
mod raw;
mod read;
mod remote;
mod secrets;
mod sections;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::ingest::gate::Decode;
pub use events::{EventsConfig, MqttConfig, WebhookConfig};
pub use raw::CountOrAuto;
use raw::RawConfig;
pub use read::{ReadCamera, ReadConfig};

/// Default config path used by the CLI.
pub const DEFAULT_CONFIG_PATH: &str = "config.toml";

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the file this came from (for messages).
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, lowercase hex (recorded with each run; compare with
    /// `sha256sum`).
    pub sha256: String,
    /// Cameras, in file order; ids are unique.
    pub cameras: Vec<CameraConfig>,
    /// Detector model settings.
    pub model: ModelConfig,
    /// OpenVINO device and request pool settings.
    pub inference: InferenceConfig,
    /// GStreamer ingest settings shared by all cameras.
    pub ingest: IngestConfig,
    /// Tracker thresholds.
    pub tracker: crate::track::TrackerParams,
    /// SQLite settings.
    pub storage: StorageConfig,
    /// The floor plan, if one is described.
    pub floor: Option<FloorConfig>,
    /// Zones on the floor, in file order; ids are unique.
    pub zones: Vec<crate::analytics::Zone>,
    /// Store-wide trajectory gates and visit rules.
    pub analytics: crate::analytics::AnalyticsParams,
    /// HTTP API and metrics (None: no HTTP listener).
    pub api: Option<ApiConfig>,
    /// Live event delivery: MQTT, webhooks (None: events stay in the database and SSE).
    pub events: Option<EventsConfig>,
    /// Counting lines, queues, occupancy, rules and the counts period (docs/analytics-lines-queues.md).
    pub footfall: crate::analytics::FootfallSettings,
    /// The web page's settings (`[api] allow_setup`, `[privacy]`).
    pub web: WebConfig,
}

/// What the web page may do and show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebConfig {
    /// `[api] allow_setup`: zones, counting lines and calibrations may be edited and saved from the page.
    pub allow_setup: bool,
    /// `[privacy] blur_people` (default true): people are blurred in every served picture.
    pub blur_people: bool,
}

/// The floor plan: its size and, optionally, a picture of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorConfig {
    /// Size along x, metres.
    pub width_m: f64,
    /// Size along y, metres.
    pub height_m: f64,
    /// Plan image (PNG or JPEG), if any.
    pub plan: Option<PathBuf>,
    /// Plan pixels per metre (also the scale of drawn plans).
    pub scale_px_per_m: f64,
    /// Plan pixel of floor point (0, 0); floor x runs right and y down the picture.
    pub origin_px: (f64, f64),
}

/// The HTTP API (`[api]`).
#[derive(Clone)]
pub struct ApiConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token every request must carry (read from the variable named by `token_env`).
    pub token: Option<String>,
    /// Name of the environment variable the token came from (for messages).
    pub token_env: Option<String>,
    /// Host names requests may be addressed to besides IP addresses and `localhost` (a
    /// request for any other name is refused: DNS rebinding).
    pub hosts: Vec<String>,
    /// HTTPS: the certificate chain and key files (PEM), checked at load.
    pub tls: Option<TlsFiles>,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("token_env", &self.token_env)
            .field("hosts", &self.hosts)
            .field("tls", &self.tls)
            .finish()
    }
}

/// One camera.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    /// Unique short id used in the database and in logs (`entrance-1`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// RTSP URL, possibly with credentials (never logged as is: see [`crate::redact`]).
    pub url: url::Url,
    /// Frames per second sent to the detector (0 = every decoded frame).
    pub detect_fps: u32,
    /// Which frames the camera decodes (with `auto`, each GOP only up to its last analysed
    /// frame when that serves `detect_fps`).
    pub decode: Decode,
    /// Image → floor-plan homography (row-major 3×3), if the camera is calibrated.
    pub homography: Option<[f64; 9]>,
    /// This camera's pipeline template (e.g. an H.265 camera), instead of `ingest.pipeline`.
    pub pipeline: Option<PathBuf>,
    /// How the homography was solved from `calibration` point pairs (None: given raw, or none).
    pub calibration: Option<crate::analytics::homography::Calibration>,
}

impl CameraConfig {
    /// Camera `id` at `url` with the `[ingest]` defaults: named by its id, `detect_fps` 10,
    /// `decode = "auto"`, no homography, calibration or own template.
    pub fn new(id: &str, url: url::Url) -> Self {
        Self {
            id: id.to_string(),
            name: id.to_string(),
            url,
            detect_fps: raw::DEFAULT_DETECT_FPS,
            decode: Decode::default(),
            homography: None,
            pipeline: None,
            calibration: None,
        }
    }
}

/// Detector model settings; what is not set here comes from the model description file.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Path of the model description TOML (IR path, input and output names, person class).
    pub description: PathBuf,
    /// Overrides the description's OpenVINO IR `.xml` (the `.bin` sits beside it).
    pub ir: Option<PathBuf>,
    /// What counts as a person in the per-frame counts (`frames_second.persons_*`, the persons
    /// counter). Tracking does not depend on it: detections down to the lower of this and the
    /// tracker's `low_score` reach the tracker, which ignores those below `low_score`.
    pub score_threshold: f32,
    /// Overrides the description's class id for "person".
    pub person_class: Option<u32>,
}

/// OpenVINO settings.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    /// Device string: `CPU`, `GPU`, `AUTO`, `MULTI:GPU,CPU`, `AUTO:GPU,CPU` …
    pub device: String,
    /// `PERFORMANCE_HINT`: `THROUGHPUT`, `LATENCY` or `CUMULATIVE_THROUGHPUT`.
    pub hint: String,
    /// `INFERENCE_PRECISION_HINT` (`f32`, `bf16`, `f16`), or None for the device's own choice
    /// (bf16 on processors with AMX or AVX-512 BF16, which rounds a 640-pixel input's box edges
    /// to a few pixels).
    pub precision: Option<String>,
    /// Number of asynchronous infer requests, or auto: twice `OPTIMAL_NUMBER_OF_INFER_REQUESTS`
    /// with the THROUGHPUT hints, that number with LATENCY.
    pub requests: CountOrAuto,
    /// Number of CPU throughput streams, or auto (chosen by the hint).
    pub streams: CountOrAuto,
    /// Folder (or file) of the OpenVINO C runtime library, when it is not found by itself.
    pub runtime: Option<PathBuf>,
    /// A KServe v2 model-server fleet to detect with (`backend = "kserve"`); None: the local
    /// OpenVINO engine.
    pub remote: Option<RemoteConfig>,
}

/// `[inference] backend = "kserve"`: detection on a fleet of KServe v2 gRPC model servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// `host:port` of each server (from `grpc://host:port`), in config order.
    pub endpoints: Vec<String>,
    /// Model name on the servers.
    pub model: String,
    /// Model version (None: the server's choice).
    pub version: Option<String>,
    /// Longest wait for one inference before the endpoint counts as failed.
    pub timeout_ms: u64,
    /// Requests outstanding at once per endpoint.
    pub in_flight: usize,
    /// Detect with the local OpenVINO engine while no endpoint is up (`fallback = "local"`).
    pub fallback_local: bool,
}

/// GStreamer ingest settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Pipeline template file.
    pub pipeline: PathBuf,
    /// rtspsrc jitterbuffer latency.
    pub latency_ms: u32,
    /// `tcp`, `udp` or `tcp+udp`.
    pub protocols: String,
    /// Frames a camera may hold waiting for the detector before the oldest is dropped.
    pub queue_frames: usize,
    /// Wait before the first reconnect attempt (doubled per consecutive failure).
    pub retry_interval_ms: u64,
    /// Longest wait between reconnect attempts.
    pub retry_max_ms: u64,
    /// No frame for this long counts as a failure and restarts the pipeline.
    pub stall_timeout_ms: u64,
    /// A camera that sees nothing move is analysed this often (0: no idle gating); see
    /// [`crate::ingest::activity`].
    pub idle_interval_ms: u64,
}

/// SQLite settings.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Database file.
    pub db: PathBuf,
    /// How often buffered points are committed.
    pub flush_interval_ms: u64,
    /// Data older than this many days is deleted (0: kept however old).
    pub keep_days: u32,
    /// The oldest data is deleted while the database uses more than this many MiB (0: no cap).
    pub max_size_mb: u64,
}

impl StorageConfig {
    /// What retention keeps.
    pub fn retention(&self) -> crate::store::RetentionPolicy {
        crate::store::RetentionPolicy {
            keep_ms: (self.keep_days > 0).then(|| i64::from(self.keep_days) * 86_400_000),
            max_bytes: (self.max_size_mb > 0).then_some(self.max_size_mb << 20),
        }
    }
}

/// One problem found in a config file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, or 0 when the problem has no position (missing section).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has problems.
    #[error("{}", ProblemList { path, problems })]
    Invalid {
        /// The config path.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

/// Whether validation also looks at the files a config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    /// The text only (and the floor plan).
    Text,
    /// Also the model description and IR files.
    Files,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The problem of a TOML syntax or type error, its message masked of values from the
/// environment.
fn toml_problem(text: &str, e: &toml::de::Error, subst: &secrets::Substituted) -> Problem {
    let pos = e.span().map(|s| s.start);
    let (line, col) = pos.map_or((0, 0), |p| validate::line_col(text, p));
    Problem {
        line,
        col,
        message: subst.mask(e.message().trim(), pos),
    }
}

fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    checks: Checks,
) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let no_subst = secrets::Substituted::default();
    let mut doc = toml::de::DeTable::parse(text)
        .map_err(|e| invalid(vec![toml_problem(text, &e, &no_subst)]))?;
    let subst = secrets::substitute(&mut doc, text, env, None);
    if !subst.problems.is_empty() {
        return Err(invalid(subst.problems));
    }
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| invalid(vec![toml_problem(text, &e, &subst)]))?;
    let mut cfg = validate::validate(raw, text, path, env, checks).map_err(|mut problems| {
        for p in &mut problems {
            subst.mask_problem(text, p);
        }
        invalid(problems)
    })?;
    cfg.sha256 = crate::store::runs::sha256_hex(text.as_bytes());
    Ok(cfg)
}

/// The folder relative paths of the config at `path` are resolved against.
fn base_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

struct ProblemList<'a> {
    path: &'a Path,
    problems: &'a [Problem],
}

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.path.display(), p.message)?;
            } else {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    self.path.display(),
                    p.line,
                    p.col,
                    p.message
                )?;
            }
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and validates a config file, including that the files it names (model
    /// description and IR) exist.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        parse(&text, path, &|name| std::env::var(name).ok(), Checks::Files)
    }

    /// Like [`Config::load`], but a variable `${NAME}` that is not set in this environment
    /// stands for a placeholder: every check but the secrets' values, for a command that runs
    /// outside the service's environment (`storetrack reload`).
    pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let env = |name: &str| Some(std::env::var(name).unwrap_or_else(|_| "unset".into()));
        parse(&text, path, &env, Checks::Files)
    }

    /// Parses and validates config text as if it were read from `path` (relative paths in it
    /// are resolved against `path`'s folder); `${NAME}` is taken from the process environment.
    /// Files it names are not looked at (but the floor plan's).
    pub fn from_str_at(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Self::from_str_with_env(text, path, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_str_at`] with environment variables looked up by `env`.
    pub fn from_str_with_env(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        parse(text, path, env, Checks::Text)
    }

    /// The camera with this id.
    pub fn camera(&self, id: &str) -> Option<&CameraConfig> {
        self.cameras.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod test_support;
