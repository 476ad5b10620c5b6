//! Model descriptions (`models/*.toml`): which IR to load, the input tensor's name, size, resize
//! mode, colour order, layout, element type and scale, the output head (its format, its tensors'
//! names and what decoding it needs), and the person class. Output names are mapped here once,
//! so the engine never depends on output order (INT8 quantization changes it).
//!
//! Input: a TOML file. Output: a validated [`ModelDescription`], or a one-line error naming the
//! file and the key. The formats and the exports each supports are described in `docs/models.md`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::resize::{ColorOrder, InputSpec, Layout, ResizeMode};

/// IoU above which YOLO candidates of one class suppress each other, unless `nms_iou` is given
/// (the YOLOX demo's and Open Model Zoo's YOLO demos' default).
pub const DEFAULT_NMS_IOU: f32 = 0.45;
/// The same for `ssd-raw` heads: the TF Object Detection API SSD configs' `iou_threshold`.
pub const DEFAULT_SSD_NMS_IOU: f32 = 0.6;
/// Strides of the YOLOX heads, unless `strides` is given (every released YOLOX model).
pub const DEFAULT_YOLOX_STRIDES: [u32; 3] = [8, 16, 32];

/// Output layouts the engine can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ModelFormat {
    /// TensorFlow Object Detection API post-processed SSD outputs (four tensors).
    #[serde(rename = "tf-ssd")]
    TfSsd,
    /// The same SSD before its post-processing: every anchor's decoded box and class scores
    /// (two tensors); storetrack suppresses.
    #[serde(rename = "ssd-raw")]
    SsdRaw,
    /// OpenVINO `DetectionOutput` (Open Model Zoo SSD-style detectors): one `[1, 1, N, 7]` tensor.
    #[serde(rename = "detection-output")]
    DetectionOutput,
    /// Ultralytics YOLOv8 / YOLO11 head: one `[1, 4 + C, N]` tensor, before NMS.
    #[serde(rename = "yolov8", alias = "yolo11")]
    YoloV8,
    /// YOLOX head: one `[1, N, 5 + C]` tensor, before NMS (grid-relative unless `decoded`).
    #[serde(rename = "yolox")]
    Yolox,
}

impl ModelFormat {
    /// The name used in descriptions.
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::TfSsd => "tf-ssd",
            ModelFormat::SsdRaw => "ssd-raw",
            ModelFormat::DetectionOutput => "detection-output",
            ModelFormat::YoloV8 => "yolov8",
            ModelFormat::Yolox => "yolox",
        }
    }
}

/// Element type of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// 8-bit pixels as they are (an IR whose pre-processing converts them).
    #[default]
    U8,
    /// 32-bit floats: each pixel value divided by `input_scale`.
    F32,
}

impl InputType {
    /// The name used in descriptions.
    pub fn name(self) -> &'static str {
        match self {
            InputType::U8 => "u8",
            InputType::F32 => "f32",
        }
    }
}

/// Names of the four TF OD API SSD output tensors (`[outputs]` of `format = "tf-ssd"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdOutputNames {
    /// `[1, N, 4]` normalized ymin, xmin, ymax, xmax.
    pub boxes: String,
    /// `[1, N]` class ids as floats.
    pub classes: String,
    /// `[1, N]` scores.
    pub scores: String,
    /// `[1]` number of valid rows.
    pub count: String,
}

/// Names of the two tensors of `format = "ssd-raw"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SsdRawOutputNames {
    boxes: String,
    scores: String,
}

/// The one output tensor of the single-output formats (`[outputs]` of every other format).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleOutputName {
    detections: String,
}

/// Where YOLOX boxes are: already in input pixels, or relative to the cells of these strides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YoloxBoxes {
    /// Exported with `--decode_in_inference`: centre and size in input pixels.
    Decoded,
    /// Exported without it (YOLOX's default): offsets and log-sizes per cell, strides in order.
    Grid(Vec<u32>),
}

/// The output head: its tensors and how to decode them.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// `format = "tf-ssd"`.
    TfSsd(SsdOutputNames),
    /// `format = "ssd-raw"`: per anchor a decoded box and one score per class.
    SsdRaw {
        /// `[1, N, 4]` normalized ymin, xmin, ymax, xmax.
        boxes: String,
        /// `[1, N, C]` scores (sigmoid applied), background in column 0.
        scores: String,
        /// IoU above which a lower-scored person box is suppressed.
        nms_iou: f32,
    },
    /// `format = "detection-output"`: rows of image id, label, score, normalized corners.
    DetectionOutput {
        /// Output tensor name.
        output: String,
    },
    /// `format = "yolov8"`: centre and size in input pixels, then one score per class.
    YoloV8 {
        /// Output tensor name.
        output: String,
        /// IoU above which a lower-scored person box is suppressed.
        nms_iou: f32,
    },
    /// `format = "yolox"`: centre, size, objectness, then one score per class.
    Yolox {
        /// Output tensor name.
        output: String,
        /// IoU above which a lower-scored person box is suppressed.
        nms_iou: f32,
        /// Decoded boxes or grid cells.
        boxes: YoloxBoxes,
    },
}

impl Head {
    /// The format this head decodes.
    pub fn format(&self) -> ModelFormat {
        match self {
            Head::TfSsd(_) => ModelFormat::TfSsd,
            Head::SsdRaw { .. } => ModelFormat::SsdRaw,
            Head::DetectionOutput { .. } => ModelFormat::DetectionOutput,
            Head::YoloV8 { .. } => ModelFormat::YoloV8,
            Head::Yolox { .. } => ModelFormat::Yolox,
        }
    }

    /// Names of the output tensors the decoder reads, in the order it takes them.
    pub fn output_names(&self) -> Vec<&str> {
        match self {
            Head::TfSsd(o) => vec![&o.boxes, &o.classes, &o.scores, &o.count],
            Head::SsdRaw { boxes, scores, .. } => vec![boxes, scores],
            Head::DetectionOutput { output }
            | Head::YoloV8 { output, .. }
            | Head::Yolox { output, .. } => vec![output],
        }
    }
}

/// A description as written, before the head is assembled from its format's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescription {
    name: String,
    ir: PathBuf,
    format: ModelFormat,
    input: String,
    input_width: u32,
    input_height: u32,
    #[serde(default)]
    resize: ResizeMode,
    #[serde(default)]
    color: ColorOrder,
    #[serde(default)]
    layout: Layout,
    #[serde(default)]
    input_type: InputType,
    input_scale: Option<f32>,
    person_class: u32,
    nms_iou: Option<f32>,
    decoded: Option<bool>,
    strides: Option<Vec<u32>>,
    outputs: toml::Table,
}

/// A parsed model description with its IR path resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDescription {
    /// The file it was read from (named in errors).
    pub path: PathBuf,
    /// Human-readable name.
    pub name: String,
    /// IR `.xml`, resolved against the description's folder.
    pub ir: PathBuf,
    /// Input tensor name.
    pub input: String,
    /// Input width in pixels.
    pub input_width: u32,
    /// Input height in pixels.
    pub input_height: u32,
    /// How frames are fitted to the input (`stretch` or `letterbox`), as the model was trained.
    pub resize: ResizeMode,
    /// Input channel order (`RGB` or `BGR`).
    pub color: ColorOrder,
    /// Input tensor layout (`NHWC` or `NCHW`).
    pub layout: Layout,
    /// Input element type (`u8` or `f32`).
    pub input_type: InputType,
    /// Pixel values are divided by this for an `f32` input (1 for `u8`).
    pub input_scale: f32,
    /// Class id meaning person.
    pub person_class: u32,
    /// Output head.
    pub head: Head,
}

/// Why a model description could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The file could not be read.
    #[error("{path}: cannot read model description: {source}")]
    Read {
        /// Description path.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid description.
    #[error("{path}: invalid model description: {message}")]
    Parse {
        /// Description path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A key's value does not fit the rest of the description.
    #[error("{path}: invalid model description: {key}: {message}")]
    Invalid {
        /// Description path.
        path: PathBuf,
        /// The key at fault.
        key: &'static str,
        /// Why.
        message: String,
    },
}

impl ModelDescription {
    /// Reads a description, checks it and resolves its IR path.
    pub fn load(path: &Path) -> Result<Self, DescriptionError> {
        let text = std::fs::read_to_string(path).map_err(|source| DescriptionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: RawDescription = toml::from_str(&text).map_err(|e| DescriptionError::Parse {
            path: path.to_path_buf(),
            message: e.message().trim().to_string(),
        })?;
        let invalid = |key, message: String| DescriptionError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let head = head(&raw).map_err(|(key, message)| invalid(key, message))?;
        let input_scale = input_scale(&raw).map_err(|m| invalid("input_scale", m))?;
        if raw.input_width == 0 || raw.input_height == 0 {
            return Err(invalid(
                "input_width",
                "the input size must not be 0".into(),
            ));
        }
        let mut ir = raw.ir;
        if ir.is_relative() {
            ir = path.parent().unwrap_or(Path::new(".")).join(ir);
        }
        Ok(ModelDescription {
            path: path.to_path_buf(),
            name: raw.name,
            ir,
            input: raw.input,
            input_width: raw.input_width,
            input_height: raw.input_height,
            resize: raw.resize,
            color: raw.color,
            layout: raw.layout,
            input_type: raw.input_type,
            input_scale,
            person_class: raw.person_class,
            head,
        })
    }

    /// The output format.
    pub fn format(&self) -> ModelFormat {
        self.head.format()
    }

    /// What the pipeline must produce for this model.
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            width: self.input_width,
            height: self.input_height,
            resize: self.resize,
            color: self.color,
            layout: self.layout,
        }
    }

    /// The weights file that goes with the IR.
    pub fn weights(&self) -> PathBuf {
        self.ir.with_extension("bin")
    }
}

fn input_scale(raw: &RawDescription) -> Result<f32, String> {
    match (raw.input_type, raw.input_scale) {
        (_, None) => Ok(1.0),
        (_, Some(s)) if !(s.is_finite() && s > 0.0) => Err(format!("{s} is not a positive number")),
        (InputType::U8, Some(s)) if s != 1.0 => Err(format!(
            "{s} needs input_type = \"f32\" (a u8 input takes pixels as they are)"
        )),
        (_, Some(s)) => Ok(s),
    }
}

/// The head of `raw.format` from `[outputs]` and the format's own keys; the error names the
/// key at fault.
fn head(raw: &RawDescription) -> Result<Head, (&'static str, String)> {
    let format = raw.format;
    let only_for = |key: &'static str, formats: &str| {
        (
            key,
            format!(
                "applies to format {formats} only (this is {})",
                format.name()
            ),
        )
    };
    let suppressed = matches!(
        format,
        ModelFormat::YoloV8 | ModelFormat::Yolox | ModelFormat::SsdRaw
    );
    if raw.nms_iou.is_some() && !suppressed {
        return Err(only_for("nms_iou", "yolov8, yolox or ssd-raw"));
    }
    if format != ModelFormat::Yolox {
        if raw.decoded.is_some() {
            return Err(only_for("decoded", "yolox"));
        }
        if raw.strides.is_some() {
            return Err(only_for("strides", "yolox"));
        }
    }
    let nms_iou = raw.nms_iou.unwrap_or(match format {
        ModelFormat::SsdRaw => DEFAULT_SSD_NMS_IOU,
        _ => DEFAULT_NMS_IOU,
    });
    if !(nms_iou > 0.0 && nms_iou <= 1.0) {
        return Err(("nms_iou", format!("{nms_iou} is not in (0, 1]")));
    }
    let outputs = |e: toml::de::Error| ("outputs", e.message().trim().to_string());
    let single = || -> Result<String, (&'static str, String)> {
        let o: SingleOutputName = raw.outputs.clone().try_into().map_err(outputs)?;
        Ok(o.detections)
    };
    Ok(match format {
        ModelFormat::TfSsd => Head::TfSsd(raw.outputs.clone().try_into().map_err(outputs)?),
        ModelFormat::SsdRaw => {
            let o: SsdRawOutputNames = raw.outputs.clone().try_into().map_err(outputs)?;
            Head::SsdRaw {
                boxes: o.boxes,
                scores: o.scores,
                nms_iou,
            }
        }
        ModelFormat::DetectionOutput => Head::DetectionOutput { output: single()? },
        ModelFormat::YoloV8 => Head::YoloV8 {
            output: single()?,
            nms_iou,
        },
        ModelFormat::Yolox => Head::Yolox {
            output: single()?,
            nms_iou,
            boxes: yolox_boxes(raw)?,
        },
    })
}

fn yolox_boxes(raw: &RawDescription) -> Result<YoloxBoxes, (&'static str, String)> {
    if raw.decoded == Some(true) {
        return match raw.strides {
            Some(_) => Err(("strides", "not used with decoded = true".into())),
            None => Ok(YoloxBoxes::Decoded),
        };
    }
    let strides = raw
        .strides
        .clone()
        .unwrap_or_else(|| DEFAULT_YOLOX_STRIDES.to_vec());
    let fits = |s: &u32| {
        *s > 0 && raw.input_width.is_multiple_of(*s) && raw.input_height.is_multiple_of(*s)
    };
    if strides.is_empty() || !strides.iter().all(fits) {
        return Err((
            "strides",
            format!(
                "{strides:?}: each stride must divide the input size {}x{}",
                raw.input_width, raw.input_height
            ),
        ));
    }
    Ok(YoloxBoxes::Grid(strides))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_description_parses_and_resolves_ir() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ssdlite.toml");
        let d = ModelDescription::load(&p).unwrap();
        assert_eq!(d.format(), ModelFormat::TfSsd);
        assert_eq!((d.input_width, d.input_height), (300, 300));
        assert_eq!(d.person_class, 1);
        // The TF OD API SSD resizer stretches; feeding it letterboxed frames shrank every box.
        assert_eq!(d.resize, ResizeMode::Stretch);
        assert_eq!((d.color, d.layout), (ColorOrder::Rgb, Layout::Nhwc));
        assert_eq!((d.input_type, d.input_scale), (InputType::U8, 1.0));
        assert!(d.ir.ends_with("models/ssdlite/ssdlite.xml"));
        assert!(d.weights().ends_with("models/ssdlite/ssdlite.bin"));
        assert_eq!(d.head.output_names()[2], "detection_scores:0");
    }

    const YOLO: &str = r#"
name = "y"
ir = "y.xml"
format = "yolov8"
input = "images"
input_width = 640
input_height = 480
resize = "letterbox"
layout = "NCHW"
input_type = "f32"
input_scale = 255
person_class = 0
[outputs]
detections = "output0"
"#;

    fn load(text: &str) -> Result<ModelDescription, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, text).unwrap();
        ModelDescription::load(&p).map_err(|e| {
            let s = e.to_string();
            let prefix = format!("{}: invalid model description: ", p.display());
            s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
        })
    }

    #[test]
    fn yolo_descriptions_build_their_heads_with_defaults() {
        let d = load(YOLO).unwrap();
        assert_eq!((d.input_type, d.input_scale), (InputType::F32, 255.0));
        assert_eq!(
            d.head,
            Head::YoloV8 {
                output: "output0".into(),
                nms_iou: DEFAULT_NMS_IOU
            }
        );
        let x = load(&YOLO.replace("yolov8", "yolox")).unwrap();
        assert!(
            matches!(x.head, Head::Yolox { boxes: YoloxBoxes::Grid(ref s), .. } if s == &[8, 16, 32])
        );
        let decoded = YOLO
            .replace("yolov8", "yolox")
            .replace("person_class", "decoded = true\nperson_class");
        assert!(matches!(
            load(&decoded).unwrap().head,
            Head::Yolox {
                boxes: YoloxBoxes::Decoded,
                ..
            }
        ));
        let eleven = load(
            &YOLO
                .replace("yolov8", "yolo11")
                .replace("person_class", "nms_iou = 0.7\nperson_class"),
        );
        assert!(matches!(eleven.unwrap().head, Head::YoloV8 { nms_iou, .. } if nms_iou == 0.7));
    }

    #[test]
    fn each_misplaced_or_bad_key_is_named() {
        let cases = [
            (
                YOLO.replace("detections", "boxes"),
                "outputs: unknown field `boxes`, expected `detections`",
            ),
            (
                YOLO.replace("input_type = \"f32\"\n", ""),
                "input_scale: 255 needs input_type = \"f32\"",
            ),
            (
                YOLO.replace("input_scale = 255", "input_scale = 0"),
                "input_scale: 0 is not a positive number",
            ),
            (
                YOLO.replace("person_class", "strides = [8]\nperson_class"),
                "strides: applies to format yolox only (this is yolov8)",
            ),
            (
                YOLO.replace("yolov8", "yolox")
                    .replace("person_class", "strides = [7]\nperson_class"),
                "strides: [7]: each stride must divide the input size 640x480",
            ),
            (
                YOLO.replace("yolov8", "yolox").replace(
                    "person_class",
                    "decoded = true\nstrides = [8]\nperson_class",
                ),
                "strides: not used with decoded = true",
            ),
            (
                YOLO.replace("yolov8", "detection-output")
                    .replace("person_class", "nms_iou = 0.5\nperson_class"),
                "nms_iou: applies to format yolov8, yolox or ssd-raw only (this is detection-output)",
            ),
            (
                YOLO.replace("person_class", "nms_iou = 1.5\nperson_class"),
                "nms_iou: 1.5 is not in (0, 1]",
            ),
            (
                YOLO.replace("yolov8", "ssd"),
                "unknown variant `ssd`, expected one of `tf-ssd`, `ssd-raw`, `detection-output`, `yolo11`, `yolov8`, `yolox`",
            ),
            (
                YOLO.replace("yolov8", "tf-ssd"),
                "outputs: unknown field `detections`",
            ),
            (
                YOLO.replace("person_class", "colour = \"BGR\"\nperson_class"),
                "unknown field `colour`",
            ),
        ];
        for (text, want) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }

    #[test]
    fn every_shipped_description_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut formats = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                let d = ModelDescription::load(&p).unwrap_or_else(|e| panic!("{e}"));
                formats.push(d.format());
            }
        }
        for f in [
            ModelFormat::TfSsd,
            ModelFormat::SsdRaw,
            ModelFormat::DetectionOutput,
            ModelFormat::YoloV8,
            ModelFormat::Yolox,
        ] {
            assert!(formats.contains(&f), "no shipped description of {f:?}");
        }
    }
}
