//! The analytics stage between the tracker and the store: forwards every message unchanged and
//! adds the store-wide trajectory events ([`Event`]) computed from the floor positions in them,
//! and the footfall events ([`LiveEvent`](crate::analytics::LiveEvent)) computed on those
//! ([`live`]).
//!
//! Input: [`StoreMsg`]s from the tracker stage. Output: the same messages plus
//! `StoreMsg::Analytics` and `StoreMsg::Live` events, in an order the writer can follow (a
//! camera track's first point before its membership, its membership before its end marker, a
//! store trajectory's positions before the footfall events about it). Zone visits come from
//! the footfall engine only (the stitcher is given no zones), so enter/leave events and
//! `zone_visits` rows are the same visits.
//!
//! A config reload sends new zone and footfall [`Definitions`] on a channel of their own; the
//! stage swaps them in between two messages (at a frame boundary), so every message is
//! counted with one set of definitions.

pub mod live;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendError, Sender};

use super::{AnalyticsParams, Stitcher};
use crate::messages::StoreMsg;
pub use live::{Definitions, Live};

/// With no message for this long, the footfall engine is advanced by the time elapsed.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Starts the analytics thread; it ends when the tracker's sender is gone (after releasing
/// every store trajectory) or when the store is gone. Definitions arriving on `defs` are
/// swapped in before the next message.
pub fn spawn(
    params: AnalyticsParams,
    mut live: Live,
    rx: Receiver<StoreMsg>,
    defs: Receiver<Definitions>,
    tx: Sender<StoreMsg>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("analytics".into())
        .spawn(move || {
            let mut st = Stitcher::new(params, Vec::new());
            let mut last = Instant::now();
            loop {
                if let Ok(d) = defs.try_recv()
                    && swap(&mut live, &d, &tx).is_err()
                {
                    return;
                }
                let sent = match rx.recv_timeout(IDLE_TICK) {
                    Ok(msg) => {
                        last = Instant::now();
                        handle(&mut st, &mut live, msg, &tx)
                    }
                    Err(RecvTimeoutError::Timeout) => idle(&mut st, &mut live, last, &tx),
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if sent.is_err() {
                    return;
                }
            }
            st.finish();
            let _ = send_events(&mut st, &mut live, &tx);
            live.finish();
            let _ = send_live(&mut live, &tx);
            let s = st.stats();
            tracing::info!(
                started = s.started,
                joined_overlap = s.joined_overlap,
                joined_handoff = s.joined_handoff,
                late = s.late,
                "Store trajectories done."
            );
        })
}

/// Feeds one message to the stitcher and the footfall engine and passes it on with the
/// events it caused.
pub fn handle(
    st: &mut Stitcher,
    live: &mut Live,
    msg: StoreMsg,
    tx: &Sender<StoreMsg>,
) -> Result<(), SendError<StoreMsg>> {
    match &msg {
        StoreMsg::Frame { camera, ts_ms, .. } => {
            st.advance(*ts_ms);
            live.frame(camera, *ts_ms);
        }
        StoreMsg::Point(p) => {
            // A non-finite position (a foot at the horizon) would poison a fused bin; the
            // writer refuses such points too.
            if let Some(pos) = p.floor
                && pos.0.is_finite()
                && pos.1.is_finite()
            {
                st.point(&p.camera, p.track_id, p.ts_ms, pos);
            }
            live.camera_point(p);
        }
        StoreMsg::TrackEnded { camera, track_id } => {
            // Membership (decided now for a short track) must reach the writer first, and a
            // crossing confirmed by the end before the end marker (its row is still known).
            st.track_ended(camera, *track_id);
            send_events(st, live, tx)?;
            live.camera_track_ended(camera, *track_id);
            send_live(live, tx)?;
        }
        StoreMsg::Analytics(_) | StoreMsg::Live(_) => {}
    }
    tx.send(msg)?;
    send_events(st, live, tx)
}

/// Swaps in reloaded definitions and passes on the events that ends (visits closed, alerts
/// cleared, queue lengths).
fn swap(
    live: &mut Live,
    d: &Definitions,
    tx: &Sender<StoreMsg>,
) -> Result<(), SendError<StoreMsg>> {
    match live.swap(d) {
        Ok(s) => tracing::info!(
            kept = s.kept.len(),
            restarted = ?s.restarted,
            added = ?s.added,
            removed = ?s.removed,
            "Zones, lines, queues, occupancy and rules swapped in; counting with them now."
        ),
        Err(e) => tracing::error!("Reloaded definitions refused, the running ones stay: {e}"),
    }
    send_live(live, tx)
}

/// Nothing arrived since `last`: time moves on for the stitcher and the footfall engine.
fn idle(
    st: &mut Stitcher,
    live: &mut Live,
    last: Instant,
    tx: &Sender<StoreMsg>,
) -> Result<(), SendError<StoreMsg>> {
    let idle_ms = i64::try_from(last.elapsed().as_millis()).unwrap_or(i64::MAX);
    if let Some(now) = live.idle(idle_ms) {
        st.advance(now);
    }
    send_events(st, live, tx)
}

/// The stitcher's events to the writer and the footfall engine, then the footfall events.
fn send_events(
    st: &mut Stitcher,
    live: &mut Live,
    tx: &Sender<StoreMsg>,
) -> Result<(), SendError<StoreMsg>> {
    for e in st.drain() {
        live.stitched(&e);
        tx.send(StoreMsg::Analytics(e))?;
    }
    send_live(live, tx)
}

fn send_live(live: &mut Live, tx: &Sender<StoreMsg>) -> Result<(), SendError<StoreMsg>> {
    for e in live.drain() {
        tx.send(StoreMsg::Live(Box::new(e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::analytics::Zone;
    use crate::geometry::BBox;
    use crate::messages::TrackUpdate;
    use crate::stats::Stats;
    use crate::store::Store;
    use crate::track::PointKind;

    /// Two cameras see one person walking 10 m along y = 2 (0.2 m apart in their calibration),
    /// a third track on cam1 is short and ends early: through the stage and the real writer,
    /// every camera track gets a store trajectory, the two long ones the same.
    #[test]
    fn stage_and_writer_store_joined_trajectories_and_visits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let cams: Vec<crate::config::CameraConfig> = ["cam1", "cam2"]
            .iter()
            .map(|id| crate::config::CameraConfig::new(id, "rtsp://127.0.0.1/x".parse().unwrap()))
            .collect();
        store.register_cameras(&cams).unwrap();
        let (to_writer, writer_rx) = crossbeam_channel::bounded(64);
        let (to_stage, stage_rx) = crossbeam_channel::bounded(64);
        let writer = store
            .spawn_writer(
                writer_rx,
                crate::store::WriterOptions {
                    flush_interval: Duration::from_millis(10),
                    retention: crate::store::retention::Policy::default(),
                },
                Arc::new(Stats::new(2)),
            )
            .unwrap();
        let zone = Zone {
            id: Arc::from("middle"),
            name: "Middle".into(),
            polygon: vec![(4.0, 0.0), (6.0, 0.0), (6.0, 4.0), (4.0, 4.0)],
        };
        let p = AnalyticsParams::default();
        let settings = crate::analytics::FootfallSettings::default();
        let live = Live::new(&settings, vec![zone], p.visit_rules(), 6_000, 10_000).unwrap();
        let stage = spawn(p, live, stage_rx, crossbeam_channel::never(), to_writer).unwrap();
        let point = |cam: &str, id: u64, ts_ms: i64, x: f64| {
            StoreMsg::Point(TrackUpdate {
                camera: Arc::from(cam),
                track_id: id,
                ts_ms,
                bbox: BBox::new(10.0, 10.0, 20.0, 50.0),
                score: 0.9,
                floor: Some((x, 2.0)),
                kind: PointKind::Observed,
            })
        };
        for i in 0..100i64 {
            let t = 10_000 + i * 100;
            let x = i as f64 * 0.1;
            to_stage.send(point("cam1", 1, t, x)).unwrap();
            to_stage.send(point("cam2", 4, t + 30, x + 0.2)).unwrap();
            if i < 10 {
                to_stage.send(point("cam1", 2, t, 9.0)).unwrap();
            }
            if i == 12 {
                let ended = StoreMsg::TrackEnded {
                    camera: Arc::from("cam1"),
                    track_id: 2,
                };
                to_stage.send(ended).unwrap();
            }
        }
        drop(to_stage);
        stage.join().unwrap();
        writer.join().unwrap().unwrap();

        let c = crate::store::open_read_only(&path).unwrap();
        let members: Vec<(String, i64)> = c
            .prepare(
                "SELECT t.camera || '/' || t.id, m.store_track FROM store_members m
                 JOIN tracks t ON t.id = m.track ORDER BY t.id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(members.len(), 3, "{members:?}");
        // Labels are camera/row: rows 1 and 3 are cam1's tracks 1 and 2, row 2 is cam2's.
        let store_of = |label: &str| members.iter().find(|m| m.0 == label).unwrap().1;
        assert_eq!(store_of("cam1/1"), store_of("cam2/2"));
        assert_ne!(store_of("cam1/1"), store_of("cam1/3"));
        let (n, ended): (i64, i64) = c
            .query_row(
                "SELECT points, ended FROM store_tracks WHERE id = ?1",
                [store_of("cam1/1")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, ended), (50, 1));
        let visit: (String, i64, i64) = c
            .query_row(
                "SELECT zone, enter_ms, leave_ms FROM zone_visits",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(visit.0, "middle");
        assert!((visit.2 - visit.1 - 2_000).abs() <= 200, "{visit:?}");
    }
}
