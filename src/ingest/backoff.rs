//! Reconnect policy for one camera: exponential backoff with jitter and a cap.
//!
//! Input: consecutive failures (and a reset when the camera streamed). Output: how long to wait
//! before the next attempt. Pure and seeded, so its schedule is testable; the camera thread only
//! sleeps for what it says.

use std::time::Duration;

use crate::rng::Rng;

/// Each delay is the nominal one times a factor drawn from `1 ± JITTER`, so cameras that fail
/// together (a switch restarting) do not retry in lockstep.
pub const JITTER: f64 = 0.2;

/// Delays before reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// Starts at `initial_ms`, doubles per consecutive failure, never exceeds `max_ms` (before
    /// jitter); `seed` makes the jitter differ per camera.
    pub fn new(initial_ms: u64, max_ms: u64, seed: u64) -> Self {
        Self {
            initial_ms,
            max_ms: max_ms.max(initial_ms),
            failures: 0,
            rng: Rng::new(seed),
        }
    }

    /// Records a failure and returns the wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(32);
        let nominal = self
            .initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms);
        let factor = self.rng.range(1.0 - JITTER, 1.0 + JITTER);
        Duration::from_millis((nominal as f64 * factor).round() as u64)
    }

    /// Consecutive failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The camera streamed: the next failure starts again from the initial delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(500, 8_000, 7);
        let nominal = [500u64, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
        for (i, n) in nominal.iter().enumerate() {
            let d = b.next_delay().as_millis() as f64;
            let (lo, hi) = (*n as f64 * (1.0 - JITTER), *n as f64 * (1.0 + JITTER));
            assert!(
                (lo..=hi).contains(&d),
                "attempt {i}: {d} ms not in {lo}..{hi}"
            );
        }
        assert_eq!(b.failures(), 7);
        b.reset();
        let d = b.next_delay().as_millis() as f64;
        assert!((400.0..=600.0).contains(&d), "after reset: {d} ms");
    }

    #[test]
    fn cameras_with_different_seeds_do_not_retry_in_lockstep() {
        let mut a = Backoff::new(2_000, 60_000, 1);
        let mut b = Backoff::new(2_000, 60_000, 2);
        let same = (0..5).filter(|_| a.next_delay() == b.next_delay()).count();
        assert!(same < 5);
    }
}
