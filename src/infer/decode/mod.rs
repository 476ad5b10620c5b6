//! Decoding of a detector's output tensors into person detections in source pixels, one adapter
//! per output format; the local engine and the KServe backend both hand their tensors here.
//!
//! Input: the output tensors named by the description's head (shape and FP32 values, in
//! [`Head::output_names`] order) and the frame's [`InputMapping`]. Output: person
//! [`Detection`]s in source pixels (the input resize inverted, clipped, non-finite values
//! rejected), or a [`DecodeError`] when a tensor's shape does not fit the format. Nothing here
//! panics on a short, mis-shaped or NaN-filled tensor.
//!
//! - [`ssd`]: TF Object Detection API (boxes, classes, scores, count; already after NMS).
//! - [`ssd_raw`]: the same SSD cut before its post-processing: every anchor, then [`nms`].
//! - [`detection_output`]: OpenVINO `DetectionOutput` rows (already after NMS).
//! - [`yolo`]: Ultralytics v8/11 and YOLOX heads: person candidates, then [`nms`].

pub mod detection_output;
pub mod nms;
pub mod ssd;
pub mod ssd_raw;
pub mod yolo;

use super::model::{Head, ModelDescription};
use super::resize::InputMapping;
use crate::geometry::Detection;

/// One output tensor of one inference, borrowed: its dimensions and its values.
#[derive(Debug, Clone, Copy)]
pub struct OutputView<'a> {
    /// Dimensions as the runtime or the server reports them.
    pub shape: &'a [i64],
    /// Values, row-major.
    pub data: &'a [f32],
}

/// Why an output tensor could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer tensors than the head reads.
    #[error("{want} output tensor(s) expected, {got} given")]
    Missing {
        /// Tensors the head reads.
        want: usize,
        /// Tensors given.
        got: usize,
    },
    /// The tensor's shape is not what the format produces.
    #[error("output {output:?} has shape {shape:?}; format {format} expects {expected}")]
    Shape {
        /// Output name.
        output: String,
        /// Its shape.
        shape: Vec<i64>,
        /// The format.
        format: &'static str,
        /// What the format expects.
        expected: String,
    },
    /// The tensor holds fewer or more values than its shape says.
    #[error("output {output:?} has {len} values for shape {shape:?}")]
    Size {
        /// Output name.
        output: String,
        /// Values given.
        len: usize,
        /// Its shape.
        shape: Vec<i64>,
    },
}

/// Turns one inference's outputs into person detections (shared by every backend).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoder {
    head: Head,
    person_class: u32,
    min_score: f32,
    input: (u32, u32),
}

impl Decoder {
    /// A decoder for `desc`'s head keeping class `person_class` with score ≥ `min_score`.
    pub fn new(desc: &ModelDescription, person_class: u32, min_score: f32) -> Self {
        Self {
            head: desc.head.clone(),
            person_class,
            min_score,
            input: (desc.input_width, desc.input_height),
        }
    }

    /// The output tensors to fetch, in the order [`Decoder::decode`] takes them.
    pub fn output_names(&self) -> Vec<&str> {
        self.head.output_names()
    }

    /// Whether an output of these dimensions can be decoded (checked when the model is loaded;
    /// dynamic dimensions, negative or absent, are left to [`Decoder::decode`]).
    pub fn check_shape(&self, output: &str, shape: &[i64]) -> Result<(), DecodeError> {
        if shape.iter().any(|d| *d < 0) {
            return Ok(());
        }
        match &self.head {
            Head::TfSsd(_) => Ok(()),
            Head::SsdRaw { boxes, .. } if output == boxes => {
                ssd_raw::boxes_layout(output, shape).map(|_| ())
            }
            Head::SsdRaw { .. } => {
                ssd_raw::scores_layout(output, shape, self.person_class).map(|_| ())
            }
            Head::DetectionOutput { .. } => detection_output::check(output, shape).map(|_| ()),
            Head::YoloV8 { .. } => yolo::v8_layout(output, shape, self.person_class).map(|_| ()),
            Head::Yolox { boxes, .. } => {
                yolo::x_layout(output, shape, self.person_class, boxes, self.input).map(|_| ())
            }
        }
    }

    /// Person detections in source pixels from `outputs` (in [`Decoder::output_names`] order).
    pub fn decode(
        &self,
        outputs: &[OutputView<'_>],
        mapping: &InputMapping,
    ) -> Result<Vec<Detection>, DecodeError> {
        let names = self.output_names();
        if outputs.len() < names.len() {
            return Err(DecodeError::Missing {
                want: names.len(),
                got: outputs.len(),
            });
        }
        let (class, min) = (self.person_class, self.min_score);
        Ok(match &self.head {
            Head::TfSsd(_) => {
                let out = ssd::SsdOutputs {
                    boxes: outputs[0].data,
                    classes: outputs[1].data,
                    scores: outputs[2].data,
                    count: outputs[3].data.first().copied().unwrap_or(0.0),
                };
                ssd::parse(&out, class, min, mapping)
            }
            Head::SsdRaw {
                boxes,
                scores,
                nms_iou,
            } => {
                let names = (boxes.as_str(), scores.as_str());
                let found = ssd_raw::candidates(names, &outputs[0], &outputs[1], class, min)?;
                nms::to_source(found, *nms_iou, (1.0, 1.0), mapping)
            }
            Head::DetectionOutput { output } => {
                detection_output::parse(output, &outputs[0], class, min, mapping)?
            }
            Head::YoloV8 { output, nms_iou } => {
                let found = yolo::v8_candidates(output, &outputs[0], class, min)?;
                nms::to_source(found, *nms_iou, self.input_size(), mapping)
            }
            Head::Yolox {
                output,
                nms_iou,
                boxes,
            } => {
                let found = yolo::x_candidates(output, &outputs[0], class, min, boxes, self.input)?;
                nms::to_source(found, *nms_iou, self.input_size(), mapping)
            }
        })
    }

    /// The model's input size in pixels (YOLO candidates are in input pixels).
    fn input_size(&self) -> (f32, f32) {
        (self.input.0 as f32, self.input.1 as f32)
    }
}

/// The mapping of a model input of `input` pixels stretched from a `source` picture (the
/// decoders' tests).
#[cfg(test)]
fn stretched(input: (u32, u32), source: (u32, u32)) -> InputMapping {
    use super::resize::{ColorOrder, InputSpec, Layout, ResizeMode};
    InputSpec {
        width: input.0,
        height: input.1,
        resize: ResizeMode::Stretch,
        color: ColorOrder::Rgb,
        layout: Layout::Nhwc,
    }
    .mapping(source, (1, 1))
}

/// Whether `score` reaches `min` (false for NaN).
fn at_least(score: f32, min: f32) -> bool {
    score >= min
}

/// Number of values a shape holds (None for a negative dimension or an overflow).
fn elements(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, d| {
        usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
    })
}

/// The error for a tensor whose value count differs from its shape's.
fn check_size(output: &str, shape: &[i64], data: &[f32]) -> Result<(), DecodeError> {
    if elements(shape) == Some(data.len()) {
        Ok(())
    } else {
        Err(DecodeError::Size {
            output: output.to_string(),
            len: data.len(),
            shape: shape.to_vec(),
        })
    }
}
