//! Occupancy now: people per zone and in the whole store.
//!
//! Input: store trajectories' positions and ends, zone enters and leaves, crossings of door
//! lines (lines with `door = true`, whose `in` enters the store), and time. Output: the
//! [`StoreOccupancy`] now and per-zone counts.
//!
//! A zone holds the people whose visit to it has begun (lasted `min_dwell_ms`) and not ended —
//! exactly the zone enter events minus the leave events. The store-wide figure has two
//! sources: *tracked*, the store trajectories seen in the last `present_ms` (a count of what
//! the cameras see: low where they do not cover the floor, high when one person is split into
//! two trajectories), and *counted*, door `in`s minus `out`s since the last anchor, clamped at
//! 0 at every crossing (it drifts with every missed or extra crossing, but covers the whole
//! store). With door lines the estimate is `max(counted, tracked)` — there are never fewer
//! people than the cameras see at once — and `counted` re-anchors to 0 when nobody has been
//! tracked for `empty_reset_ms` (the store is seen empty: closing time when cameras cover the
//! floor; set 0 to turn this off where they do not). Without door lines it is `tracked`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lines::Direction;

/// Default time since a store trajectory's last position during which it counts as present.
pub const DEFAULT_PRESENT_MS: i64 = 2_000;
/// Default time nobody must be tracked before the door count re-anchors to 0.
pub const DEFAULT_EMPTY_RESET_MS: i64 = 300_000;

/// `[occupancy]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OccupancySettings {
    /// A trajectory seen this recently is present, ms.
    pub present_ms: i64,
    /// Nobody tracked this long re-anchors the door count to 0, ms (0: never).
    pub empty_reset_ms: i64,
}

impl Default for OccupancySettings {
    fn default() -> Self {
        Self {
            present_ms: DEFAULT_PRESENT_MS,
            empty_reset_ms: DEFAULT_EMPTY_RESET_MS,
        }
    }
}

impl OccupancySettings {
    /// Every problem.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(100..=600_000).contains(&self.present_ms) {
            p.push("occupancy.present_ms must be from 100 to 600000".into());
        }
        if !(0..=86_400_000).contains(&self.empty_reset_ms) {
            p.push("occupancy.empty_reset_ms must be from 0 to 86400000".into());
        }
        p
    }
}

/// The store-wide occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreOccupancy {
    /// The best figure: `max(counted, tracked)` with door lines, else `tracked`.
    pub estimate: u32,
    /// Store trajectories seen in the last `present_ms`.
    pub tracked: u32,
    /// Door ins minus outs since the last anchor (absent without door lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub counted: Option<u32>,
}

/// Occupancy bookkeeping. Every change of the store-wide figure comes with the exact time it
/// happened (a trajectory's first position, `present_ms` after its last one, a door crossing),
/// so rules on it do not depend on how often time is advanced.
#[derive(Debug, Clone)]
pub struct Occupancy {
    s: OccupancySettings,
    doors: bool,
    counted: u32,
    /// Last position time of each present trajectory.
    present: BTreeMap<u64, i64>,
    /// (time it stops being present, trajectory).
    expiry: BTreeSet<(i64, u64)>,
    empty_since: Option<i64>,
    reported: StoreOccupancy,
    zones: BTreeMap<Arc<str>, u32>,
}

/// A change of the store-wide figure at a time (Unix ms).
pub type StoreChange = (i64, StoreOccupancy);

impl Occupancy {
    /// Empty store; `doors`: some line corrects the count.
    pub fn new(s: OccupancySettings, doors: bool) -> Self {
        Self {
            s,
            doors,
            counted: 0,
            present: BTreeMap::new(),
            expiry: BTreeSet::new(),
            empty_since: None,
            reported: StoreOccupancy {
                estimate: 0,
                tracked: 0,
                counted: doors.then_some(0),
            },
            zones: BTreeMap::new(),
        }
    }

    /// Store trajectory `key` was at some position at `ts_ms`.
    pub fn seen(&mut self, key: u64, ts_ms: i64, out: &mut Vec<StoreChange>) {
        self.advance(ts_ms, out);
        let last = self.present.entry(key).or_insert(ts_ms);
        self.expiry
            .remove(&(last.saturating_add(self.s.present_ms), key));
        *last = (*last).max(ts_ms);
        self.expiry
            .insert((last.saturating_add(self.s.present_ms), key));
        self.empty_since = None;
        self.report(ts_ms, out);
    }

    /// A door line was crossed at `ts_ms`.
    pub fn door(&mut self, direction: Direction, ts_ms: i64, out: &mut Vec<StoreChange>) {
        self.counted = match direction {
            Direction::In => self.counted.saturating_add(1),
            Direction::Out => self.counted.saturating_sub(1),
        };
        self.report(ts_ms, out);
    }

    /// Someone's visit to `zone` began (`+1`) or ended (`-1`); returns the zone's count.
    pub fn zone(&mut self, zone: &Arc<str>, delta: i32) -> u32 {
        let n = self.zones.entry(Arc::clone(zone)).or_default();
        *n = n.saturating_add_signed(delta);
        *n
    }

    /// Zone `zone` is no longer defined (a reload removed it): it leaves the per-zone counts.
    pub fn forget_zone(&mut self, zone: &str) {
        self.zones.remove(zone);
    }

    /// New settings (a reload changed `[occupancy]` or which lines are doors): the store count
    /// starts afresh, the per-zone counts (which follow the zone visits) stay.
    pub fn reconfigure(&mut self, s: OccupancySettings, doors: bool) {
        let zones = std::mem::take(&mut self.zones);
        *self = Self::new(s, doors);
        self.zones = zones;
    }

    /// The settings in force and whether door lines correct the count.
    pub fn settings(&self) -> (&OccupancySettings, bool) {
        (&self.s, self.doors)
    }

    /// Per-zone counts (zones ever entered).
    pub fn zones(&self) -> impl Iterator<Item = (&Arc<str>, u32)> {
        self.zones.iter().map(|(z, n)| (z, *n))
    }

    /// Moves time to `now_ms`: trajectories not seen for `present_ms` stop counting, an empty
    /// store re-anchors the door count.
    pub fn advance(&mut self, now_ms: i64, out: &mut Vec<StoreChange>) {
        while let Some(&(at, key)) = self.expiry.first()
            && at < now_ms
        {
            self.expiry.pop_first();
            self.present.remove(&key);
            if self.present.is_empty() {
                self.empty_since = Some(at);
            }
            self.report(at, out);
        }
        if let Some(since) = self.empty_since
            && self.s.empty_reset_ms > 0
            && since.saturating_add(self.s.empty_reset_ms) <= now_ms
            && self.counted > 0
        {
            self.counted = 0;
            self.report(since + self.s.empty_reset_ms, out);
        }
    }

    /// The store-wide figure now.
    pub fn store(&self) -> StoreOccupancy {
        let tracked = self.present.len() as u32;
        StoreOccupancy {
            estimate: if self.doors {
                self.counted.max(tracked)
            } else {
                tracked
            },
            tracked,
            counted: self.doors.then_some(self.counted),
        }
    }

    fn report(&mut self, ts_ms: i64, out: &mut Vec<StoreChange>) {
        let now = self.store();
        if now != self.reported {
            self.reported = now;
            out.push((ts_ms, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn door_count_clamps_at_zero_and_reanchors_when_the_store_is_seen_empty() {
        let s = OccupancySettings {
            present_ms: 1_000,
            empty_reset_ms: 10_000,
        };
        let mut o = Occupancy::new(s, true);
        let mut ch = Vec::new();
        o.door(Direction::Out, 0, &mut ch); // counted out, never counted in
        o.door(Direction::In, 10, &mut ch);
        o.door(Direction::In, 20, &mut ch);
        o.door(Direction::In, 30, &mut ch);
        o.seen(7, 100, &mut ch);
        o.seen(7, 500, &mut ch);
        let got = o.store();
        assert_eq!((got.estimate, got.tracked, got.counted), (3, 1, Some(3)));
        // A missed out leaves 1 counted; nobody seen from 1.5 s: re-anchored at 11.5 s.
        o.door(Direction::Out, 600, &mut ch);
        o.door(Direction::Out, 700, &mut ch);
        o.advance(11_499, &mut ch);
        assert_eq!(o.store().counted, Some(1));
        o.advance(20_000, &mut ch);
        assert_eq!(o.store().estimate, 0);
        let mut times: Vec<(i64, u32)> = ch.iter().map(|(t, s)| (*t, s.estimate)).collect();
        times.dedup_by_key(|c| c.1); // (changes of `tracked` alone are reported too)
        assert_eq!(
            times,
            [(10, 1), (20, 2), (30, 3), (600, 2), (700, 1), (11_500, 0)],
            "the estimate and the exact time of each change"
        );
        // More people tracked than counted: the estimate is what is seen.
        for k in 1..=4 {
            o.seen(k, 30_000, &mut ch);
        }
        o.door(Direction::In, 30_100, &mut ch);
        assert_eq!(o.store().estimate, 4);
        assert_eq!(o.store().counted, Some(1));
    }

    #[test]
    fn without_doors_the_estimate_is_what_is_tracked_and_zones_count_visits() {
        let mut o = Occupancy::new(OccupancySettings::default(), false);
        let mut ch = Vec::new();
        o.seen(3, -5_000, &mut ch);
        o.seen(1, 0, &mut ch); // 3 has not been seen for 5 s: gone at -3 s
        o.seen(2, 0, &mut ch);
        assert_eq!(
            o.store(),
            StoreOccupancy {
                estimate: 2,
                tracked: 2,
                counted: None
            }
        );
        let est: Vec<(i64, u32)> = ch.iter().map(|(t, s)| (*t, s.estimate)).collect();
        assert_eq!(est, [(-5_000, 1), (-3_000, 0), (0, 1), (0, 2)]);
        let z: Arc<str> = Arc::from("till");
        assert_eq!(o.zone(&z, 1), 1);
        assert_eq!(o.zone(&z, 1), 2);
        assert_eq!(o.zone(&z, -1), 1);
        assert_eq!(o.zones().collect::<Vec<_>>(), vec![(&z, 1)]);
    }
}
