//! Parsing of TF Object Detection API SSD outputs into person detections in source pixels.
//!
//! Input: the four output tensors (boxes as normalized ymin, xmin, ymax, xmax; class ids as
//! floats; scores; valid count) and the source image size. Output: person [`Detection`]s.

use crate::geometry::{BBox, Detection};

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

/// Keeps rows of class `person_class` with score ≥ `min_score`, mapped to a `width × height`
/// source image and clipped to it. Rows past the valid count or past any tensor's end are
/// ignored, so a short or inconsistent tensor cannot cause a panic.
pub fn parse(
    out: &SsdOutputs<'_>,
    person_class: u32,
    min_score: f32,
    (width, height): (u32, u32),
) -> Vec<Detection> {
    let rows = (out.boxes.len() / 4)
        .min(out.classes.len())
        .min(out.scores.len());
    let valid = if out.count.is_finite() && out.count > 0.0 {
        (out.count as usize).min(rows)
    } else {
        0
    };
    let (w, h) = (width as f32, height as f32);
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
        let (y0, x0) = (b[0].clamp(0.0, 1.0) * h, b[1].clamp(0.0, 1.0) * w);
        let (y1, x1) = (b[2].clamp(0.0, 1.0) * h, b[3].clamp(0.0, 1.0) * w);
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        dets.push(Detection {
            bbox: BBox::new(x0, y0, x1 - x0, y1 - y0),
            score,
        });
    }
    dets
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let d = parse(&out, 1, 0.3, (768, 576));
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
        let d = parse(&out, 1, 0.5, (100, 200));
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
        assert!(parse(&out, 1, 0.1, (10, 10)).is_empty());
        let nan = SsdOutputs {
            count: f32::NAN,
            ..out
        };
        assert!(parse(&nan, 1, 0.1, (10, 10)).is_empty());
    }
}
