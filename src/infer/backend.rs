//! The detector boundary: frames in, detections out, in whatever order the device finishes.
//!
//! A backend runs up to [`Backend::capacity`] frames at once. [`Backend::submit`] hands it a
//! frame; [`Backend::poll`] returns one finished frame (its detections, the fact that it was
//! dropped, or why its inference failed), or nothing within the timeout. Nothing here promises order: per-camera order is
//! restored by the dispatcher ([`crate::infer::dispatch`]). The local OpenVINO request pool
//! ([`crate::infer::local`]) and the KServe v2 model-server fleet ([`crate::infer::kserve`]:
//! submit = send a request, poll = take the next answer) implement it.

use std::time::Duration;

use crate::infer::InferError;
use crate::messages::{CameraIndex, Detections, Frame};

/// One frame a backend is done with.
#[derive(Debug)]
pub enum Finished {
    /// Its detections.
    Detected(Detections),
    /// It could not be detected (a remote request failed or no model server was up, and nothing
    /// stood in); the backend has counted it. It only releases the same camera's later frames.
    Dropped {
        /// Which camera.
        camera: CameraIndex,
        /// The frame's sequence number.
        seq: u64,
    },
    /// Its inference failed. The dispatcher counts it and drops it like a `Dropped` frame,
    /// unless the error ends the detector ([`InferError::is_fatal`], or too many failures in a
    /// row: [`crate::infer::failures::FailLimit`]).
    Failed {
        /// Which camera.
        camera: CameraIndex,
        /// The frame's sequence number.
        seq: u64,
        /// Why it failed.
        error: InferError,
    },
}

/// A detector that works on several frames at once and reports them as they finish.
pub trait Backend {
    /// How many frames may be in flight at once (submitted and not yet returned by `poll`).
    fn capacity(&self) -> usize;

    /// Starts work on `frame`. Called only while fewer than `capacity` frames are in flight.
    fn submit(&mut self, frame: Frame) -> Result<(), InferError>;

    /// One finished frame, waiting up to `timeout`; `Ok(None)` when nothing finished in time.
    /// Every submitted frame comes back exactly once, detected, dropped or failed. An `Err` is
    /// a failure of the backend itself and ends the detector.
    fn poll(&mut self, timeout: Duration) -> Result<Option<Finished>, InferError>;
}
