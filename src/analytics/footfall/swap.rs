//! Reloaded definitions for the running engine ([`Footfall::swap`]), applied between two
//! inputs. A zone, line, queue or rule whose definition is unchanged (same id, same settings)
//! keeps its state: visits in progress, pending crossings, waits, raised alerts. A changed one
//! starts afresh and a removed one ends: its open zone visits end as a trajectory's end ends
//! them (at the last position inside, with a leave event), its pending crossings and waits in
//! progress are dropped, a queue's reported length goes to 0, a raised rule is cleared. New
//! ones count from the swap. `[occupancy]` changed (or door lines added or removed): the store
//! count starts afresh. The counts period (`[analytics]`) stays as it started.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{CameraLine, FloorLine, Footfall, FootfallSettings, SettingsError};
use crate::analytics::events::{EventBody, QueueLength};
use crate::analytics::lines::LineCounter;
use crate::analytics::queues::QueueTracker;
use crate::analytics::zones::Zone;

/// What a swap did with each definition, named `zone:ID`, `line:ID`, `queue:ID`, `rule:ID`
/// or `occupancy`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// Unchanged: their state carries on.
    pub kept: Vec<String>,
    /// Changed: ended and started afresh.
    pub restarted: Vec<String>,
    /// New: counting from the swap.
    pub added: Vec<String>,
    /// Gone: ended.
    pub removed: Vec<String>,
}

impl Swapped {
    /// Notes each of `old` as kept, restarted or removed by the one of `new` with its id, and
    /// each of `new` without an old one as added; `same` says whether a definition is
    /// unchanged.
    fn compare<T>(
        &mut self,
        kind: &str,
        (old, new): (&[T], &[T]),
        id: impl Fn(&T) -> &str,
        same: impl Fn(&T, &T) -> bool,
    ) {
        for o in old {
            let name = format!("{kind}:{}", id(o));
            match new.iter().find(|n| id(n) == id(o)) {
                Some(n) if same(o, n) => self.kept.push(name),
                Some(_) => self.restarted.push(name),
                None => self.removed.push(name),
            }
        }
        for n in new.iter().filter(|n| !old.iter().any(|o| id(o) == id(n))) {
            self.added.push(format!("{kind}:{}", id(n)));
        }
    }
}

impl Footfall {
    /// Replaces the definitions with `s` over `zones` (validated like [`Footfall::new`]'s) at
    /// the capture time reached so far; the events it causes are drained as usual.
    pub fn swap(
        &mut self,
        s: &FootfallSettings,
        zones: Vec<Zone>,
    ) -> Result<Swapped, SettingsError> {
        let problems = s.validate(&zones, None);
        if !problems.is_empty() {
            return Err(SettingsError(problems));
        }
        let mut s = s.clone();
        s.counts_interval_ms = self.interval_ms;
        let mut out = Swapped::default();
        let kept = self.swap_zones(zones, &mut out);
        self.swap_lines(&s, &mut out);
        self.swap_queues(&s, &kept, &mut out);
        let doors = s.lines.iter().any(|l| l.door);
        let (was, had_doors) = self.occupancy.settings();
        if *was == s.occupancy && had_doors == doors {
            out.kept.push("occupancy".into());
        } else {
            out.restarted.push("occupancy".into());
            self.occupancy.reconfigure(s.occupancy.clone(), doors);
        }
        let rules = (self.settings.rules.as_slice(), s.rules.as_slice());
        out.compare("rule", rules, |r| &r.id, |a, b| a == b);
        let mut alerts = Vec::new();
        self.rules.swap(&s.rules, self.now, &mut alerts);
        self.alerts(alerts);
        self.settings = s;
        Ok(out)
    }

    /// Ends the visits of changed and removed zones, carries the rest over; returns, per new
    /// zone, its old index when its definition is unchanged.
    fn swap_zones(&mut self, zones: Vec<Zone>, out: &mut Swapped) -> Vec<Option<usize>> {
        let old = &self.zones;
        let by_id = |id: &str| old.iter().position(|z| &*z.id == id);
        let kept: Vec<Option<usize>> = zones
            .iter()
            .map(|z| by_id(&z.id).filter(|&i| old[i].polygon == z.polygon))
            .collect();
        let same_id: Vec<Option<usize>> = old
            .iter()
            .map(|o| zones.iter().position(|z| z.id == o.id))
            .collect();
        let ending: Vec<usize> = (0..old.len())
            .filter(|i| !kept.contains(&Some(*i)))
            .collect();
        let same = |a: &Zone, b: &Zone| a.polygon == b.polygon;
        out.compare("zone", (old, &zones), |z| &z.id, same);
        let keys: Vec<u64> = self.people.keys().copied().collect();
        for key in keys {
            let Some(p) = self.people.get_mut(&key) else {
                continue;
            };
            let closed = p.zones.end_zones(&self.zones, &self.visit, &ending);
            let ts = closed.iter().map(|v| v.leave_ms).max().unwrap_or(self.now);
            self.visits_ended(key, ts, &closed);
        }
        for (i, z) in self.zones.iter().enumerate() {
            if same_id[i].is_none() {
                self.occupancy.forget_zone(&z.id);
            }
        }
        for p in self.people.values_mut() {
            p.zones.remap(&kept, &same_id);
            let entered = kept.iter().map(|o| o.is_some_and(|i| p.entered[i]));
            p.entered = entered.collect();
        }
        let mut inside = std::mem::take(&mut self.inside);
        self.inside = kept
            .iter()
            .map(|o| {
                o.map(|i| std::mem::take(&mut inside[i]))
                    .unwrap_or_default()
            })
            .collect();
        self.zones = zones;
        kept
    }

    /// Unchanged lines keep their counters (and pending crossings), the others start afresh.
    fn swap_lines(&mut self, s: &FootfallSettings, out: &mut Swapped) {
        let old = &self.settings.lines;
        let floor = self.floor_lines.drain(..).map(|l| (l.id, l.counter));
        let cam = self.camera_lines.drain(..).map(|l| (l.id, l.counter));
        let mut counters: BTreeMap<Arc<str>, LineCounter> = floor.chain(cam).collect();
        out.compare("line", (old, &s.lines), |l| &l.id, |a, b| a == b);
        for l in &s.lines {
            let id: Arc<str> = Arc::from(l.id.as_str());
            let counter = match old.contains(l) {
                true => counters.remove(&id).unwrap_or_else(|| l.counter()),
                false => l.counter(),
            };
            match &l.camera {
                None => self.floor_lines.push(FloorLine {
                    id,
                    counter,
                    door: l.door,
                }),
                Some(c) => self.camera_lines.push(CameraLine {
                    id,
                    camera: Arc::from(c.as_str()),
                    counter,
                }),
            }
        }
        let ids = self.floor_lines.iter().map(|l| Arc::clone(&l.id));
        let cam_ids = self.camera_lines.iter().map(|l| Arc::clone(&l.id));
        self.line_ids = ids.chain(cam_ids).collect();
    }

    /// Unchanged queues (over unchanged zones) keep their waits; the others start afresh and
    /// the ones they replace report a length of 0.
    fn swap_queues(&mut self, s: &FootfallSettings, kept: &[Option<usize>], out: &mut Swapped) {
        let zone = |id: &str| self.zones.iter().position(|z| &*z.id == id);
        let mut old: Vec<(QueueTracker, u32)> = self
            .queues
            .drain(..)
            .zip(self.queue_reported.drain(..))
            .collect();
        let fresh = s.queue_trackers(&self.zones, self.visit.min_dwell_ms);
        for (f, qs) in fresh.into_iter().zip(&s.queues) {
            let index = zone(&qs.zone).unwrap_or_default();
            let service = qs.service.as_deref().and_then(zone);
            let same = self.settings.queues.contains(qs)
                && kept[index].is_some()
                && service.is_none_or(|i| kept[i].is_some());
            let was = old.iter().position(|(q, _)| **q.id() == *qs.zone);
            let before = self.settings.queues.iter().find(|q| q.zone == qs.zone);
            match (same, was) {
                (true, Some(w)) => {
                    let (mut q, reported) = old.swap_remove(w);
                    q.reindex(index, service);
                    self.queues.push(q);
                    self.queue_reported.push(reported);
                    out.kept.push(format!("queue:{}", qs.zone));
                }
                _ => {
                    self.queues.push(f);
                    self.queue_reported.push(0);
                    let name = format!("queue:{}", qs.zone);
                    match before {
                        Some(_) => out.restarted.push(name),
                        None => out.added.push(name),
                    }
                }
            }
        }
        for q in &self.settings.queues {
            if !s.queues.iter().any(|n| n.zone == q.zone) {
                out.removed.push(format!("queue:{}", q.zone));
            }
        }
        for (q, reported) in old.into_iter().filter(|(_, r)| *r > 0) {
            let body = QueueLength {
                queue: q.id().to_string(),
                length: 0,
                previous: reported,
            };
            self.emit(self.now, EventBody::QueueLength(body));
            let mut alerts = Vec::new();
            self.rules.queue_length(q.id(), self.now, 0, &mut alerts);
            self.alerts(alerts);
        }
    }
}
