//! Ground-truth replays: an evaluation source the project did not make. Someone else's
//! annotated video (MOTChallenge ground truth, e.g. TUD-Campus and TUD-Stadtmitte as shipped
//! in PyPI `motmetrics`) gives real people, real walking and real crowding; the simulated
//! detector ([`super::detector`]) turns each annotated box into a detection or a miss.
//!
//! There is no 3-D scene, so occlusion is worked out in the image: a person whose box reaches
//! lower in the picture stands nearer the camera and hides what of the others' boxes it
//! covers. On top of the per-person detector come random false positives (person-sized boxes
//! where people walk) and double detections (a second, smaller, weaker box on a person).
//! Seeded and deterministic.

use std::collections::{BTreeMap, HashMap};

use super::Sequence;
use super::detector::{DetState, DetectorModel, View, detect};
use super::rng::Rng;
use crate::geometry::BBox;
use crate::mot::MotRow;

/// Frame rate the store detector's burst chances are given for.
const STORE_FPS: f64 = 10.0;
/// Sample grid over a box for the visible fraction.
const SAMPLES_ACROSS: usize = 6;
const SAMPLES_UP: usize = 12;
/// Mean random false positives per frame.
const FALSE_POSITIVES_PER_FRAME: f64 = 0.3;
/// Chance that a detected person also gets a second, smaller box.
const DOUBLE_CHANCE: f64 = 0.02;

/// Replay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayParams {
    /// Random seed; the same seed gives the same detections.
    pub seed: u64,
    /// Frame rate of the annotated video.
    pub fps: f64,
    /// Image size of the annotated video.
    pub size: (u32, u32),
}

/// The replayed sequence `<name>-s<seed>`: the ground truth as given (with the visible
/// fraction worked out) and simulated detections.
pub fn replay(name: &str, gt: &[MotRow], p: &ReplayParams) -> Sequence {
    let mut rng = Rng::new(p.seed);
    let model = DetectorModel::STORE.at_fps(STORE_FPS, p.fps);
    let (w, h) = (f64::from(p.size.0), f64::from(p.size.1));
    let mut by_frame: BTreeMap<u32, Vec<MotRow>> = BTreeMap::new();
    for r in gt {
        by_frame.entry(r.frame).or_default().push(*r);
    }
    let frames = by_frame.keys().next_back().copied().unwrap_or(0);
    let mut states: HashMap<i64, DetState> = HashMap::new();
    let mut seq = Sequence {
        name: format!("{name}-s{}", p.seed),
        fps: p.fps,
        frames,
        size: p.size,
        image_to_floor: None,
        gt: Vec::new(),
        det: Vec::new(),
    };
    let empty = Vec::new();
    for frame in 1..=frames {
        let people = by_frame.get(&frame).unwrap_or(&empty);
        let boxes: Vec<BBox> = people.iter().map(|r| r.bbox).collect();
        for (k, r) in people.iter().enumerate() {
            let view = view_of(k, &boxes, (w, h));
            seq.gt.push(MotRow {
                visibility: view.visibility as f32,
                ..*r
            });
            let st = states.entry(r.id).or_default();
            let Some((b, score)) = detect(&model, &mut rng, st, &view, 1.0, (w, h)) else {
                continue;
            };
            seq.det.push(det_row(frame, b, score));
            if rng.chance(DOUBLE_CHANCE) {
                let dh = f64::from(b.h) * rng.range(0.5, 0.8);
                let dw = f64::from(b.w) * rng.range(0.6, 1.0);
                let cx = f64::from(b.x + b.w / 2.0) + rng.normal(0.2 * f64::from(b.w));
                let y0 = f64::from(b.y) + rng.range(0.0, f64::from(b.h) - dh);
                let d = BBox::new((cx - dw / 2.0) as f32, y0 as f32, dw as f32, dh as f32);
                seq.det
                    .push(det_row(frame, d.clip(w as f32, h as f32), score * 0.6));
            }
        }
        for _ in 0..rng.poisson(FALSE_POSITIVES_PER_FRAME) {
            // Person-sized, standing where some annotated person stood.
            let like = gt[rng.below(gt.len())].bbox;
            let x = rng.range(0.0, (w - f64::from(like.w)).max(1.0));
            let b = BBox::new(x as f32, like.y, like.w, like.h).clip(w as f32, h as f32);
            if b.area() > 50.0 {
                seq.det.push(det_row(frame, b, rng.range(0.1, 0.6) as f32));
            }
        }
    }
    seq
}

fn det_row(frame: u32, bbox: BBox, score: f32) -> MotRow {
    MotRow {
        frame,
        id: -1,
        bbox,
        score,
        visibility: -1.0,
    }
}

/// What the camera sees of person `me`: the part of its box inside the image and not covered
/// by the box of anyone standing nearer (reaching lower in the picture).
fn view_of(me: usize, boxes: &[BBox], (w, h): (f64, f64)) -> View {
    let b = boxes[me];
    let bottom = b.y + b.h;
    let nearer: Vec<&BBox> = boxes
        .iter()
        .enumerate()
        .filter(|&(k, o)| k != me && o.y + o.h > bottom)
        .map(|(_, o)| o)
        .collect();
    let (du, dv) = (
        f64::from(b.w) / SAMPLES_ACROSS as f64,
        f64::from(b.h) / SAMPLES_UP as f64,
    );
    let (mut seen, mut total) = (0usize, 0usize);
    let (mut u0, mut v0, mut u1, mut v1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for i in 0..SAMPLES_ACROSS {
        let u = f64::from(b.x) + (i as f64 + 0.5) * du;
        for j in 0..SAMPLES_UP {
            let v = f64::from(b.y) + (j as f64 + 0.5) * dv;
            total += 1;
            let inside = (0.0..w).contains(&u) && (0.0..h).contains(&v);
            let covered = nearer.iter().any(|o| {
                (f64::from(o.x)..f64::from(o.x + o.w)).contains(&u)
                    && (f64::from(o.y)..f64::from(o.y + o.h)).contains(&v)
            });
            if inside && !covered {
                seen += 1;
                u0 = u0.min(u);
                u1 = u1.max(u);
                v0 = v0.min(v);
                v1 = v1.max(v);
            }
        }
    }
    let visible = if seen > 0 {
        BBox::new(
            (u0 - du / 2.0) as f32,
            (v0 - dv / 2.0) as f32,
            (u1 - u0 + du) as f32,
            (v1 - v0 + dv) as f32,
        )
    } else {
        b
    };
    View {
        full: b,
        visible,
        visibility: seen as f64 / total as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(frame: u32, id: i64, x: f32, y: f32) -> MotRow {
        MotRow {
            frame,
            id,
            bbox: BBox::new(x, y, 40.0, 100.0),
            score: 1.0,
            visibility: -1.0,
        }
    }

    #[test]
    fn the_nearer_person_hides_the_farther_one() {
        // B stands in front of A (its box reaches lower) and covers A's right half.
        let boxes = [
            BBox::new(100.0, 100.0, 40.0, 100.0),
            BBox::new(120.0, 101.0, 40.0, 100.0),
        ];
        let a = view_of(0, &boxes, (640.0, 480.0));
        let b = view_of(1, &boxes, (640.0, 480.0));
        assert_eq!(b.visibility, 1.0);
        assert_eq!(a.visibility, 0.5);
        assert_eq!(a.visible, BBox::new(100.0, 100.0, 20.0, 100.0));
        // Half outside the image: half visible.
        let c = view_of(0, &[BBox::new(-20.0, 100.0, 40.0, 100.0)], (640.0, 480.0));
        assert_eq!(c.visibility, 0.5);
    }

    #[test]
    fn replay_is_deterministic_and_misses_more_under_occlusion() {
        let p = ReplayParams {
            seed: 5,
            fps: 25.0,
            size: (640, 480),
        };
        // Two people standing 500 frames, apart; then the same two, one mostly behind the other.
        let scene = |x2: f32, y1: f32| -> Vec<MotRow> {
            (1..=500)
                .flat_map(|f| [row(f, 1, 100.0, y1), row(f, 2, x2, 100.0)])
                .collect()
        };
        let apart = replay("walk", &scene(400.0, 100.0), &p);
        let hidden = replay("walk", &scene(105.0, 120.0), &p);
        assert_eq!(apart.name, "walk-s5");
        assert_eq!((apart.frames, apart.gt.len()), (500, 1000));
        assert_eq!(apart.det, replay("walk", &scene(400.0, 100.0), &p).det);
        assert_ne!(
            apart.det,
            replay("walk", &scene(400.0, 100.0), &ReplayParams { seed: 6, ..p }).det
        );
        let hidden_vis: Vec<f32> = hidden
            .gt
            .iter()
            .filter(|r| r.id == 2)
            .map(|r| r.visibility)
            .collect();
        assert!(
            hidden_vis.iter().all(|&v| (0.25..0.35).contains(&v)),
            "{:?}",
            &hidden_vis[..3]
        );
        // Visible people: ~0.93 recall each, plus ~0.3 false positives per frame.
        let n = apart.det.len();
        assert!(
            (1000..1200).contains(&n),
            "{n} detections of two visible people"
        );
        assert!(
            hidden.det.len() + 150 < n,
            "{} detections with one hidden",
            hidden.det.len()
        );
    }
}
