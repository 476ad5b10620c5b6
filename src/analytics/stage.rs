//! The analytics stage between the tracker and the store: forwards every message unchanged and
//! adds the store-wide trajectory events ([`Event`]) computed from the floor positions in them.
//!
//! Input: [`StoreMsg`]s from the tracker stage. Output: the same messages plus
//! `StoreMsg::Analytics` events, in an order the writer can follow (a camera track's first
//! point before its membership, its membership before its end marker).

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, SendError, Sender};

use super::{AnalyticsParams, Stitcher, Zone};
use crate::messages::StoreMsg;

/// Starts the analytics thread; it ends when the tracker's sender is gone (after releasing
/// every store trajectory) or when the store is gone.
pub fn spawn(
    params: AnalyticsParams,
    zones: Vec<Zone>,
    rx: Receiver<StoreMsg>,
    tx: Sender<StoreMsg>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("analytics".into())
        .spawn(move || {
            let mut st = Stitcher::new(params, zones);
            for msg in rx.iter() {
                if handle(&mut st, msg, &tx).is_err() {
                    return;
                }
            }
            st.finish();
            let _ = send_events(&mut st, &tx);
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

/// Feeds one message to the stitcher and passes it on with the events it caused.
pub fn handle(
    st: &mut Stitcher,
    msg: StoreMsg,
    tx: &Sender<StoreMsg>,
) -> Result<(), SendError<StoreMsg>> {
    match &msg {
        StoreMsg::Frame { ts_ms, .. } => st.advance(*ts_ms),
        StoreMsg::Point(p) => {
            if let Some(pos) = p.floor {
                st.point(&p.camera, p.track_id, p.ts_ms, pos);
            }
        }
        StoreMsg::TrackEnded { camera, track_id } => {
            // Membership (decided now for a short track) must reach the writer first.
            st.track_ended(camera, *track_id);
            send_events(st, tx)?;
        }
        StoreMsg::Analytics(_) => {}
    }
    tx.send(msg)?;
    send_events(st, tx)
}

fn send_events(st: &mut Stitcher, tx: &Sender<StoreMsg>) -> Result<(), SendError<StoreMsg>> {
    for e in st.drain() {
        tx.send(StoreMsg::Analytics(e))?;
    }
    Ok(())
}
