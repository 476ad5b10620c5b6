//! Scoring store-wide trajectories and zone visits against the synthetic scenes' ground truth.
//!
//! Input: a synthetic scene (two cameras, known identities and floor positions). The scene's
//! detections go through the real tracker per camera, feet through each camera's homography,
//! and the tracks through the [`Stitcher`] in capture-time order, as in the service. Output:
//! store-id purity and coverage (and the same for camera tracks alone, the baseline without
//! joining), and per-zone visit counts and dwell totals against the truth.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::zones::{VisitRules, ZoneTracker};
use super::{AnalyticsParams, Event, Stitcher, Zone};
use crate::geometry::{Detection, apply_homography};
use crate::mot::{self, MotRow};
use crate::synth::{self, SceneParams};
use crate::track::TrackerParams;

/// A tracker box counts as a ground-truth person at this IoU or more.
const MATCH_IOU: f32 = 0.5;
/// A camera track is reported ended this long after its last point (the tracker's lost time).
const END_AFTER_MS: i64 = 2_000;

/// Purity and coverage of an assignment of camera-track points to ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdScores {
    /// Share of points whose id's majority person is theirs (ids do not mix people).
    pub purity: f64,
    /// Share of points in their person's majority id (a person keeps one id).
    pub coverage: f64,
    /// Distinct ids.
    pub ids: usize,
}

/// Visits and dwell of one zone, estimated and true.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneScore {
    /// Zone id.
    pub zone: String,
    /// Visits found.
    pub visits: usize,
    /// True visits.
    pub true_visits: usize,
    /// Total dwell found, s.
    pub dwell_s: f64,
    /// True total dwell, s.
    pub true_dwell_s: f64,
}

/// Everything measured on one scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneScore {
    /// Store ids after joining across cameras.
    pub store: IdScores,
    /// Camera tracks as ids (no joining).
    pub camera_tracks: IdScores,
    /// People in the ground truth seen by a camera.
    pub people: usize,
    /// Camera points matched to a person.
    pub matched_points: usize,
    /// Per zone.
    pub zones: Vec<ZoneScore>,
}

/// The standard synthetic floor's zones: the checkout at the front, the three aisles between
/// and behind the shelf rows (see `synth::world`).
pub fn synthetic_zones() -> Vec<Zone> {
    let rect = |id: &str, x0: f64, y0: f64, x1: f64, y1: f64| Zone {
        id: Arc::from(id),
        name: id.into(),
        polygon: vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
    };
    vec![
        rect("checkout", 8.5, 0.0, 11.5, 1.6),
        rect("aisle-1", 4.0, 2.9, 16.0, 4.8),
        rect("aisle-2", 4.0, 5.4, 16.0, 7.3),
        rect("back", 4.0, 7.9, 16.0, 11.0),
    ]
}

/// One camera point with its person (if matched).
struct CamPoint {
    camera: Arc<str>,
    track: u64,
    ts_ms: i64,
    floor: Option<(f64, f64)>,
    person: Option<i64>,
}

/// Runs the scene through tracker and stitcher and scores it.
pub fn score_scene(
    scene: &SceneParams,
    tracker: &TrackerParams,
    params: &AnalyticsParams,
    zones: &[Zone],
) -> SceneScore {
    let (seqs, truth) = synth::generate_with_floor(scene);
    let ms = |frame: u32| ((f64::from(frame) - 1.0) * 1000.0 / scene.fps).round() as i64;
    let mut points = Vec::new();
    for (ci, seq) in seqs.iter().enumerate() {
        let camera: Arc<str> = Arc::from(format!("cam{}", ci + 1).as_str());
        let mut dets: mot::FrameDetections = BTreeMap::new();
        for r in &seq.det {
            dets.entry(r.frame).or_default().push(Detection {
                bbox: r.bbox,
                score: r.score,
            });
        }
        let gt = by_frame(&seq.gt);
        let (w, h) = (seq.size.0 as f32, seq.size.1 as f32);
        for r in mot::track_sequence(&dets, tracker, seq.fps) {
            let bbox = r.bbox.clip(w, h);
            points.push(CamPoint {
                camera: Arc::clone(&camera),
                track: r.id as u64,
                ts_ms: ms(r.frame),
                floor: seq
                    .image_to_floor
                    .as_ref()
                    .and_then(|hm| apply_homography(hm, bbox.foot())),
                person: gt.get(&r.frame).and_then(|rows| best_match(rows, &r)),
            });
        }
    }
    points.sort_by_key(|p| (p.ts_ms, p.camera.clone(), p.track));

    let (store_of, visits) = stitch(&points, params, zones);
    let matched: Vec<&CamPoint> = points.iter().filter(|p| p.person.is_some()).collect();
    let store = id_scores(matched.iter().map(|p| {
        let key = (Arc::clone(&p.camera), p.track);
        (
            store_of.get(&key).copied().unwrap_or(0) as i64,
            p.person.unwrap_or(0),
        )
    }));
    let mut cam_ids: HashMap<(Arc<str>, u64), i64> = HashMap::new();
    let camera_tracks = id_scores(matched.iter().map(|p| {
        let n = cam_ids.len() as i64;
        let id = *cam_ids.entry((Arc::clone(&p.camera), p.track)).or_insert(n);
        (id, p.person.unwrap_or(0))
    }));
    let people = matched
        .iter()
        .filter_map(|p| p.person)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let truth_visits = true_visits(&truth, zones, &params.visit_rules(), ms);
    SceneScore {
        store,
        camera_tracks,
        people,
        matched_points: matched.len(),
        zones: zones
            .iter()
            .map(|z| zone_score(z, &visits, &truth_visits))
            .collect(),
    }
}

fn by_frame(rows: &[MotRow]) -> HashMap<u32, Vec<&MotRow>> {
    let mut m: HashMap<u32, Vec<&MotRow>> = HashMap::new();
    for r in rows {
        m.entry(r.frame).or_default().push(r);
    }
    m
}

fn best_match(gt: &[&MotRow], r: &MotRow) -> Option<i64> {
    gt.iter()
        .map(|g| (g.bbox.iou(&r.bbox), g.id))
        .filter(|(iou, _)| *iou >= MATCH_IOU)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id)
}

type Visits = Vec<(Arc<str>, i64)>;

/// Feeds the points to a stitcher as the service would; returns each camera track's store id
/// and the visits (zone, dwell ms).
fn stitch(
    points: &[CamPoint],
    params: &AnalyticsParams,
    zones: &[Zone],
) -> (HashMap<(Arc<str>, u64), u64>, Visits) {
    let mut last: HashMap<(Arc<str>, u64), i64> = HashMap::new();
    for p in points {
        last.insert((Arc::clone(&p.camera), p.track), p.ts_ms);
    }
    let mut ends: Vec<(i64, (Arc<str>, u64))> = last
        .into_iter()
        .map(|(k, t)| (t + END_AFTER_MS, k))
        .collect();
    ends.sort();
    let mut ends = ends.into_iter().peekable();
    let mut st = Stitcher::new(params.clone(), zones.to_vec());
    let mut events = Vec::new();
    for p in points {
        while let Some((at, key)) = ends.next_if(|(at, _)| *at <= p.ts_ms) {
            st.advance(at);
            st.track_ended(&key.0, key.1);
        }
        if let Some(f) = p.floor {
            st.point(&p.camera, p.track, p.ts_ms, f);
        }
        events.extend(st.drain());
    }
    for (_, key) in ends {
        st.track_ended(&key.0, key.1);
    }
    st.finish();
    events.extend(st.drain());
    let mut store_of = HashMap::new();
    let mut visits = Vec::new();
    for e in events {
        match e {
            Event::Member {
                store,
                camera,
                track_id,
                ..
            } => {
                store_of.insert((camera, track_id), store);
            }
            Event::Visit { visit, .. } => visits.push((Arc::clone(&visit.zone), visit.dwell_ms())),
            _ => {}
        }
    }
    (store_of, visits)
}

/// Purity and coverage of (id, person) point labels.
pub fn id_scores(labels: impl Iterator<Item = (i64, i64)>) -> IdScores {
    let mut n: HashMap<(i64, i64), usize> = HashMap::new();
    for l in labels {
        *n.entry(l).or_default() += 1;
    }
    let total: usize = n.values().sum();
    let best = |by_id: bool| -> usize {
        let mut m: HashMap<i64, usize> = HashMap::new();
        for (&(id, person), &c) in &n {
            let k = if by_id { id } else { person };
            let e = m.entry(k).or_default();
            *e = (*e).max(c);
        }
        m.values().sum()
    };
    let ids = n
        .keys()
        .map(|k| k.0)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let share = |x: usize| x as f64 / total.max(1) as f64;
    IdScores {
        purity: share(best(true)),
        coverage: share(best(false)),
        ids,
    }
}

/// Visits (zone, dwell ms) of the true floor positions under the same rules.
fn true_visits(
    truth: &[synth::FloorTruth],
    zones: &[Zone],
    rules: &VisitRules,
    ms: impl Fn(u32) -> i64,
) -> Visits {
    let mut by_person: BTreeMap<u32, Vec<&synth::FloorTruth>> = BTreeMap::new();
    for t in truth {
        by_person.entry(t.id).or_default().push(t);
    }
    let mut out = Vec::new();
    for rows in by_person.values() {
        let mut zt = ZoneTracker::new(zones.len());
        for r in rows {
            for v in zt.update(zones, rules, ms(r.frame), (r.x, r.y)) {
                out.push((Arc::clone(&v.zone), v.dwell_ms()));
            }
        }
        for v in zt.finish(zones, rules) {
            out.push((Arc::clone(&v.zone), v.dwell_ms()));
        }
    }
    out
}

fn zone_score(z: &Zone, found: &Visits, truth: &Visits) -> ZoneScore {
    let sum = |v: &Visits| -> (usize, f64) {
        let mine: Vec<i64> = v
            .iter()
            .filter(|(id, _)| *id == z.id)
            .map(|(_, d)| *d)
            .collect();
        (mine.len(), mine.iter().sum::<i64>() as f64 / 1000.0)
    };
    let ((visits, dwell_s), (true_visits, true_dwell_s)) = (sum(found), sum(truth));
    ZoneScore {
        zone: z.id.to_string(),
        visits,
        true_visits,
        dwell_s,
        true_dwell_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purity_and_coverage_of_simple_labellings() {
        // Two people, each split over two ids: pure but half covered.
        let s = id_scores([(1, 10), (1, 10), (2, 10), (2, 10), (3, 20), (4, 20)].into_iter());
        assert_eq!((s.purity, s.coverage, s.ids), (1.0, 0.5, 4));
        // One id for both people: covered but impure.
        let s = id_scores([(1, 10), (1, 10), (1, 20), (1, 20)].into_iter());
        assert_eq!((s.purity, s.coverage), (0.5, 1.0));
    }
}
