//! Reconnect policy for one camera: the shared [`Backoff`] (exponential with a cap) with jitter
//! either side of the nominal delay.
//!
//! Input: consecutive failures (and a reset when the camera streamed). Output: how long to wait
//! before the next attempt. Pure and seeded, so its schedule is testable; the camera thread only
//! sleeps for what it says.

use crate::backoff::{Backoff, Jitter};

/// Each delay is the nominal one times a factor drawn from `1 ± JITTER`, so cameras that fail
/// together (a switch restarting) do not retry in lockstep.
pub const JITTER: f64 = 0.2;

/// Delays that start at `initial_ms`, double per consecutive failure and never exceed `max_ms`
/// (before jitter); `seed` makes the jitter differ per camera.
pub fn new(initial_ms: u64, max_ms: u64, seed: u64) -> Backoff {
    Backoff::new(initial_ms, max_ms, Jitter::Around(JITTER), seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = new(500, 8_000, 7);
        let nominal = [500u64, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
        for (i, n) in nominal.iter().enumerate() {
            let d = b.next_wait().as_millis() as f64;
            let (lo, hi) = (*n as f64 * (1.0 - JITTER), *n as f64 * (1.0 + JITTER));
            assert!(
                (lo..=hi).contains(&d),
                "attempt {i}: {d} ms not in {lo}..{hi}"
            );
        }
        assert_eq!(b.failures(), 7);
        b.reset();
        let d = b.next_wait().as_millis() as f64;
        assert!((400.0..=600.0).contains(&d), "after reset: {d} ms");
    }

    #[test]
    fn cameras_with_different_seeds_do_not_retry_in_lockstep() {
        let mut a = new(2_000, 60_000, 1);
        let mut b = new(2_000, 60_000, 2);
        let same = (0..5).filter(|_| a.next_wait() == b.next_wait()).count();
        assert!(same < 5);
    }
}
