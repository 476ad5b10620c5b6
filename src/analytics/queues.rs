//! Queues: a zone where people wait, with an optional service zone (the till).
//!
//! Input: each store trajectory's positions with its zone state ([`ZoneTracker`]: visits with
//! `min_dwell_ms` and `exit_grace_ms`, the same rules as every zone visit), and the ends of
//! trajectories. Output: [`QueueChange`]s — arrivals, finished waits ([`Wait`]) and the queue
//! length — and per-period [`QueueStats`].
//!
//! A person *arrives* when their visit to the queue zone has lasted `min_dwell_ms` (the arrival
//! time is the visit's first position). Their wait ends when a visit to the service zone has
//! lasted `min_dwell_ms` (served; the wait ends at that visit's first position), or when the
//! queue visit ends without that (abandoned; without a service zone: left). The queue length
//! is the number of people waiting. A trajectory that begins inside the queue zone takes over
//! the wait of one that vanished there ([`super::handover`]): an ID switch in the queue keeps
//! one wait instead of an abandonment and a new, shorter wait. A waiting trajectory that goes
//! silent is counted as waiting until no successor can take it over any more; then its wait
//! ends, abandoned, at its last position inside.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::handover::{DEFAULT_HANDOVER_M, DEFAULT_HANDOVER_MS, Handover, OVERLAP_MS, Seen};
use super::zones::{Visit, Zone, ZoneTracker};

/// A trajectory whose visit to the queue (or its service zone) begins within this of its
/// first position appeared there (rather than walked in) and may take over the wait of one
/// that vanished.
const APPEAR_MS: i64 = 1_500;

/// A queue: `[[zones]] queue = true` with an optional `service` zone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// The zone where people wait (also the queue's id).
    pub zone: String,
    /// The zone where they are served.
    #[serde(default)]
    pub service: Option<String>,
    /// Longest gap of an ID switch taken over, ms.
    #[serde(default = "super::handover::default_handover_ms")]
    pub handover_ms: i64,
    /// Farthest jump of an ID switch taken over, metres.
    #[serde(default = "super::handover::default_handover_m")]
    pub handover_m: f64,
}

impl QueueSettings {
    /// A queue in `zone` served in `service`, default hand-over gates.
    pub fn new(zone: &str, service: Option<&str>) -> Self {
        Self {
            zone: zone.into(),
            service: service.map(Into::into),
            handover_ms: DEFAULT_HANDOVER_MS,
            handover_m: DEFAULT_HANDOVER_M,
        }
    }

    /// Every problem (`zone_ids`: the zones that exist).
    pub fn validate(&self, zone_ids: &[&str]) -> Vec<String> {
        let mut p = Vec::new();
        let q = &self.zone;
        if !zone_ids.contains(&q.as_str()) {
            p.push(format!("queue {q:?}: no such zone"));
        }
        if let Some(s) = &self.service {
            if s == q {
                p.push(format!("queue {q:?}: service zone must be another zone"));
            } else if !zone_ids.contains(&s.as_str()) {
                p.push(format!("queue {q:?}: service zone {s:?}: no such zone"));
            }
        }
        if !(0..=60_000).contains(&self.handover_ms) {
            p.push(format!("queue {q:?}: handover_ms must be from 0 to 60000"));
        }
        if !(self.handover_m >= 0.0 && self.handover_m <= 10.0) {
            p.push(format!("queue {q:?}: handover_m must be from 0 to 10"));
        }
        p
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Reached the service zone.
    Served,
    /// Left the queue without reaching the service zone.
    Abandoned,
    /// Left the queue (the queue has no service zone to tell the two apart).
    Left,
}

/// One person's finished wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// Store trajectory that finished it (the last one, after ID switches).
    pub key: u64,
    /// Arrival in the queue zone, Unix ms.
    pub enter_ms: i64,
    /// Service reached or queue left, Unix ms.
    pub end_ms: i64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Wait {
    /// Time waited, ms.
    pub fn wait_ms(&self) -> i64 {
        self.end_ms - self.enter_ms
    }
}

/// What one observation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueChange {
    /// A wait finished.
    Waited(Wait),
    /// The number of people waiting changed (to this).
    Length(u32),
}

/// Waits and lengths of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// People who arrived.
    pub arrivals: u32,
    /// Waits that ended served.
    pub served: u32,
    /// Waits that ended abandoned.
    pub abandoned: u32,
    /// Waits that ended by leaving (no service zone).
    pub left: u32,
    /// Median of the waits that ended, ms.
    pub median_wait_ms: Option<i64>,
    /// 90th percentile of the waits that ended, ms.
    pub p90_wait_ms: Option<i64>,
    /// Mean of the waits that ended, ms.
    pub mean_wait_ms: Option<f64>,
    /// Time-average number of people inside the queue zone (person-time inside / period).
    pub mean_length: f64,
    /// Little's law: arrivals per ms × mean wait; close to `mean_length` when waits are
    /// measured well (over periods much longer than a wait).
    pub little_length: Option<f64>,
}

impl QueueStats {
    /// Statistics of `waits` (ended in the period), `arrivals`, and `presence_ms` person-time
    /// inside the queue zone, over a period of `period_ms`.
    pub fn new(waits: &[Wait], arrivals: u32, presence_ms: i64, period_ms: i64) -> Self {
        let mut ms: Vec<i64> = waits.iter().map(Wait::wait_ms).collect();
        ms.sort_unstable();
        let count = |o: Outcome| waits.iter().filter(|w| w.outcome == o).count() as u32;
        let mean = (!ms.is_empty()).then(|| ms.iter().sum::<i64>() as f64 / ms.len() as f64);
        let period = period_ms.max(1) as f64;
        Self {
            arrivals,
            served: count(Outcome::Served),
            abandoned: count(Outcome::Abandoned),
            left: count(Outcome::Left),
            median_wait_ms: percentile(&ms, 0.5),
            p90_wait_ms: percentile(&ms, 0.9),
            mean_wait_ms: mean,
            mean_length: presence_ms as f64 / period,
            little_length: mean.map(|m| f64::from(arrivals) / period * m),
        }
    }
}

/// Percentile `q` of sorted values, interpolated between neighbours (numpy's default).
pub fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    let hi = (lo + 1).min(n - 1);
    Some((sorted[lo] as f64 + frac * (sorted[hi] - sorted[lo]) as f64).round() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Waiting {
        enter_ms: i64,
    },
    /// Vanished while waiting; a successor may still take the wait over.
    Vanished {
        enter_ms: i64,
        leave_ms: i64,
    },
    /// Wait over (served, or taken over by a successor) until the queue visit ends.
    Done,
}

#[derive(Debug, Clone)]
struct Person {
    first: Seen,
    last: Seen,
    /// Has not arrived yet: may take over a wait if it appeared in the queue.
    fresh: bool,
    /// Previous position was inside the queue zone (for person-time inside).
    was_inside: bool,
    phase: Phase,
}

/// How a queue tracker decides and reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueRules {
    /// A visit (to the queue, to the service zone) counts after this long, ms.
    pub min_dwell_ms: i64,
    /// ID switches taken over.
    pub handover: Handover,
    /// Length of the statistics periods, ms.
    pub period_ms: i64,
}

/// What happened in one period.
#[derive(Debug, Clone, Default)]
struct Period {
    arrivals: u32,
    presence_ms: i64,
    waits: Vec<Wait>,
}

/// One queue's waits.
#[derive(Debug, Clone)]
pub struct QueueTracker {
    zone: Zone,
    index: usize,
    service: Option<usize>,
    min_dwell_ms: i64,
    handover: Handover,
    people: BTreeMap<u64, Person>,
    length: u32,
    period_ms: i64,
    /// Per period index; facts of periods already taken go to the first one open.
    periods: BTreeMap<i64, Period>,
    open_from: i64,
}

impl QueueTracker {
    /// A queue in `zones[index]`, served in `zones[service]`.
    pub fn new(zones: &[Zone], index: usize, service: Option<usize>, r: QueueRules) -> Self {
        Self {
            zone: zones[index].clone(),
            index,
            service,
            min_dwell_ms: r.min_dwell_ms,
            handover: r.handover,
            people: BTreeMap::new(),
            length: 0,
            period_ms: r.period_ms.max(1),
            periods: BTreeMap::new(),
            open_from: i64::MIN,
        }
    }

    /// The queue's zone and service zone moved to `index` and `service` in a new zone list
    /// (a reload that left their definitions unchanged).
    pub fn reindex(&mut self, index: usize, service: Option<usize>) {
        self.index = index;
        self.service = service;
    }

    /// Queue id (its zone's id).
    pub fn id(&self) -> &Arc<str> {
        &self.zone.id
    }

    /// People waiting now.
    pub fn length(&self) -> u32 {
        self.length
    }

    /// A position of store trajectory `key` after `zt` was updated with it; `closed` are the
    /// visits that update ended.
    pub fn observe(
        &mut self,
        key: u64,
        ts_ms: i64,
        pos: (f64, f64),
        zt: &ZoneTracker,
        closed: &[Visit],
    ) -> Vec<QueueChange> {
        let inside = self.zone.contains(pos);
        let seen = Seen { ts_ms, pos };
        let p = self.people.entry(key).or_insert(Person {
            first: seen,
            last: seen,
            fresh: true,
            was_inside: false,
            phase: Phase::Idle,
        });
        let presence = if p.was_inside && inside {
            ts_ms - p.last.ts_ms
        } else {
            0
        };
        (p.last, p.was_inside) = (seen, inside);
        self.period(ts_ms).presence_ms += presence;
        let length = self.length;
        let mut out = Vec::new();
        self.served(key, zt, &mut out);
        if closed.iter().any(|v| v.zone == self.zone.id) {
            self.left(key, closed, &mut out);
        }
        if let Some(o) = zt.open(self.index)
            && o.last_in_ms - o.enter_ms >= self.min_dwell_ms
        {
            self.arrive(key, o.enter_ms);
        }
        if self.length != length {
            out.push(QueueChange::Length(self.length));
        }
        out
    }

    /// Store trajectory `key` is over; `closed` are the visits its end closed.
    pub fn end(&mut self, key: u64, closed: &[Visit]) {
        let Some(p) = self.people.get_mut(&key) else {
            return;
        };
        match p.phase {
            Phase::Waiting { enter_ms } => {
                let leave_ms = closed
                    .iter()
                    .find(|v| v.zone == self.zone.id)
                    .map_or(p.last.ts_ms, |v| v.leave_ms);
                p.phase = Phase::Vanished { enter_ms, leave_ms };
            }
            _ => {
                self.people.remove(&key);
            }
        }
    }

    /// Ends the waits of people gone silent that no successor took over by `now_ms`: each at
    /// their last position inside, final (and reported) at that position's time plus the
    /// longest hand-over — whether or not the end of their trajectory has been reported, so
    /// the time does not depend on when it is.
    pub fn advance(&mut self, now_ms: i64) -> Vec<(i64, QueueChange)> {
        let limit = self.handover.window_ms + self.min_dwell_ms + OVERLAP_MS;
        let mut over: Vec<(i64, u64)> = self
            .people
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Waiting { .. } | Phase::Vanished { .. }))
            .map(|(k, p)| (p.last.ts_ms + limit, *k))
            .filter(|(at, _)| *at < now_ms)
            .collect();
        over.sort_unstable();
        let mut out = Vec::new();
        for (at, k) in over {
            let Some(p) = self.people.get_mut(&k) else {
                continue;
            };
            let (enter_ms, leave_ms) = match p.phase {
                Phase::Waiting { enter_ms } => (enter_ms, p.last.ts_ms),
                Phase::Vanished { enter_ms, leave_ms } => (enter_ms, leave_ms),
                _ => continue,
            };
            if matches!(p.phase, Phase::Vanished { .. }) {
                self.people.remove(&k);
            } else {
                p.phase = Phase::Done; // its end will remove it
            }
            let mut changes = Vec::new();
            self.finish(k, enter_ms, leave_ms, self.gave_up(), &mut changes);
            changes.push(QueueChange::Length(self.length));
            out.extend(changes.into_iter().map(|c| (at, c)));
        }
        out
    }

    /// Statistics of period `index` (from `index × period_ms`); later facts of it and of
    /// earlier periods count in the next one.
    pub fn take_period(&mut self, index: i64) -> QueueStats {
        let p = self.periods.remove(&index).unwrap_or_default();
        self.open_from = self.open_from.max(index + 1);
        QueueStats::new(&p.waits, p.arrivals, p.presence_ms, self.period_ms)
    }

    fn period(&mut self, ts_ms: i64) -> &mut Period {
        let i = ts_ms.div_euclid(self.period_ms).max(self.open_from);
        self.periods.entry(i).or_default()
    }

    fn gave_up(&self) -> Outcome {
        if self.service.is_some() {
            Outcome::Abandoned
        } else {
            Outcome::Left
        }
    }

    fn served(&mut self, key: u64, zt: &ZoneTracker, out: &mut Vec<QueueChange>) {
        let Some(o) = self.service.and_then(|s| zt.open(s)) else {
            return;
        };
        if o.last_in_ms - o.enter_ms < self.min_dwell_ms {
            return;
        }
        let enter_ms = match self.people.get(&key).map(|p| p.phase) {
            Some(Phase::Waiting { enter_ms }) => enter_ms,
            // Lost on the way from the queue to the till and found there.
            Some(Phase::Idle) => match self.take_over(key, o.enter_ms) {
                Some(enter_ms) => enter_ms,
                None => return,
            },
            _ => return,
        };
        if let Some(p) = self.people.get_mut(&key) {
            (p.phase, p.fresh) = (Phase::Done, false);
        }
        self.finish(
            key,
            enter_ms,
            o.enter_ms.max(enter_ms),
            Outcome::Served,
            out,
        );
    }

    fn left(&mut self, key: u64, closed: &[Visit], out: &mut Vec<QueueChange>) {
        let Some(p) = self.people.get_mut(&key) else {
            return;
        };
        let phase = std::mem::replace(&mut p.phase, Phase::Idle);
        p.fresh = false;
        if let Phase::Waiting { enter_ms } = phase {
            let leave_ms = closed
                .iter()
                .find(|v| v.zone == self.zone.id)
                .map_or(enter_ms, |v| v.leave_ms);
            self.finish(key, enter_ms, leave_ms, self.gave_up(), out);
        }
    }

    fn arrive(&mut self, key: u64, visit_enter_ms: i64) {
        if self.people.get(&key).is_none_or(|p| p.phase != Phase::Idle) {
            return;
        }
        let enter_ms = match self.take_over(key, visit_enter_ms) {
            Some(enter) => enter,
            None => {
                self.period(visit_enter_ms).arrivals += 1;
                self.length += 1;
                visit_enter_ms
            }
        };
        if let Some(p) = self.people.get_mut(&key) {
            (p.phase, p.fresh) = (Phase::Waiting { enter_ms }, false);
        }
    }

    /// The arrival time of the wait `key` takes over, when it appeared (as its visit to a zone
    /// of this queue began at `visit_enter_ms`) where a waiting one vanished.
    fn take_over(&mut self, key: u64, visit_enter_ms: i64) -> Option<i64> {
        let p = self.people.get(&key)?;
        // Its visit began as it was first seen (a box cut to the visible part may put the
        // very first position outside).
        if !p.fresh || visit_enter_ms - p.first.ts_ms > APPEAR_MS {
            return None;
        }
        let candidates = self.people.iter().filter_map(|(k, c)| match c.phase {
            Phase::Waiting { .. } | Phase::Vanished { .. } if *k != key => Some((*k, c.last)),
            _ => None,
        });
        let donor = self.handover.pick(p.first, candidates)?;
        let c = self.people.get_mut(&donor)?;
        let phase = std::mem::replace(&mut c.phase, Phase::Done);
        if matches!(phase, Phase::Vanished { .. }) {
            self.people.remove(&donor); // its trajectory is over: nothing more will come
        }
        match phase {
            Phase::Waiting { enter_ms } | Phase::Vanished { enter_ms, .. } => Some(enter_ms),
            _ => None,
        }
    }

    fn finish(
        &mut self,
        key: u64,
        enter_ms: i64,
        end_ms: i64,
        outcome: Outcome,
        out: &mut Vec<QueueChange>,
    ) {
        self.length = self.length.saturating_sub(1);
        let w = Wait {
            key,
            enter_ms,
            end_ms,
            outcome,
        };
        self.period(end_ms).waits.push(w.clone());
        out.push(QueueChange::Waited(w));
    }
}

#[cfg(test)]
#[path = "queues_tests.rs"]
mod tests;
