//! KServe v2 messages for the detector: the model metadata checked against the model
//! description, the input picture packed as one raw UINT8 or FP32 tensor, and the head's output
//! tensors read back from `raw_output_contents` (little-endian FP32) for the shared decoder
//! ([`crate::infer::decode`]).

use prost::bytes::Bytes;

use super::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use super::proto::model_metadata_response::TensorMetadata;
use super::proto::{ModelInferRequest, ModelInferResponse, ModelMetadataResponse};
use crate::infer::decode::{Decoder, OutputView};
use crate::infer::model::{InputType, ModelDescription};
use crate::infer::resize::Layout;

/// KServe datatype of the outputs the decoder reads.
const OUTPUT_DATATYPE: &str = "FP32";

/// KServe datatype of the picture tensor.
fn input_datatype(desc: &ModelDescription) -> &'static str {
    match desc.input_type {
        InputType::U8 => "UINT8",
        InputType::F32 => "FP32",
    }
}

/// The input tensor's shape for this description.
pub fn input_shape(desc: &ModelDescription) -> [i64; 4] {
    let (h, w) = (i64::from(desc.input_height), i64::from(desc.input_width));
    match desc.layout {
        Layout::Nhwc => [1, h, w, 3],
        Layout::Nchw => [1, 3, h, w],
    }
}

/// Why a server's model metadata does not fit the description (one line, for the error).
pub fn check_metadata(
    desc: &ModelDescription,
    decoder: &Decoder,
    meta: &ModelMetadataResponse,
) -> Result<(), String> {
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
    let datatype = input_datatype(desc);
    if input.datatype != datatype {
        return Err(format!(
            "input datatype {}, expected {datatype} (input_type = {:?})",
            input.datatype,
            desc.input_type.name()
        ));
    }
    for name in decoder.output_names() {
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
            Some(t) => decoder
                .check_shape(name, &t.shape)
                .map_err(|e| e.to_string())?,
        }
    }
    Ok(())
}

/// One ModelInfer request carrying `tensor` (from [`crate::infer::input::Packer::to_bytes`]) as
/// raw contents and asking for the outputs the decoder reads.
pub fn infer_request(
    desc: &ModelDescription,
    decoder: &Decoder,
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
            datatype: input_datatype(desc).into(),
            shape: input_shape(desc).to_vec(),
            parameters: Default::default(),
            contents: None,
        }],
        outputs: decoder
            .output_names()
            .iter()
            .map(|n| InferRequestedOutputTensor {
                name: (*n).to_string(),
                parameters: Default::default(),
            })
            .collect(),
        raw_input_contents: vec![Bytes::from(tensor)],
    }
}

/// The outputs of one response the decoder reads, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensors {
    /// Shape and values of each.
    tensors: Vec<(Vec<i64>, Vec<f32>)>,
}

impl OutputTensors {
    /// Borrowed views for [`Decoder::decode`].
    pub fn views(&self) -> Vec<OutputView<'_>> {
        self.tensors
            .iter()
            .map(|(shape, data)| OutputView { shape, data })
            .collect()
    }
}

/// Reads the decoder's outputs (by name) from a response's raw contents.
pub fn read_outputs(decoder: &Decoder, resp: &ModelInferResponse) -> Result<OutputTensors, String> {
    if resp.raw_output_contents.len() != resp.outputs.len() {
        return Err(format!(
            "{} outputs but {} raw contents (the server must answer raw inputs with raw outputs)",
            resp.outputs.len(),
            resp.raw_output_contents.len()
        ));
    }
    let get = |name: &str| -> Result<(Vec<i64>, Vec<f32>), String> {
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
        let data = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((t.shape.clone(), data))
    };
    let tensors = decoder
        .output_names()
        .into_iter()
        .map(get)
        .collect::<Result<_, _>>()?;
    Ok(OutputTensors { tensors })
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

    fn decoder(d: &ModelDescription) -> Decoder {
        Decoder::new(d, d.person_class, 0.1)
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
        assert_eq!(check_metadata(&d, &decoder(&d), &good_meta()), Ok(()));
        let mut m = good_meta();
        m.inputs[0].shape = vec![1, 320, 320, 3];
        assert_eq!(
            check_metadata(&d, &decoder(&d), &m).unwrap_err(),
            "input shape [1, 320, 320, 3], the description says [1, 300, 300, 3] (Nhwc)"
        );
        let mut m = good_meta();
        m.inputs[0].name = "images".into();
        assert!(
            check_metadata(&d, &decoder(&d), &m)
                .unwrap_err()
                .contains("\"images\"")
        );
        let mut m = good_meta();
        m.inputs[0].datatype = "FP32".into();
        assert!(
            check_metadata(&d, &decoder(&d), &m)
                .unwrap_err()
                .contains("datatype FP32")
        );
        let mut m = good_meta();
        m.outputs[2].name = "Identity:0".into();
        assert!(
            check_metadata(&d, &decoder(&d), &m)
                .unwrap_err()
                .starts_with("no output named \"detection_scores:0\"")
        );
        let mut m = good_meta();
        m.inputs.push(tensor("extra", "UINT8", &[1]));
        assert!(
            check_metadata(&d, &decoder(&d), &m)
                .unwrap_err()
                .starts_with("expected 1 input")
        );
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
        let t = read_outputs(&decoder(&d), &resp).unwrap();
        let v = t.views();
        // Boxes, classes, scores, count: the decoder's order, not the response's.
        assert_eq!(v[0].data[..4], [0.1, 0.2, 0.3, 0.4]);
        assert_eq!(v[0].shape, [1, 2, 4]);
        assert_eq!(v[1].data, [1.0, 3.0]);
        assert_eq!(v[2].data, [0.9, 0.1]);
        assert_eq!(v[3].data, [1.0]);
        let mut short = resp.clone();
        short.raw_output_contents[1] = le(&[0.9]);
        assert!(
            read_outputs(&decoder(&d), &short)
                .unwrap_err()
                .contains("4 bytes for shape [1, 2]")
        );
        let mut typed = resp;
        typed.raw_output_contents.clear();
        assert!(
            read_outputs(&decoder(&d), &typed)
                .unwrap_err()
                .contains("raw")
        );
    }
}
