//! Waits between delivery attempts: the shared [`Backoff`], exponential from `initial` to `max`,
//! with jitter below the base so that many boxes (or sinks) coming back from the same outage do
//! not retry in step.
//!
//! Input: the retry settings and a seed (this box's host name and the sink's name, so two
//! boxes draw different waits and a rerun draws the same). Output: the backoff.

use sha2::{Digest, Sha256};

use crate::backoff::{Backoff, Jitter};

/// Share of each wait drawn at random: a wait is `base × (1 − JITTER … 1)`.
const JITTER: f64 = 0.5;

/// Backoff from `initial_ms` (at least 1 ms, so no wait is zero) doubling up to `max_ms`, its
/// jitter seeded by `seed`.
pub fn new(initial_ms: u64, max_ms: u64, seed: &str) -> Backoff {
    let digest = Sha256::digest(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Backoff::new(
        initial_ms.max(1),
        max_ms,
        Jitter::Below(JITTER),
        u64::from_le_bytes(first),
    )
}

/// The seed of a sink's backoff on this box.
pub fn seed(sink: &str) -> String {
    format!("{}|{sink}", crate::host::name().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter_below_the_base() {
        let mut b = new(100, 1_000, "box|mqtt");
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
            let mut b = new(10_000, 10_000, s);
            (0..4).map(|_| b.next_wait()).collect::<Vec<_>>()
        };
        assert_eq!(draw("a|mqtt"), draw("a|mqtt"));
        assert_ne!(draw("a|mqtt"), draw("b|mqtt"));
    }

    #[test]
    fn no_wait_is_zero_even_with_a_zero_setting() {
        let mut b = new(0, 0, "box|webhook");
        assert!((0..3).all(|_| b.next_wait().as_millis() >= 1));
    }
}
