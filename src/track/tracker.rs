//! The per-camera tracker (see the module doc of [`crate::track`] for the scheme).

use super::assign::assign;
use super::kalman::BoxFilter;
use super::{PointKind, TrackPhase, TrackState, TrackerOutput, TrackerParams};
use crate::geometry::{BBox, Detection};

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    filter: BoxFilter,
    phase: TrackPhase,
    hits: u32,
    /// Last matched detection and its time.
    last_obs: BBox,
    last_match_ms: i64,
    /// Box reported at the last match: where a gap's filled points start.
    last_box: BBox,
    /// Times of the frames seen since the last match that got no point (filled on recovery).
    missed: Vec<i64>,
    /// Observations while tentative, emitted when the track is confirmed.
    pending: Vec<TrackState>,
}

impl Track {
    /// Estimated speed in box heights per second (scale-free: near and far people alike).
    fn speed(&self) -> f64 {
        let (vx, vy) = self.filter.velocity();
        vx.hypot(vy) / f64::from(self.last_obs.h.max(1.0))
    }
}

/// The per-camera tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<Track>,
    next_id: u64,
    last_ts_ms: Option<i64>,
}

/// Which box of a track an association stage compares with detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    /// The Kalman prediction.
    Motion,
    /// The last observed box (OC-SORT's observation-centric recovery).
    LastSeen,
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

    /// A tracker with no tracks whose next track gets id `next_id` (a camera restarted within
    /// one run continues its ids instead of reusing them).
    pub fn starting_at(params: TrackerParams, next_id: u64) -> Self {
        Self {
            next_id: next_id.max(1),
            ..Self::new(params)
        }
    }

    /// The id the next new track will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
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
        self.predict(ts_ms);
        let p = &self.params;
        let (high, low): (Vec<usize>, Vec<usize>) = (0..detections.len())
            .filter(|&i| detections[i].score >= p.low_score)
            .partition(|&i| detections[i].score >= p.high_score);
        let pairs = self.match_stages(detections, &high, &low);
        let mut out = TrackerOutput::default();
        let mut matched_track = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for &(t, d) in &pairs {
            matched_track[t] = true;
            det_used[d] = true;
            self.matched(t, &detections[d], ts_ms, &mut out);
        }
        self.unmatched(&matched_track, ts_ms, &mut out);
        for &d in &high {
            if !det_used[d] && detections[d].score >= self.params.new_track_score {
                self.birth(&detections[d], ts_ms, &mut out);
            }
        }
        out.updates.sort_by_key(|u| (u.ts_ms, u.id));
        out
    }

    /// Moves every track's filter to `ts_ms`.
    fn predict(&mut self, ts_ms: i64) {
        let dt = self
            .last_ts_ms
            .map_or(0.0, |last| (ts_ms - last).max(0) as f64 / 1000.0);
        self.last_ts_ms = Some(ts_ms.max(self.last_ts_ms.unwrap_or(i64::MIN)));
        for t in &mut self.tracks {
            t.filter.predict(dt);
        }
    }

    /// The four association stages; (track, detection) pairs.
    fn match_stages(
        &self,
        detections: &[Detection],
        high: &[usize],
        low: &[usize],
    ) -> Vec<(usize, usize)> {
        let p = &self.params;
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        let n = self.tracks.len();
        let free_tracks = |pairs: &[(usize, usize)], keep: &dyn Fn(&Track) -> bool| -> Vec<usize> {
            (0..n)
                .filter(|t| !pairs.iter().any(|&(pt, _)| pt == *t) && keep(&self.tracks[*t]))
                .collect()
        };
        let free_dets = |pairs: &[(usize, usize)], from: &[usize]| -> Vec<usize> {
            from.iter()
                .copied()
                .filter(|d| !pairs.iter().any(|&(_, pd)| pd == *d))
                .collect()
        };

        // 1. High-score detections vs confirmed and lost tracks, by motion.
        let pool = free_tracks(&pairs, &|t| t.phase != TrackPhase::Tentative);
        self.associate(
            &pool,
            high,
            detections,
            p.match_iou,
            Cue::Motion,
            &mut pairs,
        );
        // 2. Low-score detections vs confirmed (not lost) tracks still unmatched.
        let pool = free_tracks(&pairs, &|t| t.phase == TrackPhase::Confirmed);
        self.associate(
            &pool,
            low,
            detections,
            p.low_match_iou,
            Cue::Motion,
            &mut pairs,
        );
        // 3. Remaining high-score detections vs the last observation of unmatched confirmed and
        //    lost tracks that were (nearly) standing: a shopper who stopped while hidden is found
        //    where last seen. A walker is not: the one found at a walker's last spot is mostly
        //    someone else passing by (measured on the TUD replays).
        let pool = free_tracks(&pairs, &|t| {
            t.phase != TrackPhase::Tentative && t.speed() <= f64::from(p.last_seen_max_speed)
        });
        let rest = free_dets(&pairs, high);
        self.associate(
            &pool,
            &rest,
            detections,
            p.match_iou,
            Cue::LastSeen,
            &mut pairs,
        );
        // 4. Remaining high-score detections vs tentative tracks.
        let pool = free_tracks(&pairs, &|t| t.phase == TrackPhase::Tentative);
        let rest = free_dets(&pairs, high);
        self.associate(
            &pool,
            &rest,
            detections,
            p.tentative_match_iou,
            Cue::Motion,
            &mut pairs,
        );
        pairs
    }

    /// Track `t` matched `det`: corrected, its gap filled, confirmed once it has enough hits.
    fn matched(&mut self, t: usize, det: &Detection, ts_ms: i64, out: &mut TrackerOutput) {
        let confirm_hits = self.params.confirm_hits;
        let tr = &mut self.tracks[t];
        // A recovered lost track is simply corrected: restarting its velocity from the gap
        // (OC-SORT's re-update) measured worse on the store scenes, where people stop.
        if tr.phase == TrackPhase::Lost {
            tr.phase = TrackPhase::Confirmed;
        }
        tr.filter.update(&det.bbox);
        tr.hits += 1;
        let state = TrackState {
            id: tr.id,
            ts_ms,
            bbox: tr.filter.bbox(),
            score: det.score,
            kind: PointKind::Observed,
        };
        fill_gap(tr, &state, &mut out.updates);
        tr.last_obs = det.bbox;
        tr.last_match_ms = ts_ms;
        tr.last_box = state.bbox;
        match tr.phase {
            TrackPhase::Tentative if tr.hits >= confirm_hits => {
                tr.phase = TrackPhase::Confirmed;
                out.confirmed.push(tr.id);
                out.updates.append(&mut tr.pending);
                out.updates.push(state);
            }
            TrackPhase::Tentative => tr.pending.push(state),
            TrackPhase::Confirmed | TrackPhase::Lost => out.updates.push(state),
        }
    }

    /// Unmatched tracks: tentative ones die, confirmed ones become lost, old lost ones end.
    fn unmatched(&mut self, matched_track: &[bool], ts_ms: i64, out: &mut TrackerOutput) {
        let p = &self.params;
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (i, mut tr) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if !matched_track[i] {
                match tr.phase {
                    TrackPhase::Tentative => continue,
                    TrackPhase::Confirmed | TrackPhase::Lost => {
                        tr.phase = TrackPhase::Lost;
                        tr.hits = 0;
                        let since = ts_ms - tr.last_match_ms;
                        if since > p.max_lost_ms {
                            out.ended.push(tr.id);
                            continue;
                        }
                        if since <= p.predict_ms {
                            out.updates.push(TrackState {
                                id: tr.id,
                                ts_ms,
                                bbox: tr.filter.bbox(),
                                score: 0.0,
                                kind: PointKind::Predicted,
                            });
                        } else {
                            tr.missed.push(ts_ms);
                        }
                    }
                }
            }
            keep.push(tr);
        }
        self.tracks = keep;
    }

    /// A new track from an unmatched high-score detection (confirmed at once when
    /// `confirm_hits` is 1).
    fn birth(&mut self, det: &Detection, ts_ms: i64, out: &mut TrackerOutput) {
        let id = self.next_id;
        self.next_id += 1;
        let state = TrackState {
            id,
            ts_ms,
            bbox: det.bbox,
            score: det.score,
            kind: PointKind::Observed,
        };
        let confirmed = self.params.confirm_hits <= 1;
        if confirmed {
            out.confirmed.push(id);
            out.updates.push(state);
        }
        self.tracks.push(Track {
            id,
            filter: BoxFilter::new(&det.bbox),
            phase: if confirmed {
                TrackPhase::Confirmed
            } else {
                TrackPhase::Tentative
            },
            hits: 1,
            last_obs: det.bbox,
            last_match_ms: ts_ms,
            last_box: det.bbox,
            missed: Vec::new(),
            pending: if confirmed { Vec::new() } else { vec![state] },
        });
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
        cue: Cue,
        pairs: &mut Vec<(usize, usize)>,
    ) {
        if tracks.is_empty() || dets.is_empty() {
            return;
        }
        let mut cost = Vec::with_capacity(tracks.len() * dets.len());
        for &t in tracks {
            let tr = &self.tracks[t];
            let predicted = tr.filter.bbox();
            for &d in dets {
                let db = &detections[d].bbox;
                let other = match cue {
                    Cue::Motion => predicted,
                    Cue::LastSeen => tr.last_obs,
                };
                let iou = height_modulated_iou(&other, db);
                cost.push(1.0 - f64::from(iou));
            }
        }
        for m in assign(&cost, tracks.len(), dets.len(), 1.0 - f64::from(min_iou)) {
            pairs.push((tracks[m.row], dets[m.col]));
        }
    }
}

/// On the recovery of `tr` (`now` is its new observed state), pushes an interpolated state for
/// every frame it missed, on the straight line from its last reported box to `now.bbox`.
fn fill_gap(tr: &mut Track, now: &TrackState, out: &mut Vec<TrackState>) {
    let span = (now.ts_ms - tr.last_match_ms) as f32;
    for ts_ms in tr.missed.drain(..) {
        let a = if span > 0.0 {
            (ts_ms - tr.last_match_ms) as f32 / span
        } else {
            0.0
        };
        out.push(TrackState {
            id: tr.id,
            ts_ms,
            bbox: lerp(&tr.last_box, &now.bbox, a),
            score: 0.0,
            kind: PointKind::Interpolated,
        });
    }
}

/// IoU times the IoU of the two boxes' vertical extents (Hybrid-SORT's height-modulated IoU).
/// People at different depths differ in height and in where their feet are, so where two
/// people cross, a track keeps to the one at its own depth (measured: fewer ID switches on both
/// evaluation sources).
fn height_modulated_iou(a: &BBox, b: &BBox) -> f32 {
    let inter = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    let union = (a.y + a.h).max(b.y + b.h) - a.y.min(b.y);
    if inter <= 0.0 || union <= 0.0 {
        return 0.0;
    }
    a.iou(b) * inter / union
}

/// The box a fraction `a` of the way from `from` to `to`, corner by corner.
fn lerp(from: &BBox, to: &BBox, a: f32) -> BBox {
    let mix = |p: f32, q: f32| p + (q - p) * a;
    BBox::new(
        mix(from.x, to.x),
        mix(from.y, to.y),
        mix(from.w, to.w),
        mix(from.h, to.h),
    )
}

#[cfg(test)]
mod tests;
