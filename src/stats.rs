//! Counters shared by all stages: received / sent / dropped per camera and per stage, read by the
//! progress line, the end-of-run summary and (later) `/metrics`. Labels stay low-cardinality:
//! camera yes, track id never.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Counters of one camera.
#[derive(Debug, Default)]
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
}

impl CameraStats {
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
    /// The remote detector's counters.
    pub remote: RemoteStats,
    /// When the run started.
    pub started: Instant,
}

/// A plain copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
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
            remote: RemoteStats::default(),
            started: Instant::now(),
        }
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
