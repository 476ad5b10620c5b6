//! The footfall engine inside the analytics stage: fed the stitcher's events, camera points
//! (for lines drawn on a camera), frames and track ends; advanced from the newest capture time
//! and, when nothing arrives, from the time elapsed since (so a camera going dark is noticed).
//!
//! Input: what passes through the stage. Output: [`LiveEvent`]s, drained after each message.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::analytics::events::CameraStatus;
use crate::analytics::footfall::{Footfall, FootfallSettings, SettingsError, Swapped};
use crate::analytics::{Event, LiveEvent, VisitRules, Zone};
use crate::messages::TrackUpdate;

/// New zone, line, queue, occupancy and rule definitions from a config reload, for the
/// running stage to swap in between two messages ([`Live::swap`]).
#[derive(Debug, Clone)]
pub struct Definitions {
    /// `[[lines]]`, queues, `[occupancy]`, `[[rules]]` (the counts period is not swapped).
    pub settings: FootfallSettings,
    /// `[[zones]]`.
    pub zones: Vec<Zone>,
}

/// The footfall engine and the stage's idea of the capture clock.
pub struct Live {
    ff: Footfall,
    /// How long after capture the stitcher releases positions, ms.
    latency_ms: i64,
    /// A camera without a frame this long (capture time) is reported down, ms.
    down_after_ms: i64,
    /// Newest capture time seen.
    newest_ms: Option<i64>,
    /// Per camera: last frame's capture time and whether it is reported down.
    cameras: BTreeMap<Arc<str>, (i64, bool)>,
}

impl Live {
    /// The engine for `settings` over `zones`; positions are released `latency_ms` after
    /// capture; a camera silent for `down_after_ms` is reported down.
    pub fn new(
        settings: &FootfallSettings,
        zones: Vec<Zone>,
        visit: VisitRules,
        latency_ms: i64,
        down_after_ms: i64,
    ) -> Result<Self, SettingsError> {
        Ok(Self {
            ff: Footfall::new(settings, zones, visit)?,
            latency_ms,
            down_after_ms,
            newest_ms: None,
            cameras: BTreeMap::new(),
        })
    }

    /// Swaps in reloaded definitions (see [`Footfall::swap`] for what keeps its state).
    pub fn swap(&mut self, d: &Definitions) -> Result<Swapped, SettingsError> {
        self.ff.swap(&d.settings, d.zones.clone())
    }

    /// A camera frame captured at `ts_ms`.
    pub fn frame(&mut self, camera: &Arc<str>, ts_ms: i64) {
        self.ff.camera_frame(camera, ts_ms);
        let entry = self
            .cameras
            .entry(Arc::clone(camera))
            .or_insert((ts_ms, false));
        entry.0 = entry.0.max(ts_ms);
        if entry.1 {
            entry.1 = false;
            self.ff.camera_status(camera, ts_ms, CameraStatus::Up);
        }
        let newest = self.newest_ms.map_or(ts_ms, |n| n.max(ts_ms));
        self.newest_ms = Some(newest);
        self.check_cameras(newest);
        self.ff.tick(newest - self.latency_ms);
    }

    /// A camera track point: its box's bottom centre counts on lines drawn on that camera.
    pub fn camera_point(&mut self, p: &TrackUpdate) {
        let b = p.bbox;
        let foot = (f64::from(b.x + b.w / 2.0), f64::from(b.y + b.h));
        if foot.0.is_finite() && foot.1.is_finite() {
            self.ff
                .camera_point(&p.camera, p.track_id, p.ts_ms, foot, f64::from(b.h));
        }
    }

    /// A camera track ended.
    pub fn camera_track_ended(&mut self, camera: &str, track_id: u64) {
        self.ff.camera_track_ended(camera, track_id);
    }

    /// A stitcher event (positions and ends).
    pub fn stitched(&mut self, e: &Event) {
        self.ff.stitched(e);
    }

    /// Nothing arrived for a while: the capture clock is taken to have moved on by
    /// `idle_ms` since the newest frame; cameras silent too long are reported down. Returns
    /// the capture time now estimated.
    pub fn idle(&mut self, idle_ms: i64) -> Option<i64> {
        let now = self.newest_ms? + idle_ms;
        self.check_cameras(now);
        self.ff.tick(now - self.latency_ms);
        Some(now)
    }

    /// Reports down every camera without a frame for `down_after_ms` before `now`.
    fn check_cameras(&mut self, now: i64) {
        let down_after = self.down_after_ms;
        let mut down = Vec::new();
        for (cam, (last, is_down)) in &mut self.cameras {
            if !*is_down && now - *last >= down_after {
                *is_down = true;
                down.push((Arc::clone(cam), *last + down_after));
            }
        }
        for (cam, ts) in down {
            self.ff.camera_status(&cam, ts, CameraStatus::Down);
        }
    }

    /// End of input: every trajectory ended, the period in progress reported.
    pub fn finish(&mut self) {
        self.ff.finish();
    }

    /// Events since the last call.
    pub fn drain(&mut self) -> Vec<LiveEvent> {
        self.ff.drain()
    }
}
