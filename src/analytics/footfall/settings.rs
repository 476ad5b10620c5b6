//! Footfall settings, as the config layer assembles them: `[[lines]]`, queues (zones marked
//! `queue = true`), `[occupancy]`, `[[rules]]` and the counts period; validation collects
//! every problem.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::analytics::handover::Handover;
use crate::analytics::lines::LineSettings;
use crate::analytics::occupancy::OccupancySettings;
use crate::analytics::queues::{QueueRules, QueueSettings, QueueTracker};
use crate::analytics::rules::{Known, RuleSettings};
use crate::analytics::zones::Zone;

/// Default length of the periods of [`Counts`] events, ms.
pub const DEFAULT_COUNTS_INTERVAL_MS: i64 = 60_000;

/// Lines, queues, occupancy, rules and the counts period, as the config layer assembles them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FootfallSettings {
    /// `[[lines]]`.
    pub lines: Vec<LineSettings>,
    /// Queues (`[[zones]] queue = true`, `service`).
    pub queues: Vec<QueueSettings>,
    /// `[occupancy]`.
    pub occupancy: OccupancySettings,
    /// `[[rules]]`.
    pub rules: Vec<RuleSettings>,
    /// Length of the periods of counts events, ms.
    pub counts_interval_ms: i64,
}

impl Default for FootfallSettings {
    fn default() -> Self {
        Self {
            lines: Vec::new(),
            queues: Vec::new(),
            occupancy: OccupancySettings::default(),
            rules: Vec::new(),
            counts_interval_ms: DEFAULT_COUNTS_INTERVAL_MS,
        }
    }
}

impl FootfallSettings {
    /// Every problem, given the zones and (when known) the camera ids.
    pub fn validate(&self, zones: &[Zone], cameras: Option<&[&str]>) -> Vec<String> {
        let zone_ids: Vec<&str> = zones.iter().map(|z| &*z.id).collect();
        let mut p = Vec::new();
        let unique = |what: &str, ids: Vec<&str>, p: &mut Vec<String>| {
            let mut seen = BTreeSet::new();
            for id in ids {
                if !seen.insert(id) {
                    p.push(format!("duplicate {what} id {id:?}"));
                }
            }
        };
        unique(
            "line",
            self.lines.iter().map(|l| l.id.as_str()).collect(),
            &mut p,
        );
        unique(
            "queue",
            self.queues.iter().map(|q| q.zone.as_str()).collect(),
            &mut p,
        );
        unique(
            "rule",
            self.rules.iter().map(|r| r.id.as_str()).collect(),
            &mut p,
        );
        for l in &self.lines {
            p.extend(l.validate());
            if let (Some(c), Some(cams)) = (&l.camera, cameras)
                && !cams.contains(&c.as_str())
            {
                p.push(format!("line {:?}: no such camera {c:?}", l.id));
            }
        }
        for q in &self.queues {
            p.extend(q.validate(&zone_ids));
        }
        p.extend(self.occupancy.validate());
        let queues: Vec<&str> = self.queues.iter().map(|q| q.zone.as_str()).collect();
        let lines: Vec<&str> = self.lines.iter().map(|l| l.id.as_str()).collect();
        let known = Known {
            zones: &zone_ids,
            queues: &queues,
            lines: &lines,
            cameras,
        };
        for r in &self.rules {
            p.extend(r.validate(&known));
        }
        if !(1_000..=86_400_000).contains(&self.counts_interval_ms) {
            p.push("counts_interval_ms must be from 1000 to 86400000".into());
        }
        p
    }
}

impl FootfallSettings {
    /// A tracker per queue whose zones exist in `zones`.
    pub(super) fn queue_trackers(&self, zones: &[Zone], min_dwell_ms: i64) -> Vec<QueueTracker> {
        let index = |id: &str| zones.iter().position(|z| &*z.id == id);
        self.queues
            .iter()
            .filter_map(|q| {
                let rules = QueueRules {
                    min_dwell_ms,
                    handover: Handover {
                        window_ms: q.handover_ms,
                        distance: q.handover_m,
                    },
                    period_ms: self.counts_interval_ms,
                };
                let service = q.service.as_deref().and_then(index);
                Some(QueueTracker::new(zones, index(&q.zone)?, service, rules))
            })
            .collect()
    }
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("footfall settings: {}", .0.join("; "))]
pub struct SettingsError(pub Vec<String>);
