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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BBox, Detection};
    use crate::track::PointKind;

    #[test]
    fn a_recovered_gap_reaches_the_store_as_interpolated_points() {
        let cam = CameraConfig {
            id: "cam1".into(),
            name: "cam1".into(),
            url: "rtsp://127.0.0.1:1/x".parse().unwrap(),
            detect_fps: 10,
            homography: None,
            pipeline: None,
            calibration: None,
        };
        let (det_tx, det_rx) = crossbeam_channel::bounded(64);
        let (store_tx, store_rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Stats::new(1));
        let h = spawn(&[cam], TrackerParams::default(), det_rx, store_tx, stats).unwrap();
        // Seen in frames 0–9, hidden in 10–14, seen again at 15.
        for i in 0..16u64 {
            let boxes = if (10..15).contains(&i) {
                Vec::new()
            } else {
                vec![Detection {
                    bbox: BBox::new(100.0 + 3.0 * i as f32, 50.0, 40.0, 100.0),
                    score: 0.9,
                }]
            };
            let dets = Detections {
                camera: 0,
                seq: i,
                captured_ms: 1_000 + 100 * i as i64,
                source_size: (640, 480),
                persons: boxes.len() as u32,
                boxes,
            };
            det_tx.send(dets).unwrap();
        }
        drop(det_tx);
        h.join().unwrap();
        let points: Vec<TrackUpdate> = store_rx
            .iter()
            .filter_map(|m| match m {
                StoreMsg::Point(p) => Some(p),
                _ => None,
            })
            .collect();
        let filled: Vec<i64> = points
            .iter()
            .filter(|p| p.kind == PointKind::Interpolated)
            .map(|p| p.ts_ms)
            .collect();
        assert_eq!(filled, vec![2_000, 2_100, 2_200, 2_300, 2_400]);
        assert_eq!(points.len(), 16, "one point per frame");
        assert!(points.iter().all(|p| p.track_id == 1));
    }
}
