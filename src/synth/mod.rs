//! Synthetic store scenes for tracker tuning and regression tests.
//!
//! Shoppers walk between shelves on a floor plan ([`world`]); fixed cameras project them into
//! images through known geometry ([`camera`]); a simulated detector turns what each camera sees
//! into detections with the faults real detectors have: misses (more under occlusion, and in
//! bursts), low scores for partly hidden people, boxes cut to the visible part, jitter, random
//! false positives and a mannequin that looks like a person. Output per camera is a
//! MOTChallenge sequence: `gt/gt.txt`, `det/det.txt`, `seqinfo.ini`.
//!
//! For footfall analytics, [`door`] and [`queue`] are scenes with known crossings and waits,
//! and [`tracks`] turns their true paths into camera tracks with a tracker's faults.

pub mod camera;
pub mod detector;
pub mod door;
pub mod queue;
pub mod replay;
#[doc(hidden)]
pub use crate::rng;
pub mod tracks;
pub mod world;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::geometry::BBox;
use crate::mot::{self, MotRow};
use camera::{Aabb, Camera};
use detector::{DetState, DetectorModel, View, detect};
use rng::Rng;
use world::{Crowd, Floor};

/// Scene settings.
#[derive(Debug, Clone)]
pub struct SceneParams {
    /// Random seed; the same seed gives the same scene.
    pub seed: u64,
    /// Length of the recording, seconds.
    pub duration_s: f64,
    /// Frames per second.
    pub fps: f64,
    /// Mean seconds between arrivals.
    pub arrival_gap_s: f64,
    /// Seconds simulated before recording starts (so the store is not empty).
    pub warmup_s: f64,
}

impl Default for SceneParams {
    fn default() -> Self {
        Self {
            seed: 1,
            duration_s: 60.0,
            fps: 10.0,
            arrival_gap_s: 4.0,
            warmup_s: 40.0,
        }
    }
}

/// One camera's sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Name, e.g. `store-s7-cam1`.
    pub name: String,
    /// Frames per second.
    pub fps: f64,
    /// Number of frames.
    pub frames: u32,
    /// Image size.
    pub size: (u32, u32),
    /// Image → floor homography, when the camera geometry is known.
    pub image_to_floor: Option<[f64; 9]>,
    /// Ground truth rows.
    pub gt: Vec<MotRow>,
    /// Detection rows.
    pub det: Vec<MotRow>,
}

const PERSON_HALF_WIDTH: f64 = 0.22;
const PERSON_HALF_DEPTH: f64 = 0.15;
const SAMPLES_ACROSS: usize = 4;
const SAMPLES_UP: usize = 8;
/// Ground truth keeps people at least this visible and this much inside the image.
const GT_MIN_VISIBILITY: f64 = 0.25;
const GT_MIN_INSIDE: f64 = 0.5;

fn cameras() -> Vec<Camera> {
    vec![
        // Over the entrance, looking into the store across the shelf rows.
        Camera::look_at([0.5, -0.5, 4.0], [9.0, 5.5, 0.0], 800.0, 1280, 720),
        // On the far wall, looking down the aisles.
        Camera::look_at([19.8, 5.5, 4.0], [7.0, 5.0, 0.0], 800.0, 1280, 720),
    ]
}

/// Where one shopper stood on the floor in one frame (ground truth for floor analytics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorTruth {
    /// 1-based frame.
    pub frame: u32,
    /// Identity, as in the sequences' ground truth.
    pub id: u32,
    /// Floor x, metres.
    pub x: f64,
    /// Floor y, metres.
    pub y: f64,
}

/// Generates every camera's sequence for `p`.
pub fn generate(p: &SceneParams) -> Vec<Sequence> {
    generate_with_floor(p).0
}

/// Generates every camera's sequence for `p` and every shopper's floor position per frame.
pub fn generate_with_floor(p: &SceneParams) -> (Vec<Sequence>, Vec<FloorTruth>) {
    let mut rng = Rng::new(p.seed);
    let floor = Floor::standard();
    let cams = cameras();
    let shelves: Vec<Aabb> = floor
        .shelves
        .iter()
        .map(|s| Aabb {
            min: [s.x0, s.y0, 0.0],
            max: [s.x1, s.y1, s.height],
        })
        .collect();
    // A mannequin by the entrance: looks like a person to the detector, never moves.
    let mannequin = (rng.range(3.0, 6.0), rng.range(0.3, 0.6), 1.75);
    let mut crowd = Crowd::new(floor, p.arrival_gap_s);
    let dt = 1.0 / p.fps;
    let mut t = 0.0;
    while t < p.warmup_s {
        crowd.step(t, dt, &mut rng);
        t += dt;
    }
    let frames = (p.duration_s * p.fps).round() as u32;
    let mut seqs: Vec<Sequence> = cams
        .iter()
        .enumerate()
        .map(|(i, c)| Sequence {
            name: format!("store-s{}-cam{}", p.seed, i + 1),
            fps: p.fps,
            frames,
            size: (c.width, c.height),
            image_to_floor: Some(c.image_to_floor()),
            gt: Vec::new(),
            det: Vec::new(),
        })
        .collect();
    let mut states: HashMap<(u32, usize), DetState> = HashMap::new();
    let mut truth = Vec::new();
    for frame in 1..=frames {
        crowd.step(t, dt, &mut rng);
        t += dt;
        truth.extend(crowd.people.iter().map(|q| FloorTruth {
            frame,
            id: q.id,
            x: q.x,
            y: q.y,
        }));
        let people: Vec<(u32, f64, f64, f64)> = crowd
            .people
            .iter()
            .map(|q| (q.id, q.x, q.y, q.height))
            .chain(std::iter::once((0, mannequin.0, mannequin.1, mannequin.2)))
            .collect();
        let bodies: Vec<Aabb> = people
            .iter()
            .map(|&(_, x, y, h)| Aabb {
                min: [x - PERSON_HALF_WIDTH, y - PERSON_HALF_DEPTH, 0.0],
                max: [x + PERSON_HALF_WIDTH, y + PERSON_HALF_DEPTH, h],
            })
            .collect();
        for (ci, cam) in cams.iter().enumerate() {
            let seq = &mut seqs[ci];
            let (w, h) = (f64::from(cam.width), f64::from(cam.height));
            for (k, &(id, x, y, height)) in people.iter().enumerate() {
                let Some(view) = observe(cam, x, y, height, k, &bodies, &shelves) else {
                    continue;
                };
                let full = view.full;
                let clipped = full.clip(w as f32, h as f32);
                let inside = f64::from(clipped.area()) / f64::from(full.area()).max(1e-6);
                if id != 0 && inside >= GT_MIN_INSIDE && view.visibility >= GT_MIN_VISIBILITY {
                    seq.gt.push(MotRow {
                        frame,
                        id: i64::from(id),
                        bbox: clipped,
                        score: 1.0,
                        visibility: view.visibility as f32,
                    });
                }
                let st = states.entry((id, ci)).or_default();
                // A mannequin is found less often than a person.
                let factor = if id == 0 { 0.7 } else { 1.0 };
                if let Some(det) =
                    detect(&DetectorModel::STORE, &mut rng, st, &view, factor, (w, h))
                {
                    seq.det.push(MotRow {
                        frame,
                        id: -1,
                        bbox: det.0,
                        score: det.1,
                        visibility: -1.0,
                    });
                }
            }
            // Random false positives: person-sized boxes on the floor.
            for _ in 0..rng.poisson(0.3) {
                let (fx, fy) = (rng.range(0.5, 19.5), rng.range(0.5, 10.5));
                if let (Some(foot), Some(head)) =
                    (cam.project([fx, fy, 0.0]), cam.project([fx, fy, 1.7]))
                {
                    let bh = foot.1 - head.1;
                    let b = BBox::new(
                        (foot.0 - bh * 0.2) as f32,
                        head.1 as f32,
                        (bh * 0.4) as f32,
                        bh as f32,
                    )
                    .clip(w as f32, h as f32);
                    if b.area() > 50.0 {
                        seq.det.push(MotRow {
                            frame,
                            id: -1,
                            bbox: b,
                            score: rng.range(0.1, 0.6) as f32,
                            visibility: -1.0,
                        });
                    }
                }
            }
        }
    }
    (seqs, truth)
}

fn observe(
    cam: &Camera,
    x: f64,
    y: f64,
    height: f64,
    me: usize,
    bodies: &[Aabb],
    shelves: &[Aabb],
) -> Option<View> {
    let foot = cam.project([x, y, 0.0])?;
    let head = cam.project([x, y, height])?;
    let bh = foot.1 - head.1;
    if bh < 8.0 {
        return None;
    }
    let bw = cam.f * 2.0 * PERSON_HALF_WIDTH / foot.2;
    let full = BBox::new(
        (foot.0 - bw / 2.0) as f32,
        head.1 as f32,
        bw as f32,
        bh as f32,
    );
    let right = cam.right();
    let (mut seen, mut total) = (0usize, 0usize);
    let (mut u0, mut v0, mut u1, mut v1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for i in 0..SAMPLES_ACROSS {
        let s = (i as f64 + 0.5) / SAMPLES_ACROSS as f64 * 2.0 - 1.0;
        for j in 0..SAMPLES_UP {
            let z = (j as f64 + 0.5) / SAMPLES_UP as f64 * height;
            let pt = [
                x + s * PERSON_HALF_WIDTH * right[0],
                y + s * PERSON_HALF_WIDTH * right[1],
                z,
            ];
            total += 1;
            let hidden = shelves.iter().any(|b| b.blocks(cam.pos, pt))
                || bodies
                    .iter()
                    .enumerate()
                    .any(|(k, b)| k != me && b.blocks(cam.pos, pt));
            if !hidden && let Some((u, v, _)) = cam.project(pt) {
                seen += 1;
                u0 = u0.min(u);
                u1 = u1.max(u);
                v0 = v0.min(v);
                v1 = v1.max(v);
            }
        }
    }
    let visibility = seen as f64 / total as f64;
    let visible = if seen > 0 {
        let (du, dv) = (
            bw / SAMPLES_ACROSS as f64 / 2.0,
            bh / SAMPLES_UP as f64 / 2.0,
        );
        BBox::new(
            (u0 - du) as f32,
            (v0 - dv) as f32,
            (u1 - u0 + 2.0 * du) as f32,
            (v1 - v0 + 2.0 * dv) as f32,
        )
    } else {
        full
    };
    Some(View {
        full,
        visible,
        visibility,
    })
}

/// Writes `seqs` as MOTChallenge sequences under `dir` (`<name>/gt/gt.txt`, `det/det.txt`,
/// `seqinfo.ini` with the image → floor homography). Returns the sequence folders.
pub fn write(seqs: &[Sequence], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in seqs {
        let root = dir.join(&s.name);
        std::fs::create_dir_all(root.join("gt"))?;
        std::fs::create_dir_all(root.join("det"))?;
        std::fs::write(root.join("gt/gt.txt"), mot::format_ground_truth(&s.gt))?;
        std::fs::write(root.join("det/det.txt"), mot::format_detections(&s.det))?;
        let mut ini = String::new();
        let _ = writeln!(
            ini,
            "[Sequence]\nname={}\nimDir=img1\nframeRate={}\nseqLength={}\nimWidth={}\nimHeight={}\nimExt=.jpg",
            s.name, s.fps, s.frames, s.size.0, s.size.1
        );
        if let Some(hm) = &s.image_to_floor {
            let h: Vec<String> = hm.iter().map(|v| format!("{v:.9}")).collect();
            let _ = writeln!(
                ini,
                "; storetrack: image -> floor homography (row-major)\nhomography={}",
                h.join(",")
            );
        }
        std::fs::write(root.join("seqinfo.ini"), ini)?;
        out.push(root);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_scene_and_plausible_content() {
        let p = SceneParams {
            seed: 3,
            duration_s: 20.0,
            ..SceneParams::default()
        };
        let a = generate(&p);
        let b = generate(&p);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].gt, b[0].gt);
        assert_eq!(a[1].det, b[1].det);
        for s in &a {
            let ids: std::collections::BTreeSet<i64> = s.gt.iter().map(|r| r.id).collect();
            assert!(ids.len() >= 3, "{}: {} people", s.name, ids.len());
            let per_frame = s.gt.len() as f64 / f64::from(s.frames);
            assert!(
                (1.0..=20.0).contains(&per_frame),
                "{}: {per_frame} people per frame",
                s.name
            );
            // The detector misses some and adds some.
            let recall_proxy = s.det.len() as f64 / s.gt.len() as f64;
            assert!(
                (0.5..1.3).contains(&recall_proxy),
                "{}: det/gt {recall_proxy}",
                s.name
            );
            assert!(
                s.gt.iter().any(|r| r.visibility < 0.6),
                "no occlusion in {}",
                s.name
            );
        }
    }
}
