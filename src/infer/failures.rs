//! Frames whose inference failed: how they are logged, and when failures in a row mean the
//! device has failed for good.
//!
//! A failed frame is dropped and the detector goes on. Per camera, the first failure after a
//! detected frame logs one warning (camera id and reason), further ones log at DEBUG, and the
//! camera's next detected frame logs one line saying how many failed before it. Across all
//! cameras, failures with no frame detected in between that reach both [`FailLimit::frames`]
//! and [`FailLimit::lasting`] end the detector with [`InferError::DeviceFailed`]; an error that
//! is fatal by itself ([`InferError::is_fatal`]: a stuck request, a panicked worker) ends it at
//! once.

use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::infer::InferError;
use crate::messages::CameraIndex;

/// Failed frames in a row (no frame of any camera detected in between) after which the device
/// counts as failed for good, once they also span [`DEVICE_FAILED_AFTER`]. More than the frames
/// in flight at once with a usual request pool, which a single hiccup fails together.
pub const DEVICE_FAILED_FRAMES: u64 = 20;
/// How long failures in a row must go on before the device counts as failed for good: a short
/// driver hiccup passes, a dead device ends the process within seconds so the service manager
/// restarts it.
pub const DEVICE_FAILED_AFTER: Duration = Duration::from_secs(10);

/// When failures in a row end the detector: both limits must be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailLimit {
    /// Failed frames in a row.
    pub frames: u64,
    /// Time from the first of them to the latest.
    pub lasting: Duration,
}

impl FailLimit {
    /// The limit the service runs with.
    pub const DEVICE: FailLimit = FailLimit {
        frames: DEVICE_FAILED_FRAMES,
        lasting: DEVICE_FAILED_AFTER,
    };
}

/// Failed frames since the last detected one, overall and per camera.
#[derive(Debug)]
pub struct Failures {
    limit: FailLimit,
    /// Failed frames of any camera since a frame was last detected.
    in_a_row: u64,
    /// When the first of them failed.
    since: Option<Instant>,
    /// Per camera: failed frames since the camera's last detected one.
    cameras: Vec<u64>,
}

impl Failures {
    /// No failures yet (per-camera counts grow with the camera slots seen).
    pub fn new(limit: FailLimit) -> Self {
        Self {
            limit,
            in_a_row: 0,
            since: None,
            cameras: Vec::new(),
        }
    }

    /// Notes (and logs) that a frame of `camera` failed at `now` with `error`; returns the
    /// error that ends the detector, if this failure does.
    pub fn failed(
        &mut self,
        camera: CameraIndex,
        id: &str,
        error: InferError,
        now: Instant,
    ) -> Result<(), InferError> {
        if error.is_fatal() {
            return Err(error);
        }
        let since = *self.since.get_or_insert(now);
        self.in_a_row += 1;
        let streak = self.camera(camera);
        *streak += 1;
        if *streak == 1 {
            warn!(camera = %id, error = %error,
                  "Inference failed; frame dropped (further failures of this camera at DEBUG).");
        } else {
            debug!(camera = %id, failed = *streak, error = %error,
                   "Inference failed again; frame dropped.");
        }
        let lasted = now.saturating_duration_since(since);
        if self.in_a_row >= self.limit.frames && lasted >= self.limit.lasting {
            return Err(InferError::DeviceFailed {
                failures: self.in_a_row,
                seconds: lasted.as_secs(),
                last: Box::new(error),
            });
        }
        Ok(())
    }

    /// Notes that a frame of `camera` was detected: the failures in a row are over. Returns how
    /// many of the camera's frames had failed since its last detected one (logged once, naming
    /// the camera by `id()`, which is only called then), if any.
    pub fn detected(&mut self, camera: CameraIndex, id: impl FnOnce() -> String) -> Option<u64> {
        self.in_a_row = 0;
        self.since = None;
        let failed = std::mem::take(self.camera(camera));
        if failed == 0 {
            return None;
        }
        info!(
            camera = %id(),
            failed, "Inference recovered after {failed} failed frames."
        );
        Some(failed)
    }

    /// Failed frames of any camera since a frame was last detected.
    pub fn in_a_row(&self) -> u64 {
        self.in_a_row
    }

    fn camera(&mut self, camera: CameraIndex) -> &mut u64 {
        if camera >= self.cameras.len() {
            self.cameras.resize(camera + 1, 0);
        }
        &mut self.cameras[camera]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_frame() -> InferError {
        InferError::ModelMismatch {
            model: "test".into(),
            message: "frame does not fit".into(),
        }
    }

    #[test]
    fn failures_end_the_detector_only_when_both_limits_are_reached() {
        let limit = FailLimit {
            frames: 3,
            lasting: Duration::from_secs(10),
        };
        let mut f = Failures::new(limit);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Three frames within a second: enough frames, not long enough.
        for s in [0, 0, 1] {
            f.failed(0, "cam", bad_frame(), at(s)).unwrap();
        }
        // Long enough from the first failure, and the frames counted across cameras.
        f.failed(1, "cam", bad_frame(), at(9)).unwrap();
        match f.failed(0, "cam", bad_frame(), at(10)) {
            Err(InferError::DeviceFailed {
                failures, seconds, ..
            }) => assert_eq!((failures, seconds), (5, 10)),
            other => panic!("expected DeviceFailed, got {other:?}"),
        }
    }

    #[test]
    fn a_detected_frame_ends_the_run_and_reports_its_cameras_failures() {
        let limit = FailLimit {
            frames: 2,
            lasting: Duration::from_secs(10),
        };
        let mut f = Failures::new(limit);
        let t0 = Instant::now();
        for _ in 0..3 {
            f.failed(0, "cam", bad_frame(), t0).unwrap();
        }
        assert_eq!(f.in_a_row(), 3);
        // Camera 1 detects: the run is over, camera 0's own count stays until it recovers.
        assert_eq!(f.detected(1, || "cam".into()), None);
        assert_eq!(f.in_a_row(), 0);
        // The time limit counts from the first failure after the detected frame.
        f.failed(0, "cam", bad_frame(), t0 + Duration::from_secs(20))
            .unwrap();
        f.failed(0, "cam", bad_frame(), t0 + Duration::from_secs(29))
            .unwrap();
        assert_eq!(f.detected(0, || "cam".into()), Some(5));
        assert_eq!(f.detected(0, || "cam".into()), None);
    }

    #[test]
    fn a_stuck_request_is_fatal_at_once() {
        let mut f = Failures::new(FailLimit::DEVICE);
        assert!(matches!(
            f.failed(0, "cam", InferError::Stuck, Instant::now()),
            Err(InferError::Stuck)
        ));
    }
}
