//! Counters shared by all stages: received / sent / dropped per camera and per stage, read by the
//! progress line, the end-of-run summary, the notify status line and `/metrics` (see
//! [`crate::api::metrics`]). Labels stay low-cardinality: camera yes, track id never.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;

/// Frame age histogram buckets (seconds from capture to detections ready).
pub const FRAME_AGE_BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0];
/// Inference latency histogram buckets (seconds from submit to result).
pub const INFER_LATENCY_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0];
/// Analysed frame rates are averaged over at least this long.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

/// Counters of one camera.
#[derive(Debug)]
pub struct CameraStats {
    /// Frames out of the decoder.
    pub decoded: AtomicU64,
    /// Frames handed to the detector queue.
    pub delivered: AtomicU64,
    /// Frames dropped because the detector queue was full (oldest first).
    pub dropped: AtomicU64,
    /// Frames the detector finished.
    pub inferred: AtomicU64,
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
    /// Why the camera last failed, one line, credentials masked.
    pub last_error: Mutex<Option<String>>,
    /// Frames inferred per second over the last [`RATE_WINDOW`], in thousandths.
    pub fps_milli: AtomicU64,
    /// Seconds from capture to detections ready.
    pub frame_age: Histogram,
}

impl Default for CameraStats {
    fn default() -> Self {
        Self {
            decoded: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            inferred: AtomicU64::new(0),
            persons: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            up: AtomicBool::new(false),
            last_error: Mutex::new(None),
            fps_milli: AtomicU64::new(0),
            frame_age: Histogram::new(FRAME_AGE_BUCKETS),
        }
    }
}

impl CameraStats {
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

/// Counters of the whole service.
#[derive(Debug)]
pub struct Stats {
    /// Per camera, in config order.
    pub cameras: Vec<CameraStats>,
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
    /// Failed inferences.
    pub infer_errors: AtomicU64,
    /// Failed store transactions.
    pub store_errors: AtomicU64,
    /// When the run started.
    pub started: Instant,
    /// Seconds from submitting a frame to the detector to its result.
    pub infer_latency: Histogram,
    /// The detector's model is compiled and its thread runs.
    pub model_loaded: AtomicBool,
    /// The last database commit succeeded (or none was needed yet).
    pub db_writable: AtomicBool,
    /// At the last commit: milliseconds from the oldest record in it to the commit.
    pub write_lag_ms: AtomicU64,
}

/// Counter values at the last [`Stats::update_rates`].
#[derive(Debug, Clone)]
pub struct RateState {
    at: Instant,
    inferred: Vec<u64>,
}

/// A plain copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Cameras configured.
    pub cameras: usize,
    /// Cameras with frames flowing.
    pub cameras_up: usize,
    /// Sum over cameras.
    pub decoded: u64,
    /// Sum over cameras.
    pub delivered: u64,
    /// Sum over cameras.
    pub dropped: u64,
    /// Sum over cameras.
    pub inferred: u64,
    /// Sum over cameras.
    pub persons: u64,
    /// Sum over cameras.
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
    /// Failed inferences.
    pub infer_errors: u64,
}

impl Stats {
    /// Zeroed counters for `cameras` cameras.
    pub fn new(cameras: usize) -> Self {
        Self {
            cameras: (0..cameras).map(|_| CameraStats::default()).collect(),
            tracks: AtomicU64::new(0),
            points: AtomicU64::new(0),
            points_stored: AtomicU64::new(0),
            frames_stored: AtomicU64::new(0),
            points_duplicate: AtomicU64::new(0),
            points_rejected: AtomicU64::new(0),
            infer_errors: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            started: Instant::now(),
            infer_latency: Histogram::new(INFER_LATENCY_BUCKETS),
            model_loaded: AtomicBool::new(false),
            db_writable: AtomicBool::new(true),
            write_lag_ms: AtomicU64::new(0),
        }
    }

    /// A starting point for [`Stats::update_rates`].
    pub fn rate_state(&self) -> RateState {
        RateState {
            at: Instant::now(),
            inferred: self
                .cameras
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
        for ((c, before), after) in self.cameras.iter().zip(&prev.inferred).zip(&now.inferred) {
            let fps = after.saturating_sub(*before) as f64 / dt.as_secs_f64();
            c.fps_milli
                .store((fps * 1000.0).round() as u64, Ordering::Relaxed);
        }
        *prev = now;
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let sum = |f: fn(&CameraStats) -> &AtomicU64| {
            self.cameras
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        Snapshot {
            cameras: self.cameras.len(),
            cameras_up: self
                .cameras
                .iter()
                .filter(|c| c.up.load(Ordering::Relaxed))
                .count(),
            decoded: sum(|c| &c.decoded),
            delivered: sum(|c| &c.delivered),
            dropped: sum(|c| &c.dropped),
            inferred: sum(|c| &c.inferred),
            persons: sum(|c| &c.persons),
            failures: sum(|c| &c.failures),
            tracks: self.tracks.load(Ordering::Relaxed),
            points_stored: self.points_stored.load(Ordering::Relaxed),
            frames_stored: self.frames_stored.load(Ordering::Relaxed),
            points_duplicate: self.points_duplicate.load(Ordering::Relaxed),
            points_rejected: self.points_rejected.load(Ordering::Relaxed),
            infer_errors: self.infer_errors.load(Ordering::Relaxed),
        }
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
