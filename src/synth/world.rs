//! The simulated store floor: shelves, aisles, and shoppers who enter, walk the aisles, stop in
//! front of shelves, queue at the checkout and leave. Metres; x along the front, y into the store.

use std::collections::VecDeque;

use super::rng::Rng;

/// A shelf: an axis-aligned box standing on the floor.
#[derive(Debug, Clone, Copy)]
pub struct Shelf {
    /// Footprint corners.
    pub x0: f64,
    /// Footprint corners.
    pub y0: f64,
    /// Footprint corners.
    pub x1: f64,
    /// Footprint corners.
    pub y1: f64,
    /// Height.
    pub height: f64,
}

/// Store layout.
#[derive(Debug, Clone)]
pub struct Floor {
    /// Width (x), metres.
    pub width: f64,
    /// Depth (y), metres.
    pub depth: f64,
    /// Shelves.
    pub shelves: Vec<Shelf>,
    /// Centre lines of the horizontal aisles (front to back).
    pub aisles: Vec<f64>,
    /// x of the two cross aisles.
    pub cross: [f64; 2],
}

impl Floor {
    /// The standard test store: 20 m × 11 m, three shelf rows, four aisles, two cross aisles.
    pub fn standard() -> Self {
        let row = |y0: f64| Shelf {
            x0: 4.0,
            y0,
            x1: 16.0,
            y1: y0 + 0.6,
            height: 1.6,
        };
        Floor {
            width: 20.0,
            depth: 11.0,
            shelves: vec![row(2.3), row(4.8), row(7.3)],
            aisles: vec![1.3, 3.85, 6.35, 9.2],
            cross: [2.0, 18.0],
        }
    }
}

/// A plan being built, with the position it reaches so far.
struct Route {
    plan: VecDeque<Step>,
    x: f64,
    y: f64,
}

impl Route {
    fn walk(&mut self, x: f64, y: f64) {
        self.plan.push_back(Step::Walk(x, y));
        (self.x, self.y) = (x, y);
    }

    /// Moves into the aisle at `aisle` (if not already there) through the cross aisle with the
    /// shorter way round towards `next_x`.
    fn change_aisle(&mut self, f: &Floor, aisle: f64, next_x: f64, lane: f64) {
        if (self.y - aisle).abs() <= 0.5 {
            return;
        }
        let via = |c: f64| (self.x - c).abs() + (next_x - c).abs();
        let cx = if via(f.cross[0]) <= via(f.cross[1]) {
            f.cross[0]
        } else {
            f.cross[1]
        } + lane;
        self.walk(cx, self.y);
        self.walk(cx, aisle);
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Walk(f64, f64),
    Dwell(f64),
}

/// One shopper.
#[derive(Debug, Clone)]
pub struct Person {
    /// Ground-truth identity.
    pub id: u32,
    /// Floor position.
    pub x: f64,
    /// Floor position.
    pub y: f64,
    /// Body height, metres.
    pub height: f64,
    speed: f64,
    plan: VecDeque<Step>,
}

impl Person {
    /// True once the plan is done (the person left through the exit).
    pub fn gone(&self) -> bool {
        self.plan.is_empty()
    }

    fn advance(&mut self, dt: f64, rng: &mut Rng) {
        let mut left = dt;
        while left > 1e-9 {
            match self.plan.front_mut() {
                None => return,
                Some(Step::Dwell(t)) => {
                    // Standing shoppers sway a little.
                    self.x += rng.normal(0.01);
                    self.y += rng.normal(0.01);
                    if *t > left {
                        *t -= left;
                        return;
                    }
                    left -= *t;
                    self.plan.pop_front();
                }
                Some(Step::Walk(tx, ty)) => {
                    let (dx, dy) = (*tx - self.x, *ty - self.y);
                    let dist = (dx * dx + dy * dy).sqrt();
                    let reach = self.speed * left;
                    if dist <= reach {
                        self.x = *tx;
                        self.y = *ty;
                        left -= dist / self.speed;
                        self.plan.pop_front();
                    } else {
                        self.x += dx / dist * reach;
                        self.y += dy / dist * reach;
                        return;
                    }
                }
            }
        }
    }
}

/// The shoppers over time.
#[derive(Debug)]
pub struct Crowd {
    floor: Floor,
    /// People in the store now.
    pub people: Vec<Person>,
    next_id: u32,
    next_arrival: f64,
    mean_gap_s: f64,
}

impl Crowd {
    /// An empty store with arrivals every `mean_gap_s` seconds on average.
    pub fn new(floor: Floor, mean_gap_s: f64) -> Self {
        Self {
            floor,
            people: Vec::new(),
            next_id: 1,
            next_arrival: 0.0,
            mean_gap_s,
        }
    }

    /// Advances time from `t` by `dt` seconds.
    pub fn step(&mut self, t: f64, dt: f64, rng: &mut Rng) {
        while self.next_arrival <= t + dt {
            let p = self.arrive(rng);
            self.people.push(p);
            self.next_arrival += -self.mean_gap_s * rng.f64().max(1e-9).ln();
        }
        for p in &mut self.people {
            p.advance(dt, rng);
        }
        self.people.retain(|p| !p.gone());
    }

    fn arrive(&mut self, rng: &mut Rng) -> Person {
        let f = &self.floor;
        let lane = rng.range(-0.35, 0.35);
        let front = f.aisles[0] + lane;
        let mut route = Route {
            plan: VecDeque::new(),
            x: 0.3,
            y: front,
        };
        let visits = 1 + rng.below(3);
        for _ in 0..visits {
            let aisle = f.aisles[rng.below(f.aisles.len())] + lane;
            let tx = rng.range(4.5, 15.5);
            route.change_aisle(f, aisle, tx, lane);
            route.walk(tx, aisle);
            route.plan.push_back(Step::Dwell(rng.range(1.0, 8.0)));
        }
        // Checkout at the front, then out through the far end of the front aisle.
        route.change_aisle(f, front, 10.0, lane);
        route.walk(10.0 + lane, 0.8);
        route.plan.push_back(Step::Dwell(rng.range(2.0, 5.0)));
        route.walk(f.width - 0.3, front);
        let plan = route.plan;
        let id = self.next_id;
        self.next_id += 1;
        Person {
            id,
            x: 0.3,
            y: front,
            height: rng.range(1.55, 1.9),
            speed: rng.range(0.7, 1.4),
            plan,
        }
    }
}
