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
            &high,
            detections,
            p.match_iou,
            Cue::Motion,
            &mut pairs,
        );
        // 2. Low-score detections vs confirmed (not lost) tracks still unmatched.
        let pool = free_tracks(&pairs, &|t| t.phase == TrackPhase::Confirmed);
        self.associate(
            &pool,
            &low,
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
        let rest = free_dets(&pairs, &high);
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
        let rest = free_dets(&pairs, &high);
        self.associate(
            &pool,
            &rest,
            detections,
            p.tentative_match_iou,
            Cue::Motion,
            &mut pairs,
        );

        let mut out = TrackerOutput::default();
        let mut matched_track = vec![false; n];
        let mut det_used = vec![false; detections.len()];
        for &(t, d) in &pairs {
            matched_track[t] = true;
            det_used[d] = true;
            let det = &detections[d];
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
                TrackPhase::Tentative if tr.hits >= p.confirm_hits => {
                    tr.phase = TrackPhase::Confirmed;
                    out.confirmed.push(tr.id);
                    out.updates.append(&mut tr.pending);
                    out.updates.push(state);
                }
                TrackPhase::Tentative => tr.pending.push(state),
                TrackPhase::Confirmed | TrackPhase::Lost => out.updates.push(state),
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

        // Births.
        for &d in &high {
            if det_used[d] || detections[d].score < p.new_track_score {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let det = &detections[d];
            let state = TrackState {
                id,
                ts_ms,
                bbox: det.bbox,
                score: det.score,
                kind: PointKind::Observed,
            };
            let confirmed = p.confirm_hits <= 1;
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
        out.updates.sort_by_key(|u| (u.ts_ms, u.id));
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
mod tests {
    use super::super::DEFAULT_MAX_LOST_MS;
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
                // Confirmed: the two tentative observations come out too, in time order.
                let ts: Vec<i64> = out.updates.iter().map(|u| u.ts_ms).collect();
                assert_eq!(ts, vec![0, 100, 200]);
                assert!(out.updates.iter().all(|u| u.id == 1));
                assert_eq!(out.confirmed, vec![1]);
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
        // The new observation plus the five filled frames, all on track 1.
        assert_eq!(out.updates.len(), 6);
        assert!(out.updates.iter().all(|u| u.id == 1));
    }

    /// A walker at 10 fps, matched in frames 0–9, hidden in frames 10–14, seen again at 15.
    fn occluded_walker(params: TrackerParams) -> (Vec<TrackState>, Vec<TrackState>) {
        let mut t = Tracker::new(params);
        let mut before = Vec::new();
        for i in 0..10 {
            before.extend(
                t.update(i * 100, &[det(100.0 + 3.0 * i as f32, 50.0, 0.9)])
                    .updates,
            );
        }
        for i in 10..15 {
            before.extend(t.update(i * 100, &[]).updates);
        }
        let after = t.update(1500, &[det(145.0, 50.0, 0.9)]).updates;
        (before, after)
    }

    #[test]
    fn recovered_track_gap_is_filled_between_the_observations_at_the_missed_frame_times() {
        let (before, after) = occluded_walker(TrackerParams::default());
        let last = *before.last().unwrap();
        assert_eq!((last.ts_ms, last.kind), (900, PointKind::Observed));
        let (filled, now): (Vec<&TrackState>, Vec<&TrackState>) = after
            .iter()
            .partition(|u| u.kind == PointKind::Interpolated);
        assert_eq!(now.len(), 1);
        let now = *now[0];
        assert_eq!(
            (now.ts_ms, now.kind, now.id),
            (1500, PointKind::Observed, 1)
        );
        let times: Vec<i64> = filled.iter().map(|u| u.ts_ms).collect();
        assert_eq!(times, vec![1000, 1100, 1200, 1300, 1400]);
        for (k, u) in filled.iter().enumerate() {
            assert_eq!(u.id, 1);
            // On the line from the last box before the gap to the first after it, in order.
            let a = (k + 1) as f32 / 6.0;
            let x = last.bbox.x + a * (now.bbox.x - last.bbox.x);
            assert!((u.bbox.x - x).abs() < 1e-3, "{} vs {x}", u.bbox.x);
            assert!(last.bbox.x < u.bbox.x && u.bbox.x < now.bbox.x);
            let y_lo = last.bbox.y.min(now.bbox.y) - 1e-3;
            let y_hi = last.bbox.y.max(now.bbox.y) + 1e-3;
            assert!((y_lo..=y_hi).contains(&u.bbox.y));
        }
        // Output is in time order, so a store sees the filled points before the new one.
        assert!(after.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    }

    #[test]
    fn predicted_points_for_predict_ms_then_the_rest_of_the_gap_is_interpolated() {
        let params = TrackerParams {
            predict_ms: 200,
            ..TrackerParams::default()
        };
        let (before, after) = occluded_walker(params);
        let predicted: Vec<i64> = before
            .iter()
            .filter(|u| u.kind == PointKind::Predicted)
            .map(|u| u.ts_ms)
            .collect();
        assert_eq!(predicted, vec![1000, 1100]);
        let filled: Vec<i64> = after
            .iter()
            .filter(|u| u.kind == PointKind::Interpolated)
            .map(|u| u.ts_ms)
            .collect();
        assert_eq!(filled, vec![1200, 1300, 1400]);
    }

    #[test]
    fn a_track_that_never_returns_gets_no_filled_points() {
        let mut t = Tracker::new(TrackerParams::default());
        for i in 0..10 {
            t.update(i * 100, &[det(100.0, 50.0, 0.9)]);
        }
        let mut kinds = Vec::new();
        for i in 10..40 {
            let out = t.update(i * 100, &[]);
            kinds.extend(out.updates.iter().map(|u| u.kind));
        }
        assert!(kinds.is_empty(), "{kinds:?}");
        assert!(t.is_empty());
    }

    #[test]
    fn someone_at_a_walkers_last_spot_is_not_the_walker() {
        // A walker at 1.5 box heights per second, lost for 0.5 s; then a person appears where
        // the walker was last seen (the walker's prediction has moved on by 75 px).
        let mut t = Tracker::new(TrackerParams::default());
        for i in 0..10 {
            t.update(i * 100, &[det(100.0 + 15.0 * i as f32, 50.0, 0.9)]);
        }
        for i in 10..15 {
            t.update(i * 100, &[]);
        }
        let mut ids = Vec::new();
        for i in 15..20 {
            ids.extend(
                t.update(i * 100, &[det(235.0, 50.0, 0.9)])
                    .updates
                    .iter()
                    .map(|u| u.id),
            );
        }
        assert!(!ids.is_empty() && ids.iter().all(|&id| id == 2), "{ids:?}");
        // With the stage open to any speed, the walker's id is taken.
        let mut t = Tracker::new(TrackerParams {
            last_seen_max_speed: f32::MAX,
            ..TrackerParams::default()
        });
        for i in 0..10 {
            t.update(i * 100, &[det(100.0 + 15.0 * i as f32, 50.0, 0.9)]);
        }
        for i in 10..15 {
            t.update(i * 100, &[]);
        }
        let out = t.update(1500, &[det(235.0, 50.0, 0.9)]);
        assert_eq!(out.updates.last().map(|u| u.id), Some(1));
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
