//! Greedy non-maximum suppression for heads that output every candidate (YOLO, `ssd-raw`).
//!
//! Input: candidate boxes with scores (one class), an IoU threshold. Output: the kept boxes,
//! highest score first: a box is dropped when it overlaps a higher-scored kept box by more than
//! the threshold (what Ultralytics', YOLOX's and OpenVINO's `NonMaxSuppression` do per class).

use crate::geometry::{BBox, Detection};
use crate::infer::resize::InputMapping;

/// Most candidates considered (the highest-scored): bounds the quadratic pass when a low score
/// threshold lets thousands of anchors through.
pub const MAX_CANDIDATES: usize = 1000;
/// Most boxes kept per frame (Ultralytics' `max_det` default).
pub const MAX_DETECTIONS: usize = 300;

/// One candidate box (in any one coordinate space) with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The box.
    pub bbox: BBox,
    /// Its score.
    pub score: f32,
}

/// The boxes that survive suppression at `iou`, highest score first.
pub fn suppress(mut candidates: Vec<Scored>, iou: f32) -> Vec<Scored> {
    candidates.retain(|c| c.score.is_finite());
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(MAX_CANDIDATES);
    let mut kept: Vec<Scored> = Vec::new();
    for c in candidates {
        if kept.len() == MAX_DETECTIONS {
            break;
        }
        if kept.iter().all(|k| k.bbox.iou(&c.bbox) <= iou) {
            kept.push(c);
        }
    }
    kept
}

/// The boxes that survive suppression at `iou`, in source pixels: candidates in input
/// coordinates of `size` (1 × 1 for normalized ones) mapped through `mapping`.
pub fn to_source(
    candidates: Vec<Scored>,
    iou: f32,
    (w, h): (f32, f32),
    mapping: &InputMapping,
) -> Vec<Detection> {
    suppress(candidates, iou)
        .into_iter()
        .filter_map(|c| {
            let b = c.bbox;
            let bbox = mapping.to_source(b.x / w, b.y / h, (b.x + b.w) / w, (b.y + b.h) / h)?;
            Some(Detection {
                bbox,
                score: c.score,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f32, y: f32, w: f32, h: f32, score: f32) -> Scored {
        Scored {
            bbox: BBox::new(x, y, w, h),
            score,
        }
    }

    #[test]
    fn overlapping_lower_scores_are_dropped_and_distant_boxes_kept() {
        let kept = suppress(
            vec![
                s(0.0, 0.0, 10.0, 10.0, 0.6),
                s(1.0, 0.0, 10.0, 10.0, 0.9), // IoU with the first: 90/110 = 0.82
                s(50.0, 50.0, 10.0, 10.0, 0.3),
                s(5.0, 0.0, 10.0, 10.0, 0.5), // IoU with the 0.9 box: 60/140 = 0.43
            ],
            0.45,
        );
        let scores: Vec<f32> = kept.iter().map(|k| k.score).collect();
        assert_eq!(scores, [0.9, 0.5, 0.3]);
        // A lower threshold also drops the 0.43 overlap.
        assert_eq!(suppress(kept, 0.4).len(), 2);
    }

    #[test]
    fn nan_scores_are_ignored_and_the_output_is_bounded() {
        assert!(suppress(vec![s(0.0, 0.0, 1.0, 1.0, f32::NAN)], 0.5).is_empty());
        let many = (0..2 * MAX_CANDIDATES)
            .map(|i| s(i as f32 * 20.0, 0.0, 10.0, 10.0, 0.5))
            .collect();
        assert_eq!(suppress(many, 0.5).len(), MAX_DETECTIONS);
    }
}
