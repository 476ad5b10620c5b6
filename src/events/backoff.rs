//! Waits between delivery attempts: exponential from `initial` to `max`, with jitter so that
//! many boxes (or sinks) coming back from the same outage do not retry in step.
//!
//! Input: the retry settings and a seed (this box's host name and the sink's name, so two
//! boxes draw different waits and a rerun draws the same). Output: the next wait.

use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::rng::Rng;

/// Share of each wait drawn at random: a wait is `base × (1 − JITTER … 1)`.
const JITTER: f64 = 0.5;

/// Exponential backoff with jitter.
#[derive(Debug)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// Backoff from `initial_ms` doubling up to `max_ms`, its jitter seeded by `seed`.
    pub fn new(initial_ms: u64, max_ms: u64, seed: &str) -> Self {
        let digest = Sha256::digest(seed.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self {
            initial_ms: initial_ms.max(1),
            max_ms: max_ms.max(initial_ms.max(1)),
            failures: 0,
            rng: Rng::new(u64::from_le_bytes(first)),
        }
    }

    /// The wait after one more consecutive failure.
    pub fn next_wait(&mut self) -> Duration {
        let doubled = self
            .initial_ms
            .saturating_mul(1u64 << self.failures.min(32))
            .min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let f = 1.0 - JITTER * self.rng.f64();
        Duration::from_millis(((doubled as f64) * f).round().max(1.0) as u64)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The seed of a sink's backoff on this box.
pub fn seed(sink: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}|{sink}", host.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter_below_the_base() {
        let mut b = Backoff::new(100, 1_000, "box|mqtt");
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_millis() as u64).collect();
        for (i, w) in waits.iter().enumerate() {
            let base = (100u64 << i).min(1_000);
            assert!(
                *w <= base && *w >= base / 2,
                "{i}: {w} vs {base} ({waits:?})"
            );
        }
        b.reset();
        assert!(b.next_wait().as_millis() <= 100);
    }

    #[test]
    fn seeds_draw_different_waits_and_a_seed_the_same() {
        let draw = |s: &str| {
            let mut b = Backoff::new(10_000, 10_000, s);
            (0..4).map(|_| b.next_wait()).collect::<Vec<_>>()
        };
        assert_eq!(draw("a|mqtt"), draw("a|mqtt"));
        assert_ne!(draw("a|mqtt"), draw("b|mqtt"));
    }
}
