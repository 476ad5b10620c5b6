//! A TF Object Detection API SSD cut before its post-processing (`scripts/cut_postprocessing.py`):
//! the graph's own box decoding and score conversion stay in the model, the suppression that
//! follows them (a `Loop` over `NonMaxSuppression`, about a ninth of an INT8 inference on the CPU
//! plugin) is done here, as the graph did it for the person class.
//!
//! Input: `[1, N, 4]` boxes (every anchor's, decoded: normalized ymin, xmin, ymax, xmax) and
//! `[1, N, C]` scores (sigmoid applied, background in column 0, so the person column is the label
//! map's id), the person class, the minimum score. Output: person candidates in normalized
//! corners, clipped to the picture as the graph clips them before suppression, for
//! [`to_source`](super::nms::to_source) to suppress and map to source pixels.

use super::nms::Scored;
use super::{DecodeError, OutputView, at_least, check_size};
use crate::geometry::BBox;

fn shape_error(output: &str, shape: &[i64], expected: String) -> DecodeError {
    DecodeError::Shape {
        output: output.to_string(),
        shape: shape.to_vec(),
        format: "ssd-raw",
        expected,
    }
}

/// Checks a `[1, N, 4]` boxes shape; returns N.
pub fn boxes_layout(output: &str, shape: &[i64]) -> Result<usize, DecodeError> {
    match shape {
        [1, n, 4] if *n >= 0 => Ok(*n as usize),
        _ => Err(shape_error(output, shape, "[1, N, 4]".into())),
    }
}

/// Checks a `[1, N, C]` scores shape with the person class among the C columns; returns (N, C).
pub fn scores_layout(
    output: &str,
    shape: &[i64],
    person: u32,
) -> Result<(usize, usize), DecodeError> {
    match shape {
        [1, n, c] if *n >= 0 && *c > i64::from(person) => Ok((*n as usize, *c as usize)),
        _ => Err(shape_error(
            output,
            shape,
            format!("[1, N, C] with person_class {person} < C"),
        )),
    }
}

/// Person candidates (normalized corners as x, y, width, height, clipped to 0..1) of every anchor
/// scoring at least `min_score`.
pub fn candidates(
    names: (&str, &str),
    boxes: &OutputView<'_>,
    scores: &OutputView<'_>,
    person: u32,
    min_score: f32,
) -> Result<Vec<Scored>, DecodeError> {
    let n = boxes_layout(names.0, boxes.shape)?;
    let (m, classes) = scores_layout(names.1, scores.shape, person)?;
    check_size(names.0, boxes.shape, boxes.data)?;
    check_size(names.1, scores.shape, scores.data)?;
    if m != n {
        let expected = format!("[1, {n}, C]: one row per box of {:?}", names.0);
        return Err(shape_error(names.1, scores.shape, expected));
    }
    let mut found = Vec::new();
    for (b, s) in boxes
        .data
        .chunks_exact(4)
        .zip(scores.data.chunks_exact(classes))
    {
        let score = s[person as usize];
        if !at_least(score, min_score) {
            continue;
        }
        let [y0, x0, y1, x1] = [b[0], b[1], b[2], b[3]].map(|v| v.clamp(0.0, 1.0));
        if !(x1 > x0 && y1 > y0) {
            continue; // empty once clipped, or not finite
        }
        let bbox = BBox::new(x0, y0, x1 - x0, y1 - y0);
        found.push(Scored { bbox, score });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::decode::nms;
    use crate::infer::decode::stretched;

    fn decode(boxes: &[[f32; 4]], scores: &[[f32; 2]], min: f32) -> Vec<[f32; 5]> {
        let b: Vec<f32> = boxes.iter().flatten().copied().collect();
        let s: Vec<f32> = scores.iter().flatten().copied().collect();
        let (bs, ss) = ([1, boxes.len() as i64, 4], [1, scores.len() as i64, 2]);
        let bv = OutputView {
            shape: &bs,
            data: &b,
        };
        let sv = OutputView {
            shape: &ss,
            data: &s,
        };
        let found = candidates(("b", "s"), &bv, &sv, 1, min).unwrap();
        nms::to_source(found, 0.6, (1.0, 1.0), &stretched((300, 300), (600, 300)))
            .iter()
            .map(|d| [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h, d.score])
            .collect()
    }

    #[test]
    fn persons_above_the_score_are_suppressed_clipped_and_mapped_to_source_pixels() {
        let found = decode(
            &[
                [0.1, 0.1, 0.5, 0.3],   // a person, 0.9
                [0.1, 0.11, 0.5, 0.31], // the same person, lower (IoU 0.9): suppressed
                [0.2, 0.6, 0.6, 0.7],   // another person, 0.7
                [0.5, -0.1, 0.9, 0.2],  // past the left edge: clipped to x 0
                [0.0, 0.8, 0.4, 0.9],   // below the minimum score
                [0.3, 0.4, 0.3, 0.5],   // empty
            ],
            &[
                [0.1, 0.9],
                [0.2, 0.8],
                [0.3, 0.7],
                [0.4, 0.6],
                [0.9, 0.4],
                [0.0, 0.95],
            ],
            0.5,
        );
        // Source 600 × 300: x × 600, y × 300.
        let want = [
            [60.0, 30.0, 120.0, 120.0, 0.9],
            [360.0, 60.0, 60.0, 120.0, 0.7],
            [0.0, 150.0, 120.0, 120.0, 0.6],
        ];
        assert_eq!(found.len(), want.len(), "{found:?}");
        for (f, w) in found.iter().zip(want) {
            assert!(
                f.iter().zip(w).all(|(a, b)| (a - b).abs() < 1e-3),
                "{f:?} vs {w:?}"
            );
        }
    }

    fn shapes(bs: &[i64], b: &[f32], ss: &[i64], s: &[f32]) -> Result<usize, DecodeError> {
        let (bv, sv) = (
            OutputView { shape: bs, data: b },
            OutputView { shape: ss, data: s },
        );
        candidates(("b", "s"), &bv, &sv, 1, 0.1).map(|c| c.len())
    }

    #[test]
    fn mis_shaped_or_short_tensors_are_errors_and_nan_is_skipped() {
        let (b, s) = ([0.0f32; 8], [0.5f32; 4]);
        assert_eq!(shapes(&[1, 2, 4], &b, &[1, 2, 2], &s), Ok(0), "empty boxes");
        assert!(shapes(&[2, 4], &b, &[1, 2, 2], &s).is_err(), "boxes rank");
        assert!(
            shapes(&[1, 4, 2], &b, &[1, 4, 1], &s).is_err(),
            "no person column"
        );
        assert!(
            shapes(&[1, 2, 4], &b, &[1, 1, 4], &s).is_err(),
            "rows differ"
        );
        assert!(
            shapes(&[1, 3, 4], &b, &[1, 3, 2], &s).is_err(),
            "short tensors"
        );
        let nan = decode(&[[0.1, 0.1, 0.5, f32::NAN]], &[[0.0, 0.9]], 0.5);
        assert!(nan.is_empty());
    }
}
