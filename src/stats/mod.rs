//! Counters shared by all stages: received / sent / dropped per camera and per stage, read by the
//! progress line, the end-of-run summary, the notify status line and `/metrics` (see
//! [`crate::api::metrics`]). Labels stay low-cardinality: camera yes, track id never.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::metrics::histogram::Histogram;

use crate::messages::CameraIndex;

mod accounts;
pub mod admission;
mod latency;

pub use accounts::{ClockFigures, FrameAccount, SHORTFALL, Shortfall};
pub use latency::{AGE_BUCKET_MS, AGE_MAX_MS, AgeHistogram, CameraFigures, Latency, quantile_ms};

/// Frame age histogram buckets (seconds from capture to detections ready).
pub const FRAME_AGE_BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0];
/// Inference latency histogram buckets (seconds from submit to result).
pub const INFER_LATENCY_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0];
/// Analysed frame rates are averaged over at least this long.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

/// Counters of one camera slot. A slot belongs to one camera for the life of the service; a
/// camera removed by a reload leaves its slot inactive, and a camera added (or changed) gets a
/// new slot, so counters only ever rise per slot.
#[derive(Debug)]
pub struct CameraStats {
    /// Camera id, as in the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// URL with credentials masked.
    pub url: String,
    /// False once the camera was removed by a reload (its counters stay in the totals).
    pub active: AtomicBool,
    /// Frames out of the decoder. Once the camera and the detector have stopped, `decoded =
    /// inferred + not_picked + skipped + dropped + failed` exactly.
    pub decoded: AtomicU64,
    /// Compressed frames dropped before the decoder because no analysed frame needs them, or
    /// shed while its decoding was behind (`shed` counts those).
    pub undecoded: AtomicU64,
    /// Of `undecoded`: frames shed because the camera's decoding was behind its stream (its
    /// streaming thread short of CPU; see `ingest::backlog`).
    pub shed: AtomicU64,
    /// Of `undecoded`: frames damaged by RTP packets lost before them (up to the next key frame
    /// that lost none; see `ingest::loss`), not decoded so their concealed pictures are never
    /// analysed.
    pub damaged: AtomicU64,
    /// Detection slots (1/detect_fps; each frame with detect_fps = 0) in which the camera sent
    /// a frame: how many frames could be analysed at most.
    pub slots: AtomicU64,
    /// Decoded frames the frame gate did not pick for analysis (more than detect_fps).
    pub not_picked: AtomicU64,
    /// Decoded frames discarded before scaling and colour conversion because the camera's
    /// queue already held a fresh frame (never converted).
    pub skipped: AtomicU64,
    /// Frames handed to the detector queue.
    pub delivered: AtomicU64,
    /// Frames dropped between the decoder and the detector: the queue was full (oldest first),
    /// or the camera or the service stopped with them on the way.
    pub dropped: AtomicU64,
    /// Frames the detector finished.
    pub inferred: AtomicU64,
    /// Frames the detector could not analyse (inference failed, no model server up).
    pub failed: AtomicU64,
    /// Milliseconds the camera streamed (from its first frame to the end of each connection).
    pub streamed_ms: AtomicU64,
    /// The camera clock: see [`ClockStats`].
    pub clock: ClockStats,
    /// Person detections (score ≥ model.score_threshold).
    pub persons: AtomicU64,
    /// Pipeline failures (error, EOS, stall, failed start).
    pub failures: AtomicU64,
    /// Pipeline (re)starts.
    pub starts: AtomicU64,
    /// Panics caught in the camera's thread (each followed by a restart).
    pub panics: AtomicU64,
    /// True while frames are flowing.
    pub up: AtomicBool,
    /// Frame age at detection (capture → detections out of the detector).
    pub age: AgeHistogram,
    /// Why the camera last failed, one line, credentials masked.
    pub last_error: Mutex<Option<String>>,
    /// Frames inferred per second over the last [`RATE_WINDOW`], in thousandths.
    pub fps_milli: AtomicU64,
    /// Seconds from capture to detections ready.
    pub frame_age: Histogram,
    /// What the camera asks of the detector and what it is given ([`admission`]).
    pub seat: admission::Seat,
    /// Detection slots that fell while the camera was held below its `detect_fps` (fair
    /// share, idle rate).
    pub limited: AtomicU64,
    /// Times the camera's decoder was parked between analysed frames (closed, its pictures
    /// freed: see `ingest::park`).
    pub parks: AtomicU64,
    /// RTP packets missing before the decoder: lost on the network, or dropped from a full
    /// packet queue (see `ingest::loss`).
    pub packets_lost: AtomicU64,
}

impl CameraStats {
    /// Zeroed counters of camera `id`; `url` must already be masked.
    pub fn new(id: &str, name: &str, url: &str) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            url: url.to_string(),
            active: AtomicBool::new(true),
            decoded: AtomicU64::new(0),
            undecoded: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            packets_lost: AtomicU64::new(0),
            slots: AtomicU64::new(0),
            not_picked: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            inferred: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            streamed_ms: AtomicU64::new(0),
            clock: ClockStats::default(),
            persons: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            up: AtomicBool::new(false),
            age: AgeHistogram::default(),
            last_error: Mutex::new(None),
            fps_milli: AtomicU64::new(0),
            frame_age: Histogram::new(FRAME_AGE_BUCKETS),
            seat: admission::Seat::default(),
            limited: AtomicU64::new(0),
        }
    }
}

/// What a camera's capture clock found (see [`crate::ingest::clock`]).
#[derive(Debug)]
pub struct ClockStats {
    /// The camera's RTCP clock minus the capture-time reference, ms ([`ClockStats::UNKNOWN`]
    /// until it sends sender reports).
    pub offset_ms: AtomicI64,
    /// Capture-to-arrival delay measured from the camera's clock and subtracted, ms (UNKNOWN
    /// while not measured, or when its clock is not in step with the host's).
    pub delay_ms: AtomicI64,
    /// Times the camera's clock offset moved by more than `CAMERA_JUMP_MS` (jumps, drift).
    pub jumps: AtomicU64,
    /// Times the stamps were corrected towards the reference (trims begun more than 20 ms away,
    /// steps, slews begun).
    pub corrections: AtomicU64,
}

impl Default for ClockStats {
    fn default() -> Self {
        Self {
            offset_ms: AtomicI64::new(Self::UNKNOWN),
            delay_ms: AtomicI64::new(Self::UNKNOWN),
            jumps: AtomicU64::new(0),
            corrections: AtomicU64::new(0),
        }
    }
}

impl ClockStats {
    /// Stored in `offset_ms` / `delay_ms` when not known.
    pub const UNKNOWN: i64 = i64::MIN;

    /// The camera clock's offset, ms, once known.
    pub fn offset(&self) -> Option<i64> {
        Some(self.offset_ms.load(Ordering::Relaxed)).filter(|v| *v != Self::UNKNOWN)
    }

    /// The capture delay subtracted, ms, when the camera's clock is in step with ours.
    pub fn delay(&self) -> Option<i64> {
        Some(self.delay_ms.load(Ordering::Relaxed)).filter(|v| *v != Self::UNKNOWN)
    }
}

impl CameraStats {
    /// Whether the camera is still configured.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Frames inferred per second recently.
    pub fn fps(&self) -> f64 {
        self.fps_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Pipeline restarts after the first start.
    pub fn reconnects(&self) -> u64 {
        self.starts.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Records why the camera last failed (already masked by the caller).
    pub fn set_last_error(&self, reason: &str) {
        let mut slot = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(reason.to_string());
    }

    /// Why the camera last failed, if it ever did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Counters of the remote detector (`backend = "kserve"`); all zero with the local engine.
#[derive(Debug, Default)]
pub struct RemoteStats {
    /// Endpoints configured.
    pub endpoints: AtomicU64,
    /// Endpoints taking requests now.
    pub endpoints_up: AtomicU64,
    /// ModelInfer requests sent.
    pub requests: AtomicU64,
    /// Requests that failed or timed out (their frames are dropped).
    pub failures: AtomicU64,
    /// Frames dropped because no endpoint was up and there is no local fallback.
    pub dropped: AtomicU64,
    /// Frames detected by the local fallback engine while no endpoint was up.
    pub fallback: AtomicU64,
    /// Sum of request round trips (send to parsed response), microseconds.
    pub round_trip_us: AtomicU64,
    /// Sum of the time spent packing and encoding requests and decoding responses, microseconds.
    pub codec_us: AtomicU64,
    /// True when the local engine stands in while no endpoint is up.
    pub fallback_ready: AtomicBool,
}

/// Counters of the whole service.
#[derive(Debug)]
pub struct Stats {
    /// Per camera slot, indexed by [`CameraIndex`]; grows when a reload adds cameras.
    cameras: RwLock<Vec<Arc<CameraStats>>>,
    /// The detector's budget, shared among the cameras ([`admission`]).
    pub admission: admission::Admission,
    /// Tracks confirmed by the trackers.
    pub tracks: AtomicU64,
    /// Track points sent to the store.
    pub points: AtomicU64,
    /// Track points committed to SQLite.
    pub points_stored: AtomicU64,
    /// Frame rows committed to SQLite.
    pub frames_stored: AtomicU64,
    /// Points not stored because the track already had a point at that time.
    pub points_duplicate: AtomicU64,
    /// Points not stored because a number in them was not finite.
    pub points_rejected: AtomicU64,
    /// Frames whose inference failed (each dropped; a stuck request is counted too).
    pub infer_errors: AtomicU64,
    /// Failed store transactions.
    pub store_errors: AtomicU64,
    /// The remote detector's counters.
    pub remote: RemoteStats,
    /// Points never written: the writer's backlog overflowed while the database refused
    /// writes (disk full, I/O error); the oldest unsaved ones went first.
    pub store_points_dropped: AtomicU64,
    /// Frames never counted in the database, for the same reason.
    pub store_frames_dropped: AtomicU64,
    /// Analytics events dropped because the database backlog was full.
    pub store_analytics_dropped: AtomicU64,
    /// Rows the database refused one by one (a constraint): dropped, the rest written.
    pub store_rows_failed: AtomicU64,
    /// True while the database refuses writes (the writer keeps records and retries).
    pub store_failing: AtomicBool,
    /// Database file plus WAL, bytes (refreshed by the writer every few seconds).
    pub db_bytes: AtomicU64,
    /// Points deleted by retention (`storage.keep_days`, `storage.max_size_mb`).
    pub retention_points_deleted: AtomicU64,
    /// Track rows deleted by retention.
    pub retention_tracks_deleted: AtomicU64,
    /// Per-second frame rows deleted by retention.
    pub retention_seconds_deleted: AtomicU64,
    /// When the run started.
    pub started: Instant,
    /// Seconds from submitting a frame to the detector to its result.
    pub infer_latency: Histogram,
    /// The detector's model is compiled and its thread runs.
    pub model_loaded: AtomicBool,
    /// The detector ended with an error: the run is closed as not clean.
    pub detector_failed: AtomicBool,
    /// The last database commit succeeded (or none was needed yet).
    pub db_writable: AtomicBool,
    /// At the last commit: milliseconds from the oldest record in it to the commit.
    pub write_lag_ms: AtomicU64,
    /// What the web page shows live (stills, boxes, the configuration in force).
    pub live: crate::live::Live,
}

/// Counter values at the last [`Stats::update_rates`].
#[derive(Debug, Clone)]
pub struct RateState {
    at: Instant,
    inferred: Vec<u64>,
}

/// A plain copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Cameras configured now.
    pub cameras: usize,
    /// Cameras with frames flowing.
    pub cameras_up: usize,
    /// Sum over cameras (removed ones included).
    pub decoded: u64,
    /// Sum over cameras (removed ones included).
    pub undecoded: u64,
    /// Of `undecoded`: shed while a camera's decoding was behind (sum over cameras).
    pub shed: u64,
    /// Of `undecoded`: damaged by packets lost before them (sum over cameras).
    pub damaged: u64,
    /// Times a camera's decoder was parked between seldom analysed frames or from a GOP's last
    /// decoded frame (sum over cameras).
    pub parks: u64,
    /// RTP packets missing before the decoder (sum over cameras).
    pub packets_lost: u64,
    /// Sum over cameras (removed ones included).
    pub slots: u64,
    /// Sum over cameras (removed ones included).
    pub not_picked: u64,
    /// Sum over cameras (removed ones included).
    pub skipped: u64,
    /// Sum over cameras (removed ones included).
    pub delivered: u64,
    /// Sum over cameras (removed ones included).
    pub dropped: u64,
    /// Sum over cameras (removed ones included).
    pub inferred: u64,
    /// Sum over cameras (removed ones included).
    pub failed: u64,
    /// Sum over cameras (removed ones included).
    pub persons: u64,
    /// Sum over cameras (removed ones included).
    pub failures: u64,
    /// Tracks confirmed.
    pub tracks: u64,
    /// Points committed.
    pub points_stored: u64,
    /// Frame rows committed.
    pub frames_stored: u64,
    /// Points not stored: same track and time as a stored one.
    pub points_duplicate: u64,
    /// Points not stored: a non-finite number.
    pub points_rejected: u64,
    /// Frames whose inference failed.
    pub infer_errors: u64,
    /// Remote endpoints configured (0: local engine).
    pub endpoints: u64,
    /// Remote endpoints up.
    pub endpoints_up: u64,
    /// Remote requests sent.
    pub remote_requests: u64,
    /// Remote requests failed or timed out.
    pub remote_failures: u64,
    /// Frames dropped with no endpoint up and no fallback.
    pub remote_dropped: u64,
    /// Frames detected by the local fallback.
    pub fallback_frames: u64,
    /// Mean remote round trip, milliseconds (0 without requests).
    pub remote_rtt_ms: f64,
    /// Mean per-request client-side encode + decode time, milliseconds.
    pub remote_codec_ms: f64,
    /// The detector can process frames: always with the local engine; with a fleet, when an
    /// endpoint is up or the local fallback stands in.
    pub detector_ready: bool,
    /// Failed store transactions.
    pub store_errors: u64,
    /// Points dropped unsaved while the database refused writes.
    pub store_points_dropped: u64,
    /// Frames dropped unsaved while the database refused writes.
    pub store_frames_dropped: u64,
    /// Rows refused one by one and dropped.
    pub store_rows_failed: u64,
    /// The database refuses writes right now.
    pub store_failing: bool,
    /// Database file plus WAL, bytes.
    pub db_bytes: u64,
    /// Points deleted by retention.
    pub retention_points_deleted: u64,
    /// Tracks deleted by retention.
    pub retention_tracks_deleted: u64,
    /// Per-second frame rows deleted by retention.
    pub retention_seconds_deleted: u64,
}

impl Stats {
    /// Zeroed counters with `cameras` slots named cam0, cam1, … (see [`Stats::add_camera`]).
    pub fn new(cameras: usize) -> Self {
        let stats = Self::empty();
        for i in 0..cameras {
            stats.add_camera(&format!("cam{i}"), &format!("cam{i}"), "");
        }
        stats
    }

    /// Zeroed counters without cameras.
    pub fn empty() -> Self {
        Self {
            cameras: RwLock::default(),
            admission: admission::Admission::default(),
            tracks: AtomicU64::new(0),
            points: AtomicU64::new(0),
            points_stored: AtomicU64::new(0),
            frames_stored: AtomicU64::new(0),
            points_duplicate: AtomicU64::new(0),
            points_rejected: AtomicU64::new(0),
            infer_errors: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            remote: RemoteStats::default(),
            store_points_dropped: AtomicU64::new(0),
            store_frames_dropped: AtomicU64::new(0),
            store_analytics_dropped: AtomicU64::new(0),
            store_rows_failed: AtomicU64::new(0),
            store_failing: AtomicBool::new(false),
            db_bytes: AtomicU64::new(0),
            retention_points_deleted: AtomicU64::new(0),
            retention_tracks_deleted: AtomicU64::new(0),
            retention_seconds_deleted: AtomicU64::new(0),
            started: Instant::now(),
            infer_latency: Histogram::new(INFER_LATENCY_BUCKETS),
            model_loaded: AtomicBool::new(false),
            detector_failed: AtomicBool::new(false),
            db_writable: AtomicBool::new(true),
            write_lag_ms: AtomicU64::new(0),
            live: crate::live::Live::default(),
        }
    }

    /// Adds a slot for camera `id` (`url` already masked) and returns its index.
    pub fn add_camera(&self, id: &str, name: &str, url: &str) -> CameraIndex {
        let mut slots = self.cameras.write().unwrap_or_else(|e| e.into_inner());
        slots.push(Arc::new(CameraStats::new(id, name, url)));
        self.live.name_slot(slots.len() - 1, id);
        slots.len() - 1
    }

    /// The counters of slot `index`.
    ///
    /// # Panics
    /// If no slot has that index (slots are added before their camera starts).
    pub fn camera(&self, index: CameraIndex) -> Arc<CameraStats> {
        let slots = self.cameras.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&slots[index])
    }

    /// Every slot, removed cameras included, by index.
    pub fn all_cameras(&self) -> Vec<Arc<CameraStats>> {
        self.cameras
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The configured cameras' counters, in slot order.
    pub fn cameras(&self) -> Vec<Arc<CameraStats>> {
        let mut v = self.all_cameras();
        v.retain(|c| c.is_active());
        v
    }

    /// A starting point for [`Stats::update_rates`].
    pub fn rate_state(&self) -> RateState {
        RateState {
            at: Instant::now(),
            inferred: self
                .all_cameras()
                .iter()
                .map(|c| c.inferred.load(Ordering::Relaxed))
                .collect(),
        }
    }

    /// Recomputes each camera's analysed fps once [`RATE_WINDOW`] has passed since `prev`.
    pub fn update_rates(&self, prev: &mut RateState) {
        let dt = prev.at.elapsed();
        if dt < RATE_WINDOW {
            return;
        }
        let now = self.rate_state();
        let slots = self.all_cameras();
        for ((c, before), after) in slots.iter().zip(&prev.inferred).zip(&now.inferred) {
            let fps = after.saturating_sub(*before) as f64 / dt.as_secs_f64();
            c.fps_milli
                .store((fps * 1000.0).round() as u64, Ordering::Relaxed);
        }
        *prev = now;
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let slots = self.all_cameras();
        let sum = |f: fn(&CameraStats) -> &AtomicU64| {
            slots.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
        };
        Snapshot {
            cameras: slots.iter().filter(|c| c.is_active()).count(),
            cameras_up: slots
                .iter()
                .filter(|c| c.is_active() && c.up.load(Ordering::Relaxed))
                .count(),
            decoded: sum(|c| &c.decoded),
            undecoded: sum(|c| &c.undecoded),
            shed: sum(|c| &c.shed),
            damaged: sum(|c| &c.damaged),
            parks: sum(|c| &c.parks),
            packets_lost: sum(|c| &c.packets_lost),
            slots: sum(|c| &c.slots),
            not_picked: sum(|c| &c.not_picked),
            skipped: sum(|c| &c.skipped),
            delivered: sum(|c| &c.delivered),
            dropped: sum(|c| &c.dropped),
            inferred: sum(|c| &c.inferred),
            failed: sum(|c| &c.failed),
            persons: sum(|c| &c.persons),
            failures: sum(|c| &c.failures),
            tracks: self.tracks.load(Ordering::Relaxed),
            points_stored: self.points_stored.load(Ordering::Relaxed),
            frames_stored: self.frames_stored.load(Ordering::Relaxed),
            points_duplicate: self.points_duplicate.load(Ordering::Relaxed),
            points_rejected: self.points_rejected.load(Ordering::Relaxed),
            infer_errors: self.infer_errors.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            store_points_dropped: self.store_points_dropped.load(Ordering::Relaxed),
            store_frames_dropped: self.store_frames_dropped.load(Ordering::Relaxed),
            store_rows_failed: self.store_rows_failed.load(Ordering::Relaxed),
            store_failing: self.store_failing.load(Ordering::Relaxed),
            db_bytes: self.db_bytes.load(Ordering::Relaxed),
            retention_points_deleted: self.retention_points_deleted.load(Ordering::Relaxed),
            retention_tracks_deleted: self.retention_tracks_deleted.load(Ordering::Relaxed),
            retention_seconds_deleted: self.retention_seconds_deleted.load(Ordering::Relaxed),
            ..self.remote.snapshot()
        }
    }
}

impl RemoteStats {
    /// The remote fields of a [`Snapshot`] (the others zero).
    fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let requests = get(&self.requests);
        let answered = requests.saturating_sub(get(&self.failures)).max(1) as f64;
        Snapshot {
            endpoints: get(&self.endpoints),
            endpoints_up: get(&self.endpoints_up),
            remote_requests: requests,
            remote_failures: get(&self.failures),
            remote_dropped: get(&self.dropped),
            fallback_frames: get(&self.fallback),
            remote_rtt_ms: get(&self.round_trip_us) as f64 / 1000.0 / answered,
            remote_codec_ms: get(&self.codec_us) as f64 / 1000.0 / answered,
            detector_ready: self.ready(),
            ..Snapshot::default()
        }
    }

    /// The detector can process frames: always with the local engine (no endpoints); with a
    /// fleet, while an endpoint is up or the local fallback stands in. For readiness checks.
    pub fn ready(&self) -> bool {
        self.endpoints.load(Ordering::Relaxed) == 0
            || self.endpoints_up.load(Ordering::Relaxed) > 0
            || self.fallback_ready.load(Ordering::Relaxed)
    }
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}
