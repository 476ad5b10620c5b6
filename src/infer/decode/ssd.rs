//! Parsing of TF Object Detection API SSD outputs into person detections in source pixels.
//!
//! Input: the four output tensors (boxes as normalized ymin, xmin, ymax, xmax; class ids as
//! floats; scores; valid count) and the frame's [`InputMapping`]. Output: person
//! [`Detection`]s in source pixels (the input resize inverted, non-finite rows rejected).

use crate::geometry::Detection;
use crate::infer::resize::InputMapping;

/// The raw output tensors of one inference, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SsdOutputs<'a> {
    /// `N × 4` normalized ymin, xmin, ymax, xmax.
    pub boxes: &'a [f32],
    /// `N` class ids.
    pub classes: &'a [f32],
    /// `N` scores.
    pub scores: &'a [f32],
    /// Number of valid rows (as the model reports it, a float).
    pub count: f32,
}

/// Keeps rows of class `person_class` with score ≥ `min_score`, mapped back to source pixels
/// through `mapping` and clipped to the source. Rows past the valid count or past any tensor's
/// end are ignored, so a short or inconsistent tensor cannot cause a panic; rows with a
/// non-finite coordinate or an empty box are dropped.
pub fn parse(
    out: &SsdOutputs<'_>,
    person_class: u32,
    min_score: f32,
    mapping: &InputMapping,
) -> Vec<Detection> {
    let rows = (out.boxes.len() / 4)
        .min(out.classes.len())
        .min(out.scores.len());
    let valid = if out.count.is_finite() && out.count > 0.0 {
        (out.count as usize).min(rows)
    } else {
        0
    };
    let mut dets = Vec::new();
    for i in 0..valid {
        let score = out.scores[i];
        if out.classes[i].round() as i64 != i64::from(person_class)
            || score.is_nan()
            || score < min_score
        {
            continue;
        }
        let b = &out.boxes[i * 4..i * 4 + 4];
        // TF order: ymin, xmin, ymax, xmax.
        if let Some(bbox) = mapping.to_source(b[1], b[0], b[3], b[2]) {
            dets.push(Detection { bbox, score });
        }
    }
    dets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;
    use crate::infer::decode::stretched;

    #[test]
    fn keeps_persons_above_threshold_in_source_pixels() {
        // Row 0: person 0.9; row 1: class 3 (car) 0.95; row 2: person 0.2; row 3 past count.
        let boxes = [
            0.1, 0.25, 0.5, 0.5, //
            0.0, 0.0, 1.0, 1.0, //
            0.2, 0.2, 0.3, 0.3, //
            0.0, 0.0, 0.5, 0.5,
        ];
        let classes = [1.0, 3.0, 1.0, 1.0];
        let scores = [0.9, 0.95, 0.2, 0.99];
        let out = SsdOutputs {
            boxes: &boxes,
            classes: &classes,
            scores: &scores,
            count: 3.0,
        };
        let d = parse(&out, 1, 0.3, &stretched((300, 300), (768, 576)));
        assert_eq!(d.len(), 1);
        let b = d[0].bbox;
        let near = |a: f32, e: f32| (a - e).abs() < 1e-3;
        assert!(near(b.x, 192.0) && near(b.y, 57.6), "{b:?}");
        assert!(near(b.w, 192.0) && near(b.h, 230.4), "{b:?}");
        assert_eq!(d[0].score, 0.9);
    }

    #[test]
    fn clips_out_of_range_boxes_and_drops_degenerate_ones() {
        let boxes = [-0.1, -0.2, 1.3, 0.5, 0.4, 0.4, 0.4, 0.6];
        let out = SsdOutputs {
            boxes: &boxes,
            classes: &[1.0, 1.0],
            scores: &[0.8, 0.8],
            count: 2.0,
        };
        let d = parse(&out, 1, 0.5, &stretched((300, 300), (100, 200)));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].bbox, BBox::new(0.0, 0.0, 50.0, 200.0));
    }

    #[test]
    fn bogus_count_or_short_tensors_do_not_panic() {
        let out = SsdOutputs {
            boxes: &[0.1, 0.1, 0.2],
            classes: &[1.0],
            scores: &[0.9],
            count: 100.0,
        };
        assert!(parse(&out, 1, 0.1, &stretched((300, 300), (10, 10))).is_empty());
        let nan = SsdOutputs {
            count: f32::NAN,
            ..out
        };
        assert!(parse(&nan, 1, 0.1, &stretched((300, 300), (10, 10))).is_empty());
    }

    #[test]
    fn non_finite_box_coordinates_are_rejected() {
        // NaN passed the old `x1 <= x0` check (every comparison with NaN is false).
        let boxes = [0.1, f32::NAN, 0.5, 0.5, 0.1, 0.1, f32::INFINITY, 0.5];
        let out = SsdOutputs {
            boxes: &boxes,
            classes: &[1.0, 1.0],
            scores: &[0.9, 0.9],
            count: 2.0,
        };
        assert!(parse(&out, 1, 0.1, &stretched((300, 300), (100, 100))).is_empty());
    }
}
