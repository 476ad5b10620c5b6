//! OpenVINO `DetectionOutput` rows (Open Model Zoo SSD-style detectors such as
//! person-detection-retail-0013) into person detections.
//!
//! Input: one tensor whose last dimension is 7 (`[1, 1, N, 7]`): image id, label, score, then
//! x_min, y_min, x_max, y_max normalized to the model input; the first row with a negative
//! image id ends the list. Output: rows of the person label with score ≥ the minimum, in source
//! pixels. Suppression is already done by the layer.

use super::{DecodeError, OutputView, at_least, check_size};
use crate::geometry::Detection;
use crate::infer::resize::InputMapping;

/// Values per row.
const ROW: usize = 7;

/// Rows in a tensor of this shape, or why it is not a `DetectionOutput`.
pub fn check(output: &str, shape: &[i64]) -> Result<usize, DecodeError> {
    match shape {
        [1, 1, n, 7] if *n >= 0 => Ok(*n as usize),
        _ => Err(DecodeError::Shape {
            output: output.to_string(),
            shape: shape.to_vec(),
            format: "detection-output",
            expected: "[1, 1, N, 7]".into(),
        }),
    }
}

/// Person rows of `view` in source pixels.
pub fn parse(
    output: &str,
    view: &OutputView<'_>,
    person_class: u32,
    min_score: f32,
    mapping: &InputMapping,
) -> Result<Vec<Detection>, DecodeError> {
    check(output, view.shape)?;
    check_size(output, view.shape, view.data)?;
    let mut dets = Vec::new();
    for row in view.data.chunks_exact(ROW) {
        // -1 (or any negative id) marks the end of the valid rows; NaN ends it too.
        if !at_least(row[0], 0.0) {
            break;
        }
        let score = row[2];
        if row[1].round() as i64 != i64::from(person_class) || !at_least(score, min_score) {
            continue;
        }
        if let Some(bbox) = mapping.to_source(row[3], row[4], row[5], row[6]) {
            dets.push(Detection { bbox, score });
        }
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::decode::stretched;

    /// A 544×320 input stretched from a 1000×500 source.
    fn stretch() -> InputMapping {
        stretched((544, 320), (1000, 500))
    }

    fn parse4(data: &[f32], min: f32) -> Result<Vec<Detection>, DecodeError> {
        let n = (data.len() / ROW) as i64;
        let view = OutputView {
            shape: &[1, 1, n, 7],
            data,
        };
        parse("detection_out", &view, 1, min, &stretch())
    }

    #[test]
    fn person_rows_above_threshold_until_the_end_marker() {
        let rows = [
            0.0, 1.0, 0.9, 0.1, 0.2, 0.3, 0.6, // person
            0.0, 2.0, 0.95, 0.0, 0.0, 1.0, 1.0, // another label
            0.0, 1.0, 0.2, 0.5, 0.5, 0.6, 0.6, // below the threshold
            -1.0, 1.0, 0.9, 0.0, 0.0, 0.5, 0.5, // end marker
            0.0, 1.0, 0.9, 0.0, 0.0, 0.5, 0.5, // after the end: ignored
        ];
        let d = parse4(&rows, 0.3).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        let b = d[0].bbox;
        let near = |a: f32, e: f32| (a - e).abs() < 1e-3;
        assert!(near(b.x, 100.0) && near(b.y, 100.0), "{b:?}");
        assert!(near(b.w, 200.0) && near(b.h, 200.0), "{b:?}");
        assert_eq!(d[0].score, 0.9);
    }

    #[test]
    fn nan_rows_and_wrong_shapes_do_not_panic() {
        let rows = [
            0.0,
            1.0,
            f32::NAN,
            0.1,
            0.1,
            0.2,
            0.2,
            0.0,
            1.0,
            0.9,
            f32::NAN,
            0.1,
            0.2,
            0.2,
        ];
        assert!(parse4(&rows, 0.1).unwrap().is_empty());
        let nan_id = [f32::NAN, 1.0, 0.9, 0.1, 0.1, 0.2, 0.2];
        assert!(parse4(&nan_id, 0.1).unwrap().is_empty());
        let short = OutputView {
            shape: &[1, 1, 2, 7],
            data: &rows[..10],
        };
        let e = parse("out", &short, 1, 0.1, &stretch()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output \"out\" has 10 values for shape [1, 1, 2, 7]"
        );
        let yolo_like = OutputView {
            shape: &[1, 84, 8400],
            data: &[],
        };
        let e = parse("out", &yolo_like, 1, 0.1, &stretch()).unwrap_err();
        assert!(e.to_string().contains("expects [1, 1, N, 7]"), "{e}");
    }
}
