//! A shop door with known crossings: people walk in and out through it, some stop on the
//! threshold (and then go on, or turn back), some step just over it and turn back. Two cameras
//! see it: one inside looking out, one outside looking in.
//!
//! Output: every person's true floor path ([`Walker`]) and the true crossings (who, which way,
//! when the path crossed the door line) — the ground truth for counting lines.

use super::camera::Camera;
use super::rng::Rng;
use super::tracks::{Walker, step_towards};

/// The door line on the floor, metres: west to east along y = 3, so its left (y < 3, up on
/// the plan) is the street and crossing to its right (into the shop) is `in`.
pub const DOOR_LINE: [[f64; 2]; 2] = [[2.0, 3.0], [8.0, 3.0]];
const DOOR_Y: f64 = 3.0;
/// Where people walk from and to, each side of the door (y).
const STREET_Y: f64 = 0.3;
const SHOP_Y: f64 = 6.0;
/// First frame time of every scene (a plausible Unix time).
pub const T0_MS: i64 = 1_700_000_000_000;

/// Scene settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorParams {
    /// Random seed; the same seed gives the same scene.
    pub seed: u64,
    /// People who come to the door.
    pub people: usize,
    /// Mean seconds between them.
    pub mean_gap_s: f64,
    /// Frames per second.
    pub fps: f64,
}

impl Default for DoorParams {
    fn default() -> Self {
        Self {
            seed: 1,
            people: 300,
            mean_gap_s: 2.0,
            fps: 10.0,
        }
    }
}

/// A true crossing of the door line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrueCrossing {
    /// Who.
    pub person: u32,
    /// Into the shop.
    pub inward: bool,
    /// When the path first reached the line on the way, Unix ms.
    pub ts_ms: i64,
}

/// The scene: paths, truth, cameras.
#[derive(Debug, Clone)]
pub struct DoorScene {
    /// Everyone's path.
    pub walkers: Vec<Walker>,
    /// Every true crossing.
    pub crossings: Vec<TrueCrossing>,
    /// Inside looking out, outside looking in.
    pub cameras: Vec<Camera>,
}

/// The two door cameras.
pub fn cameras() -> Vec<Camera> {
    vec![
        Camera::look_at([5.0, 8.5, 3.5], [5.0, 2.5, 0.0], 600.0, 1280, 720),
        Camera::look_at([5.0, -2.5, 3.5], [5.0, 3.5, 0.0], 600.0, 1280, 720),
    ]
}

enum Leg {
    Walk(f64, f64, f64), // to x, y at speed m/s
    Stand(f64, f64),     // seconds, sway (sd, m)
}

/// Generates the scene for `p`.
pub fn door_scene(p: &DoorParams) -> DoorScene {
    let mut rng = Rng::new(p.seed);
    let frame_ms = (1000.0 / p.fps).round() as i64;
    let mut start = T0_MS;
    let mut walkers = Vec::new();
    let mut crossings = Vec::new();
    for i in 0..p.people {
        let id = i as u32 + 1;
        start += ((-p.mean_gap_s * rng.f64().max(1e-9).ln()) * p.fps).round() as i64 * frame_ms;
        let inward = rng.chance(0.5);
        let (from_y, to_y) = if inward {
            (STREET_Y, SHOP_Y)
        } else {
            (SHOP_Y, STREET_Y)
        };
        let (x0, x1) = (rng.range(2.8, 7.2), rng.range(2.8, 7.2));
        let speed = rng.range(0.8, 1.6);
        let kind = rng.f64();
        let mut legs = Vec::new();
        let crosses = if kind < 0.8 {
            legs.push(Leg::Walk(x1, to_y, speed));
            true
        } else if kind < 0.92 {
            // Stops on the threshold, then goes on (60 %) or back.
            let xm = (x0 + x1) / 2.0;
            legs.push(Leg::Walk(xm, DOOR_Y + rng.range(-0.12, 0.12), speed));
            legs.push(Leg::Stand(rng.range(3.0, 12.0), 0.03));
            let on = rng.chance(0.6);
            legs.push(Leg::Walk(x1, if on { to_y } else { from_y }, speed));
            on
        } else {
            // One step over the line, and back.
            let over = if inward { 0.2 } else { -0.2 };
            legs.push(Leg::Walk(x1, DOOR_Y + over, speed));
            legs.push(Leg::Walk(x0, from_y, speed));
            false
        };
        let path = sample(start, frame_ms, (x0, from_y), &legs, &mut rng);
        if crosses && let Some(ts_ms) = first_reach(&path, inward) {
            crossings.push(TrueCrossing {
                person: id,
                inward,
                ts_ms,
            });
        }
        walkers.push(Walker {
            id,
            height: rng.range(1.55, 1.9),
            path,
        });
    }
    DoorScene {
        walkers,
        crossings,
        cameras: cameras(),
    }
}

/// Positions every frame from `start` at `from` along `legs`.
fn sample(
    start: i64,
    frame_ms: i64,
    from: (f64, f64),
    legs: &[Leg],
    rng: &mut Rng,
) -> Vec<(i64, f64, f64)> {
    let dt = frame_ms as f64 / 1000.0;
    let (mut t, mut pos) = (start, from);
    let mut path = vec![(t, pos.0, pos.1)];
    for leg in legs {
        match *leg {
            Leg::Walk(x, y, speed) => loop {
                let there = step_towards(&mut pos, (x, y), speed, dt);
                t += frame_ms;
                path.push((t, pos.0, pos.1));
                if there {
                    break;
                }
            },
            Leg::Stand(s, sway) => {
                for _ in 0..(s / dt) as usize {
                    t += frame_ms;
                    path.push((t, pos.0 + rng.normal(sway), pos.1 + rng.normal(sway)));
                }
            }
        }
    }
    path
}

/// When the path first reaches the door line going in (or out).
fn first_reach(path: &[(i64, f64, f64)], inward: bool) -> Option<i64> {
    path.iter()
        .find(|p| if inward { p.2 >= DOOR_Y } else { p.2 <= DOOR_Y })
        .map(|p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scene_is_deterministic_and_both_cameras_see_the_door() {
        let p = DoorParams {
            people: 60,
            ..DoorParams::default()
        };
        let (a, b) = (door_scene(&p), door_scene(&p));
        assert_eq!(a.walkers, b.walkers);
        assert_eq!(a.crossings, b.crossings);
        let ins = a.crossings.iter().filter(|c| c.inward).count();
        assert!(
            ins > 10 && a.crossings.len() - ins > 10,
            "{ins} of {}",
            a.crossings.len()
        );
        // Every position within 1.5 m of the door is in both cameras' pictures.
        for cam in &a.cameras {
            let (w, h) = (f64::from(cam.width), f64::from(cam.height));
            for wk in &a.walkers {
                for &(_, x, y) in wk.path.iter().filter(|p| (p.2 - DOOR_Y).abs() < 1.5) {
                    let (u, v, _) = cam.project([x, y, 0.0]).unwrap();
                    assert!(
                        u > 10.0 && u < w - 10.0 && v > 10.0 && v < h - 10.0,
                        "{x},{y}: {u},{v}"
                    );
                }
            }
        }
    }
}
