//! Store-wide trajectories: camera tracks whose floor positions agree are one person.
//!
//! Input: floor positions of camera tracks (camera, track id, capture time) and track ends, in
//! roughly time order across cameras. Output: [`Event`]s — which store trajectory each camera
//! track belongs to, the store trajectory's positions fused over `bin_ms` bins, zone visits,
//! and the end of each store trajectory.
//!
//! A new camera track is watched for `join_window_ms`. It joins the store trajectory whose
//! positions on *other* cameras stay within `join_distance_m` of its own (median over the
//! simultaneous positions), or — when no camera saw the person at the same time — the one that
//! was lost on another camera at most `handoff_gap_ms` before, close enough to walk. Otherwise
//! it starts a store trajectory of its own. Positions are released `join_window_ms + SETTLE_MS`
//! after they were taken, so a late join still lands in bins that were not written yet.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::AnalyticsParams;
use super::zones::{Visit, Zone, ZoneTracker};

/// Extra delay beyond the join window before positions are released: cameras' frames reach
/// the tracker at slightly different times.
pub const SETTLE_MS: i64 = 1_000;
/// Neighbouring positions further apart than this are not interpolated between.
const MAX_INTERP_GAP_MS: i64 = 600;
/// A position this close in time stands for the time asked when it cannot be interpolated.
const NEAREST_MS: i64 = 150;

/// A camera track: camera id and the tracker's id.
pub type TrackKey = (Arc<str>, u64);

/// One fused position of a store trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct StorePoint {
    /// Store trajectory id (per run; the store maps it to a row).
    pub store: u64,
    /// Mean capture time of the fused positions, Unix ms.
    pub ts_ms: i64,
    /// Floor x, m.
    pub x: f64,
    /// Floor y, m.
    pub y: f64,
    /// Cameras that saw the person in this bin.
    pub cameras: u32,
}

/// What the stitcher reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A camera track is (from its start) part of a store trajectory.
    Member {
        /// Store trajectory id.
        store: u64,
        /// The camera track's first time, Unix ms.
        first_ms: i64,
        /// Camera id.
        camera: Arc<str>,
        /// Tracker id on that camera.
        track_id: u64,
    },
    /// A fused position.
    Point(StorePoint),
    /// A zone visit that is over.
    Visit {
        /// Store trajectory id.
        store: u64,
        /// The visit.
        visit: Visit,
    },
    /// The store trajectory is over.
    Ended {
        /// Store trajectory id.
        store: u64,
    },
}

#[derive(Debug)]
struct CamTrack {
    store: Option<u64>,
    first_ms: i64,
    last_ms: i64,
    ended: bool,
    /// Recent positions (all of them while undecided).
    hist: VecDeque<(i64, f64, f64)>,
}

#[derive(Debug, Default, Clone)]
struct Bin {
    sum_x: f64,
    sum_y: f64,
    sum_t: f64,
    n: u32,
    cameras: Vec<Arc<str>>,
}

#[derive(Debug)]
struct StoreTrack {
    members: Vec<TrackKey>,
    last_ms: i64,
    last_pos: (f64, f64),
    last_camera: Arc<str>,
    bins: BTreeMap<i64, Bin>,
    /// Bins below this index are released.
    released: i64,
    zones: ZoneTracker,
}

/// Counters for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StitchStats {
    /// Camera tracks joined to an existing store trajectory while both were seen.
    pub joined_overlap: u64,
    /// Camera tracks joined across a hand-off gap.
    pub joined_handoff: u64,
    /// Store trajectories started.
    pub started: u64,
    /// Positions that arrived after their bin was released (not fused).
    pub late: u64,
}

/// The store-wide trajectory builder.
#[derive(Debug)]
pub struct Stitcher {
    p: AnalyticsParams,
    zones: Vec<Zone>,
    tracks: HashMap<TrackKey, CamTrack>,
    stores: BTreeMap<u64, StoreTrack>,
    next_store: u64,
    clock: i64,
    out: Vec<Event>,
    stats: StitchStats,
}

impl Stitcher {
    /// A stitcher with these gates and zones.
    pub fn new(p: AnalyticsParams, zones: Vec<Zone>) -> Self {
        Self {
            p,
            zones,
            tracks: HashMap::new(),
            stores: BTreeMap::new(),
            next_store: 1,
            clock: i64::MIN,
            out: Vec::new(),
            stats: StitchStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> StitchStats {
        self.stats
    }

    /// How long after capture a position is released.
    pub fn latency_ms(&self) -> i64 {
        self.p.join_window_ms + SETTLE_MS
    }

    /// Events produced since the last call.
    pub fn drain(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.out)
    }

    /// A floor position of a camera track.
    pub fn point(&mut self, camera: &Arc<str>, track_id: u64, ts_ms: i64, pos: (f64, f64)) {
        let key = (Arc::clone(camera), track_id);
        let ct = self.tracks.entry(key.clone()).or_insert_with(|| CamTrack {
            store: None,
            first_ms: ts_ms,
            last_ms: ts_ms,
            ended: false,
            hist: VecDeque::new(),
        });
        if ts_ms < ct.last_ms || ct.ended {
            return; // out of order or after its end: not a position of this track
        }
        ct.last_ms = ts_ms;
        ct.hist.push_back((ts_ms, pos.0, pos.1));
        let (store, watched) = (ct.store, ts_ms - ct.first_ms);
        match store {
            Some(s) => self.add_to_store(s, camera, ts_ms, pos),
            None if watched >= self.p.join_window_ms => self.decide(&key),
            None => {}
        }
        self.advance(ts_ms);
    }

    /// A camera track ended.
    pub fn track_ended(&mut self, camera: &Arc<str>, track_id: u64) {
        let key = (Arc::clone(camera), track_id);
        let Some(ct) = self.tracks.get_mut(&key) else {
            return;
        };
        ct.ended = true;
        if ct.store.is_none() {
            self.decide(&key);
        }
    }

    /// Moves the clock to `now_ms` (capture time of the newest frame seen) and releases what is
    /// old enough.
    pub fn advance(&mut self, now_ms: i64) {
        self.clock = self.clock.max(now_ms);
        let timeout = self.p.member_timeout_ms;
        let clock = self.clock;
        let stale: Vec<TrackKey> = self
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.store.is_none() && (t.ended || clock.saturating_sub(t.last_ms) > timeout)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.decide(&k);
        }
        self.release(self.clock.saturating_sub(self.latency_ms()), false);
    }

    /// Releases everything and ends every store trajectory (end of input).
    pub fn finish(&mut self) {
        let pending: Vec<TrackKey> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.store.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for k in pending {
            self.decide(&k);
        }
        self.release(i64::MAX, true);
    }

    fn add_to_store(&mut self, s: u64, camera: &Arc<str>, ts_ms: i64, pos: (f64, f64)) {
        let bin_ms = self.p.bin_ms;
        let Some(st) = self.stores.get_mut(&s) else {
            return;
        };
        let idx = ts_ms.div_euclid(bin_ms);
        if idx < st.released {
            self.stats.late += 1;
            return;
        }
        let b = st.bins.entry(idx).or_default();
        b.sum_x += pos.0;
        b.sum_y += pos.1;
        b.sum_t += ts_ms as f64;
        b.n += 1;
        if !b.cameras.contains(camera) {
            b.cameras.push(Arc::clone(camera));
        }
        if ts_ms >= st.last_ms {
            st.last_ms = ts_ms;
            st.last_pos = pos;
            st.last_camera = Arc::clone(camera);
        }
    }

    /// Joins the undecided track `key` to a store trajectory or starts one.
    fn decide(&mut self, key: &TrackKey) {
        let Some(ct) = self.tracks.get(key) else {
            return;
        };
        if ct.store.is_some() {
            return;
        }
        let first = ct.first_ms;
        self.decide_older_views(key, first);
        let Some(ct) = self.tracks.get(key) else {
            return;
        };
        let choice = self.best_store(key, ct);
        let first_ms = ct.first_ms;
        let points: Vec<(i64, f64, f64)> = ct.hist.iter().copied().collect();
        let s = match choice {
            Some((s, handoff)) => {
                if handoff {
                    self.stats.joined_handoff += 1;
                } else {
                    self.stats.joined_overlap += 1;
                }
                s
            }
            None => {
                let s = self.next_store;
                self.next_store += 1;
                self.stats.started += 1;
                let (t, x, y) = points.first().copied().unwrap_or((first_ms, 0.0, 0.0));
                self.stores.insert(
                    s,
                    StoreTrack {
                        members: Vec::new(),
                        last_ms: t,
                        last_pos: (x, y),
                        last_camera: Arc::clone(&key.0),
                        bins: BTreeMap::new(),
                        released: i64::MIN,
                        zones: ZoneTracker::new(self.zones.len()),
                    },
                );
                s
            }
        };
        if let Some(st) = self.stores.get_mut(&s) {
            st.members.push(key.clone());
        }
        if let Some(ct) = self.tracks.get_mut(key) {
            ct.store = Some(s);
        }
        self.out.push(Event::Member {
            store: s,
            first_ms,
            camera: Arc::clone(&key.0),
            track_id: key.1,
        });
        for (t, x, y) in points {
            self.add_to_store(s, &key.0, t, (x, y));
        }
    }

    /// The store trajectory `ct` belongs to, and whether it is a hand-off (no overlap).
    fn best_store(&self, key: &TrackKey, ct: &CamTrack) -> Option<(u64, bool)> {
        let mut best: Option<(f64, u64, bool)> = None;
        for (&s, st) in &self.stores {
            if self.same_camera_conflict(key, ct, st) {
                continue;
            }
            let mut d: Vec<f64> = Vec::new();
            for &(t, x, y) in &ct.hist {
                let near = st
                    .members
                    .iter()
                    .filter(|m| m.0 != key.0)
                    .filter_map(|m| self.tracks.get(m).and_then(|o| position_at(&o.hist, t)))
                    .map(|(ox, oy)| ((ox - x).powi(2) + (oy - y).powi(2)).sqrt())
                    .min_by(f64::total_cmp);
                d.extend(near);
            }
            let candidate = if d.is_empty() {
                self.handoff_distance(key, ct, st).map(|dist| (dist, true))
            } else {
                let enough =
                    d.len() >= self.p.join_min_samples || (d.len() >= 2 && st.last_ms < ct.last_ms);
                let med = median(&mut d);
                (enough && med <= self.p.join_distance_m).then_some((med, false))
            };
            if let Some((dist, handoff)) = candidate
                && best.as_ref().is_none_or(|b| dist < b.0)
            {
                best = Some((dist, s, handoff));
            }
        }
        best.map(|(_, s, h)| (s, h))
    }

    /// Decides first the undecided tracks of other cameras that began before `key` (at
    /// `first_ms`; ties broken by key) and were still seen then: `key` can then join one of
    /// them (the same person seen at the same moments) instead of taking a hand-off from
    /// someone who left a moment ago.
    fn decide_older_views(&mut self, key: &TrackKey, first_ms: i64) {
        let mine = (first_ms, key);
        let mut older: Vec<(i64, TrackKey)> = self
            .tracks
            .iter()
            .filter(|(k, t)| {
                k.0 != key.0
                    && t.store.is_none()
                    && (t.first_ms, *k) < mine
                    && t.last_ms >= first_ms
            })
            .map(|(k, t)| (t.first_ms, k.clone()))
            .collect();
        older.sort();
        for (_, k) in older {
            self.decide(&k);
        }
    }

    /// A store trajectory that has a track on the same camera at the same time is someone else.
    fn same_camera_conflict(&self, key: &TrackKey, ct: &CamTrack, st: &StoreTrack) -> bool {
        st.members.iter().any(|m| {
            m.0 == key.0
                && self
                    .tracks
                    .get(m)
                    .is_some_and(|o| o.last_ms >= ct.first_ms && o.first_ms <= ct.last_ms)
        })
    }

    fn handoff_distance(&self, key: &TrackKey, ct: &CamTrack, st: &StoreTrack) -> Option<f64> {
        let gap = ct.first_ms - st.last_ms;
        if st.last_camera == key.0 || !(0..=self.p.handoff_gap_ms).contains(&gap) {
            return None;
        }
        let &(_, x, y) = ct.hist.front()?;
        let d = ((st.last_pos.0 - x).powi(2) + (st.last_pos.1 - y).powi(2)).sqrt();
        let reach = self.p.join_distance_m + self.p.handoff_speed_mps * gap as f64 / 1000.0;
        (d <= reach).then_some(d)
    }

    /// Releases bins that end before `until` and ends store trajectories that are over.
    fn release(&mut self, until: i64, all: bool) {
        let bin_ms = self.p.bin_ms;
        let clock = self.clock;
        let (handoff, timeout, latency) = (
            self.p.handoff_gap_ms,
            self.p.member_timeout_ms,
            self.latency_ms(),
        );
        let rules = self.p.visit_rules();
        let mut over = Vec::new();
        for (&s, st) in self.stores.iter_mut() {
            let limit = if all {
                i64::MAX
            } else {
                until.div_euclid(bin_ms)
            };
            while let Some(entry) = st.bins.first_entry() {
                if *entry.key() >= limit {
                    break;
                }
                let (idx, b) = entry.remove_entry();
                st.released = idx + 1;
                let n = f64::from(b.n);
                let p = StorePoint {
                    store: s,
                    ts_ms: (b.sum_t / n).round() as i64,
                    x: b.sum_x / n,
                    y: b.sum_y / n,
                    cameras: b.cameras.len() as u32,
                };
                for visit in st.zones.update(&self.zones, &rules, p.ts_ms, (p.x, p.y)) {
                    self.out.push(Event::Visit { store: s, visit });
                }
                self.out.push(Event::Point(p));
            }
            let members_over = st.members.iter().all(|m| {
                self.tracks
                    .get(m)
                    .is_none_or(|t| t.ended || clock.saturating_sub(t.last_ms) > timeout)
            });
            let quiet = clock.saturating_sub(st.last_ms) > handoff + latency;
            if all || (members_over && quiet && st.bins.is_empty()) {
                over.push(s);
            }
        }
        for s in over {
            if let Some(mut st) = self.stores.remove(&s) {
                for visit in st.zones.finish(&self.zones, &rules) {
                    self.out.push(Event::Visit { store: s, visit });
                }
                for m in &st.members {
                    self.tracks.remove(m);
                }
                self.out.push(Event::Ended { store: s });
            }
        }
        self.prune_history();
    }

    /// Keeps decided tracks' positions only as long as a join decision may look at them.
    fn prune_history(&mut self) {
        let keep_from = self
            .clock
            .saturating_sub(self.latency_ms() + self.p.join_window_ms);
        for t in self.tracks.values_mut() {
            if t.store.is_some() {
                while t.hist.front().is_some_and(|p| p.0 < keep_from) {
                    t.hist.pop_front();
                }
            }
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Position of a track at `t`: interpolated between close neighbours, else the nearest close one.
fn position_at(hist: &VecDeque<(i64, f64, f64)>, t: i64) -> Option<(f64, f64)> {
    let i = hist.partition_point(|p| p.0 < t);
    let after = hist.get(i);
    let before = i.checked_sub(1).and_then(|j| hist.get(j));
    match (before, after) {
        (_, Some(a)) if a.0 == t => Some((a.1, a.2)),
        (Some(b), Some(a)) if a.0 - b.0 <= MAX_INTERP_GAP_MS => {
            let f = (t - b.0) as f64 / (a.0 - b.0) as f64;
            Some((b.1 + f * (a.1 - b.1), b.2 + f * (a.2 - b.2)))
        }
        _ => [before, after]
            .into_iter()
            .flatten()
            .filter(|p| (p.0 - t).abs() <= NEAREST_MS)
            .min_by_key(|p| (p.0 - t).abs())
            .map(|p| (p.1, p.2)),
    }
}

#[cfg(test)]
#[path = "stitch_tests.rs"]
mod tests;
