//! Multi-object tracker, one per camera: pure Rust, deterministic, no GStreamer/OpenVINO types.
//!
//! Input: the person detections of one frame with the frame's timestamp. Output: the state of
//! every confirmed track seen in that frame, and the ids of tracks that ended.
//!
//! The scheme is ByteTrack's: each track carries a constant-velocity Kalman filter (in seconds,
//! see [`kalman`]); high-score detections are associated first, by IoU with Hungarian
//! assignment, against confirmed and lost tracks; low-score detections are then offered to the
//! confirmed tracks still unmatched, which keeps tracks alive through partial occlusion without
//! letting low-score noise start tracks. Life cycle: tentative → confirmed (after
//! `confirm_hits` consecutive matches) → lost (unmatched) → removed after `max_lost_ms`.

pub mod assign;
pub mod kalman;
pub mod stage;

use serde::Deserialize;

use crate::geometry::{BBox, Detection};
use assign::assign;
use kalman::BoxFilter;

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
        if self.low_score > self.high_score {
            out.push("low_score must not exceed high_score".into());
        }
        if self.confirm_hits == 0 {
            out.push("confirm_hits must be at least 1".into());
        }
        if !(0..=600_000).contains(&self.max_lost_ms) {
            out.push("max_lost_ms must be from 0 to 600000".into());
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

/// A confirmed track's state at one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackState {
    /// Track id, unique within this tracker, starting at 1.
    pub id: u64,
    /// Filtered box in source pixels.
    pub bbox: BBox,
    /// Score of the detection matched in this frame.
    pub score: f32,
}

/// What one [`Tracker::update`] produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerOutput {
    /// Confirmed tracks matched in this frame.
    pub updates: Vec<TrackState>,
    /// Ids of tracks confirmed in this frame (each id appears here once in its life).
    pub confirmed: Vec<u64>,
    /// Ids of confirmed tracks that ended (lost for longer than `max_lost_ms`).
    pub ended: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    filter: BoxFilter,
    phase: TrackPhase,
    hits: u32,
    last_match_ms: i64,
}

/// The per-camera tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<Track>,
    next_id: u64,
    last_ts_ms: Option<i64>,
}

impl Tracker {
    /// A tracker with no tracks.
    pub fn new(params: TrackerParams) -> Self {
        Self {
            params,
            tracks: Vec::new(),
            next_id: 1,
            last_ts_ms: None,
        }
    }

    /// Number of tracks in any phase.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when no track is held.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Phase of track `id`, if it is still held.
    pub fn phase(&self, id: u64) -> Option<TrackPhase> {
        self.tracks.iter().find(|t| t.id == id).map(|t| t.phase)
    }

    /// Feeds the detections of the frame at `ts_ms` (milliseconds, non-decreasing).
    pub fn update(&mut self, ts_ms: i64, detections: &[Detection]) -> TrackerOutput {
        let p = self.params.clone();
        let dt = self
            .last_ts_ms
            .map_or(0.0, |last| (ts_ms - last).max(0) as f64 / 1000.0);
        self.last_ts_ms = Some(ts_ms.max(self.last_ts_ms.unwrap_or(i64::MIN)));
        for t in &mut self.tracks {
            t.filter.predict(dt);
        }

        let (high, low): (Vec<usize>, Vec<usize>) = (0..detections.len())
            .filter(|&i| detections[i].score >= p.low_score)
            .partition(|&i| detections[i].score >= p.high_score);
        let mut matched_track = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        let mut pairs: Vec<(usize, usize)> = Vec::new();

        // 1. High-score detections vs confirmed and lost tracks.
        let pool: Vec<usize> = (0..self.tracks.len())
            .filter(|&t| self.tracks[t].phase != TrackPhase::Tentative)
            .collect();
        self.associate(&pool, &high, detections, p.match_iou, &mut pairs);
        // 2. Low-score detections vs confirmed (not lost) tracks still unmatched.
        let matched: Vec<usize> = pairs.iter().map(|&(t, _)| t).collect();
        let pool: Vec<usize> = pool
            .into_iter()
            .filter(|t| !matched.contains(t) && self.tracks[*t].phase == TrackPhase::Confirmed)
            .collect();
        self.associate(&pool, &low, detections, p.low_match_iou, &mut pairs);
        // 3. Remaining high-score detections vs tentative tracks.
        let used: Vec<usize> = pairs.iter().map(|&(_, d)| d).collect();
        let rest: Vec<usize> = high.iter().copied().filter(|d| !used.contains(d)).collect();
        let pool: Vec<usize> = (0..self.tracks.len())
            .filter(|&t| self.tracks[t].phase == TrackPhase::Tentative)
            .collect();
        self.associate(&pool, &rest, detections, p.tentative_match_iou, &mut pairs);

        let mut out = TrackerOutput::default();
        for &(t, d) in &pairs {
            matched_track[t] = true;
            det_used[d] = true;
            let det = &detections[d];
            let tr = &mut self.tracks[t];
            tr.filter.update(&det.bbox);
            tr.hits += 1;
            tr.last_match_ms = ts_ms;
            if tr.phase == TrackPhase::Tentative && tr.hits >= p.confirm_hits {
                tr.phase = TrackPhase::Confirmed;
                out.confirmed.push(tr.id);
            } else if tr.phase == TrackPhase::Lost {
                tr.phase = TrackPhase::Confirmed;
            }
            if tr.phase == TrackPhase::Confirmed {
                out.updates.push(TrackState {
                    id: tr.id,
                    bbox: tr.filter.bbox(),
                    score: det.score,
                });
            }
        }

        // Unmatched tracks: tentative ones die, confirmed ones become lost, old lost ones end.
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (i, mut tr) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if !matched_track[i] {
                match tr.phase {
                    TrackPhase::Tentative => continue,
                    TrackPhase::Confirmed | TrackPhase::Lost => {
                        tr.phase = TrackPhase::Lost;
                        tr.hits = 0;
                        if ts_ms - tr.last_match_ms > p.max_lost_ms {
                            out.ended.push(tr.id);
                            continue;
                        }
                    }
                }
            }
            keep.push(tr);
        }
        self.tracks = keep;

        // Births.
        for &d in &high {
            if !det_used[d] && detections[d].score >= p.new_track_score {
                let id = self.next_id;
                self.next_id += 1;
                let phase = if p.confirm_hits <= 1 {
                    TrackPhase::Confirmed
                } else {
                    TrackPhase::Tentative
                };
                self.tracks.push(Track {
                    id,
                    filter: BoxFilter::new(&detections[d].bbox),
                    phase,
                    hits: 1,
                    last_match_ms: ts_ms,
                });
                if phase == TrackPhase::Confirmed {
                    out.confirmed.push(id);
                    out.updates.push(TrackState {
                        id,
                        bbox: detections[d].bbox,
                        score: detections[d].score,
                    });
                }
            }
        }
        out.updates.sort_by_key(|u| u.id);
        out
    }

    /// Ends every confirmed or lost track (at shutdown); returns their ids.
    pub fn finish(&mut self) -> Vec<u64> {
        let ended = self
            .tracks
            .iter()
            .filter(|t| t.phase != TrackPhase::Tentative)
            .map(|t| t.id)
            .collect();
        self.tracks.clear();
        ended
    }

    fn associate(
        &self,
        tracks: &[usize],
        dets: &[usize],
        detections: &[Detection],
        min_iou: f32,
        pairs: &mut Vec<(usize, usize)>,
    ) {
        if tracks.is_empty() || dets.is_empty() {
            return;
        }
        let predicted: Vec<BBox> = tracks
            .iter()
            .map(|&t| self.tracks[t].filter.bbox())
            .collect();
        let mut cost = Vec::with_capacity(tracks.len() * dets.len());
        for pb in &predicted {
            for &d in dets {
                cost.push(1.0 - f64::from(pb.iou(&detections[d].bbox)));
            }
        }
        for m in assign(&cost, tracks.len(), dets.len(), 1.0 - f64::from(min_iou)) {
            pairs.push((tracks[m.row], dets[m.col]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox::new(x, y, 40.0, 100.0),
            score,
        }
    }

    #[test]
    fn track_is_born_tentative_confirmed_after_hits_and_ends_after_lost_time() {
        let mut t = Tracker::new(TrackerParams::default());
        // Frames at 10 fps; a person walks right at 30 px/s.
        let mut ts = 0;
        for i in 0..3 {
            let out = t.update(ts, &[det(100.0 + 3.0 * i as f32, 50.0, 0.9)]);
            if i < 2 {
                assert!(out.updates.is_empty(), "confirmed too early at frame {i}");
            } else {
                assert_eq!(out.updates.len(), 1);
                assert_eq!(out.updates[0].id, 1);
            }
            ts += 100;
        }
        assert_eq!(t.phase(1), Some(TrackPhase::Confirmed));
        // Person disappears: lost, then ended once max_lost_ms has passed.
        let out = t.update(ts, &[]);
        assert!(out.ended.is_empty());
        assert_eq!(t.phase(1), Some(TrackPhase::Lost));
        ts += DEFAULT_MAX_LOST_MS + 100;
        let out = t.update(ts, &[]);
        assert_eq!(out.ended, vec![1]);
        assert!(t.is_empty());
    }

    #[test]
    fn lost_track_recovers_its_id_after_a_short_gap() {
        let mut t = Tracker::new(TrackerParams::default());
        for i in 0..10 {
            t.update(i * 100, &[det(100.0 + 3.0 * i as f32, 50.0, 0.9)]);
        }
        for i in 10..15 {
            t.update(i * 100, &[]);
        }
        let out = t.update(1500, &[det(145.0, 50.0, 0.9)]);
        assert_eq!(out.updates.len(), 1);
        assert_eq!(out.updates[0].id, 1);
    }

    #[test]
    fn single_spurious_detection_never_becomes_a_track() {
        let mut t = Tracker::new(TrackerParams::default());
        let out = t.update(0, &[det(10.0, 10.0, 0.95)]);
        assert!(out.updates.is_empty());
        let out = t.update(100, &[]);
        assert!(out.updates.is_empty() && out.ended.is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn low_score_detections_keep_a_track_but_do_not_start_one() {
        let mut t = Tracker::new(TrackerParams::default());
        for i in 0..5 {
            t.update(i * 100, &[det(100.0, 50.0, 0.9)]);
        }
        // Occlusion: the detector is unsure, score 0.3.
        let out = t.update(500, &[det(101.0, 50.0, 0.3), det(400.0, 50.0, 0.3)]);
        assert_eq!(out.updates.len(), 1);
        assert_eq!(out.updates[0].id, 1);
        assert_eq!(t.len(), 1, "a low-score detection started a track");
    }

    #[test]
    fn two_people_crossing_keep_their_ids() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut last = TrackerOutput::default();
        for i in 0..40 {
            let a = det(100.0 + 10.0 * i as f32, 50.0, 0.9);
            let b = det(500.0 - 10.0 * i as f32, 60.0, 0.9);
            last = t.update(i * 100, &[a, b]);
        }
        // After crossing, the track moving right is still id 1.
        let right = last
            .updates
            .iter()
            .max_by(|p, q| p.bbox.x.total_cmp(&q.bbox.x));
        assert_eq!(right.map(|u| u.id), Some(1));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn deterministic_for_the_same_input() {
        let run = || {
            let mut t = Tracker::new(TrackerParams::default());
            (0..30)
                .map(|i| {
                    t.update(
                        i * 100,
                        &[det(i as f32 * 5.0, 0.0, 0.8), det(300.0, 0.0, 0.7)],
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
