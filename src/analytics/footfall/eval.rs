//! Running footfall on synthetic scenes as the service would, for scoring against their
//! ground truth ([`crate::synth::door`], [`crate::synth::queue`]).
//!
//! Input: camera track points and ends ([`crate::synth::tracks`]). They go through the real
//! [`Stitcher`] in capture-time order (a camera track is reported ended 2 s after its last
//! point, the tracker's lost time), its store trajectories through [`Footfall`], and the camera
//! points also to lines drawn on a camera; time advances as the stage would advance it (the
//! newest capture time minus the stitcher's latency). Output: the events, and what the scores
//! need from them.

use std::sync::Arc;

use super::{Footfall, FootfallSettings, SettingsError};
use crate::analytics::events::{EventBody, LiveEvent};
use crate::analytics::lines::Direction;
use crate::analytics::queues::Outcome;
use crate::analytics::{AnalyticsParams, Event, Stitcher, Zone};
use crate::synth::tracks::{CamPoint, TrackEnd};

/// A camera track is reported ended this long after its last point.
const END_AFTER_MS: i64 = 2_000;

/// Camera id of camera index `i` (`cam1`, `cam2`, ...).
pub fn camera_id(i: usize) -> Arc<str> {
    Arc::from(format!("cam{}", i + 1).as_str())
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Every event, in the order produced.
    pub events: Vec<LiveEvent>,
    /// Which store trajectory each camera track joined: (store, camera index, track).
    pub members: Vec<(u64, usize, u64)>,
}

/// Runs the points through the stitcher and footfall.
pub fn run(
    points: &[CamPoint],
    ends: &[TrackEnd],
    params: &AnalyticsParams,
    zones: Vec<Zone>,
    settings: &FootfallSettings,
) -> Result<Run, SettingsError> {
    let mut ff = Footfall::new(settings, zones.clone(), params.visit_rules())?;
    let mut st = Stitcher::new(params.clone(), zones);
    let last = points
        .iter()
        .map(|p| p.camera)
        .chain(ends.iter().map(|e| e.camera));
    let cams: Vec<Arc<str>> = (0..=last.max().unwrap_or(0)).map(camera_id).collect();
    let mut ends: Vec<(i64, usize, u64)> = ends
        .iter()
        .map(|e| (e.last_ms + END_AFTER_MS, e.camera, e.track))
        .collect();
    ends.sort();
    let mut ends = ends.into_iter().peekable();
    let mut out = Run::default();
    let mut frame = (i64::MIN, usize::MAX);
    for p in points {
        while let Some((at, c, t)) = ends.next_if(|e| e.0 <= p.ts_ms) {
            st.advance(at);
            st.track_ended(&cams[c], t);
            ff.camera_track_ended(&cams[c], t);
        }
        if frame != (p.ts_ms, p.camera) {
            frame = (p.ts_ms, p.camera);
            ff.camera_frame(&cams[p.camera], p.ts_ms);
        }
        st.point(&cams[p.camera], p.track, p.ts_ms, p.floor);
        ff.camera_point(&cams[p.camera], p.track, p.ts_ms, p.foot, p.box_h);
        for e in st.drain() {
            out.member(&e, &cams);
            ff.stitched(&e);
        }
        ff.tick(p.ts_ms - st.latency_ms());
        out.events.extend(ff.drain());
    }
    for (_, c, t) in ends {
        st.track_ended(&cams[c], t);
        ff.camera_track_ended(&cams[c], t);
    }
    st.finish();
    for e in st.drain() {
        out.member(&e, &cams);
        ff.stitched(&e);
    }
    ff.finish();
    out.events.extend(ff.drain());
    Ok(out)
}

impl Run {
    fn member(&mut self, e: &Event, cams: &[Arc<str>]) {
        if let Event::Member {
            store,
            camera,
            track_id,
            ..
        } = e
            && let Some(c) = cams.iter().position(|c| c == camera)
        {
            self.members.push((*store, c, *track_id));
        }
    }
}

/// Crossings of `line` per direction: (in, out).
pub fn crossings(events: &[LiveEvent], line: &str) -> (usize, usize) {
    let dir = |d: Direction| {
        events
            .iter()
            .filter(|e| matches!(&e.body, EventBody::LineCrossing(c) if c.line == line && c.direction == d))
            .count()
    };
    (dir(Direction::In), dir(Direction::Out))
}

/// Finished waits in `queue`: (wait ms, outcome).
pub fn waits(events: &[LiveEvent], queue: &str) -> Vec<(i64, Outcome)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::QueueWait(w) if w.queue == queue => Some((w.wait_ms, w.outcome)),
            _ => None,
        })
        .collect()
}
