//! YOLO heads that output every anchor before suppression: Ultralytics YOLOv8 / YOLO11 and YOLOX.
//!
//! Input: the head's one tensor, the person class, the minimum score, the input size.
//! Output: person candidates in input pixels, for [`to_source`](super::nms::to_source) to
//! suppress and map to source pixels.
//!
//! - **Ultralytics v8/11** (`yolo export format=openvino`, or its ONNX through `ovc`):
//!   `[1, 4 + C, N]`, per anchor the box centre x, y, width, height in input pixels, then one
//!   score per class (sigmoid applied). The anchor's class is its best-scored one.
//! - **YOLOX** (`tools/export_onnx.py`, then `ovc`): `[1, N, 5 + C]`, per anchor centre x, y,
//!   width, height, objectness, then one score per class (sigmoids applied); the score is
//!   objectness × the best class score. Exported without `--decode_in_inference` (YOLOX's
//!   default) the box is relative to its cell: centre = (offset + cell) × stride, size =
//!   exp(value) × stride, anchors stride by stride, row by row.
//!
//! As in both projects' own post-processing, an anchor counts as a person only when person is
//! its best class (the first one on a tie), and suppression runs in input pixels.

use super::nms::Scored;
use super::{DecodeError, OutputView, at_least, check_size};
use crate::geometry::BBox;
use crate::infer::model::YoloxBoxes;

/// Where the values of a YOLOv8 tensor are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V8Layout {
    classes: usize,
    anchors: usize,
}

/// Where the values of a YOLOX tensor are.
#[derive(Debug, Clone, PartialEq)]
pub struct XLayout {
    classes: usize,
    /// Cell grids (columns, rows, stride) in anchor order; empty when boxes are decoded.
    grids: Vec<(usize, usize, f32)>,
}

fn shape_error(output: &str, shape: &[i64], format: &'static str, expected: String) -> DecodeError {
    DecodeError::Shape {
        output: output.to_string(),
        shape: shape.to_vec(),
        format,
        expected,
    }
}

/// Checks a `[1, 4 + C, N]` shape with the person class among the C classes.
pub fn v8_layout(output: &str, shape: &[i64], person: u32) -> Result<V8Layout, DecodeError> {
    let min_rows = 5 + i64::from(person);
    match shape {
        [1, rows, n, ..] if shape.len() == 3 && *rows >= min_rows && *n >= 0 => Ok(V8Layout {
            classes: (*rows - 4) as usize,
            anchors: *n as usize,
        }),
        _ => Err(shape_error(
            output,
            shape,
            "yolov8",
            format!("[1, 4 + C, N] with person_class {person} < C"),
        )),
    }
}

/// Checks a `[1, N, 5 + C]` shape with the person class among the C classes and, for grid
/// boxes, N equal to the cells of every stride.
pub fn x_layout(
    output: &str,
    shape: &[i64],
    person: u32,
    boxes: &YoloxBoxes,
    (width, height): (u32, u32),
) -> Result<XLayout, DecodeError> {
    let grids: Vec<(usize, usize, f32)> = match boxes {
        YoloxBoxes::Decoded => Vec::new(),
        YoloxBoxes::Grid(strides) => strides
            .iter()
            .map(|&s| ((width / s) as usize, (height / s) as usize, s as f32))
            .collect(),
    };
    let cells: usize = grids.iter().map(|(w, h, _)| w * h).sum();
    let min_cols = 6 + i64::from(person);
    let expected = || {
        let n = if grids.is_empty() {
            "N".to_string()
        } else {
            format!("{cells} (the cells of strides {boxes:?} at {width}x{height})")
        };
        format!("[1, {n}, 5 + C] with person_class {person} < C")
    };
    match shape {
        [1, n, cols] if *cols >= min_cols && *n >= 0 => {
            if !grids.is_empty() && *n as usize != cells {
                return Err(shape_error(output, shape, "yolox", expected()));
            }
            Ok(XLayout {
                classes: (*cols - 5) as usize,
                grids,
            })
        }
        _ => Err(shape_error(output, shape, "yolox", expected())),
    }
}

/// Whether `person` wins the argmax over `score(c)` for c in 0..classes (first index on ties).
fn person_is_best(person: usize, p: f32, classes: usize, score: impl Fn(usize) -> f32) -> bool {
    (0..classes).all(|c| {
        let s = score(c);
        c == person || s < p || (s == p && c > person)
    })
}

/// A box from centre and size, if every value is finite.
fn centre_box(cx: f32, cy: f32, w: f32, h: f32) -> Option<BBox> {
    let b = BBox::new(cx - w / 2.0, cy - h / 2.0, w, h);
    [b.x, b.y, b.w, b.h]
        .iter()
        .all(|v| v.is_finite())
        .then_some(b)
}

/// Person candidates (input pixels) of a YOLOv8 tensor.
pub fn v8_candidates(
    output: &str,
    view: &OutputView<'_>,
    person: u32,
    min_score: f32,
) -> Result<Vec<Scored>, DecodeError> {
    let l = v8_layout(output, view.shape, person)?;
    check_size(output, view.shape, view.data)?;
    let (n, pc) = (l.anchors, person as usize);
    let at = |row: usize, i: usize| view.data[row * n + i];
    let mut found = Vec::new();
    for i in 0..n {
        let p = at(4 + pc, i);
        if !at_least(p, min_score) || !person_is_best(pc, p, l.classes, |c| at(4 + c, i)) {
            continue;
        }
        if let Some(bbox) = centre_box(at(0, i), at(1, i), at(2, i), at(3, i)) {
            found.push(Scored { bbox, score: p });
        }
    }
    Ok(found)
}

/// Person candidates (input pixels) of a YOLOX tensor.
pub fn x_candidates(
    output: &str,
    view: &OutputView<'_>,
    person: u32,
    min_score: f32,
    boxes: &YoloxBoxes,
    input: (u32, u32),
) -> Result<Vec<Scored>, DecodeError> {
    let l = x_layout(output, view.shape, person, boxes, input)?;
    check_size(output, view.shape, view.data)?;
    let pc = person as usize;
    let mut found = Vec::new();
    let mut cells = l
        .grids
        .iter()
        .flat_map(|&(w, h, s)| (0..w * h).map(move |k| ((k % w) as f32, (k / w) as f32, s)));
    for r in view.data.chunks_exact(5 + l.classes) {
        let cell = cells.next();
        let cls = &r[5..];
        let score = r[4] * cls[pc];
        if !at_least(score, min_score) || !person_is_best(pc, cls[pc], l.classes, |c| cls[c]) {
            continue;
        }
        let b = match cell {
            Some((gx, gy, s)) => centre_box(
                (r[0] + gx) * s,
                (r[1] + gy) * s,
                r[2].exp() * s,
                r[3].exp() * s,
            ),
            None => centre_box(r[0], r[1], r[2], r[3]),
        };
        if let Some(bbox) = b {
            found.push(Scored { bbox, score });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Detection;
    use crate::infer::decode::nms;
    use crate::infer::decode::stretched;

    /// A `[1, 4 + C, N]` tensor from per-anchor rows (cx, cy, w, h, scores...).
    fn v8_tensor(anchors: &[&[f32]]) -> (Vec<i64>, Vec<f32>) {
        let rows = anchors[0].len();
        let data = (0..rows)
            .flat_map(|r| anchors.iter().map(move |a| a[r]))
            .collect();
        (vec![1, rows as i64, anchors.len() as i64], data)
    }

    fn boxes(d: &[Detection]) -> Vec<[f32; 5]> {
        d.iter()
            .map(|d| [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h, d.score])
            .collect()
    }

    #[test]
    fn v8_keeps_best_class_persons_after_nms_in_source_pixels() {
        let (shape, data) = v8_tensor(&[
            &[100.0, 100.0, 40.0, 80.0, 0.9, 0.1, 0.0],  // person
            &[102.0, 100.0, 40.0, 80.0, 0.8, 0.1, 0.0],  // same person, lower: suppressed
            &[300.0, 100.0, 40.0, 80.0, 0.7, 0.95, 0.0], // best class 1: not a person
            &[400.0, 200.0, 20.0, 60.0, 0.6, 0.0, 0.2],  // another person
            &[500.0, 200.0, 20.0, 60.0, 0.05, 0.0, 0.0], // below the minimum score
        ]);
        let view = OutputView {
            shape: &shape,
            data: &data,
        };
        let found = v8_candidates("output0", &view, 0, 0.1).unwrap();
        assert_eq!(found.len(), 3);
        let d = nms::to_source(
            found,
            0.45,
            (640.0, 640.0),
            &stretched((640, 640), (1280, 1280)),
        );
        assert_eq!(
            boxes(&d),
            [
                [160.0, 120.0, 80.0, 160.0, 0.9],
                [780.0, 340.0, 40.0, 120.0, 0.6]
            ]
        );
    }

    #[test]
    fn v8_tie_goes_to_the_first_class_and_nan_is_no_person() {
        // Person is class 1 here; class 0 scores the same on anchor 0.
        let (shape, data) = v8_tensor(&[
            &[10.0, 10.0, 4.0, 4.0, 0.5, 0.5],
            &[30.0, 10.0, 4.0, 4.0, 0.4, 0.6],
            &[50.0, 10.0, 4.0, 4.0, 0.1, f32::NAN],
            &[f32::NAN, 10.0, 4.0, 4.0, 0.1, 0.9],
        ]);
        let view = OutputView {
            shape: &shape,
            data: &data,
        };
        let found = v8_candidates("output0", &view, 1, 0.1).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].score, 0.6);
    }

    #[test]
    fn v8_wrong_shapes_and_short_data_are_errors() {
        let data = [0.0f32; 14];
        let view = |shape: &'static [i64], n: usize| OutputView {
            shape,
            data: &data[..n],
        };
        let e = v8_candidates("o", &view(&[1, 7, 2], 13), 0, 0.1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output \"o\" has 13 values for shape [1, 7, 2]"
        );
        // Person class 2 needs at least 3 classes: [1, 7, N].
        let e = v8_candidates("o", &view(&[1, 6, 2], 12), 2, 0.1).unwrap_err();
        assert!(e.to_string().contains("person_class 2 < C"), "{e}");
        assert!(v8_candidates("o", &view(&[2, 7], 14), 0, 0.1).is_err());
        assert!(v8_candidates("o", &view(&[1, 7, -2], 14), 0, 0.1).is_err());
    }

    /// Input 64×32, strides 16 and 32: 4×2 + 2×1 = 10 anchors of (x, y, w, h, obj, 2 classes).
    fn yolox_grid() -> (Vec<i64>, Vec<f32>, YoloxBoxes) {
        let mut data = vec![0f32; 10 * 7];
        // Anchor 5: stride 16, cell (1, 1). Centre (0.5 + 1) × 16 = 24, size e^ln2 × 16 = 32 by 64.
        data[5 * 7..6 * 7].copy_from_slice(&[0.5, 0.5, 2f32.ln(), 4f32.ln(), 0.9, 0.8, 0.1]);
        // Anchor 9: stride 32, cell (1, 0). Centre (40, 16), 32 × 32; score 0.5 × 0.6 = 0.3.
        data[9 * 7..10 * 7].copy_from_slice(&[0.25, 0.5, 0.0, 0.0, 0.5, 0.6, 0.2]);
        // Anchor 0: class 1 wins; anchor 1: objectness too low (0.1 × 0.9).
        data[0..7].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.9, 0.3, 0.7]);
        data[7..14].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.1, 0.9, 0.0]);
        (vec![1, 10, 7], data, YoloxBoxes::Grid(vec![16, 32]))
    }

    #[test]
    fn yolox_grid_boxes_are_decoded_per_stride_and_cell() {
        let (shape, data, grid) = yolox_grid();
        let view = OutputView {
            shape: &shape,
            data: &data,
        };
        let found = x_candidates("output", &view, 0, 0.2, &grid, (64, 32)).unwrap();
        let d = nms::to_source(found, 0.45, (64.0, 32.0), &stretched((64, 32), (128, 64)));
        let near = |a: [f32; 5], b: [f32; 5]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        let got = boxes(&d);
        assert_eq!(got.len(), 2, "{got:?}");
        // Centre (24, 24), 32 × 64 → corners (8, -8)..(40, 56), × 2, clipped to the 128 × 64
        // source.
        assert!(near(got[0], [16.0, 0.0, 64.0, 64.0, 0.72]), "{got:?}");
        assert!(near(got[1], [48.0, 0.0, 64.0, 64.0, 0.3]), "{got:?}");
        // The same rows read as already decoded boxes: centre (0.5, 0.5), size ln 2 by ln 4.
        let decoded = x_candidates("output", &view, 0, 0.2, &YoloxBoxes::Decoded, (64, 32));
        let (w, h) = (2f32.ln(), 4f32.ln());
        let want = BBox::new(0.5 - w / 2.0, 0.5 - h / 2.0, w, h);
        assert_eq!(decoded.unwrap()[0].bbox, want);
    }

    #[test]
    fn yolox_anchor_count_must_match_the_grid() {
        let (_, data, grid) = yolox_grid();
        let view = OutputView {
            shape: &[1, 9, 7],
            data: &data[..63],
        };
        let e = x_candidates("output", &view, 0, 0.2, &grid, (64, 32)).unwrap_err();
        assert!(
            e.to_string().contains("[1, 10 (the cells of strides"),
            "{e}"
        );
        let nan = vec![f32::NAN; 70];
        let view = OutputView {
            shape: &[1, 10, 7],
            data: &nan,
        };
        assert!(
            x_candidates("output", &view, 0, 0.0, &grid, (64, 32))
                .unwrap()
                .is_empty()
        );
    }
}
