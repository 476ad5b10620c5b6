//! Multi-object tracker, one per camera: pure Rust, deterministic, no GStreamer/OpenVINO types.
//!
//! Input: the person detections of one frame with the frame's timestamp. Output: the state of
//! every confirmed track seen in that frame, and the ids of tracks that ended.
//!
//! The scheme is ByteTrack's: each track carries a constant-velocity Kalman filter (in seconds,
//! see [`kalman`]); high-score detections are associated first, by IoU (modulated by the
//! overlap of the boxes' vertical extents) with Hungarian assignment, against confirmed and lost tracks; low-score detections are then offered to the
//! confirmed tracks still unmatched, which keeps tracks alive through partial occlusion without
//! letting low-score noise start tracks; remaining detections are then matched against where a
//! (nearly) standing track was last seen. Life cycle: tentative → confirmed (after
//! `confirm_hits` consecutive matches) → lost (unmatched) → removed after `max_lost_ms`.
//!
//! Trajectories are whole: when a lost track is recovered, every frame it missed gets a point
//! interpolated between the boxes before and after the gap ([`PointKind::Interpolated`]);
//! optionally, for `predict_ms` after its last match, a lost track reports the filter's
//! prediction live ([`PointKind::Predicted`]), which stays flagged if the track never returns.

pub mod assign;
pub mod kalman;
pub mod stage;
mod tracker;

pub use tracker::Tracker;

use serde::Deserialize;

use crate::geometry::BBox;

/// Default threshold between "high" and "low" detection scores.
pub const DEFAULT_HIGH_SCORE: f32 = 0.5;
/// Default lowest score the tracker looks at.
pub const DEFAULT_LOW_SCORE: f32 = 0.15;
/// Default lowest score that may start a new track.
pub const DEFAULT_NEW_TRACK_SCORE: f32 = 0.55;
/// Default minimum IoU for the first (high-score) association.
pub const DEFAULT_MATCH_IOU: f32 = 0.2;
/// Default minimum IoU for the second (low-score) association.
pub const DEFAULT_LOW_MATCH_IOU: f32 = 0.4;
/// Default minimum IoU for a tentative track to take a detection.
pub const DEFAULT_TENTATIVE_MATCH_IOU: f32 = 0.3;
/// Default consecutive matches before a track is confirmed.
pub const DEFAULT_CONFIRM_HITS: u32 = 3;
/// Default time a lost track may be recovered before it ends.
pub const DEFAULT_MAX_LOST_MS: i64 = 2_000;
/// Default time after the last match during which a lost track reports predicted boxes.
pub const DEFAULT_PREDICT_MS: i64 = 0;
/// Default speed (box heights per second) above which a track is not matched by where it was
/// last seen.
pub const DEFAULT_LAST_SEEN_MAX_SPEED: f32 = 0.5;

/// Tracker thresholds (config section `[tracker]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerParams {
    /// Detections at or above this score take part in the first association.
    pub high_score: f32,
    /// Detections below this score are ignored.
    pub low_score: f32,
    /// A detection left unmatched needs at least this score to start a track.
    pub new_track_score: f32,
    /// Minimum IoU for the first association.
    pub match_iou: f32,
    /// Minimum IoU for the low-score association.
    pub low_match_iou: f32,
    /// Minimum IoU for a tentative track to take a detection.
    pub tentative_match_iou: f32,
    /// Consecutive matches that confirm a tentative track.
    pub confirm_hits: u32,
    /// How long (ms) an unmatched confirmed track is kept for recovery.
    pub max_lost_ms: i64,
    /// For this long (ms) after its last match a lost track reports its predicted box
    /// ([`PointKind::Predicted`]) in every frame; later missed frames are filled by
    /// interpolation if the track is recovered. 0 = never predict.
    pub predict_ms: i64,
    /// Only tracks slower than this (box heights per second) when last matched take part in
    /// the last-seen recovery stage.
    pub last_seen_max_speed: f32,
}

impl Default for TrackerParams {
    fn default() -> Self {
        Self {
            high_score: DEFAULT_HIGH_SCORE,
            low_score: DEFAULT_LOW_SCORE,
            new_track_score: DEFAULT_NEW_TRACK_SCORE,
            match_iou: DEFAULT_MATCH_IOU,
            low_match_iou: DEFAULT_LOW_MATCH_IOU,
            tentative_match_iou: DEFAULT_TENTATIVE_MATCH_IOU,
            confirm_hits: DEFAULT_CONFIRM_HITS,
            max_lost_ms: DEFAULT_MAX_LOST_MS,
            predict_ms: DEFAULT_PREDICT_MS,
            last_seen_max_speed: DEFAULT_LAST_SEEN_MAX_SPEED,
        }
    }
}

/// Why tracker settings could not be read from a file.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// File.
        path: std::path::PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `[tracker]` table is invalid.
    #[error("{}: [tracker]: {message}", path.display())]
    Invalid {
        /// File.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl TrackerParams {
    /// Reads the `[tracker]` table of a TOML file (other tables are ignored), so a service
    /// config can be used as is.
    pub fn load(path: &std::path::Path) -> Result<Self, ParamsError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            tracker: TrackerParams,
        }
        let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| ParamsError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let f: File = toml::from_str(&text).map_err(|e| invalid(e.message().trim().to_string()))?;
        let problems = f.tracker.problems();
        if !problems.is_empty() {
            return Err(invalid(problems.join("; ")));
        }
        Ok(f.tracker)
    }

    /// Problems with these values, each naming its key (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let unit = [
            ("high_score", self.high_score),
            ("low_score", self.low_score),
            ("new_track_score", self.new_track_score),
            ("match_iou", self.match_iou),
            ("low_match_iou", self.low_match_iou),
            ("tentative_match_iou", self.tentative_match_iou),
        ];
        for (k, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                out.push(format!("{k} = {v}: must be between 0 and 1"));
            }
        }
        if !(self.last_seen_max_speed >= 0.0 && self.last_seen_max_speed.is_finite()) {
            out.push(format!(
                "last_seen_max_speed = {}: must be a number ≥ 0",
                self.last_seen_max_speed
            ));
        }
        if self.low_score > self.high_score {
            out.push("low_score must not exceed high_score".into());
        }
        if self.confirm_hits == 0 {
            out.push("confirm_hits must be at least 1".into());
        }
        if !(0..=600_000).contains(&self.max_lost_ms) {
            out.push("max_lost_ms must be from 0 to 600000".into());
        }
        if !(0..=self.max_lost_ms).contains(&self.predict_ms) {
            out.push("predict_ms must be from 0 to max_lost_ms".into());
        }
        out
    }
}

/// Where a track is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackPhase {
    /// Seen, not yet confirmed.
    Tentative,
    /// Confirmed and matched recently.
    Confirmed,
    /// Confirmed, currently unmatched, may be recovered.
    Lost,
}

// How a track point came about: a shared type (the store and queries read it too).
pub use crate::messages::PointKind;

/// A confirmed track's state at one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackState {
    /// Track id, unique within this tracker, starting at 1.
    pub id: u64,
    /// Time of this state, ms (earlier than the update's time for back-filled states).
    pub ts_ms: i64,
    /// Filtered box in source pixels.
    pub bbox: BBox,
    /// Score of the detection matched in this frame (0 for interpolated and predicted states).
    pub score: f32,
    /// Observed, or filled in.
    pub kind: PointKind,
}

/// What one [`Tracker::update`] produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerOutput {
    /// Confirmed tracks matched in this frame; for a track confirmed in this frame, the
    /// observations it had while tentative (so a trajectory starts where the person appeared);
    /// for a track recovered in this frame, interpolated states for the frames it missed; and
    /// predicted states of lost tracks within `predict_ms`. Sorted by time, then id.
    pub updates: Vec<TrackState>,
    /// Ids of tracks confirmed in this frame (each id appears here once in its life).
    pub confirmed: Vec<u64>,
    /// Ids of confirmed tracks that ended (lost for longer than `max_lost_ms`).
    pub ended: Vec<u64>,
}
