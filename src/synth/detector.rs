//! The simulated person detector shared by the synthetic store scenes and the ground-truth
//! replays ([`super::replay`]): given what a camera sees of one person (whole box, visible part,
//! visible fraction), maybe a box and a score, with the faults real detectors have: misses that
//! grow with occlusion and come in bursts, low scores for partly hidden people, boxes cut to
//! the visible part, and jitter.

use super::rng::Rng;
use crate::geometry::BBox;

/// What a camera sees of one person.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Whole-body box.
    pub full: BBox,
    /// Box around the visible part.
    pub visible: BBox,
    /// Fraction of the body not hidden by shelves or other people.
    pub visibility: f64,
}

/// How the simulated detector behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorModel {
    /// Per frame, chance that a person the detector finds easy becomes hard (a burst starts).
    pub enter_hard: f64,
    /// Per frame, chance that a hard person becomes easy again (a burst ends).
    pub leave_hard: f64,
    /// Detection probability of a fully visible, easy person.
    pub max_recall: f64,
    /// Recall falls to 0 at this visibility...
    pub blind_below: f64,
    /// ...and reaches `max_recall` this much visibility above it.
    pub recall_ramp: f64,
    /// Recall is multiplied by this while a person is hard.
    pub hard_recall: f64,
    /// Score = `score_base` + `score_per_visibility` · visibility + noise.
    pub score_base: f64,
    /// See `score_base`.
    pub score_per_visibility: f64,
    /// Standard deviation of the score noise.
    pub score_noise: f64,
    /// Chance that a partly hidden person is boxed by the visible part only.
    pub visible_box_chance: f64,
    /// Corner jitter, standard deviation as a fraction of the box height.
    pub jitter: f64,
}

impl DetectorModel {
    /// The detector of the synthetic store scenes (10 fps).
    pub const STORE: DetectorModel = DetectorModel {
        enter_hard: 0.03,
        leave_hard: 0.25,
        max_recall: 0.97,
        blind_below: 0.1,
        recall_ramp: 0.4,
        hard_recall: 0.25,
        score_base: 0.3,
        score_per_visibility: 0.6,
        score_noise: 0.08,
        visible_box_chance: 0.35,
        jitter: 0.025,
    };

    /// The same model with its burst chances rescaled from `from_fps` to `to_fps`, so bursts
    /// last as long in seconds at any frame rate.
    pub fn at_fps(self, from_fps: f64, to_fps: f64) -> DetectorModel {
        let per = |p: f64| 1.0 - (1.0 - p).powf(from_fps / to_fps);
        DetectorModel {
            enter_hard: per(self.enter_hard),
            leave_hard: per(self.leave_hard),
            ..self
        }
    }
}

/// The detector's memory of one person: whether they are in a hard spell.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetState {
    hard: bool,
}

/// One frame of the simulated detector for one person: maybe a box (clipped to the `w × h`
/// image) and a score. `recall_factor` scales the detection probability (e.g. a mannequin).
pub fn detect(
    m: &DetectorModel,
    rng: &mut Rng,
    st: &mut DetState,
    view: &View,
    recall_factor: f64,
    (w, h): (f64, f64),
) -> Option<(BBox, f32)> {
    st.hard = if st.hard {
        !rng.chance(m.leave_hard)
    } else {
        rng.chance(m.enter_hard)
    };
    let v = view.visibility;
    let mut p = m.max_recall * ((v - m.blind_below) / m.recall_ramp).clamp(0.0, 1.0);
    if st.hard {
        p *= m.hard_recall;
    }
    p *= recall_factor;
    if !rng.chance(p) {
        return None;
    }
    let score =
        (m.score_base + m.score_per_visibility * v + rng.normal(m.score_noise)).clamp(0.05, 0.99);
    let base = if v < 0.9 && rng.chance(m.visible_box_chance) {
        view.visible
    } else {
        view.full
    };
    let j = m.jitter * f64::from(base.h);
    let x0 = f64::from(base.x) + rng.normal(j);
    let y0 = f64::from(base.y) + rng.normal(j);
    let x1 = f64::from(base.x + base.w) + rng.normal(j);
    let y1 = f64::from(base.y + base.h) + rng.normal(j);
    let b = BBox::new(x0 as f32, y0 as f32, (x1 - x0) as f32, (y1 - y0) as f32)
        .clip(w as f32, h as f32);
    (b.w > 2.0 && b.h > 4.0).then_some((b, score as f32))
}
