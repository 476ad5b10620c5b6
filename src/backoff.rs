//! Waits between retries: exponential from an initial wait, doubling per consecutive failure up
//! to a cap, each wait moved by seeded jitter so that many cameras, sinks or boxes failing
//! together (a switch restarting, a broker's outage) do not retry in step.
//!
//! Input: the initial wait and the cap, the [`Jitter`] (each caller chooses its own: camera
//! reconnects in `ingest::backoff`, event delivery in `events::backoff`) and a seed. Output: the
//! next wait. Pure and seeded, so a schedule is testable; the caller only sleeps for what it says.

use std::time::Duration;

use crate::rng::Rng;

/// How a wait is drawn around its nominal value (`initial × 2^(failures − 1)`, capped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// `nominal × (1 − share … 1)`: never longer than the nominal wait.
    Below(f64),
    /// `nominal × (1 ± share)`.
    Around(f64),
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    jitter: Jitter,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// Starts at `initial_ms`, doubles per consecutive failure, never exceeds `max_ms` (before
    /// jitter; a cap below `initial_ms` is raised to it); `seed` seeds the jitter.
    pub fn new(initial_ms: u64, max_ms: u64, jitter: Jitter, seed: u64) -> Self {
        Self {
            initial_ms,
            max_ms: max_ms.max(initial_ms),
            jitter,
            failures: 0,
            rng: Rng::new(seed),
        }
    }

    /// Records one more consecutive failure and returns the wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let nominal = self
            .initial_ms
            .saturating_mul(1u64 << self.failures.min(32))
            .min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let factor = match self.jitter {
            Jitter::Below(share) => 1.0 - share * self.rng.f64(),
            Jitter::Around(share) => self.rng.range(1.0 - share, 1.0 + share),
        };
        Duration::from_millis((nominal as f64 * factor).round() as u64)
    }

    /// Consecutive failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure waits the initial wait again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nominal_wait_doubles_from_the_initial_one_up_to_the_cap() {
        let mut b = Backoff::new(100, 350, Jitter::Around(0.0), 1);
        let waits: Vec<u128> = (0..4).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
        assert_eq!(b.failures(), 4);
        assert_eq!(
            Backoff::new(300, 10, Jitter::Below(0.0), 1)
                .next_wait()
                .as_millis(),
            300
        );
    }
}
