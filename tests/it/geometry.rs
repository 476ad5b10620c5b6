//! Box geometry against constructed ground truth, end to end through RTSP.
//!
//! Person crops from the sample video are pasted at known positions and scales onto 16:9, 4:3
//! and portrait canvases, at the top and the bottom of the picture where a wrong vertical mapping
//! shows most; each canvas becomes a still H.264 clip served by the simulator as one camera; the
//! service runs on the real model and the stored boxes are compared with where the people were
//! pasted (IoU, and the bottom-centre error that floor positions inherit). The reference box of
//! each person is the detector's own box on the original frame, stretched to the model input the
//! way this SSD was trained, so the test measures the pipeline's geometry, not the detector.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::clip::{Rgb, decode_frame, element, encode_still, launch, rgb_caps};
use storetrack::geometry::{BBox, Detection};
use storetrack::infer::Engine;
use storetrack::simcam::SimCam;
use storetrack::{Config, RunOptions};

/// Frames of the sample video the strips are cut from (people at different places).
const SOURCE_FRAMES: [usize; 3] = [0, 40, 100];
/// A reference person must be at least this sure.
const MIN_REFERENCE_SCORE: f32 = 0.6;
/// Still clip length (the simulator loops it).
const CLIP_FRAMES: usize = 20;
const RUN_SECONDS: u64 = 8;
/// A stored box counts for the true box it overlaps most, if at least this much.
const MIN_MATCH_IOU: f32 = 0.3;
/// Mean IoU of stored boxes with the truth, per camera.
const MIN_MEAN_IOU: f64 = 0.7;
/// Mean bottom-centre error, as a fraction of the mean person height, per camera.
const MAX_BOTTOM_ERR: f64 = 0.1;

/// One test camera: canvas size, and for each half of the canvas (top, bottom) the frame of
/// the sample and the first of the 288 source rows copied there.
struct Scene {
    name: &'static str,
    size: (u32, u32),
    halves: [(usize, f32); 2],
}

/// Source rows per half.
const HALF_ROWS: f32 = 288.0;

/// People stand around rows 150–340 of the sample: the top half starts just above them and the
/// bottom half ends just below them, so they sit at the very top and the very bottom of each
/// picture, where a wrong vertical mapping shows most.
const SCENES: [Scene; 3] = [
    Scene {
        name: "wide",
        size: (1280, 720),
        halves: [(0, 145.0), (100, 60.0)],
    },
    Scene {
        name: "classic",
        size: (768, 576),
        halves: [(40, 145.0), (100, 60.0)],
    },
    Scene {
        name: "portrait",
        size: (432, 768),
        halves: [(100, 145.0), (0, 60.0)],
    },
];

fn inside(b: &BBox, r: &BBox) -> bool {
    b.x >= r.x + 2.0
        && b.y >= r.y + 2.0
        && b.x + b.w <= r.x + r.w - 2.0
        && b.y + b.h <= r.y + r.h - 2.0
}

/// Builds the canvas and the true boxes. Each half is scaled per axis by canvas size / sample
/// size, so once the model stretches the canvas to its input, people look to it exactly as in
/// the sample (the detector is not what is under test); in the camera picture they are wider
/// (16:9) or taller (portrait), and their true boxes follow from the known scales.
fn compose(scene: &Scene, frames: &[(usize, Rgb, Vec<Detection>)]) -> (Rgb, Vec<BBox>) {
    let (w, h) = scene.size;
    let mut canvas = Rgb::grey(w, h, 128);
    let mut truth = Vec::new();
    let (sx, sy) = (w as f32 / 768.0, h as f32 / 576.0);
    for (half, &(frame, y0)) in scene.halves.iter().enumerate() {
        let (_, picture, people) = frames.iter().find(|(i, ..)| *i == frame).unwrap();
        let from = BBox::new(0.0, y0, 768.0, HALF_ROWS);
        let to_y = half as f32 * h as f32 / 2.0;
        canvas.paste(picture, from, (sx, sy), (0.0, to_y));
        for p in people.iter().filter(|p| inside(&p.bbox, &from)) {
            let b = &p.bbox;
            truth.push(BBox::new(
                b.x * sx,
                to_y + (b.y - y0) * sy,
                b.w * sx,
                b.h * sy,
            ));
        }
    }
    (canvas, truth)
}

/// Per scene: how well the stored boxes match the truth.
#[derive(Debug, Default)]
struct Score {
    found: usize,
    people: usize,
    /// Mean over every true box of the best IoU any stored box reaches (0 when none overlaps).
    best_iou: f64,
    mean_iou: f64,
    mean_bottom_err: f64,
    max_bottom_err: f64,
}

fn score(db: &rusqlite::Connection, camera: &str, truth: &[BBox]) -> Score {
    let mut stmt = db
        .prepare(
            "SELECT p.x, p.y, p.w, p.h FROM points p JOIN tracks t ON p.track = t.id \
             WHERE t.camera = ?1",
        )
        .unwrap();
    let points: Vec<BBox> = stmt
        .query_map([camera], |r| {
            Ok(BBox::new(
                r.get::<_, f64>(0)? as f32,
                r.get::<_, f64>(1)? as f32,
                r.get::<_, f64>(2)? as f32,
                r.get::<_, f64>(3)? as f32,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut s = Score {
        people: truth.len(),
        ..Score::default()
    };
    for t in truth {
        s.best_iou += points
            .iter()
            .map(|p| f64::from(p.iou(t)))
            .fold(0.0, f64::max)
            / truth.len() as f64;
        // Every stored point whose nearest truth box is this one.
        let mine: Vec<&BBox> = points
            .iter()
            .filter(|p| {
                let best = truth
                    .iter()
                    .max_by(|a, b| p.iou(a).total_cmp(&p.iou(b)))
                    .unwrap();
                best == t && p.iou(t) >= MIN_MATCH_IOU
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        s.found += 1;
        let n = mine.len() as f64;
        let iou = mine.iter().map(|p| f64::from(p.iou(t))).sum::<f64>() / n;
        let (tx, ty) = t.foot();
        let err = mine
            .iter()
            .map(|p| {
                let (px, py) = p.foot();
                f64::from((px - tx).hypot(py - ty))
            })
            .sum::<f64>()
            / n;
        s.mean_iou += iou;
        s.mean_bottom_err += err;
        s.max_bottom_err = s.max_bottom_err.max(err);
    }
    if s.found > 0 {
        s.mean_iou /= s.found as f64;
        s.mean_bottom_err /= s.found as f64;
    }
    s
}

#[test]
fn stored_boxes_match_pasted_people_on_16_9_4_3_and_portrait_cameras() {
    common::openvino_env();
    let dir = tempfile::tempdir().unwrap();
    let probe_cfg = Config::load(&common::write_config(
        dir.path(),
        &["rtsp://127.0.0.1:1/unused".into()],
        "",
    ))
    .unwrap();
    let mut engine = Engine::new(&probe_cfg.model, &probe_cfg.inference, 0.3).unwrap();
    let spec = engine.input_spec();
    let frames: Vec<(usize, Rgb, Vec<Detection>)> = SOURCE_FRAMES
        .iter()
        .map(|&i| {
            let picture = decode_frame(&common::video(), i);
            let mapping = spec.mapping((picture.w, picture.h), (1, 1));
            let small = picture.resized(spec.width, spec.height);
            let people = engine.detect(&small.data, &mapping).unwrap();
            let people = people
                .into_iter()
                .filter(|d| d.score >= MIN_REFERENCE_SCORE)
                .collect();
            (i, picture, people)
        })
        .collect();
    drop(engine);

    let scenes = &SCENES;
    let mut mounts = Vec::new();
    let mut truths = Vec::new();
    for scene in scenes {
        let (canvas, truth) = compose(scene, &frames);
        assert!(
            truth.len() >= 3,
            "{}: only {} reference people",
            scene.name,
            truth.len()
        );
        let clip = dir.path().join(format!("{}.mp4", scene.name));
        encode_still(&canvas, CLIP_FRAMES, &clip);
        mounts.push((scene.name.to_string(), clip));
        truths.push(truth);
    }
    let sim = SimCam::start("127.0.0.1", 0, &mounts).unwrap();
    let urls: Vec<String> = scenes.iter().map(|s| sim.url(s.name)).collect();
    let cfg = Config::load(&common::write_config(dir.path(), &urls, "")).unwrap();
    let opts = RunOptions {
        duration: Some(Duration::from_secs(RUN_SECONDS)),
        progress: None,
        ..Default::default()
    };
    let summary = storetrack::run(&cfg, &opts, Arc::new(AtomicBool::new(false))).unwrap();
    let db = rusqlite::Connection::open(&summary.db).unwrap();

    let mut failures = Vec::new();
    for (i, (scene, truth)) in scenes.iter().zip(&truths).enumerate() {
        let s = score(&db, &format!("cam{}", i + 1), truth);
        let mean_h = truth.iter().map(|t| f64::from(t.h)).sum::<f64>() / truth.len() as f64;
        eprintln!(
            "{} {:?}: found {}/{} best-IoU mean {:.3}, matched mean IoU {:.3} bottom-centre error mean {:.1} px max {:.1} px \
             (person height {:.0} px)",
            scene.name,
            scene.size,
            s.found,
            s.people,
            s.best_iou,
            s.mean_iou,
            s.mean_bottom_err,
            s.max_bottom_err,
            mean_h
        );
        if s.found * 2 < s.people {
            failures.push(format!("{}: people missed: {s:?}", scene.name));
        }
        if s.mean_iou < MIN_MEAN_IOU {
            failures.push(format!("{}: boxes off: {s:?}", scene.name));
        }
        if s.mean_bottom_err > MAX_BOTTOM_ERR * mean_h {
            failures.push(format!("{}: feet off: {s:?}", scene.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs one white-rectangle picture through `videoscale add-borders=true` to the model's input
/// size and returns the bounding box of the white pixels in the output.
fn letterboxed_rect(size: (u32, u32), white: BBox, input: (u32, u32)) -> BBox {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;
    gst::init().unwrap();
    let mut picture = Rgb::grey(size.0, size.1, 0);
    let patch = Rgb::grey(white.w as u32, white.h as u32, 255);
    picture.paste(
        &patch,
        BBox::new(0.0, 0.0, white.w, white.h),
        (1.0, 1.0),
        (white.x, white.y),
    );
    let pipeline = launch(&format!(
        "appsrc name=src ! videoscale add-borders=true \
         ! video/x-raw,width={},height={},pixel-aspect-ratio=1/1 ! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=sink sync=false",
        input.0, input.1
    ));
    let src: gst_app::AppSrc = element(&pipeline, "src");
    let sink: gst_app::AppSink = element(&pipeline, "sink");
    src.set_caps(Some(&rgb_caps(size.0, size.1)));
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(gst::Buffer::from_mut_slice(picture.data))
        .unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = map.len() / input.1 as usize;
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for y in 0..input.1 {
        for x in 0..input.0 {
            if map[y as usize * stride + x as usize * 3] > 127 {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
    }
    drop(map);
    pipeline.set_state(gst::State::Null).unwrap();
    BBox::new(x0 as f32, y0 as f32, (x1 - x0) as f32, (y1 - y0) as f32)
}

#[test]
fn letterbox_mapping_matches_what_videoscale_draws() {
    use storetrack::infer::resize::{ColorOrder, InputSpec, Layout, ResizeMode};
    let spec = InputSpec {
        width: 300,
        height: 300,
        resize: ResizeMode::Letterbox,
        color: ColorOrder::Rgb,
        layout: Layout::Nhwc,
    };
    for (size, white) in [
        ((768, 576), BBox::new(100.0, 40.0, 60.0, 160.0)),
        ((1280, 720), BBox::new(900.0, 500.0, 120.0, 200.0)),
        ((432, 768), BBox::new(40.0, 600.0, 100.0, 150.0)),
    ] {
        let drawn = letterboxed_rect(size, white, (300, 300));
        let [a, b, c, d] = spec.mapping(size, (1, 1)).to_input(&white);
        let predicted = BBox::new(a * 300.0, b * 300.0, (c - a) * 300.0, (d - b) * 300.0);
        let err = [
            drawn.x - predicted.x,
            drawn.y - predicted.y,
            drawn.w - predicted.w,
            drawn.h - predicted.h,
        ];
        assert!(
            err.iter().all(|e| e.abs() <= 1.0),
            "{size:?}: videoscale drew {drawn:?}, mapping says {predicted:?}"
        );
    }
}
