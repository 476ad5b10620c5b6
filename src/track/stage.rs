//! The tracking stage: owns one [`Tracker`] per camera on its own thread.
//!
//! Input: [`Detections`] from the detector. Output: [`StoreMsg`]s (a frame row with its person
//! count, a point per confirmed track, an end marker per finished track) to the store. Floor
//! positions are computed here from the camera's homography, if it has one.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{Tracker, TrackerParams};
use crate::config::CameraConfig;
use crate::geometry::apply_homography;
use crate::messages::{Detections, StoreMsg, TrackUpdate};
use crate::stats::{self, Stats};

struct CameraTrack {
    id: Arc<str>,
    homography: Option<[f64; 9]>,
    tracker: Tracker,
}

/// Starts the tracking thread. It ends when the detector's sender is gone, after ending every
/// open track, or when the store is gone.
pub fn spawn(
    cameras: &[CameraConfig],
    params: TrackerParams,
    rx: Receiver<Detections>,
    tx: Sender<StoreMsg>,
    stats: Arc<Stats>,
) -> std::io::Result<JoinHandle<()>> {
    let mut cams: Vec<CameraTrack> = cameras
        .iter()
        .map(|c| CameraTrack {
            id: Arc::from(c.id.as_str()),
            homography: c.homography,
            tracker: Tracker::new(params.clone()),
        })
        .collect();
    std::thread::Builder::new()
        .name("tracker".into())
        .spawn(move || {
            for dets in rx.iter() {
                let Some(cam) = cams.get_mut(dets.camera) else {
                    continue;
                };
                if process(cam, &dets, &tx, &stats).is_err() {
                    return;
                }
            }
            for cam in &mut cams {
                for track_id in cam.tracker.finish() {
                    let msg = StoreMsg::TrackEnded {
                        camera: Arc::clone(&cam.id),
                        track_id,
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        })
}

fn process(
    cam: &mut CameraTrack,
    dets: &Detections,
    tx: &Sender<StoreMsg>,
    stats: &Stats,
) -> Result<(), crossbeam_channel::SendError<StoreMsg>> {
    tx.send(StoreMsg::Frame {
        camera: Arc::clone(&cam.id),
        seq: dets.seq,
        ts_ms: dets.captured_ms,
        persons: dets.persons,
    })?;
    let out = cam.tracker.update(dets.captured_ms, &dets.boxes);
    stats::add(&stats.tracks, out.confirmed.len() as u64);
    let (w, h) = (dets.source_size.0 as f32, dets.source_size.1 as f32);
    for u in out.updates {
        // The filtered box may overhang the picture as a person leaves it.
        let bbox = u.bbox.clip(w, h);
        if bbox.w < 1.0 || bbox.h < 1.0 {
            continue;
        }
        let floor = cam
            .homography
            .as_ref()
            .and_then(|hm| apply_homography(hm, bbox.foot()));
        stats::inc(&stats.points);
        tx.send(StoreMsg::Point(TrackUpdate {
            camera: Arc::clone(&cam.id),
            track_id: u.id,
            ts_ms: u.ts_ms,
            bbox,
            score: u.score,
            floor,
            kind: u.kind,
        }))?;
    }
    for track_id in out.ended {
        tx.send(StoreMsg::TrackEnded {
            camera: Arc::clone(&cam.id),
            track_id,
        })?;
    }
    Ok(())
}
