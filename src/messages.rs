//! Typed messages passed between stages over bounded channels.
//!
//! ingest → infer: [`Frame`] (per-camera channel, drop-oldest when full, counted).
//! infer → track: [`Detections`] (blocking: detections are never dropped silently).
//! track → analytics → store: [`StoreMsg`] (blocking).

use std::sync::Arc;

use crate::geometry::{BBox, Detection};
use crate::resize::InputMapping;

/// Index of a camera in the config's camera list (cheap to copy, used on the hot path).
pub type CameraIndex = usize;

/// One decoded, scaled frame ready for the detector.
#[derive(Debug)]
pub struct Frame {
    /// Which camera.
    pub camera: CameraIndex,
    /// Per-camera sequence number of frames delivered to the detector.
    pub seq: u64,
    /// Capture time, Unix milliseconds: strictly increasing per camera, the camera's own spacing
    /// anchored on unqueued arrival, less the capture delay its RTCP clock shows when that is in
    /// step with the host's (see [`crate::ingest::clock`]).
    pub captured_ms: i64,
    /// How the source picture was fitted to the model input (and so how detections map back
    /// to source pixels); carries the decoded source size.
    pub mapping: InputMapping,
    /// Packed pixels at the model's input size, in its colour order.
    pub pixels: gstreamer::Buffer,
}

/// The persons found in one frame.
#[derive(Debug, Clone)]
pub struct Detections {
    /// Which camera.
    pub camera: CameraIndex,
    /// Sequence number of the frame.
    pub seq: u64,
    /// Capture time, Unix milliseconds.
    pub captured_ms: i64,
    /// Width and height of the source image.
    pub source_size: (u32, u32),
    /// How many of `boxes` count as persons (score ≥ `model.score_threshold`).
    pub persons: u32,
    /// Persons with score ≥ the lowest threshold in use (tracker's `low_score`).
    pub boxes: Vec<Detection>,
}

/// One point of a confirmed track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackUpdate {
    /// Camera id as in the config.
    pub camera: Arc<str>,
    /// Track id, unique per camera within one service run.
    pub track_id: u64,
    /// Time, Unix milliseconds.
    pub ts_ms: i64,
    /// Filtered box in source pixels.
    pub bbox: BBox,
    /// Detector score of the matched detection.
    pub score: f32,
    /// Position on the floor plan (if the camera has a homography).
    pub floor: Option<(f64, f64)>,
    /// Observed, or filled in by the tracker.
    pub kind: PointKind,
}

/// What the tracker stage asks the store to write.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreMsg {
    /// A processed frame and how many persons it held (score ≥ model.score_threshold).
    Frame {
        /// Camera id.
        camera: Arc<str>,
        /// Frame sequence number.
        seq: u64,
        /// Capture time, Unix milliseconds.
        ts_ms: i64,
        /// Person count.
        persons: u32,
    },
    /// A point of a confirmed track.
    Point(TrackUpdate),
    /// A track ended; its row can be finalised.
    TrackEnded {
        /// Camera id.
        camera: Arc<str>,
        /// Track id.
        track_id: u64,
    },
    /// Store-wide trajectories and zone visits from the analytics stage.
    Analytics(crate::analytics::Event),
    /// A footfall event (crossing, visit, queue, alert, counts) from the analytics stage: its
    /// rows and its outbox row are written in one transaction ([`crate::store`]).
    Live(Box<crate::analytics::LiveEvent>),
}

/// How a track point came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PointKind {
    /// A detection matched the track in this frame (the box is the filtered estimate).
    #[default]
    Observed,
    /// Filled in between two observations after a track was recovered from a short gap.
    Interpolated,
    /// The motion model's estimate while the person was not detected.
    Predicted,
}

impl PointKind {
    /// The value stored in the database (`points.kind`).
    pub fn code(self) -> i64 {
        match self {
            PointKind::Observed => 0,
            PointKind::Interpolated => 1,
            PointKind::Predicted => 2,
        }
    }

    /// The name shown to analysts.
    pub fn name(self) -> &'static str {
        match self {
            PointKind::Observed => "observed",
            PointKind::Interpolated => "interpolated",
            PointKind::Predicted => "predicted",
        }
    }
}
