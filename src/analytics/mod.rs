//! Store analytics, pure Rust like the tracker: floor calibration ([`homography`]), store-wide
//! trajectories joined across cameras ([`stitch`]), zones and visits ([`zones`]), the service
//! stage that runs them between the tracker and the store ([`stage`]), the pictures
//! ([`render`]) and the queries on their tables ([`query`]). Live footfall on the stitched
//! trajectories ([`footfall`]): counting lines ([`lines`]), queues ([`queues`]), occupancy
//! ([`occupancy`]), rules ([`rules`], [`hysteresis`]), as typed events ([`events`]).
//!
//! Time is always an input (the points' capture times); nothing here reads a clock.

/// Evaluation against synthetic ground truth (a development tool, for tests and benches).
#[doc(hidden)]
pub mod eval;
pub mod events;
pub mod footfall;
pub mod handover;
pub mod homography;
pub mod hysteresis;
pub mod lines;
pub mod occupancy;
pub mod queues;
pub mod rules;
pub mod stage;
pub mod stitch;
pub mod zones;

use serde::Deserialize;

pub use events::{EventBody, LiveEvent};
pub use footfall::{Footfall, FootfallSettings};
pub use stitch::{Event, Stitcher, StorePoint};
pub use zones::{Visit, VisitRules, Zone};

/// True for an id made of letters, digits, `-`, `_` or `.` (zones, lines, rules).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Default floor distance under which two cameras' positions are the same person, metres.
pub const DEFAULT_JOIN_DISTANCE_M: f64 = 1.0;
/// Default time a new camera track is watched before it is joined or given its own store id.
pub const DEFAULT_JOIN_WINDOW_MS: i64 = 5_000;
/// Default number of simultaneous positions needed to join while both cameras see the person.
pub const DEFAULT_JOIN_MIN_SAMPLES: usize = 5;
/// Default longest gap between one camera losing a person and another picking them up.
pub const DEFAULT_HANDOFF_GAP_MS: i64 = 2_000;
/// Default walking speed allowed across a hand-off gap, m/s.
pub const DEFAULT_HANDOFF_SPEED_MPS: f64 = 1.5;
/// Default time step of store trajectories: positions are fused over bins this long.
pub const DEFAULT_BIN_MS: i64 = 200;
/// Default shortest visit that counts.
pub const DEFAULT_MIN_DWELL_MS: i64 = 1_000;
/// Default time outside a zone before a visit is over.
pub const DEFAULT_EXIT_GRACE_MS: i64 = 1_500;
/// Default silence after which a camera track without an end marker is treated as ended.
pub const DEFAULT_MEMBER_TIMEOUT_MS: i64 = 10_000;

/// `[analytics]` settings: gates of the cross-camera join and the visit rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsParams {
    /// Floor distance (median over the overlap) under which two tracks are one person, m.
    pub join_distance_m: f64,
    /// How long a new camera track is watched before the join decision, ms.
    pub join_window_ms: i64,
    /// Simultaneous positions needed for a join while both cameras still see the person.
    pub join_min_samples: usize,
    /// Longest gap for a hand-off between cameras that do not overlap, ms.
    pub handoff_gap_ms: i64,
    /// Walking speed allowed across a hand-off gap, m/s.
    pub handoff_speed_mps: f64,
    /// Store trajectory time step, ms.
    pub bin_ms: i64,
    /// Shortest zone visit that counts, ms.
    pub min_dwell_ms: i64,
    /// Time outside a zone before the visit is over, ms.
    pub exit_grace_ms: i64,
    /// Silence after which a camera track is treated as ended, ms.
    pub member_timeout_ms: i64,
    /// Length of the periods of the footfall `counts` events, ms.
    pub counts_interval_ms: i64,
}

impl Default for AnalyticsParams {
    fn default() -> Self {
        Self {
            join_distance_m: DEFAULT_JOIN_DISTANCE_M,
            join_window_ms: DEFAULT_JOIN_WINDOW_MS,
            join_min_samples: DEFAULT_JOIN_MIN_SAMPLES,
            handoff_gap_ms: DEFAULT_HANDOFF_GAP_MS,
            handoff_speed_mps: DEFAULT_HANDOFF_SPEED_MPS,
            bin_ms: DEFAULT_BIN_MS,
            min_dwell_ms: DEFAULT_MIN_DWELL_MS,
            exit_grace_ms: DEFAULT_EXIT_GRACE_MS,
            member_timeout_ms: DEFAULT_MEMBER_TIMEOUT_MS,
            counts_interval_ms: footfall::DEFAULT_COUNTS_INTERVAL_MS,
        }
    }
}

impl AnalyticsParams {
    /// Every out-of-range value, as `key ...` messages.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.join_distance_m > 0.0 && self.join_distance_m <= 20.0) {
            p.push("join_distance_m must be above 0 and at most 20".into());
        }
        if !(100..=30_000).contains(&self.join_window_ms) {
            p.push("join_window_ms must be from 100 to 30000".into());
        }
        if !(1..=1000).contains(&self.join_min_samples) {
            p.push("join_min_samples must be from 1 to 1000".into());
        }
        if !(0..=60_000).contains(&self.handoff_gap_ms) {
            p.push("handoff_gap_ms must be from 0 to 60000".into());
        }
        if !(self.handoff_speed_mps >= 0.0 && self.handoff_speed_mps <= 10.0) {
            p.push("handoff_speed_mps must be from 0 to 10".into());
        }
        if !(20..=10_000).contains(&self.bin_ms) {
            p.push("bin_ms must be from 20 to 10000".into());
        }
        if !(0..=3_600_000).contains(&self.min_dwell_ms) {
            p.push("min_dwell_ms must be from 0 to 3600000".into());
        }
        if !(0..=600_000).contains(&self.exit_grace_ms) {
            p.push("exit_grace_ms must be from 0 to 600000".into());
        }
        if !(1_000..=3_600_000).contains(&self.member_timeout_ms) {
            p.push("member_timeout_ms must be from 1000 to 3600000".into());
        }
        if !(1_000..=86_400_000).contains(&self.counts_interval_ms) {
            p.push("counts_interval_ms must be from 1000 to 86400000".into());
        }
        p
    }

    /// The visit rules part.
    pub fn visit_rules(&self) -> VisitRules {
        VisitRules {
            min_dwell_ms: self.min_dwell_ms,
            exit_grace_ms: self.exit_grace_ms,
        }
    }
}
