//! Camera tracks with a tracker's faults, from people's true floor paths: what the tracker
//! stage would hand the analytics for a synthetic scene whose truth is known.
//!
//! Input: people's floor paths (one position per frame), fixed cameras ([`Camera`]), and the
//! faults to add ([`TrackFaults`]). Output: per camera, track points — bottom-centre of the box
//! in pixels, its height, and the floor position the camera's homography gives for that point
//! — and the tracks' ends. Faults: jitter of the box, boxes cut to the visible part (the foot
//! jumps up the image, the floor position away from the camera), missed frames, and ID
//! switches (the track ends and a new id starts a few frames later) at a rate per second while
//! the person is in a region (near a counting line, in a queue).

use super::camera::Camera;
use super::rng::Rng;
use crate::geometry::apply_homography;

/// Pixels a foot must be inside the image edge to be tracked.
const EDGE_PX: f64 = 8.0;

/// One person's true path.
#[derive(Debug, Clone, PartialEq)]
pub struct Walker {
    /// Ground-truth identity.
    pub id: u32,
    /// Body height, metres.
    pub height: f64,
    /// Floor position per frame: (Unix ms, x, y), in time order.
    pub path: Vec<(i64, f64, f64)>,
}

/// Moves `pos` towards `to` at `speed` m/s for `dt` s; true when there.
pub fn step_towards(pos: &mut (f64, f64), to: (f64, f64), speed: f64, dt: f64) -> bool {
    let (dx, dy) = (to.0 - pos.0, to.1 - pos.1);
    let d = (dx * dx + dy * dy).sqrt();
    let step = speed * dt;
    if d <= step {
        *pos = to;
        true
    } else {
        *pos = (pos.0 + dx / d * step, pos.1 + dy / d * step);
        false
    }
}

/// What goes wrong in tracking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackFaults {
    /// Standard deviation of the box edges, as a fraction of the box height.
    pub jitter: f64,
    /// Per point: chance the box is cut to the visible part (the foot moves up by 10–35 % of
    /// the box height).
    pub cut_chance: f64,
    /// Per frame: chance of no point.
    pub miss_chance: f64,
    /// ID switches per second while the person is in the switch region.
    pub switches_per_s: f64,
    /// Frames without a point at a switch: 0 to this.
    pub max_switch_gap: usize,
}

impl TrackFaults {
    /// A perfect tracker.
    pub const CLEAN: TrackFaults = TrackFaults {
        jitter: 0.0,
        cut_chance: 0.0,
        miss_chance: 0.0,
        switches_per_s: 0.0,
        max_switch_gap: 0,
    };
}

/// One track point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CamPoint {
    /// Camera index.
    pub camera: usize,
    /// Track id on that camera.
    pub track: u64,
    /// Unix ms.
    pub ts_ms: i64,
    /// Bottom-centre of the box, pixels.
    pub foot: (f64, f64),
    /// Box height, pixels.
    pub box_h: f64,
    /// Floor position of `foot` through the camera's homography, metres.
    pub floor: (f64, f64),
    /// Who it really is.
    pub person: u32,
}

/// The end of a track: its last point's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackEnd {
    /// Camera index.
    pub camera: usize,
    /// Track id.
    pub track: u64,
    /// Time of its last point, Unix ms.
    pub last_ms: i64,
}

/// Every camera's tracks of `walkers`, sorted by time (then camera, track), and their ends.
pub fn camera_tracks(
    walkers: &[Walker],
    cams: &[Camera],
    f: &TrackFaults,
    switch_region: &dyn Fn((f64, f64)) -> bool,
    rng: &mut Rng,
) -> (Vec<CamPoint>, Vec<TrackEnd>) {
    let mut out = (Vec::new(), Vec::new());
    for (ci, cam) in cams.iter().enumerate() {
        let mut view = CameraView {
            index: ci,
            cam,
            h: cam.image_to_floor(),
            next_id: 1,
        };
        for w in walkers {
            view.track(w, f, switch_region, rng, &mut out);
        }
    }
    out.0.sort_by_key(|p| (p.ts_ms, p.camera, p.track));
    out
}

/// One camera making tracks.
struct CameraView<'a> {
    index: usize,
    cam: &'a Camera,
    h: [f64; 9],
    next_id: u64,
}

impl CameraView<'_> {
    /// The tracks of one walker on this camera.
    fn track(
        &mut self,
        w: &Walker,
        f: &TrackFaults,
        switch_region: &dyn Fn((f64, f64)) -> bool,
        rng: &mut Rng,
        (points, ends): &mut (Vec<CamPoint>, Vec<TrackEnd>),
    ) {
        let ci = self.index;
        let mut cur: Option<(u64, i64)> = None; // track id, last point time
        let mut gap = 0usize;
        let mut prev_ts = w.path.first().map_or(0, |p| p.0);
        for &(ts, x, y) in &w.path {
            let dt_s = (ts - prev_ts) as f64 / 1000.0;
            prev_ts = ts;
            let Some((foot, box_h)) = view(self.cam, x, y, w.height) else {
                end(&mut cur, ci, ends);
                continue;
            };
            if cur.is_some() && switch_region((x, y)) && rng.chance(f.switches_per_s * dt_s) {
                end(&mut cur, ci, ends);
                gap = rng.below(f.max_switch_gap + 1);
            }
            if gap > 0 {
                gap -= 1;
                continue;
            }
            if rng.chance(f.miss_chance) {
                continue;
            }
            let (u, v) = noisy(foot, box_h, f, rng);
            let Some(floor) = apply_homography(&self.h, (u as f32, v as f32)) else {
                continue;
            };
            let track = cur.map_or_else(
                || {
                    self.next_id += 1;
                    self.next_id - 1
                },
                |(id, _)| id,
            );
            cur = Some((track, ts));
            points.push(CamPoint {
                camera: ci,
                track,
                ts_ms: ts,
                foot: (u, v),
                box_h,
                floor,
                person: w.id,
            });
        }
        end(&mut cur, ci, ends);
    }
}

fn end(cur: &mut Option<(u64, i64)>, camera: usize, ends: &mut Vec<TrackEnd>) {
    if let Some((track, last_ms)) = cur.take() {
        ends.push(TrackEnd {
            camera,
            track,
            last_ms,
        });
    }
}

/// Foot pixel and box height of a person standing at `(x, y)`, if the camera sees them whole.
fn view(cam: &Camera, x: f64, y: f64, height: f64) -> Option<((f64, f64), f64)> {
    let (fu, fv, _) = cam.project([x, y, 0.0])?;
    let (_, hv, _) = cam.project([x, y, height])?;
    let (w, h) = (f64::from(cam.width), f64::from(cam.height));
    let inside = (EDGE_PX..w - EDGE_PX).contains(&fu) && (EDGE_PX..h - EDGE_PX).contains(&fv);
    (inside && hv >= 0.0).then_some(((fu, fv), fv - hv))
}

fn noisy((u, v): (f64, f64), box_h: f64, f: &TrackFaults, rng: &mut Rng) -> (f64, f64) {
    // The bottom-centre averages two vertical edges; the bottom edge is one.
    let sd = f.jitter * box_h;
    let mut v = v + rng.normal(sd);
    if rng.chance(f.cut_chance) {
        v -= rng.range(0.1, 0.35) * box_h;
    }
    (u + rng.normal(sd / std::f64::consts::SQRT_2), v)
}
