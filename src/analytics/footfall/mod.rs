//! Footfall: the live analytics behind the stitcher — counting lines, zone enter/leave,
//! queues, occupancy, rules — as [`LiveEvent`]s. The entry point the analytics stage calls.
//!
//! Input (all with capture times; nothing here reads a clock): the stitcher's [`StorePoint`]s
//! and ends of store trajectories ([`Footfall::stitched`]), camera track points in pixels for
//! lines drawn on a camera ([`Footfall::camera_point`]), camera frames and up/down reports,
//! and [`Footfall::tick`] with the time up to which every position has been fed (the stage
//! passes its newest capture time minus [`crate::analytics::Stitcher::latency_ms`], from a timer as well
//! so that a camera going dark is noticed when no frame comes at all). Output:
//! [`Footfall::drain`] — the events in the order they became known.

#[doc(hidden)]
pub mod eval;
mod settings;
mod swap;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use settings::{DEFAULT_COUNTS_INTERVAL_MS, FootfallSettings, SettingsError};
pub use swap::Swapped;

use serde::Serialize;

use crate::analytics::events::{
    CameraChange, CameraStatus, Counts, EventBody, LineCount, LineCrossing, LiveEvent, QueueCount,
    QueueLength, QueueWait, ZoneCount, ZoneEnter, ZoneLeave,
};
use crate::analytics::lines::{Crossing, Direction, LineCounter, LineSettings, PERSON_HEIGHT_M};
use crate::analytics::occupancy::{Occupancy, StoreChange, StoreOccupancy};
use crate::analytics::queues::{QueueChange, QueueTracker};
use crate::analytics::rules::{Alert, BUCKET_SETTLE_MS, RuleEngine};
use crate::analytics::stitch::{Event, StorePoint};
use crate::analytics::zones::{Visit, VisitRules, Zone, ZoneTracker};

/// Occupancy now, for `query occupancy --now` and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Now {
    /// The store.
    pub store: StoreOccupancy,
    /// Per zone.
    pub zones: Vec<ZoneCount>,
    /// Queue id and people waiting.
    pub queues: Vec<(String, u32)>,
}

struct FloorLine {
    id: Arc<str>,
    counter: LineCounter,
    door: bool,
}

struct CameraLine {
    id: Arc<str>,
    camera: Arc<str>,
    counter: LineCounter,
}

/// A store trajectory's zone state.
struct Person {
    zones: ZoneTracker,
    /// Zones whose visit has begun (enter reported).
    entered: Vec<bool>,
}

/// The live analytics state.
pub struct Footfall {
    /// The definitions in force (replaced by [`Footfall::swap`]).
    settings: FootfallSettings,
    zones: Vec<Zone>,
    visit: VisitRules,
    floor_lines: Vec<FloorLine>,
    camera_lines: Vec<CameraLine>,
    queues: Vec<QueueTracker>,
    /// Length last reported per queue.
    queue_reported: Vec<u32>,
    occupancy: Occupancy,
    rules: RuleEngine,
    people: BTreeMap<u64, Person>,
    /// Per zone: (enter time, store trajectory) of the visits begun and not ended.
    inside: Vec<BTreeSet<(i64, u64)>>,
    interval_ms: i64,
    /// Index of the first counts period not closed yet.
    period: Option<i64>,
    /// Line ids (floor lines, then camera lines), and (in, out) per line per period index
    /// (keyed by id: a line a reload removed still reports the period it counted in).
    line_ids: Vec<Arc<str>>,
    line_counts: BTreeMap<i64, BTreeMap<Arc<str>, (u32, u32)>>,
    last_frame: BTreeMap<Arc<str>, i64>,
    now: i64,
    out: Vec<LiveEvent>,
}

impl Footfall {
    /// The analytics for `settings` over `zones`, with the visit rules of `[analytics]`.
    pub fn new(
        s: &FootfallSettings,
        zones: Vec<Zone>,
        visit: VisitRules,
    ) -> Result<Self, SettingsError> {
        let problems = s.validate(&zones, None);
        if !problems.is_empty() {
            return Err(SettingsError(problems));
        }
        let queues = s.queue_trackers(&zones, visit.min_dwell_ms);
        let (floor, cam): (Vec<&LineSettings>, Vec<&LineSettings>) =
            s.lines.iter().partition(|l| l.camera.is_none());
        Ok(Self {
            settings: s.clone(),
            inside: vec![BTreeSet::new(); zones.len()],
            zones,
            visit,
            floor_lines: floor
                .iter()
                .map(|l| FloorLine {
                    id: Arc::from(l.id.as_str()),
                    counter: l.counter(),
                    door: l.door,
                })
                .collect(),
            camera_lines: cam
                .iter()
                .map(|l| CameraLine {
                    id: Arc::from(l.id.as_str()),
                    camera: Arc::from(l.camera.as_deref().unwrap_or_default()),
                    counter: l.counter(),
                })
                .collect(),
            queue_reported: vec![0; queues.len()],
            queues,
            occupancy: Occupancy::new(s.occupancy.clone(), s.lines.iter().any(|l| l.door)),
            rules: RuleEngine::new(&s.rules),
            people: BTreeMap::new(),
            interval_ms: s.counts_interval_ms,
            period: None,
            line_ids: floor
                .iter()
                .chain(&cam)
                .map(|l| Arc::from(l.id.as_str()))
                .collect(),
            line_counts: BTreeMap::new(),
            last_frame: BTreeMap::new(),
            now: i64::MIN,
            out: Vec::new(),
        })
    }

    /// Occupancy now: the store, every zone entered so far, every queue's length.
    pub fn now(&self) -> Now {
        Now {
            store: self.occupancy.store(),
            zones: self
                .occupancy
                .zones()
                .map(|(z, n)| ZoneCount {
                    zone: z.to_string(),
                    occupancy: n,
                })
                .collect(),
            queues: self
                .queues
                .iter()
                .map(|q| (q.id().to_string(), q.length()))
                .collect(),
        }
    }

    /// Events since the last call.
    pub fn drain(&mut self) -> Vec<LiveEvent> {
        std::mem::take(&mut self.out)
    }

    /// Feeds one stitcher event (positions and ends; memberships and visits are the store's).
    pub fn stitched(&mut self, e: &Event) {
        match e {
            Event::Point(p) => self.point(p),
            Event::Ended { store } => self.ended(*store),
            Event::Member { .. } | Event::Visit { .. } => {}
        }
    }

    /// A fused position of a store trajectory.
    pub fn point(&mut self, p: &StorePoint) {
        let (key, ts, pos) = (p.store, p.ts_ms, (p.x, p.y));
        let mut changes = Vec::new();
        self.occupancy.seen(key, ts, &mut changes);
        self.store_changed(changes);
        self.period.get_or_insert(ts.div_euclid(self.interval_ms));
        let n = self.zones.len();
        let person = self.people.entry(key).or_insert_with(|| Person {
            zones: ZoneTracker::new(n),
            entered: vec![false; n],
        });
        let closed = person.zones.update(&self.zones, &self.visit, ts, pos);
        self.visits_ended(key, ts, &closed);
        self.visits_begun(key, ts);
        for qi in 0..self.queues.len() {
            let Some(person) = self.people.get(&key) else {
                break;
            };
            let changes = self.queues[qi].observe(key, ts, pos, &person.zones, &closed);
            self.queue_changes(qi, ts, changes);
        }
        for li in 0..self.floor_lines.len() {
            let found = self.floor_lines[li].counter.observe(key, ts, pos, 1.0);
            self.crossings(li, found);
        }
    }

    /// A store trajectory is over.
    pub fn ended(&mut self, key: u64) {
        let Some(mut person) = self.people.remove(&key) else {
            return;
        };
        let closed = person.zones.finish(&self.zones, &self.visit);
        let ts = closed.iter().map(|v| v.leave_ms).max().unwrap_or(self.now);
        self.visits_ended(key, ts, &closed);
        for q in &mut self.queues {
            q.end(key, &closed);
        }
        for li in 0..self.floor_lines.len() {
            let found = self.floor_lines[li].counter.end(key);
            self.crossings(li, found);
        }
    }

    /// A point of a camera track: bottom-centre of its box in pixels and the box height (for
    /// lines drawn on that camera's image).
    pub fn camera_point(
        &mut self,
        camera: &str,
        track_id: u64,
        ts_ms: i64,
        foot: (f64, f64),
        box_h: f64,
    ) {
        let scale = box_h.max(1.0) / PERSON_HEIGHT_M;
        for li in 0..self.camera_lines.len() {
            if &*self.camera_lines[li].camera != camera {
                continue;
            }
            self.period
                .get_or_insert(ts_ms.div_euclid(self.interval_ms));
            let found = self.camera_lines[li]
                .counter
                .observe(track_id, ts_ms, foot, scale);
            self.crossings(self.floor_lines.len() + li, found);
        }
    }

    /// A camera track ended.
    pub fn camera_track_ended(&mut self, camera: &str, track_id: u64) {
        for li in 0..self.camera_lines.len() {
            if &*self.camera_lines[li].camera == camera {
                let found = self.camera_lines[li].counter.end(track_id);
                self.crossings(self.floor_lines.len() + li, found);
            }
        }
    }

    /// `camera` delivered a frame captured at `ts_ms`.
    pub fn camera_frame(&mut self, camera: &str, ts_ms: i64) {
        let mut alerts = Vec::new();
        self.rules.camera_frame(camera, ts_ms, &mut alerts);
        self.alerts(alerts);
        let t = self.last_frame.entry(Arc::from(camera)).or_insert(ts_ms);
        *t = (*t).max(ts_ms);
    }

    /// `camera` went down or came back at `ts_ms`.
    pub fn camera_status(&mut self, camera: &str, ts_ms: i64, status: CameraStatus) {
        let camera: Arc<str> = Arc::from(camera);
        if status == CameraStatus::Down {
            let last = self.last_frame.get(&camera).copied().unwrap_or(ts_ms);
            let mut alerts = Vec::new();
            self.rules.camera_down(&camera, ts_ms, last, &mut alerts);
            self.alerts(alerts);
        }
        let camera = camera.to_string();
        self.emit(ts_ms, EventBody::Camera(CameraChange { camera, status }));
    }

    /// Every position captured before `now_ms` has been fed: closes counts periods, ends
    /// waits no successor took over, updates the store occupancy, raises and clears alerts.
    pub fn tick(&mut self, now_ms: i64) {
        self.now = self.now.max(now_ms);
        while let Some(p) = self.period
            && (p + 1) * self.interval_ms + BUCKET_SETTLE_MS <= self.now
        {
            self.close_period(p);
        }
        for qi in 0..self.queues.len() {
            for (ts, c) in self.queues[qi].advance(self.now) {
                self.queue_changes(qi, ts, vec![c]);
            }
        }
        let mut changes = Vec::new();
        self.occupancy.advance(self.now, &mut changes);
        self.store_changed(changes);
        let mut alerts = Vec::new();
        self.rules.advance(self.now, &mut alerts);
        self.alerts(alerts);
        let lines = self.floor_lines.len();
        for li in 0..lines + self.camera_lines.len() {
            let found = match self.floor_lines.get_mut(li) {
                Some(l) => l.counter.prune(self.now),
                None => self.camera_lines[li - lines].counter.prune(self.now),
            };
            self.crossings(li, found);
        }
    }

    /// End of input: ends every trajectory and reports the period in progress.
    pub fn finish(&mut self) {
        let keys: Vec<u64> = self.people.keys().copied().collect();
        for k in keys {
            self.ended(k);
        }
        if let Some(p) = self.period {
            self.close_period(p);
        }
    }

    fn visits_begun(&mut self, key: u64, ts: i64) {
        let Some(person) = self.people.get_mut(&key) else {
            return;
        };
        let mut begun = Vec::new();
        for (i, entered) in person.entered.iter_mut().enumerate() {
            if let Some(o) = person.zones.open(i)
                && !*entered
                && o.last_in_ms - o.enter_ms >= self.visit.min_dwell_ms
            {
                *entered = true;
                begun.push((i, o.enter_ms));
            }
        }
        for (i, enter_ms) in begun {
            let zone = self.zones[i].id.to_string();
            self.inside[i].insert((enter_ms, key));
            self.emit(
                enter_ms,
                EventBody::ZoneEnter(ZoneEnter {
                    zone,
                    store_track: key,
                }),
            );
            self.zone_changed(i, ts, 1);
        }
    }

    fn visits_ended(&mut self, key: u64, ts: i64, closed: &[Visit]) {
        for v in closed {
            let Some(i) = self.zones.iter().position(|z| z.id == v.zone) else {
                continue;
            };
            if let Some(p) = self.people.get_mut(&key) {
                p.entered[i] = false;
            }
            self.inside[i].remove(&(v.enter_ms, key));
            let leave = ZoneLeave {
                zone: v.zone.to_string(),
                store_track: key,
                enter_ms: v.enter_ms,
                dwell_ms: v.dwell_ms(),
                from_zone: v.from_zone.as_deref().map(Into::into),
            };
            self.emit(v.leave_ms, EventBody::ZoneLeave(leave));
            self.zone_changed(i, ts, -1);
        }
    }

    fn zone_changed(&mut self, i: usize, ts: i64, delta: i32) {
        let zone = Arc::clone(&self.zones[i].id);
        let n = self.occupancy.zone(&zone, delta);
        let since = self.inside[i].first().map(|(t, _)| *t);
        let mut alerts = Vec::new();
        self.rules.occupancy(Some(&zone), ts, n, &mut alerts);
        self.rules.dwell(&zone, ts, since, &mut alerts);
        self.alerts(alerts);
    }

    fn queue_changes(&mut self, qi: usize, ts: i64, changes: Vec<QueueChange>) {
        let queue = Arc::clone(self.queues[qi].id());
        let mut latest = None;
        for c in changes {
            match c {
                QueueChange::Waited(w) => {
                    let body = QueueWait {
                        queue: queue.to_string(),
                        store_track: w.key,
                        enter_ms: w.enter_ms,
                        wait_ms: w.wait_ms(),
                        outcome: w.outcome,
                    };
                    self.emit(w.end_ms, EventBody::QueueWait(body));
                }
                QueueChange::Length(n) => latest = Some(n),
            }
        }
        let Some(length) = latest else {
            return;
        };
        let before = std::mem::replace(&mut self.queue_reported[qi], length);
        if before != length {
            let q = QueueLength {
                queue: queue.to_string(),
                length,
                previous: before,
            };
            self.emit(ts, EventBody::QueueLength(q));
            let mut alerts = Vec::new();
            self.rules.queue_length(&queue, ts, length, &mut alerts);
            self.alerts(alerts);
        }
    }

    /// Crossings of line `li` (floor lines first, then camera lines).
    fn crossings(&mut self, li: usize, found: Vec<Crossing>) {
        for c in found {
            self.crossed(li, &c);
        }
    }

    fn crossed(&mut self, li: usize, c: &Crossing) {
        let (line, door, store, cam) = match self.floor_lines.get(li) {
            Some(l) => (Arc::clone(&l.id), l.door, Some(c.key), None),
            None => {
                let l = &self.camera_lines[li - self.floor_lines.len()];
                (
                    Arc::clone(&l.id),
                    false,
                    None,
                    Some((Arc::clone(&l.camera), c.key)),
                )
            }
        };
        // Counted in the period it happened in, or the first one still open.
        let p = c
            .ts_ms
            .div_euclid(self.interval_ms)
            .max(self.period.unwrap_or(i64::MIN));
        let counts = self
            .line_counts
            .entry(p)
            .or_default()
            .entry(Arc::clone(&line))
            .or_default();
        match c.direction {
            Direction::In => counts.0 += 1,
            Direction::Out => counts.1 += 1,
        }
        if door {
            let mut changes = Vec::new();
            self.occupancy.door(c.direction, c.ts_ms, &mut changes);
            self.store_changed(changes);
        }
        self.rules.crossing(&line, c.direction, c.ts_ms);
        let (camera, camera_track) = cam.map_or((None, None), |(c, t)| (Some(c), Some(t)));
        let body = LineCrossing {
            line: line.to_string(),
            direction: c.direction,
            store_track: store,
            camera: camera.map(|c| c.to_string()),
            camera_track,
            crossed_ms: c.crossed_ms,
        };
        self.emit(c.ts_ms, EventBody::LineCrossing(body));
    }

    fn close_period(&mut self, p: i64) {
        let (from, to) = (p * self.interval_ms, (p + 1) * self.interval_ms);
        let mut counts = self.line_counts.remove(&p).unwrap_or_default();
        let current = self.line_ids.iter().map(|line| {
            let (ins, outs) = counts.remove(line).unwrap_or_default();
            (line, ins, outs)
        });
        let mut lines: Vec<LineCount> = current
            .map(|(line, ins, outs)| LineCount {
                line: line.to_string(),
                ins,
                outs,
            })
            .collect();
        // Lines a reload removed during the period.
        lines.extend(counts.into_iter().map(|(line, (ins, outs))| LineCount {
            line: line.to_string(),
            ins,
            outs,
        }));
        let queues = self
            .queues
            .iter_mut()
            .map(|q| QueueCount {
                queue: q.id().to_string(),
                length: q.length(),
                stats: q.take_period(p),
            })
            .collect();
        let zones = self
            .occupancy
            .zones()
            .map(|(z, n)| ZoneCount {
                zone: z.to_string(),
                occupancy: n,
            })
            .collect();
        let store = self.occupancy.store();
        self.emit(
            to,
            EventBody::Counts(Counts {
                from_ms: from,
                lines,
                queues,
                zones,
                store,
            }),
        );
        self.period = Some(p + 1);
    }

    fn store_changed(&mut self, changes: Vec<StoreChange>) {
        let mut alerts = Vec::new();
        for (ts, s) in changes {
            self.rules.occupancy(None, ts, s.estimate, &mut alerts);
        }
        self.alerts(alerts);
    }

    fn alerts(&mut self, alerts: Vec<Alert>) {
        for a in alerts {
            self.emit(a.ts_ms, EventBody::Alert(a));
        }
    }

    fn emit(&mut self, ts_ms: i64, body: EventBody) {
        self.out.push(LiveEvent::new(ts_ms, body));
    }
}

#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod swap_tests;
#[cfg(test)]
mod tests;
