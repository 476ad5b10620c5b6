//! Rules `[[rules]]`: occupancy above N, queue length above N, dwell above T in a zone
//! (loitering), crossings per interval above N, a camera without frames; each raised and
//! cleared with hysteresis and a cool-down ([`super::hysteresis`]).
//!
//! Input: the values the rules watch, each with its time (occupancy and queue lengths when
//! they change, the earliest enter time of the people in a zone, crossings, camera frames and
//! camera-down reports), and time advancing. Output: [`Alert`]s.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hysteresis::{Levels, Machine, Signal, Transition};
use super::lines::Direction;

/// Default time the clear condition must hold, ms.
pub const DEFAULT_CLEAR_MS: i64 = 10_000;
/// Default time after a clear before the rule may raise again, ms.
pub const DEFAULT_COOLDOWN_MS: i64 = 60_000;
/// Default interval of a crossings rule, ms.
pub const DEFAULT_INTERVAL_MS: i64 = 60_000;
/// A period (of crossings, of counts) is closed this long after it ends: crossings are
/// confirmed a little after they happen and store positions arrive slightly out of order.
pub const BUCKET_SETTLE_MS: i64 = 10_000;

fn default_clear() -> i64 {
    DEFAULT_CLEAR_MS
}
fn default_cooldown() -> i64 {
    DEFAULT_COOLDOWN_MS
}

/// What a rule watches (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// People in `zone` (or the store without one); `above` in people.
    Occupancy,
    /// People waiting in the queue `zone`; `above` in people.
    QueueLength,
    /// The longest current stay in `zone`; `above` in seconds.
    Dwell,
    /// Crossings of `line` (`direction`: in, out, or both) per `interval_ms`; `above` in
    /// crossings.
    Crossings,
    /// Seconds since `camera` (or each camera) delivered a frame; `above` in seconds.
    Camera,
}

/// One `[[rules]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Rule id (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// What it watches.
    pub kind: RuleKind,
    /// Zone (occupancy, queue_length, dwell).
    #[serde(default)]
    pub zone: Option<String>,
    /// Line (crossings).
    #[serde(default)]
    pub line: Option<String>,
    /// Direction counted (crossings; both when absent).
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Interval of the count (crossings), ms.
    #[serde(default)]
    pub interval_ms: Option<i64>,
    /// Camera (camera; every camera when absent).
    #[serde(default)]
    pub camera: Option<String>,
    /// Raise when the value is above this.
    pub above: f64,
    /// Clear when the value is at or below this (default: `above`).
    #[serde(default)]
    pub clear_at: Option<f64>,
    /// The raise condition must hold this long, ms.
    #[serde(default)]
    pub for_ms: i64,
    /// The clear condition must hold this long, ms.
    #[serde(default = "default_clear")]
    pub clear_ms: i64,
    /// No raise sooner than this after a clear, ms.
    #[serde(default = "default_cooldown")]
    pub cooldown_ms: i64,
}

/// The names a rule may refer to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// Zone ids.
    pub zones: &'a [&'a str],
    /// Queue zone ids.
    pub queues: &'a [&'a str],
    /// Line ids.
    pub lines: &'a [&'a str],
    /// Camera ids (None: not checked).
    pub cameras: Option<&'a [&'a str]>,
}

const DAY_MS: i64 = 86_400_000;

impl RuleSettings {
    /// Every problem, as `rule "id": ...` messages.
    pub fn validate(&self, known: &Known<'_>) -> Vec<String> {
        let mut p = Vec::new();
        let id = &self.id;
        if !super::valid_id(id) {
            p.push(format!(
                "rule id {id:?}: use letters, digits, '-', '_' or '.'"
            ));
        }
        self.check_fields(&mut p);
        self.check_target(known, &mut p);
        if self
            .interval_ms
            .is_some_and(|i| !(1_000..=DAY_MS).contains(&i))
        {
            p.push(format!(
                "rule {id:?}: interval_ms must be from 1000 to 86400000"
            ));
        }
        if !(self.above.is_finite() && self.above >= 0.0) {
            p.push(format!("rule {id:?}: above must be a number ≥ 0"));
        }
        if let Some(c) = self.clear_at
            && !(c.is_finite() && c >= 0.0 && c <= self.above)
        {
            p.push(format!("rule {id:?}: clear_at must be from 0 to above"));
        }
        for (name, v) in [
            ("for_ms", self.for_ms),
            ("clear_ms", self.clear_ms),
            ("cooldown_ms", self.cooldown_ms),
        ] {
            if !(0..=DAY_MS).contains(&v) {
                p.push(format!("rule {id:?}: {name} must be from 0 to 86400000"));
            }
        }
        p
    }

    /// Keys set that this kind does not use.
    fn check_fields(&self, p: &mut Vec<String>) {
        use RuleKind as K;
        let k = self.kind;
        for (set, name, allowed) in [
            (
                self.zone.is_some(),
                "zone",
                matches!(k, K::Occupancy | K::QueueLength | K::Dwell),
            ),
            (self.line.is_some(), "line", k == K::Crossings),
            (self.direction.is_some(), "direction", k == K::Crossings),
            (self.interval_ms.is_some(), "interval_ms", k == K::Crossings),
            (self.camera.is_some(), "camera", k == K::Camera),
        ] {
            if set && !allowed {
                p.push(format!(
                    "rule {:?}: {name} does not apply to this kind",
                    self.id
                ));
            }
        }
    }

    /// The zone, line or camera watched: needed and existing.
    fn check_target(&self, known: &Known<'_>, p: &mut Vec<String>) {
        use RuleKind as K;
        let id = &self.id;
        let zone = self.zone.as_deref();
        match self.kind {
            K::QueueLength | K::Dwell if zone.is_none() => {
                p.push(format!("rule {id:?}: needs a zone"))
            }
            K::QueueLength if !known.queues.contains(&zone.unwrap_or_default()) => p.push(format!(
                "rule {id:?}: zone {:?} is not a queue",
                zone.unwrap_or_default()
            )),
            K::Occupancy | K::Dwell if zone.is_some_and(|z| !known.zones.contains(&z)) => p.push(
                format!("rule {id:?}: no such zone {:?}", zone.unwrap_or_default()),
            ),
            K::Crossings => match &self.line {
                None => p.push(format!("rule {id:?}: needs a line")),
                Some(l) if !known.lines.contains(&l.as_str()) => {
                    p.push(format!("rule {id:?}: no such line {l:?}"))
                }
                _ => {}
            },
            K::Camera => {
                if let (Some(c), Some(cams)) = (&self.camera, known.cameras)
                    && !cams.contains(&c.as_str())
                {
                    p.push(format!("rule {id:?}: no such camera {c:?}"));
                }
            }
            _ => {}
        }
    }

    fn levels(&self) -> Levels {
        Levels {
            above: self.above,
            clear_at: self.clear_at.unwrap_or(self.above),
            for_ms: self.for_ms,
            clear_ms: self.clear_ms,
            cooldown_ms: self.cooldown_ms,
        }
    }
}

/// Raised or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The condition started.
    Raised,
    /// The condition is over.
    Cleared,
}

impl AlertKind {
    /// The name used in JSON and event ids.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Raised => "raised",
            AlertKind::Cleared => "cleared",
        }
    }
}

/// An alert raised or cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Rule id.
    pub rule: String,
    /// What the rule watches.
    pub rule_kind: RuleKind,
    /// The zone, line or camera concerned (none: the whole store).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subject: Option<String>,
    /// Raised or cleared (`state` in JSON: `kind` names the event).
    #[serde(rename = "state")]
    pub kind: AlertKind,
    /// When, Unix ms.
    #[serde(skip)]
    pub ts_ms: i64,
    /// The value then (people, seconds, or crossings per interval).
    pub value: f64,
    /// The rule's `above`.
    pub threshold: f64,
}

#[derive(Debug)]
struct Rule {
    s: RuleSettings,
    id: Arc<str>,
    /// One machine per subject (per camera for a rule on every camera).
    machines: BTreeMap<Arc<str>, Machine>,
    /// Crossings per interval index (crossings rules).
    counts: BTreeMap<i64, u32>,
    /// First interval not closed yet.
    next_interval: Option<i64>,
}

impl Rule {
    fn subject(&self) -> Arc<str> {
        let s = self
            .s
            .zone
            .as_ref()
            .or(self.s.line.as_ref())
            .or(self.s.camera.as_ref());
        Arc::from(s.map_or("", String::as_str))
    }

    fn machine(&mut self, subject: &Arc<str>) -> &mut Machine {
        let l = self.s.levels();
        self.machines
            .entry(Arc::clone(subject))
            .or_insert_with(|| Machine::new(l))
    }

    fn alerts(&self, subject: &Arc<str>, ts: Vec<Transition>, out: &mut Vec<Alert>) {
        out.extend(ts.into_iter().map(|t| Alert {
            rule: self.id.to_string(),
            rule_kind: self.s.kind,
            subject: (!subject.is_empty()).then(|| subject.to_string()),
            kind: if t.raised {
                AlertKind::Raised
            } else {
                AlertKind::Cleared
            },
            ts_ms: t.ts_ms,
            value: t.value,
            threshold: self.s.above,
        }));
    }
}

/// Every rule's state.
#[derive(Debug, Default)]
pub struct RuleEngine {
    rules: Vec<Rule>,
}

impl RuleEngine {
    /// The engine for `rules` (validated).
    pub fn new(rules: &[RuleSettings]) -> Self {
        Self {
            rules: rules
                .iter()
                .map(|s| Rule {
                    id: Arc::from(s.id.as_str()),
                    s: s.clone(),
                    machines: BTreeMap::new(),
                    counts: BTreeMap::new(),
                    next_interval: None,
                })
                .collect(),
        }
    }

    /// New rule definitions at `ts_ms` (a reload): a rule whose definition is unchanged (by id)
    /// keeps its state; a changed or removed one that is raised is cleared (at `ts_ms`, with
    /// its value then) and a changed one starts afresh, like a new one.
    pub fn swap(&mut self, rules: &[RuleSettings], ts_ms: i64, out: &mut Vec<Alert>) {
        let mut old = std::mem::take(&mut self.rules);
        for r in &mut old {
            if rules.contains(&r.s) {
                continue;
            }
            for (subject, m) in &r.machines {
                if m.raised() {
                    let value = m.value_at(ts_ms);
                    let t = Transition {
                        raised: false,
                        ts_ms,
                        value,
                    };
                    r.alerts(subject, vec![t], out);
                }
            }
        }
        let fresh = Self::new(rules).rules;
        self.rules = fresh
            .into_iter()
            .map(|n| match old.iter().position(|o| o.s == n.s) {
                Some(i) => old.swap_remove(i),
                None => n,
            })
            .collect();
    }

    /// Occupancy of `zone` (None: the store) changed at `ts_ms`.
    pub fn occupancy(&mut self, zone: Option<&str>, ts_ms: i64, value: u32, out: &mut Vec<Alert>) {
        self.set(
            RuleKind::Occupancy,
            zone,
            ts_ms,
            Signal::Level(f64::from(value)),
            out,
        );
    }

    /// The queue in `zone` has `value` people waiting from `ts_ms`.
    pub fn queue_length(&mut self, zone: &str, ts_ms: i64, value: u32, out: &mut Vec<Alert>) {
        self.set(
            RuleKind::QueueLength,
            Some(zone),
            ts_ms,
            Signal::Level(f64::from(value)),
            out,
        );
    }

    /// From `ts_ms`, the person longest in `zone` entered at `since` (None: nobody there).
    pub fn dwell(&mut self, zone: &str, ts_ms: i64, since: Option<i64>, out: &mut Vec<Alert>) {
        let s = since.map_or(Signal::Level(0.0), Signal::Since);
        self.set(RuleKind::Dwell, Some(zone), ts_ms, s, out);
    }

    /// `line` was crossed at `ts_ms`.
    pub fn crossing(&mut self, line: &str, direction: Direction, ts_ms: i64) {
        for r in &mut self.rules {
            if r.s.kind == RuleKind::Crossings
                && r.s.line.as_deref() == Some(line)
                && r.s.direction.is_none_or(|d| d == direction)
            {
                // One confirmed after its interval was closed counts in the open one.
                let i = ts_ms.div_euclid(interval(&r.s));
                let i = i.max(*r.next_interval.get_or_insert(i));
                *r.counts.entry(i).or_default() += 1;
            }
        }
    }

    /// `camera` delivered a frame captured at `ts_ms`.
    pub fn camera_frame(&mut self, camera: &str, ts_ms: i64, out: &mut Vec<Alert>) {
        self.camera(camera, ts_ms, Signal::Since(ts_ms), out);
    }

    /// `camera` was reported down at `ts_ms` (last frame at `last_frame_ms`).
    pub fn camera_down(
        &mut self,
        camera: &str,
        ts_ms: i64,
        last_frame_ms: i64,
        out: &mut Vec<Alert>,
    ) {
        self.camera(camera, ts_ms, Signal::Forced(last_frame_ms), out);
    }

    /// Moves time to `now_ms`: closes crossing intervals, raises and clears what is due.
    pub fn advance(&mut self, now_ms: i64, out: &mut Vec<Alert>) {
        let start = out.len();
        for r in &mut self.rules {
            let len = interval(&r.s);
            while let Some(i) = r.next_interval
                && (i + 1) * len + BUCKET_SETTLE_MS <= now_ms
            {
                let at = (i + 1) * len + BUCKET_SETTLE_MS;
                let n = r.counts.remove(&i).unwrap_or(0);
                let subject = r.subject();
                let t = r.machine(&subject).set(at, Signal::Level(f64::from(n)));
                r.alerts(&subject, t, out);
                r.next_interval = Some(i + 1);
            }
            let subjects: Vec<Arc<str>> = r.machines.keys().cloned().collect();
            for s in subjects {
                let t = r.machine(&s).advance(now_ms);
                r.alerts(&s, t, out);
            }
        }
        out[start..].sort_by_key(|a| a.ts_ms);
    }

    fn set(
        &mut self,
        kind: RuleKind,
        zone: Option<&str>,
        ts_ms: i64,
        sig: Signal,
        out: &mut Vec<Alert>,
    ) {
        for r in &mut self.rules {
            if r.s.kind == kind && r.s.zone.as_deref() == zone {
                let subject = r.subject();
                let t = r.machine(&subject).set(ts_ms, sig);
                r.alerts(&subject, t, out);
            }
        }
    }

    fn camera(&mut self, camera: &str, ts_ms: i64, sig: Signal, out: &mut Vec<Alert>) {
        for r in &mut self.rules {
            if r.s.kind == RuleKind::Camera && r.s.camera.as_deref().is_none_or(|c| c == camera) {
                let subject: Arc<str> = Arc::from(camera);
                let t = r.machine(&subject).set(ts_ms, sig);
                r.alerts(&subject, t, out);
            }
        }
    }
}

fn interval(s: &RuleSettings) -> i64 {
    s.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS).max(1)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
