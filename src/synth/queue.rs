//! A checkout queue with known waits: customers arrive at random, join the end of a lane,
//! move up as the one till serves the head of the queue, are served for a random time and
//! leave; some lose patience and walk away. One camera sees the lane and the till.
//!
//! Output: every customer's true floor path ([`Walker`]) and their true wait ([`QueueTruth`]):
//! from the first position inside the queue zone to the first inside the till zone (served), or
//! to the last inside the queue zone (abandoned).

use super::camera::Camera;
use super::door::T0_MS;
use super::rng::Rng;
use super::tracks::{Walker, step_towards};

/// The queue lane (x0, y0, x1, y1), metres; the head is at the low-x end.
pub const QUEUE_ZONE: [f64; 4] = [2.0, 1.0, 10.0, 2.4];
/// The till, beside the head of the lane.
pub const TILL_ZONE: [f64; 4] = [0.0, 0.8, 2.0, 2.6];
const LANE_Y: f64 = 1.7;
const HEAD_X: f64 = 2.6;
const SPACING: f64 = 0.75;
const TILL: (f64, f64) = (1.0, 1.7);
const ENTRANCE: (f64, f64) = (12.5, 4.5);
const EXIT_Y: f64 = 4.5;
const SPEED: f64 = 1.0;
const SHUFFLE_SPEED: f64 = 0.6;

/// Scene settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueParams {
    /// Random seed; the same seed gives the same scene.
    pub seed: u64,
    /// Customers.
    pub customers: usize,
    /// Mean seconds between arrivals.
    pub mean_gap_s: f64,
    /// Service time range, seconds.
    pub service_s: (f64, f64),
    /// Share of customers with limited patience.
    pub impatient: f64,
    /// Their patience range, seconds after arriving.
    pub patience_s: (f64, f64),
    /// Frames per second.
    pub fps: f64,
}

impl Default for QueueParams {
    fn default() -> Self {
        Self {
            seed: 1,
            customers: 120,
            mean_gap_s: 32.0,
            service_s: (12.0, 36.0),
            impatient: 0.3,
            patience_s: (10.0, 60.0),
            fps: 5.0,
        }
    }
}

/// One customer's true wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTruth {
    /// Who.
    pub person: u32,
    /// First position inside the queue zone, Unix ms.
    pub enter_ms: i64,
    /// First inside the till zone (served) or last inside the queue zone, Unix ms.
    pub end_ms: i64,
    /// Reached the till.
    pub served: bool,
}

/// The scene.
#[derive(Debug, Clone)]
pub struct QueueScene {
    /// Everyone's path.
    pub walkers: Vec<Walker>,
    /// Every customer's wait.
    pub truth: Vec<QueueTruth>,
    /// The camera.
    pub cameras: Vec<Camera>,
}

/// The camera over the lane.
pub fn cameras() -> Vec<Camera> {
    vec![Camera::look_at(
        [6.0, 7.5, 3.5],
        [5.5, 1.7, 0.0],
        550.0,
        1280,
        720,
    )]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Queueing,
    ToTill,
    Service(i64),
    Leaving(bool), // past the first waypoint
}

struct Customer {
    id: u32,
    pos: (f64, f64),
    phase: Phase,
    give_up_ms: Option<i64>,
    service_ms: i64,
    path: Vec<(i64, f64, f64)>,
    height: f64,
}

/// Generates the scene for `p`.
pub fn queue_scene(p: &QueueParams) -> QueueScene {
    let mut rng = Rng::new(p.seed);
    let frame_ms = (1000.0 / p.fps).round() as i64;
    let dt = frame_ms as f64 / 1000.0;
    let mut arrivals = Vec::new();
    let mut t = T0_MS;
    for _ in 0..p.customers {
        t += ((-p.mean_gap_s * rng.f64().max(1e-9).ln()) * p.fps).round() as i64 * frame_ms;
        arrivals.push(t);
    }
    let (mut active, mut done): (Vec<Customer>, Vec<Customer>) = (Vec::new(), Vec::new());
    let mut line: Vec<u32> = Vec::new(); // ids queueing, head first
    let mut till_busy = false;
    let mut next = 0;
    let mut now = T0_MS;
    while next < arrivals.len() || !active.is_empty() {
        while next < arrivals.len() && arrivals[next] <= now {
            let (impatient, patience) = (
                rng.chance(p.impatient),
                rng.range(p.patience_s.0, p.patience_s.1),
            );
            active.push(Customer {
                id: next as u32 + 1,
                pos: ENTRANCE,
                phase: Phase::Queueing,
                give_up_ms: impatient.then(|| now + (patience * 1000.0) as i64),
                service_ms: (rng.range(p.service_s.0, p.service_s.1) * 1000.0) as i64,
                path: Vec::new(),
                height: rng.range(1.55, 1.9),
            });
            line.push(next as u32 + 1);
            next += 1;
        }
        for c in &mut active {
            step(c, &mut line, &mut till_busy, now, dt);
            c.path
                .push((now, c.pos.0 + rng.normal(0.01), c.pos.1 + rng.normal(0.01)));
        }
        let (gone, stay): (Vec<Customer>, Vec<Customer>) = active.into_iter().partition(|c| {
            c.phase == Phase::Leaving(true) && c.pos.1 >= EXIT_Y - 1e-9 && at_exit(c.pos)
        });
        active = stay;
        done.extend(gone);
        now += frame_ms;
    }
    done.sort_by_key(|c| c.id);
    let truth = done.iter().filter_map(truth_of).collect();
    QueueScene {
        walkers: done
            .into_iter()
            .map(|c| Walker {
                id: c.id,
                height: c.height,
                path: c.path,
            })
            .collect(),
        truth,
        cameras: cameras(),
    }
}

fn at_exit(p: (f64, f64)) -> bool {
    p.0 <= -0.99 || p.0 >= ENTRANCE.0 - 1e-9
}

/// One frame of one customer.
fn step(c: &mut Customer, line: &mut Vec<u32>, till_busy: &mut bool, now: i64, dt: f64) {
    match c.phase {
        Phase::Queueing => {
            let k = line.iter().position(|&id| id == c.id).unwrap_or(0);
            let slot = (HEAD_X + SPACING * k as f64, LANE_Y);
            let speed = if c.pos.1 > QUEUE_ZONE[3] {
                SPEED
            } else {
                SHUFFLE_SPEED
            };
            let arrived = step_towards(&mut c.pos, slot, speed, dt);
            if k == 0 && arrived && !*till_busy {
                *till_busy = true;
                line.remove(0);
                c.phase = Phase::ToTill;
            } else if k > 0 && c.give_up_ms.is_some_and(|g| now >= g) {
                line.retain(|&id| id != c.id);
                c.phase = Phase::Leaving(false);
            }
        }
        Phase::ToTill => {
            if step_towards(&mut c.pos, TILL, SHUFFLE_SPEED, dt) {
                c.phase = Phase::Service(now + c.service_ms);
            }
        }
        Phase::Service(until) => {
            if now >= until {
                *till_busy = false;
                c.phase = Phase::Leaving(false);
            }
        }
        Phase::Leaving(false) => {
            let out = (c.pos.0, EXIT_Y);
            if step_towards(&mut c.pos, out, SPEED, dt) {
                c.phase = Phase::Leaving(true);
            }
        }
        Phase::Leaving(true) => {
            let x = if c.pos.0 < 5.0 { -1.0 } else { ENTRANCE.0 };
            step_towards(&mut c.pos, (x, EXIT_Y), SPEED, dt);
        }
    }
}

fn inside(r: &[f64; 4], x: f64, y: f64) -> bool {
    x > r[0] && x < r[2] && y > r[1] && y < r[3]
}

fn truth_of(c: &Customer) -> Option<QueueTruth> {
    let enter = c.path.iter().position(|p| inside(&QUEUE_ZONE, p.1, p.2))?;
    let after = &c.path[enter..];
    let served = after.iter().find(|p| inside(&TILL_ZONE, p.1, p.2));
    let end_ms = match served {
        Some(p) => p.0,
        None => {
            after
                .iter()
                .rev()
                .find(|p| inside(&QUEUE_ZONE, p.1, p.2))?
                .0
        }
    };
    Some(QueueTruth {
        person: c.id,
        enter_ms: c.path[enter].0,
        end_ms,
        served: served.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_queue_are_served_in_order_and_some_give_up() {
        let p = QueueParams {
            customers: 40,
            ..QueueParams::default()
        };
        let s = queue_scene(&p);
        assert_eq!(s.walkers.len(), 40);
        assert_eq!(s.truth.len(), 40, "everyone walks through the lane");
        let served: Vec<&QueueTruth> = s.truth.iter().filter(|t| t.served).collect();
        assert!(served.len() >= 25 && served.len() < 40, "{}", served.len());
        // One till: service starts in arrival order and never overlap.
        assert!(served.windows(2).all(|w| w[0].end_ms < w[1].end_ms));
        let waits: Vec<i64> = served.iter().map(|t| t.end_ms - t.enter_ms).collect();
        assert!(waits.iter().any(|w| *w > 30_000), "{waits:?}");
        assert_eq!(queue_scene(&p).truth, s.truth);
        // The camera sees the lane and the till.
        let cam = &s.cameras[0];
        for (x, y) in [(0.2, 1.7), (10.0, 1.0), (10.0, 2.4), (2.0, 2.6)] {
            let (u, v, _) = cam.project([x, y, 0.0]).unwrap();
            assert!(
                u > 10.0 && u < 1270.0 && v > 10.0 && v < 710.0,
                "{x},{y}: {u},{v}"
            );
        }
    }
}
