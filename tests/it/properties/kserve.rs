//! A KServe v2 server's answers as the detector reads them: any bytes decoded as a
//! `ModelInferResponse`, and well-formed responses with any names, types, shapes and contents,
//! go through `read_outputs` and the decoder; any metadata through `check_metadata`.

use proptest::prelude::*;
use storetrack::infer::kserve::proto::model_infer_response::InferOutputTensor;
use storetrack::infer::kserve::proto::model_metadata_response::TensorMetadata;
use storetrack::infer::kserve::proto::{ModelInferResponse, ModelMetadataResponse};
use storetrack::infer::kserve::tensor::{check_metadata, read_outputs};
use storetrack::infer::{Decoder, ModelDescription};

fn desc() -> ModelDescription {
    ModelDescription::load(&super::common::root().join("models/ssdlite.toml")).unwrap()
}

const NAMES: &[&str] = &[
    "detection_boxes:0",
    "detection_classes:0",
    "detection_scores:0",
    "num_detections:0",
    "other",
];

fn shape() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(
        prop_oneof![
            0i64..8,
            any::<i64>(),
            Just(i64::MAX),
            Just(-1),
            Just(1 << 32)
        ],
        0..4,
    )
}

fn output() -> impl Strategy<Value = (InferOutputTensor, Vec<u8>)> {
    (
        prop::sample::select(NAMES),
        prop_oneof![Just("FP32".to_string()), "[A-Z0-9]{0,6}"],
        shape(),
        prop_oneof![
            prop::collection::vec(any::<f32>(), 0..64)
                .prop_map(|v| v.iter().flat_map(|f| f.to_le_bytes()).collect()),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
    )
        .prop_map(|(name, datatype, shape, raw)| {
            (
                InferOutputTensor {
                    name: name.to_string(),
                    datatype,
                    shape,
                    ..Default::default()
                },
                raw,
            )
        })
}

fn parse_all(d: &ModelDescription, resp: &ModelInferResponse) {
    let decoder = Decoder::new(d, d.person_class, 0.1);
    if let Ok(t) = read_outputs(&decoder, resp) {
        let mapping = d.input_spec().mapping((640, 480), (1, 1));
        if let Ok(dets) = decoder.decode(&t.views(), &mapping) {
            for det in dets {
                assert!(det.bbox.w.is_finite() && det.bbox.h.is_finite());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_bytes_from_the_server_are_decoded_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        use prost::Message;
        if let Ok(resp) = ModelInferResponse::decode(bytes.as_slice()) {
            parse_all(&desc(), &resp);
        }
    }

    #[test]
    fn any_response_is_read_or_refused(outputs in prop::collection::vec(output(), 0..6), extra_raw in 0usize..2) {
        let d = desc();
        let (outputs, mut raw): (Vec<_>, Vec<_>) = outputs.into_iter().unzip();
        for _ in 0..extra_raw {
            raw.push(Vec::new());
        }
        let resp = ModelInferResponse {
            outputs,
            raw_output_contents: raw.into_iter().map(Into::into).collect(),
            ..Default::default()
        };
        parse_all(&d, &resp);
    }

    #[test]
    fn any_metadata_is_checked(
        inputs in prop::collection::vec((prop::sample::select(NAMES), "[A-Z0-9]{0,6}", shape()), 0..3),
        outputs in prop::collection::vec((prop::sample::select(NAMES), "[A-Z0-9]{0,6}", shape()), 0..6),
    ) {
        let tensor = |(name, datatype, shape): (&str, String, Vec<i64>)| TensorMetadata {
            name: name.to_string(),
            datatype,
            shape,
        };
        let meta = ModelMetadataResponse {
            inputs: inputs.into_iter().map(tensor).collect(),
            outputs: outputs.into_iter().map(tensor).collect(),
            ..Default::default()
        };
        let d = desc();
        let _ = check_metadata(&d, &Decoder::new(&d, d.person_class, 0.1), &meta);
    }
}

/// A shape whose product overflows (`[2^62, 4]`) panicked in `read_outputs`.
#[test]
fn a_shape_too_large_to_multiply_is_refused() {
    let d = desc();
    let out = |name: &str, shape: Vec<i64>| InferOutputTensor {
        name: name.to_string(),
        datatype: "FP32".into(),
        shape,
        ..Default::default()
    };
    let resp = ModelInferResponse {
        outputs: vec![
            out("detection_boxes:0", vec![1 << 62, 4]),
            out("detection_classes:0", vec![1]),
            out("detection_scores:0", vec![1]),
            out("num_detections:0", vec![1]),
        ],
        raw_output_contents: vec![
            vec![0u8; 16].into(),
            vec![0u8; 4].into(),
            vec![0u8; 4].into(),
            vec![0u8; 4].into(),
        ],
        ..Default::default()
    };
    let err = read_outputs(&Decoder::new(&d, d.person_class, 0.1), &resp).unwrap_err();
    assert!(err.contains("16 bytes for shape"), "{err}");
}
