//! KServe v2 messages for the detector: the model metadata checked against the model
//! description, the input picture packed as one raw UINT8 tensor, and the four SSD output
//! tensors read back from `raw_output_contents` (little-endian FP32).

use prost::bytes::Bytes;

use super::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use super::proto::model_metadata_response::TensorMetadata;
use super::proto::{ModelInferRequest, ModelInferResponse, ModelMetadataResponse};
use crate::infer::model::ModelDescription;
use crate::infer::resize::Layout;

/// KServe datatype of the picture tensor.
const INPUT_DATATYPE: &str = "UINT8";
/// KServe datatype of the SSD outputs.
const OUTPUT_DATATYPE: &str = "FP32";

/// The input tensor's shape for this description.
pub fn input_shape(desc: &ModelDescription) -> [i64; 4] {
    let (h, w) = (i64::from(desc.input_height), i64::from(desc.input_width));
    match desc.layout {
        Layout::Nhwc => [1, h, w, 3],
        Layout::Nchw => [1, 3, h, w],
    }
}

/// Why a server's model metadata does not fit the description (one line, for the error).
pub fn check_metadata(desc: &ModelDescription, meta: &ModelMetadataResponse) -> Result<(), String> {
    let [input] = meta.inputs.as_slice() else {
        let names: Vec<&str> = meta.inputs.iter().map(|t| t.name.as_str()).collect();
        return Err(format!("expected 1 input, the server has {names:?}"));
    };
    if input.name != desc.input {
        return Err(format!(
            "input is named {:?}, the description says {:?}",
            input.name, desc.input
        ));
    }
    let want = input_shape(desc);
    if input.shape != want {
        return Err(format!(
            "input shape {:?}, the description says {want:?} ({:?})",
            input.shape, desc.layout
        ));
    }
    if input.datatype != INPUT_DATATYPE {
        return Err(format!(
            "input datatype {}, expected {INPUT_DATATYPE}",
            input.datatype
        ));
    }
    for name in output_names(desc) {
        match meta
            .outputs
            .iter()
            .find(|t: &&TensorMetadata| t.name == name)
        {
            None => {
                let have: Vec<&str> = meta.outputs.iter().map(|t| t.name.as_str()).collect();
                return Err(format!(
                    "no output named {name:?} (the server has {have:?})"
                ));
            }
            Some(t) if t.datatype != OUTPUT_DATATYPE => {
                return Err(format!(
                    "output {name:?} has datatype {}, expected {OUTPUT_DATATYPE}",
                    t.datatype
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Output names in the order [`SsdTensors`] holds them: boxes, classes, scores, count.
fn output_names(desc: &ModelDescription) -> [&str; 4] {
    let o = &desc.outputs;
    [&o.boxes, &o.classes, &o.scores, &o.count]
}

/// Copies the packed picture (`rows` rows, possibly padded to a stride) into a tight tensor in
/// the model's layout. None if `pixels` is too short for the input size.
pub fn pack_input(pixels: &[u8], desc: &ModelDescription) -> Option<Vec<u8>> {
    let (w, h) = (desc.input_width as usize, desc.input_height as usize);
    let row = w * 3;
    let stride = pixels.len().checked_div(h)?;
    if h == 0 || stride < row || pixels.len() < stride * (h - 1) + row {
        return None;
    }
    let mut out = vec![0u8; row * h];
    match desc.layout {
        Layout::Nhwc => {
            for y in 0..h {
                out[y * row..(y + 1) * row].copy_from_slice(&pixels[y * stride..y * stride + row]);
            }
        }
        Layout::Nchw => {
            let plane = w * h;
            for y in 0..h {
                let src = &pixels[y * stride..y * stride + row];
                for (x, px) in src.chunks_exact(3).enumerate() {
                    for (c, v) in px.iter().enumerate() {
                        out[c * plane + y * w + x] = *v;
                    }
                }
            }
        }
    }
    Some(out)
}

/// One ModelInfer request carrying `tensor` as raw contents and asking for the four outputs.
pub fn infer_request(
    desc: &ModelDescription,
    model: &str,
    version: Option<&str>,
    id: String,
    tensor: Vec<u8>,
) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_string(),
        model_version: version.unwrap_or_default().to_string(),
        id,
        parameters: Default::default(),
        inputs: vec![InferInputTensor {
            name: desc.input.clone(),
            datatype: INPUT_DATATYPE.into(),
            shape: input_shape(desc).to_vec(),
            parameters: Default::default(),
            contents: None,
        }],
        outputs: output_names(desc)
            .iter()
            .map(|n| InferRequestedOutputTensor {
                name: (*n).to_string(),
                parameters: Default::default(),
            })
            .collect(),
        raw_input_contents: vec![Bytes::from(tensor)],
    }
}

/// The four SSD outputs of one response, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SsdTensors {
    /// `N × 4` normalized ymin, xmin, ymax, xmax.
    pub boxes: Vec<f32>,
    /// `N` class ids.
    pub classes: Vec<f32>,
    /// `N` scores.
    pub scores: Vec<f32>,
    /// Valid rows.
    pub count: f32,
}

impl SsdTensors {
    /// Borrowed view for [`crate::infer::ssd::parse`].
    pub fn view(&self) -> crate::infer::ssd::SsdOutputs<'_> {
        crate::infer::ssd::SsdOutputs {
            boxes: &self.boxes,
            classes: &self.classes,
            scores: &self.scores,
            count: self.count,
        }
    }
}

/// Reads the four outputs (by name) from a response's raw contents.
pub fn read_outputs(
    desc: &ModelDescription,
    resp: &ModelInferResponse,
) -> Result<SsdTensors, String> {
    if resp.raw_output_contents.len() != resp.outputs.len() {
        return Err(format!(
            "{} outputs but {} raw contents (the server must answer raw inputs with raw outputs)",
            resp.outputs.len(),
            resp.raw_output_contents.len()
        ));
    }
    let get = |name: &str| -> Result<Vec<f32>, String> {
        let i = resp
            .outputs
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| format!("response has no output {name:?}"))?;
        let t = &resp.outputs[i];
        if t.datatype != OUTPUT_DATATYPE {
            return Err(format!("output {name:?} is {}, expected FP32", t.datatype));
        }
        let raw = &resp.raw_output_contents[i];
        // Checked: a server's shape can be any numbers (a product overflowing i64 panicked).
        let bytes = t
            .shape
            .iter()
            .try_fold(1i64, |n, &d| (d >= 0).then(|| n.checked_mul(d)).flatten())
            .and_then(|n| usize::try_from(n).ok()?.checked_mul(4));
        if bytes != Some(raw.len()) {
            return Err(format!(
                "output {name:?}: {} bytes for shape {:?}",
                raw.len(),
                t.shape
            ));
        }
        Ok(raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let [boxes, classes, scores, count] = output_names(desc);
    Ok(SsdTensors {
        boxes: get(boxes)?,
        classes: get(classes)?,
        scores: get(scores)?,
        count: get(count)?.first().copied().unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::super::proto::model_infer_response::InferOutputTensor;
    use super::*;
    use std::path::Path;

    fn desc() -> ModelDescription {
        ModelDescription::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ssdlite.toml"))
            .unwrap()
    }

    fn tensor(name: &str, datatype: &str, shape: &[i64]) -> TensorMetadata {
        TensorMetadata {
            name: name.into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
        }
    }

    fn good_meta() -> ModelMetadataResponse {
        ModelMetadataResponse {
            name: "ssdlite".into(),
            inputs: vec![tensor("image_tensor:0", "UINT8", &[1, 300, 300, 3])],
            outputs: vec![
                tensor("detection_boxes:0", "FP32", &[1, 100, 4]),
                tensor("detection_classes:0", "FP32", &[1, 100]),
                tensor("detection_scores:0", "FP32", &[1, 100]),
                tensor("num_detections:0", "FP32", &[1]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn metadata_matching_the_description_passes_and_each_mismatch_is_named() {
        let d = desc();
        assert_eq!(check_metadata(&d, &good_meta()), Ok(()));
        let mut m = good_meta();
        m.inputs[0].shape = vec![1, 320, 320, 3];
        assert_eq!(
            check_metadata(&d, &m).unwrap_err(),
            "input shape [1, 320, 320, 3], the description says [1, 300, 300, 3] (Nhwc)"
        );
        let mut m = good_meta();
        m.inputs[0].name = "images".into();
        assert!(check_metadata(&d, &m).unwrap_err().contains("\"images\""));
        let mut m = good_meta();
        m.inputs[0].datatype = "FP32".into();
        assert!(
            check_metadata(&d, &m)
                .unwrap_err()
                .contains("datatype FP32")
        );
        let mut m = good_meta();
        m.outputs[2].name = "Identity:0".into();
        assert!(
            check_metadata(&d, &m)
                .unwrap_err()
                .starts_with("no output named \"detection_scores:0\"")
        );
        let mut m = good_meta();
        m.inputs.push(tensor("extra", "UINT8", &[1]));
        assert!(
            check_metadata(&d, &m)
                .unwrap_err()
                .starts_with("expected 1 input")
        );
    }

    #[test]
    fn packing_removes_row_padding_and_transposes_for_nchw() {
        let mut d = desc();
        d.input_width = 2;
        d.input_height = 2;
        // Rows of 6 bytes padded to a stride of 8 (as GStreamer pads video rows).
        let px = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        assert_eq!(
            pack_input(&px, &d).unwrap(),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        d.layout = Layout::Nchw;
        assert_eq!(
            pack_input(&px, &d).unwrap(),
            [1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12]
        );
        assert_eq!(pack_input(&px[..11], &d), None);
    }

    #[test]
    fn outputs_are_read_by_name_in_any_order() {
        let d = desc();
        let le =
            |v: &[f32]| Bytes::from(v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<_>>());
        let out = |name: &str, shape: &[i64]| InferOutputTensor {
            name: name.into(),
            datatype: "FP32".into(),
            shape: shape.to_vec(),
            ..Default::default()
        };
        let resp = ModelInferResponse {
            outputs: vec![
                out("num_detections:0", &[1]),
                out("detection_scores:0", &[1, 2]),
                out("detection_classes:0", &[1, 2]),
                out("detection_boxes:0", &[1, 2, 4]),
            ],
            raw_output_contents: vec![
                le(&[1.0]),
                le(&[0.9, 0.1]),
                le(&[1.0, 3.0]),
                le(&[0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 1.0, 1.0]),
            ],
            ..Default::default()
        };
        let t = read_outputs(&d, &resp).unwrap();
        assert_eq!(t.count, 1.0);
        assert_eq!(t.scores, [0.9, 0.1]);
        assert_eq!(t.classes, [1.0, 3.0]);
        assert_eq!(t.boxes[..4], [0.1, 0.2, 0.3, 0.4]);
        let mut short = resp.clone();
        short.raw_output_contents[1] = le(&[0.9]);
        assert!(
            read_outputs(&d, &short)
                .unwrap_err()
                .contains("4 bytes for shape [1, 2]")
        );
        let mut typed = resp;
        typed.raw_output_contents.clear();
        assert!(read_outputs(&d, &typed).unwrap_err().contains("raw"));
    }
}
