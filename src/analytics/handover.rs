//! Hand-over between trajectories: when a tracker loses a person and picks them up again under
//! a new id (an ID switch), the new trajectory takes over what the old one was in the middle of
//! — which side of a counting line it came from, when its wait in a queue began — instead of
//! starting from nothing (a missed count, a wait cut in two, a false abandonment).
//!
//! Input: where and when a new trajectory was first seen, and where and when the candidates
//! were last seen. Output: the candidate that is most likely the same person.

/// Default longest gap between a trajectory vanishing and another taking over.
pub const DEFAULT_HANDOVER_MS: i64 = 4_000;
/// Default farthest distance between where one vanished and the other appeared, metres.
pub const DEFAULT_HANDOVER_M: f64 = 1.5;

/// Serde default of `handover_ms` (lines, queues).
pub(super) fn default_handover_ms() -> i64 {
    DEFAULT_HANDOVER_MS
}

/// Serde default of `handover_m` (lines, queues).
pub(super) fn default_handover_m() -> f64 {
    DEFAULT_HANDOVER_M
}

/// A candidate must have been seen last no later than this after the new trajectory's first
/// position: one detection makes one track, so a trajectory still seen after another appeared
/// is someone else (two people passing, a newcomer beside one about to be lost). Zero; named
/// so the gate is visible where it is used.
pub const OVERLAP_MS: i64 = 0;

/// A position at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// Time, Unix ms.
    pub ts_ms: i64,
    /// Position (floor metres, or image pixels for a camera's line).
    pub pos: (f64, f64),
}

/// The hand-over gates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Handover {
    /// Longest time between the old trajectory's last position and the new one's first.
    pub window_ms: i64,
    /// Farthest distance between them (same units as the positions).
    pub distance: f64,
}

impl Handover {
    /// The candidate (key, last seen) that most likely continues as the trajectory first seen
    /// at `first`: last seen at most `window_ms` before it (and at most [`OVERLAP_MS`] after),
    /// within `distance`; the nearest wins, ties go to the lower key (deterministic).
    pub fn pick<K: Copy + Ord>(
        &self,
        first: Seen,
        candidates: impl IntoIterator<Item = (K, Seen)>,
    ) -> Option<K> {
        candidates
            .into_iter()
            .map(|(k, s)| (first.ts_ms - s.ts_ms, dist(first.pos, s.pos), k))
            .filter(|(gap, d, _)| {
                (-OVERLAP_MS..=self.window_ms).contains(gap) && *d <= self.distance
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)))
            .map(|(_, _, k)| k)
    }
}

/// Euclidean distance.
pub fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_recent_candidate_wins_and_simultaneous_ones_do_not() {
        let h = Handover {
            window_ms: 4_000,
            distance: 1.5,
        };
        let at = |ts_ms, x| Seen {
            ts_ms,
            pos: (x, 0.0),
        };
        let first = at(10_000, 0.0);
        // 1: near and recent; 2: nearer but seen after (someone else); 3: too old; 4: too
        // far; 5: as near as 1, higher key; 6: nearest, seen at the same moment.
        let c = [
            (1u64, at(9_000, 0.5)),
            (2, at(11_000, 0.1)),
            (3, at(5_000, 0.0)),
            (4, at(9_900, 2.0)),
            (5, at(9_500, -0.5)),
            (6, at(10_000, 0.2)),
        ];
        assert_eq!(h.pick(first, c[..5].iter().copied()), Some(1));
        assert_eq!(h.pick(first, [(2u64, at(10_001, 0.1))]), None);
        assert_eq!(h.pick(first, c[2..4].iter().copied()), None);
        assert_eq!(h.pick(first, c), Some(6));
    }
}
