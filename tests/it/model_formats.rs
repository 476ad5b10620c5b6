//! Each output adapter on a real OpenVINO IR whose outputs are known: `tests/support/head_ir.py`
//! builds, per format, a tiny model whose output is a constant tensor except for one score that
//! is a multiple of the input's first-channel mean. The real engine loads it through a model
//! description, runs a uniform picture, and the boxes must come out exactly where the constants
//! put them in source pixels (stretch and letterbox), with suppression and class filtering for
//! the YOLO and `ssd-raw` heads and the probe score proving the input was filled in the declared
//! layout, element type and scale. The same IRs served by a real KServe v2 server give the same
//! boxes through the remote backend's decoding. Mismatches between a description and its IR are
//! refused at start with the file named.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::kserve::{Served, Server};
use serde_json::json;
use storetrack::Config;
use storetrack::geometry::Detection;
use storetrack::infer::kserve::RemoteEngine;
use storetrack::infer::{Engine, ModelDescription};

mod real;

/// Lowest score passed on (the tracker's default low threshold).
const MIN_SCORE: f32 = 0.1;
/// Every pixel of the test picture, in the model's channel order: the probe reads the first.
/// (Written interleaved into a planar input, the first plane's mean would be 116.7, not 200.)
const PIXEL: [u8; 3] = [200, 100, 50];

/// One format's test model: description text (without `ir`), IR spec, source size, and the
/// boxes expected in source pixels (x, y, w, h, score).
struct Case {
    name: &'static str,
    description: String,
    spec: serde_json::Value,
    source: (u32, u32),
    expected: Vec<[f32; 5]>,
}

/// OpenVINO DetectionOutput (person-detection-retail-0013's layout): f32 BGR NCHW 544×320,
/// label 1 = person, source twice the input (stretch).
fn detection_output() -> Case {
    #[rustfmt::skip]
    let rows = vec![
        0.0, 1.0, 0.0, 0.1, 0.2, 0.3, 0.6,   // person: score = probe (200 / 250 = 0.8)
        0.0, 2.0, 0.99, 0.0, 0.0, 1.0, 1.0,  // another label
        0.0, 1.0, 0.05, 0.5, 0.5, 0.6, 0.6,  // below the minimum score
        0.0, 1.0, 0.7, 0.5, 0.5, 0.75, 1.2,  // person, bottom clipped to the picture
        -1.0, 1.0, 0.9, 0.0, 0.0, 0.5, 0.5,  // end of the valid rows
        0.0, 1.0, 0.9, 0.0, 0.0, 0.5, 0.5,   // after the end: ignored
    ];
    Case {
        name: "do",
        description: r#"name = "detection-output test"
format = "detection-output"
input = "data"
input_width = 544
input_height = 320
resize = "stretch"
color = "BGR"
layout = "NCHW"
input_type = "f32"
person_class = 1
[outputs]
detections = "detection_out"
"#
        .into(),
        spec: json!({
            "input": {"name": "data", "shape": [1, 3, 320, 544], "type": "f32", "layout": "NCHW"},
            "outputs": [{"name": "detection_out", "shape": [1, 1, 6, 7], "values": rows}],
            "probe": {"output": "detection_out", "index": 2, "factor": 1.0 / 250.0},
        }),
        source: (1088, 640),
        expected: vec![
            [108.8, 128.0, 217.6, 256.0, 0.8],
            [544.0, 320.0, 272.0, 320.0, 0.7],
        ],
    }
}

/// Ultralytics YOLOv8 head `[1, 4 + 3, 6]`: f32 RGB NCHW 320×320 scaled by 1/255, letterboxed
/// from a 16:9 source (content rows 70..250, 4 source pixels per input pixel).
fn yolov8() -> Case {
    let anchors: [[f32; 7]; 6] = [
        [100.0, 150.0, 40.0, 80.0, 0.0, 0.1, 0.0], // person: score = probe (200 / 255)
        [104.0, 150.0, 40.0, 80.0, 0.7, 0.1, 0.0], // same person, lower score: suppressed
        [200.0, 150.0, 40.0, 80.0, 0.6, 0.9, 0.0], // best class is 1: not a person
        [250.0, 200.0, 20.0, 60.0, 0.5, 0.0, 0.2], // another person
        [300.0, 150.0, 40.0, 80.0, 0.05, 0.0, 0.0], // below the minimum score
        [50.0, 150.0, 40.0, 80.0, f32::NAN, 0.0, 0.0], // NaN score
    ];
    // Row-major [1, 7, 6]: every anchor's cx, then every anchor's cy, ...
    let values: Vec<f32> = (0..7)
        .flat_map(|r| anchors.iter().map(move |a| a[r]))
        .collect();
    Case {
        name: "v8",
        description: r#"name = "yolov8 test"
format = "yolov8"
input = "images"
input_width = 320
input_height = 320
resize = "letterbox"
color = "RGB"
layout = "NCHW"
input_type = "f32"
input_scale = 255.0
person_class = 0
nms_iou = 0.5
[outputs]
detections = "output0"
"#
        .into(),
        spec: json!({
            "input": {"name": "images", "shape": [1, 3, 320, 320], "type": "f32", "layout": "NCHW"},
            "outputs": [{"name": "output0", "shape": [1, 7, 6], "values": nan_safe(&values)}],
            // Row 4 (person scores), anchor 0.
            "probe": {"output": "output0", "index": 4 * 6, "factor": 1.0},
        }),
        source: (1280, 720),
        expected: vec![
            [320.0, 160.0, 160.0, 320.0, 200.0 / 255.0],
            [960.0, 400.0, 80.0, 240.0, 0.5],
        ],
    }
}

/// YOLOX head as `tools/export_onnx.py` writes it (grid-relative, strides 8/16/32): u8 BGR NHWC
/// 96×64 (an IR with the conversion inside), 2 classes, source twice the input (stretch).
fn yolox() -> Case {
    // 12×8 + 6×4 + 3×2 cells.
    let mut values = vec![0f32; 126 * 7];
    let mut set = |anchor: usize, row: [f32; 7]| {
        values[anchor * 7..anchor * 7 + 7].copy_from_slice(&row);
    };
    // Stride 8, cell (3, 2): centre (28, 20), 16×32; score 0.9 × probe (200 / 250).
    set(2 * 12 + 3, [0.5, 0.5, 2f32.ln(), 4f32.ln(), 0.9, 0.0, 0.1]);
    // Stride 16, cell (4, 1): centre (64, 16), 16×16; score 0.8 × 0.5.
    set(96 + 6 + 4, [0.0, 0.0, 0.0, 0.0, 0.8, 0.5, 0.2]);
    // Stride 32, cell (2, 1): class 1 wins.
    set(120 + 3 + 2, [0.0, 0.0, 0.0, 0.0, 0.9, 0.3, 0.6]);
    // Stride 8, cell (0, 0): objectness too low (0.05 × 0.9).
    set(0, [0.0, 0.0, 0.0, 0.0, 0.05, 0.9, 0.0]);
    Case {
        name: "x",
        description: r#"name = "yolox test"
format = "yolox"
input = "images"
input_width = 96
input_height = 64
resize = "stretch"
color = "BGR"
layout = "NHWC"
person_class = 0
[outputs]
detections = "output"
"#
        .into(),
        spec: json!({
            "input": {"name": "images", "shape": [1, 64, 96, 3], "type": "u8", "layout": "NHWC"},
            "outputs": [{"name": "output", "shape": [1, 126, 7], "values": values}],
            "probe": {"output": "output", "index": (2 * 12 + 3) * 7 + 5, "factor": 1.0 / 250.0},
        }),
        source: (192, 128),
        expected: vec![
            [40.0, 8.0, 32.0, 64.0, 0.72],
            [112.0, 16.0, 32.0, 32.0, 0.4],
        ],
    }
}

/// The TF OD API SSD cut before its post-processing: u8 RGB NHWC 64×64, every anchor's box
/// (normalized ymin, xmin, ymax, xmax) and scores (background, person); source 128×64 (stretch).
fn ssd_raw() -> Case {
    let anchors: [([f32; 4], [f32; 2]); 5] = [
        ([0.25, 0.25, 0.75, 0.5], [0.0, 0.0]), // person: score = probe (200 / 250)
        ([0.25, 0.26, 0.75, 0.51], [0.1, 0.7]), // same person, lower (IoU 0.92): suppressed
        ([0.0, 0.6, 0.5, 1.2], [0.2, 0.6]),    // another person, clipped at the right edge
        ([0.5, 0.1, 0.9, 0.3], [0.9, 0.05]),   // below the minimum score
        ([0.1, 0.1, 0.4, f32::NAN], [0.0, 0.9]), // NaN corner
    ];
    let boxes: Vec<f32> = anchors.iter().flat_map(|a| a.0).collect();
    let scores: Vec<f32> = anchors.iter().flat_map(|a| a.1).collect();
    Case {
        name: "raw",
        description: r#"name = "ssd-raw test"
format = "ssd-raw"
input = "image_tensor"
input_width = 64
input_height = 64
person_class = 1
[outputs]
boxes = "raw_boxes"
scores = "raw_scores"
"#
        .into(),
        spec: json!({
            "input": {"name": "image_tensor", "shape": [1, 64, 64, 3], "type": "u8", "layout": "NHWC"},
            "outputs": [
                {"name": "raw_boxes", "shape": [1, 5, 4], "values": nan_safe(&boxes)},
                {"name": "raw_scores", "shape": [1, 5, 2], "values": scores},
            ],
            "probe": {"output": "raw_scores", "index": 1, "factor": 1.0 / 250.0},
        }),
        source: (128, 64),
        expected: vec![[32.0, 16.0, 32.0, 32.0, 0.8], [76.8, 0.0, 51.2, 32.0, 0.6]],
    }
}

/// JSON cannot carry NaN: the IR script reads `null` as NaN.
fn nan_safe(values: &[f32]) -> Vec<serde_json::Value> {
    values
        .iter()
        .map(|v| if v.is_nan() { json!(null) } else { json!(v) })
        .collect()
}

/// A built case: the IR and its description in a temporary folder.
struct Built {
    case: Case,
    description: PathBuf,
    ir: PathBuf,
    _dir: tempfile::TempDir,
}

fn build(case: Case) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, case.spec.to_string()).unwrap();
    let ir = dir.path().join(format!("{}.xml", case.name));
    let python = common::root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup.sh",
        python.display()
    );
    let out = Command::new(python)
        .arg(common::root().join("tests/support/head_ir.py"))
        .arg(&ir)
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "head_ir.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let description = dir.path().join(format!("{}.toml", case.name));
    let text = format!("ir = \"{}.xml\"\n{}", case.name, case.description);
    std::fs::write(&description, text).unwrap();
    Built {
        case,
        description,
        ir,
        _dir: dir,
    }
}

/// The four cases, built once for every test of this binary.
fn cases() -> &'static [Built] {
    static CASES: OnceLock<Vec<Built>> = OnceLock::new();
    CASES.get_or_init(|| {
        [detection_output(), yolov8(), yolox(), ssd_raw()]
            .map(build)
            .into()
    })
}

fn config(description: &Path, inference: &str) -> Config {
    common::openvino_env();
    let text = format!(
        "[[cameras]]\nid = \"c\"\nurl = \"rtsp://127.0.0.1:1/x\"\n[model]\ndescription = \"{}\"\nscore_threshold = 0.5\n{inference}",
        description.display()
    );
    Config::from_str_at(&text, &description.with_extension("config.toml")).unwrap()
}

/// The uniform input picture for `desc` and the mapping from its case's source.
fn picture(b: &Built) -> (Vec<u8>, storetrack::infer::InputMapping) {
    let desc = ModelDescription::load(&b.description).unwrap();
    let spec = desc.input_spec();
    let pixels = PIXEL.repeat((spec.width * spec.height) as usize);
    (pixels, spec.mapping(b.case.source, (1, 1)))
}

fn assert_boxes(got: &[Detection], b: &Built, what: &str) {
    let flat: Vec<[f32; 5]> = got
        .iter()
        .map(|d| [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h, d.score])
        .collect();
    let want = &b.case.expected;
    let close = flat.len() == want.len()
        && flat.iter().zip(want).all(|(g, w)| {
            g[..4]
                .iter()
                .zip(&w[..4])
                .all(|(a, e)| (a - e).abs() < 0.01)
                && (g[4] - w[4]).abs() < 1e-4
        });
    assert!(
        close,
        "{what} {}: got {flat:?}, expected {want:?}",
        b.case.name
    );
}

#[test]
fn every_adapter_decodes_its_known_outputs_to_the_right_source_boxes() {
    for b in cases() {
        let cfg = config(&b.description, "");
        let mut engine = Engine::new(&cfg.model, &cfg.inference, MIN_SCORE).unwrap();
        let (pixels, mapping) = picture(b);
        let got = engine.detect(&pixels, &mapping).unwrap();
        assert_boxes(&got, b, "local engine");
    }
}

#[test]
fn the_probe_sees_what_was_written_into_the_input() {
    // Guards the guard: the same picture in the other channel order gives the probe 50 / 250.
    let b = &cases()[0];
    let cfg = config(&b.description, "");
    let mut engine = Engine::new(&cfg.model, &cfg.inference, MIN_SCORE).unwrap();
    let (mut pixels, mapping) = picture(b);
    for px in pixels.chunks_exact_mut(3) {
        px.reverse();
    }
    let got = engine.detect(&pixels, &mapping).unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    // Rows in the order the layer wrote them: the probed row first.
    assert!((got[0].score - 0.2).abs() < 1e-4, "{got:?}");
    assert!((got[1].score - 0.7).abs() < 1e-4, "{got:?}");
}

#[test]
fn the_kserve_backend_decodes_the_same_ir_served_remotely_to_the_same_boxes() {
    let served = cases()
        .iter()
        .map(|b| {
            let names = b.case.spec["outputs"].as_array().unwrap().iter();
            let outputs = names
                .map(|o| o["name"].as_str().unwrap())
                .collect::<Vec<_>>()
                .join(",");
            Served {
                name: b.case.name.into(),
                ir: b.ir.clone(),
                outputs,
            }
        })
        .collect();
    let server = Server::start_models(served);
    for b in cases() {
        let inference = format!(
            "[inference]\nbackend = \"kserve\"\nendpoints = [\"grpc://{}\"]\nmodel = \"{}\"\ntimeout_ms = 10000\n",
            server.endpoint(),
            b.case.name
        );
        let cfg = config(&b.description, &inference);
        let remote = cfg.inference.remote.clone().unwrap();
        let mut engine = RemoteEngine::new(&cfg.model, &cfg.inference, &remote, MIN_SCORE).unwrap();
        let (pixels, mapping) = picture(b);
        let got = engine.detect(&pixels, &mapping).unwrap();
        assert_boxes(&got, b, "kserve");
    }
    // A server model whose output does not fit the description is refused at start.
    let dir = tempfile::tempdir().unwrap();
    let as_yolo = dir.path().join("as-yolo.toml");
    std::fs::write(&as_yolo, as_yolov8(&cases()[0])).unwrap();
    let inference = format!(
        "[inference]\nbackend = \"kserve\"\nendpoints = [\"grpc://{}\"]\nmodel = \"do\"\n",
        server.endpoint()
    );
    let cfg = config(&as_yolo, &inference);
    let remote = cfg.inference.remote.clone().unwrap();
    let e = RemoteEngine::new(&cfg.model, &cfg.inference, &remote, MIN_SCORE)
        .err()
        .expect("a DetectionOutput model described as YOLOv8 must be refused")
        .to_string();
    assert!(e.contains(YOLO_SHAPE_ERROR), "{e}");
    assert!(e.contains(&as_yolo.display().to_string()), "{e}");
}

/// What both backends say when a DetectionOutput model is described as YOLOv8.
const YOLO_SHAPE_ERROR: &str =
    "output \"detection_out\" has shape [1, 1, 6, 7]; format yolov8 expects [1, 4 + C, N]";

/// The DetectionOutput case's description turned into a YOLOv8 one (IR path absolute).
fn as_yolov8(b: &Built) -> String {
    described(b)
        .replace("detection-output", "yolov8")
        .replace("person_class = 1", "person_class = 0")
}

/// A case's description with its IR path made absolute (for copies in other folders).
fn described(b: &Built) -> String {
    std::fs::read_to_string(&b.description).unwrap().replace(
        &format!("ir = \"{}.xml\"", b.case.name),
        &format!("ir = \"{}\"", b.ir.display()),
    )
}

#[test]
fn an_ir_that_does_not_fit_its_description_is_refused_with_the_file_named() {
    let b = &cases()[0];
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let base = described(b);
    let cases = [
        ("as-yolo.toml", as_yolov8(b), YOLO_SHAPE_ERROR),
        (
            "as-u8.toml",
            base.replace("input_type = \"f32\"", "input_type = \"u8\""),
            "input element type is F32 in the IR, input_type = \"u8\"",
        ),
        (
            "wrong-output.toml",
            base.replace("detections = \"detection_out\"", "detections = \"boxes\""),
            "no output named \"boxes\"",
        ),
    ];
    for (name, text, want) in cases {
        let path = write(name, text);
        let cfg = config(&path, "");
        let e = Engine::new(&cfg.model, &cfg.inference, MIN_SCORE)
            .err()
            .unwrap_or_else(|| panic!("{name} must be refused"))
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
        assert!(e.contains(&path.display().to_string()), "{name}: {e}");
    }
}
