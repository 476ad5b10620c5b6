//! Which endpoint gets the next request: least outstanding requests among the endpoints that are
//! up and below their in-flight limit. An endpoint whose request fails or times out is taken out
//! and probed again after a backoff that doubles up to a cap (with jitter, so a fleet of boxes
//! does not probe a recovering server in lockstep: each endpoint draws its jitter from its own
//! generator, seeded per box — host, machine id, process, start time — and per endpoint).
//!
//! Pure bookkeeping: time and the seed are inputs, nothing here touches the network.

use std::time::{Duration, Instant};

use crate::rng::{self, Rng};

/// First wait before probing an endpoint that went down.
pub const PROBE_BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest wait between probes of an endpoint that stays down.
pub const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Health of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Takes requests.
    Up,
    /// Taken out; probed at `next_probe` (unless a probe is already running).
    Down {
        /// When to probe next.
        next_probe: Instant,
        /// The wait that led to `next_probe` (doubled on the next failure).
        backoff: Duration,
        /// A probe is running.
        probing: bool,
    },
}

#[derive(Debug, Clone)]
struct Slot {
    health: Health,
    outstanding: usize,
    /// This endpoint's probe jitter.
    jitter: Rng,
}

/// The endpoints' health and outstanding requests.
#[derive(Debug, Clone)]
pub struct Fleet {
    slots: Vec<Slot>,
    in_flight: usize,
}

/// What a state change means for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing changed state.
    None,
    /// This endpoint went from up to down.
    WentDown,
    /// This endpoint came back.
    CameBack,
}

impl Fleet {
    /// `endpoints` endpoints, all up, at most `in_flight` requests each; probe jitter seeded
    /// for this box ([`rng::box_seed`]).
    pub fn new(endpoints: usize, in_flight: usize) -> Self {
        Self::with_seed(endpoints, in_flight, rng::box_seed())
    }

    /// [`Fleet::new`] with a given box seed: endpoint `i` draws its jitter from
    /// `mix(seed, i)`.
    pub fn with_seed(endpoints: usize, in_flight: usize, seed: u64) -> Self {
        Self {
            slots: (0..endpoints)
                .map(|i| Slot {
                    health: Health::Up,
                    outstanding: 0,
                    jitter: Rng::new(rng::mix(seed, i as u64)),
                })
                .collect(),
            in_flight: in_flight.max(1),
        }
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Health of endpoint `i`.
    pub fn health(&self, i: usize) -> Health {
        self.slots[i].health
    }

    /// Endpoints that are up.
    pub fn up(&self) -> usize {
        self.slots.iter().filter(|s| s.health == Health::Up).count()
    }

    /// Requests outstanding on all endpoints.
    pub fn outstanding(&self) -> usize {
        self.slots.iter().map(|s| s.outstanding).sum()
    }

    /// The up endpoint with the fewest outstanding requests and room for one more (lowest
    /// index on ties), or None.
    pub fn pick(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.health == Health::Up && s.outstanding < self.in_flight)
            .min_by_key(|(i, s)| (s.outstanding, *i))
            .map(|(i, _)| i)
    }

    /// A request was sent to `i`.
    pub fn sent(&mut self, i: usize) {
        self.slots[i].outstanding += 1;
    }

    /// A request to `i` finished (either way); `ok` false takes the endpoint out.
    pub fn finished(&mut self, i: usize, ok: bool, now: Instant) -> Change {
        let s = &mut self.slots[i];
        s.outstanding = s.outstanding.saturating_sub(1);
        if ok {
            return Change::None;
        }
        self.failed(i, now)
    }

    /// Takes `i` out after a failed request; the first probe follows after
    /// [`PROBE_BACKOFF_MIN`]. A failure reported for an endpoint that is already out (a late
    /// answer to an old request) changes nothing.
    pub fn failed(&mut self, i: usize, now: Instant) -> Change {
        if self.slots[i].health != Health::Up {
            return Change::None;
        }
        self.schedule(i, PROBE_BACKOFF_MIN, now);
        Change::WentDown
    }

    /// A probe of `i` failed: the next one waits twice as long, up to [`PROBE_BACKOFF_MAX`].
    pub fn probe_failed(&mut self, i: usize, now: Instant) {
        if let Health::Down { backoff, .. } = self.slots[i].health {
            self.schedule(i, (backoff * 2).min(PROBE_BACKOFF_MAX), now);
        }
    }

    fn schedule(&mut self, i: usize, backoff: Duration, now: Instant) {
        let next_probe = now + jittered(&mut self.slots[i].jitter, backoff);
        self.slots[i].health = Health::Down {
            next_probe,
            backoff,
            probing: false,
        };
    }

    /// Endpoints whose probe is due at `now`; each is marked as probing.
    pub fn due_probes(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Health::Down {
                next_probe,
                probing: probing @ false,
                ..
            } = &mut s.health
                && *next_probe <= now
            {
                *probing = true;
                due.push(i);
            }
        }
        due
    }

    /// A probe of `i` succeeded: it takes requests again.
    pub fn probe_ok(&mut self, i: usize) -> Change {
        if self.slots[i].health == Health::Up {
            return Change::None;
        }
        self.slots[i].health = Health::Up;
        Change::CameBack
    }
}

/// `d` ±20 %, drawn from `rng`.
fn jittered(rng: &mut Rng, d: Duration) -> Duration {
    let permille = 800 + rng.next_u64() % 401;
    d * permille as u32 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_the_least_outstanding_endpoint_within_its_limit() {
        let mut f = Fleet::new(3, 2);
        let mut order = Vec::new();
        while let Some(i) = f.pick() {
            f.sent(i);
            order.push(i);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        let now = Instant::now();
        f.finished(1, true, now);
        f.finished(1, true, now);
        f.finished(2, true, now);
        // Endpoint 1 has 0 outstanding, 2 has 1: the next two requests go to 1 then 1 or 2.
        assert_eq!(f.pick(), Some(1));
        f.sent(1);
        assert_eq!(f.pick(), Some(1), "tie 1 vs 1 goes to the lower index");
        assert_eq!(f.outstanding(), 4);
    }

    #[test]
    fn failed_endpoint_is_skipped_and_probed_with_doubling_capped_backoff() {
        let t0 = Instant::now();
        let mut f = Fleet::new(2, 4);
        f.sent(0);
        assert_eq!(f.finished(0, false, t0), Change::WentDown);
        assert_eq!(f.up(), 1);
        for _ in 0..3 {
            let i = f.pick().unwrap();
            assert_eq!(i, 1);
            f.sent(i);
        }
        // A second failure of an old request does not push the probe further out.
        assert_eq!(f.failed(0, t0), Change::None);
        assert!(f.due_probes(t0).is_empty());
        let mut t = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let Health::Down { next_probe, .. } = f.health(0) else {
                panic!("endpoint 0 should be down")
            };
            waits.push(next_probe - t);
            t = next_probe;
            assert_eq!(f.due_probes(t), [0]);
            assert!(
                f.due_probes(t).is_empty(),
                "a running probe is not started twice"
            );
            assert_eq!(
                f.failed(0, t),
                Change::None,
                "late request failure while probing"
            );
            assert!(f.due_probes(t).is_empty(), "still only one probe");
            f.probe_failed(0, t);
        }
        assert!(waits[0] >= PROBE_BACKOFF_MIN * 8 / 10 && waits[0] <= PROBE_BACKOFF_MIN * 12 / 10);
        assert!(waits[3] > waits[0] * 5, "{waits:?}");
        assert!(
            waits.iter().all(|w| *w <= PROBE_BACKOFF_MAX * 12 / 10),
            "{waits:?}"
        );
        assert_eq!(f.due_probes(t + PROBE_BACKOFF_MAX * 2), [0]);
        assert_eq!(f.probe_ok(0), Change::CameBack);
        assert_eq!(f.up(), 2);
        assert_eq!(f.pick(), Some(0));
    }

    /// The probe waits of endpoint `i` over `n` failed probes.
    fn probe_waits(f: &mut Fleet, i: usize, n: usize) -> Vec<Duration> {
        let mut t = Instant::now();
        f.failed(i, t);
        let mut waits = Vec::new();
        for _ in 0..n {
            let Health::Down { next_probe, .. } = f.health(i) else {
                panic!("endpoint {i} should be down")
            };
            waits.push(next_probe - t);
            t = next_probe;
            f.probe_failed(i, t);
        }
        waits
    }

    #[test]
    fn boxes_and_endpoints_probe_a_recovering_server_at_different_times() {
        // Two boxes (different host names) sharing one server: different probe schedules.
        let box_a = rng::box_seed_from("till-1", "machine-a", 4242, 1_000);
        let box_b = rng::box_seed_from("till-2", "machine-b", 4242, 1_000);
        let a = probe_waits(&mut Fleet::with_seed(2, 1, box_a), 0, 8);
        let b = probe_waits(&mut Fleet::with_seed(2, 1, box_b), 0, 8);
        assert_ne!(a, b, "two boxes probe in lockstep: {a:?}");
        // Two endpoints of one box that went down together are not probed in lockstep either.
        let mut f = Fleet::with_seed(2, 1, box_a);
        let e0 = probe_waits(&mut f, 0, 8);
        let e1 = probe_waits(&mut f, 1, 8);
        assert_ne!(e0, e1, "two endpoints probe in lockstep: {e0:?}");
        // The seed decides it all: the same box seed gives the same schedule.
        assert_eq!(a, probe_waits(&mut Fleet::with_seed(2, 1, box_a), 0, 8));
        // Boxes seeded by `Fleet::new` (box seed from the time too) differ run to run.
        let n1 = probe_waits(&mut Fleet::new(1, 1), 0, 8);
        std::thread::sleep(Duration::from_millis(2));
        let n2 = probe_waits(&mut Fleet::new(1, 1), 0, 8);
        assert_ne!(n1, n2);
    }

    #[test]
    fn all_down_means_no_pick() {
        let t0 = Instant::now();
        let mut f = Fleet::new(2, 1);
        f.failed(0, t0);
        f.failed(1, t0);
        assert_eq!((f.up(), f.pick()), (0, None));
    }
}
