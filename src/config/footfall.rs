//! Checks for the footfall parts of a config: `[[lines]]`, queues (`[[zones]] queue = true`,
//! `service`), `[occupancy]`, `[[rules]]` and `[analytics] counts_interval_ms`. Every problem is
//! collected with the position of the table at fault (or of the key, for a zone's queue keys);
//! the checks themselves are the analytics' own ([`crate::analytics::footfall`]).

use std::collections::HashMap;

use toml::Spanned;

use super::raw::RawConfig;
use super::validate::{Problems, line_col};
use crate::analytics::FootfallSettings;
use crate::analytics::queues::QueueSettings;
use crate::analytics::rules::Known;
use crate::analytics::zones::Zone;

/// Checks the footfall tables against the zones and cameras that loaded.
pub(super) fn footfall(
    raw: &RawConfig,
    zones: &[Zone],
    cameras: &[&str],
    p: &mut Problems<'_>,
) -> FootfallSettings {
    let zone_ids: Vec<&str> = zones.iter().map(|z| &*z.id).collect();
    let mut seen = HashMap::new();
    for l in &raw.lines {
        for msg in l.get_ref().validate() {
            p.at(l, msg);
        }
        if let Some(c) = &l.get_ref().camera
            && !cameras.contains(&c.as_str())
        {
            p.at(
                l,
                format!("line {:?}: no such camera {c:?}", l.get_ref().id),
            );
        }
        unique("line", &l.get_ref().id, l, p, &mut seen);
    }
    let queues = queues(raw, &zone_ids, p);
    let occupancy = match &raw.occupancy {
        Some(o) => {
            for msg in o.get_ref().validate() {
                p.at(o, msg);
            }
            o.get_ref().clone()
        }
        None => Default::default(),
    };
    let queue_ids: Vec<&str> = queues.iter().map(|q| q.zone.as_str()).collect();
    let line_ids: Vec<&str> = raw.lines.iter().map(|l| l.get_ref().id.as_str()).collect();
    let known = Known {
        zones: &zone_ids,
        queues: &queue_ids,
        lines: &line_ids,
        cameras: Some(cameras),
    };
    let mut seen = HashMap::new();
    for r in &raw.rules {
        for msg in r.get_ref().validate(&known) {
            p.at(r, msg);
        }
        unique("rule", &r.get_ref().id, r, p, &mut seen);
    }
    FootfallSettings {
        lines: raw.lines.iter().map(|l| l.get_ref().clone()).collect(),
        queues,
        occupancy,
        rules: raw.rules.iter().map(|r| r.get_ref().clone()).collect(),
        counts_interval_ms: raw.analytics.counts_interval_ms,
    }
}

/// Queues from the zones marked `queue = true`; `service` names the zone where they are served.
fn queues(raw: &RawConfig, zone_ids: &[&str], p: &mut Problems<'_>) -> Vec<QueueSettings> {
    let mut out = Vec::new();
    for z in &raw.zones {
        let z = z.get_ref();
        let id = z.id.get_ref().trim();
        let queue = z.queue.as_ref().is_some_and(|q| *q.get_ref());
        match (&z.service, queue) {
            (Some(s), false) => p.at(
                s,
                format!(
                    "zone {id:?}: service needs queue = true (it names where the queue is served)"
                ),
            ),
            (service, true) => {
                let q = QueueSettings::new(id, service.as_ref().map(|s| s.get_ref().as_str()));
                // A zone that failed its own checks is reported once, as itself.
                if !zone_ids.contains(&id) {
                    continue;
                }
                for msg in q.validate(zone_ids) {
                    match (&z.service, &z.queue) {
                        (Some(s), _) if msg.contains("service") => p.at(s, msg),
                        (_, Some(at)) => p.at(at, msg),
                        (_, None) => p.at(&z.id, msg),
                    }
                }
                out.push(q);
            }
            (None, false) => {}
        }
    }
    out
}

/// One line per line, queue and rule, and the counts period, for `check-config`.
pub fn describe(f: &FootfallSettings) -> Vec<String> {
    let mut out = Vec::new();
    for l in &f.lines {
        let place = match &l.camera {
            Some(c) => format!("on camera {c}'s picture, {} vertices", l.pixels.len()),
            None => format!("on the floor, {} vertices", l.points.len()),
        };
        let door = if l.door {
            ", door (corrects store occupancy)"
        } else {
            ""
        };
        out.push(format!(
            "line {}: {place}{door}; band {} m, confirm {} ms",
            l.id, l.band_m, l.confirm_ms
        ));
    }
    for q in &f.queues {
        let service = q
            .service
            .as_deref()
            .map_or("no service zone (waits end \"left\")".to_string(), |s| {
                format!("served in {s}")
            });
        out.push(format!("queue {}: {service}", q.zone));
    }
    for r in &f.rules {
        use crate::analytics::rules::RuleKind;
        let kind = serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let target = match [&r.zone, &r.line, &r.camera].into_iter().flatten().next() {
            Some(t) => t.clone(),
            None if r.kind == RuleKind::Camera => "every camera".into(),
            None => "the store".into(),
        };
        out.push(format!(
            "rule {}: {kind} of {target} above {} (clear at {}) for {} ms",
            r.id,
            r.above,
            r.clear_at.unwrap_or(r.above),
            r.for_ms
        ));
    }
    if !out.is_empty() {
        out.push(format!(
            "occupancy: present {} ms, door count re-anchored after {} ms empty; counts every {} ms",
            f.occupancy.present_ms, f.occupancy.empty_reset_ms, f.counts_interval_ms
        ));
    }
    out
}

/// Reports a second table with the same id, pointing at the first.
fn unique<T>(
    what: &str,
    id: &str,
    at: &Spanned<T>,
    p: &mut Problems<'_>,
    seen: &mut HashMap<String, (usize, usize)>,
) {
    if let Some((line, col)) = seen.get(id) {
        p.at(
            at,
            format!("duplicate {what} id {id:?} (first defined at {line}:{col})"),
        );
    } else {
        seen.insert(id.to_string(), line_col(p.text, at.span().start));
    }
}

#[cfg(test)]
mod tests;
