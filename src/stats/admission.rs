//! Admission: how many frames a second each camera may send the detector, following what the
//! detector really does.
//!
//! Each camera says what it asks for ([`Seat::ask`]: its `detect_fps`, or its idle rate while it
//! sees no motion). The detector loop measures how busy its inference slots were and how many
//! frames it finished ([`Load`]) and, every [`TICK`], gives the figures to [`Stats::admit`]:
//! the [`Budget`] (frames a second the detector can do) follows them, and the budget is divided
//! among the cameras streaming by water-filling ([`fair_shares`]): a camera asking less than an
//! even share gets what it asks, the rest is shared evenly by the others. Each camera's frame
//! gate reads its share ([`Seat::allowed`]) and decodes only what that needs (see
//! [`crate::ingest::gate`]), so under overload the box spends its CPU on inference, not on
//! decoding frames that would be dropped. The state lives with the counters because both the
//! cameras and the detector read and write it (and `/metrics` and the summary show it).
//!
//! The budget's rule: while the detector's slots were busy at least [`SATURATED`] of the time,
//! the budget is what it finished (a little more, so it can be found to be more). Below that it
//! grows only while the cameras used it ([`DELIVERED`] of it reached the detector): by
//! [`GROWTH`] a tick while the slots were busy less than [`HEADROOM`], by [`PROBE`] in between,
//! so a detector fed less than it could do is found out. A budget the cameras did not use is
//! held: they could not send more (their streaming threads short of CPU), and lifting the limit
//! would only have them decode frames the detector cannot take. It is lifted altogether once
//! it covers what every camera asks for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::Stats;

/// How often the budget is revised.
pub const TICK: Duration = Duration::from_secs(2);
/// Busy fraction of the detector's slots from which it is overloaded.
pub const SATURATED: f64 = 0.95;
/// Busy fraction below which the detector could do more.
pub const HEADROOM: f64 = 0.88;
/// Growth of the budget per tick while the detector could do more.
pub const GROWTH: f64 = 1.15;
/// Growth per tick while the detector is busy between [`HEADROOM`] and [`SATURATED`].
pub const PROBE: f64 = 1.05;
/// Share of the budget that must have reached the detector for the budget to grow.
pub const DELIVERED: f64 = 0.9;
/// The budget never falls below this (frames a second for the whole box).
pub const MIN_BUDGET: f64 = 1.0;
/// What a camera with `detect_fps = 0` (every frame) is taken to ask for until its stream's
/// frame rate is measured.
pub const EVERY_FRAME_FPS: f64 = 30.0;
/// `allowed` while a camera is not limited.
const UNLIMITED: u64 = u64::MAX;

/// One camera's place in the admission: what it asks, what it is given, whether it is idle.
#[derive(Debug)]
pub struct Seat {
    asked_milli: AtomicU64,
    allowed_milli: AtomicU64,
    idle: AtomicBool,
}

impl Default for Seat {
    fn default() -> Self {
        Self {
            asked_milli: AtomicU64::new(0),
            allowed_milli: AtomicU64::new(UNLIMITED),
            idle: AtomicBool::new(false),
        }
    }
}

impl Seat {
    /// The camera asks for `fps` frames a second (0: every frame), `idle` telling whether that
    /// is its idle rate.
    pub fn ask(&self, fps: f64, idle: bool) {
        let fps = if fps <= 0.0 { EVERY_FRAME_FPS } else { fps };
        self.asked_milli
            .store((fps * 1000.0) as u64, Ordering::Relaxed);
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Frames a second asked for (0 before the camera asked).
    pub fn asked(&self) -> f64 {
        self.asked_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// The camera's share when it is limited below what it asks for; None otherwise.
    pub fn allowed(&self) -> Option<f64> {
        let a = self.allowed_milli.load(Ordering::Relaxed);
        (a != UNLIMITED).then(|| a as f64 / 1000.0)
    }

    /// Whether the camera is idle (no motion: analysed at its idle rate).
    pub fn idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    fn give(&self, share: Option<f64>) {
        let v = share.map_or(UNLIMITED, |s| (s * 1000.0) as u64);
        self.allowed_milli.store(v, Ordering::Relaxed);
    }
}

/// Frames a second the detector is taken to manage (None: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    fps: Option<f64>,
}

impl Budget {
    /// The current budget.
    pub fn fps(&self) -> Option<f64> {
        self.fps
    }

    /// Revises the budget after a window in which the cameras asked `demand` frames a second in
    /// all, the detector finished `done` a second and its slots were busy `busy` of the time.
    pub fn update(&mut self, demand: f64, done: f64, busy: f64) {
        if busy >= SATURATED {
            self.fps = Some((done * 1.02).max(MIN_BUDGET));
            return;
        }
        let Some(b) = self.fps else { return };
        let growth = if busy < HEADROOM { GROWTH } else { PROBE };
        let grown = if done >= b * DELIVERED {
            (b * growth).max(b + 1.0)
        } else {
            b
        };
        self.fps = (grown < demand).then_some(grown);
    }
}

/// Water-filling: the share of each of `asked` (frames a second) in `budget`: those asking
/// less than an even share get what they ask, the others an even share of the rest. None for a
/// camera given all it asks.
pub fn fair_shares(asked: &[f64], budget: Option<f64>) -> Vec<Option<f64>> {
    let Some(mut left) = budget else {
        return vec![None; asked.len()];
    };
    let mut order: Vec<usize> = (0..asked.len()).collect();
    order.sort_by(|&a, &b| asked[a].total_cmp(&asked[b]));
    let mut shares = vec![None; asked.len()];
    for (k, &i) in order.iter().enumerate() {
        let even = left / (asked.len() - k) as f64;
        if asked[i] <= even {
            left -= asked[i];
        } else {
            shares[i] = Some(even);
            left -= even;
        }
    }
    shares
}

/// How busy the detector's slots were: the time integral of (frames in flight / slots).
#[derive(Debug)]
pub struct Load {
    since: Instant,
    last: Instant,
    in_flight: usize,
    slots: usize,
    busy_s: f64,
}

impl Load {
    /// Starts measuring at `now` a detector with `slots` inference slots.
    pub fn new(now: Instant, slots: usize) -> Self {
        Self {
            since: now,
            last: now,
            in_flight: 0,
            slots: slots.max(1),
            busy_s: 0.0,
        }
    }

    /// From `now` on, `in_flight` frames are in flight.
    pub fn set(&mut self, now: Instant, in_flight: usize) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.busy_s += dt * self.in_flight.min(self.slots) as f64 / self.slots as f64;
        self.last = now;
        self.in_flight = in_flight;
    }

    /// When a [`TICK`] has passed: the busy fraction and the window's length, and a new window.
    pub fn take(&mut self, now: Instant) -> Option<(f64, Duration)> {
        let window = now.saturating_duration_since(self.since);
        if window < TICK {
            return None;
        }
        let in_flight = self.in_flight;
        self.set(now, in_flight);
        let busy = self.busy_s / window.as_secs_f64();
        (self.since, self.busy_s) = (now, 0.0);
        Some((busy.min(1.0), window))
    }
}

/// The admission state of the whole service (in [`Stats`]).
#[derive(Debug, Default)]
pub struct Admission {
    state: std::sync::Mutex<AdmissionState>,
}

#[derive(Debug, Default)]
struct AdmissionState {
    budget: Budget,
    /// Frames inferred in all when the window started.
    inferred: u64,
}

impl Admission {
    /// The current budget (None: no limit).
    pub fn budget(&self) -> Option<f64> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .budget
            .fps()
    }
}

impl Stats {
    /// Revises the budget from a window of `window` in which the detector's slots were busy
    /// `busy` of the time, and gives every streaming camera its share.
    pub fn admit(&self, busy: f64, window: Duration) {
        let cameras = self.all_cameras();
        let inferred: u64 = cameras
            .iter()
            .map(|c| c.inferred.load(Ordering::Relaxed))
            .sum();
        let live: Vec<_> = cameras
            .iter()
            .filter(|c| c.is_active() && c.up.load(Ordering::Relaxed) && c.seat.asked() > 0.0)
            .collect();
        let asked: Vec<f64> = live.iter().map(|c| c.seat.asked()).collect();
        let mut state = self
            .admission
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let done = inferred.saturating_sub(state.inferred) as f64 / window.as_secs_f64();
        state.inferred = inferred;
        let before = state.budget.fps();
        let demand: f64 = asked.iter().sum();
        state.budget.update(demand, done, busy);
        debug!(
            budget_fps = state.budget.fps().map(|b| format!("{b:.1}")),
            done_fps = format!("{done:.1}"),
            asked_fps = format!("{demand:.1}"),
            busy = format!("{busy:.2}"),
            "Admission tick."
        );
        match (before, state.budget.fps()) {
            (None, Some(b)) => info!(
                budget_fps = format!("{b:.1}"),
                asked_fps = format!("{demand:.1}"),
                busy = format!("{busy:.2}"),
                "Detector overloaded: cameras get their fair share."
            ),
            (Some(_), None) => info!(
                asked_fps = format!("{demand:.1}"),
                "Detector keeps up again: cameras get what they ask."
            ),
            _ => {}
        }
        let shares = fair_shares(&asked, state.budget.fps());
        drop(state);
        for (c, share) in live.iter().zip(shares) {
            c.seat.give(share);
        }
        for c in cameras.iter().filter(|c| !c.up.load(Ordering::Relaxed)) {
            c.seat.give(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_filling_gives_small_asks_in_full_and_shares_the_rest_evenly() {
        let shares = fair_shares(&[0.3, 5.0, 5.0, 0.3], Some(6.6));
        assert_eq!(shares[0], None);
        assert_eq!(shares[3], None);
        let s1 = shares[1].unwrap();
        assert!((s1 - 3.0).abs() < 1e-9, "{s1}");
        assert_eq!(shares[1], shares[2]);
        assert_eq!(fair_shares(&[5.0; 3], None), vec![None; 3]);
        assert_eq!(fair_shares(&[1.0, 2.0], Some(10.0)), vec![None, None]);
    }

    #[test]
    fn the_budget_follows_the_detector_down_and_grows_back_until_lifted() {
        let mut b = Budget::default();
        b.update(480.0, 150.0, 0.5);
        assert_eq!(b.fps(), None, "not busy: no limit");
        b.update(480.0, 150.0, 1.0);
        let at = b.fps().unwrap();
        assert!((at - 153.0).abs() < 1e-9, "{at}");
        b.update(480.0, 130.0, 0.9);
        assert_eq!(
            b.fps(),
            Some(at),
            "held between the marks when the budget went unused"
        );
        b.update(480.0, 100.0, 0.5);
        assert_eq!(
            b.fps(),
            Some(at),
            "held with headroom when the budget went unused"
        );
        b.update(480.0, 150.0, 0.9);
        let probed = b.fps().unwrap();
        assert!(
            (probed - at * PROBE).abs() < 1e-9,
            "probes between the marks: {probed}"
        );
        b.update(480.0, probed, 0.5);
        let grown = b.fps().unwrap();
        assert!(
            (grown - probed * GROWTH).abs() < 1e-9,
            "grows with headroom: {grown}"
        );
        for _ in 0..20 {
            let used = b.fps().unwrap_or(480.0);
            b.update(480.0, used, 0.5);
        }
        assert_eq!(b.fps(), None, "lifted past the demand");
        b.update(480.0, 150.0, 1.0);
        b.update(100.0, 40.0, 0.3);
        assert_eq!(
            b.fps(),
            None,
            "lifted once it covers what is asked, used or not"
        );
    }

    #[test]
    fn load_weighs_busy_time_by_slots_in_flight() {
        let t0 = Instant::now();
        let mut load = Load::new(t0, 2);
        load.set(t0, 1);
        load.set(t0 + Duration::from_secs(1), 2);
        assert_eq!(load.take(t0 + Duration::from_secs(1)), None);
        let (busy, window) = load.take(t0 + TICK).unwrap();
        assert_eq!(window, TICK);
        // 1 s at half, 1 s full.
        assert!((busy - 0.75).abs() < 1e-6, "{busy}");
    }
}
