//! The tracking stage: owns one [`Tracker`] per camera on its own thread; cameras come and go
//! with [`CameraChange`]s (start-up and reloads).
//!
//! Input: [`Detections`] from the detector. Output: [`StoreMsg`]s (a frame row with its person
//! count, a point per confirmed track, an end marker per finished track) to the analytics stage,
//! which passes them on to the store with its own. Floor positions are computed here from the
//! camera's homography, if it has one.

use std::sync::Arc;
use std::thread::JoinHandle;

use std::collections::HashMap;

use crossbeam_channel::{Receiver, Select, Sender};

use super::{Tracker, TrackerParams};
use crate::config::CameraConfig;
use crate::geometry::apply_homography;
use crate::live::LiveBox;
use crate::messages::{CameraIndex, Detections, StoreMsg, TrackUpdate};
use crate::stats::{self, Stats};

struct CameraTrack {
    id: Arc<str>,
    homography: Option<[f64; 9]>,
    tracker: Tracker,
}

/// A change to the set of cameras being tracked (slots as in [`crate::stats::Stats`]).
#[derive(Debug, Clone)]
pub enum CameraChange {
    /// Track camera `camera` in slot `slot` from its next detections on.
    Add {
        /// The camera's slot.
        slot: CameraIndex,
        /// The camera.
        camera: Box<CameraConfig>,
    },
    /// The camera in `slot` was stopped: its open tracks end, later detections of it are
    /// ignored.
    Remove {
        /// The camera's slot.
        slot: CameraIndex,
    },
}

/// The trackers by slot, and where each camera id's track ids continue.
struct Cameras {
    params: TrackerParams,
    slots: Vec<Option<CameraTrack>>,
    next_ids: HashMap<Arc<str>, u64>,
}

impl Cameras {
    fn apply(&mut self, change: CameraChange, tx: &Sender<StoreMsg>) -> Result<(), Gone> {
        match change {
            CameraChange::Add { slot, camera } => {
                let camera = *camera;
                let id: Arc<str> = Arc::from(camera.id.as_str());
                let next_id = self.next_ids.get(&id).copied().unwrap_or(1);
                if slot >= self.slots.len() {
                    self.slots.resize_with(slot + 1, || None);
                }
                self.slots[slot] = Some(CameraTrack {
                    id,
                    homography: camera.homography,
                    tracker: Tracker::starting_at(self.params.clone(), next_id),
                });
            }
            CameraChange::Remove { slot } => {
                if let Some(mut cam) = self.slots.get_mut(slot).and_then(Option::take) {
                    self.next_ids
                        .insert(Arc::clone(&cam.id), cam.tracker.next_id());
                    end_all(&mut cam, tx)?;
                }
            }
        }
        Ok(())
    }
}

/// The store stage is gone.
struct Gone;

impl<T> From<crossbeam_channel::SendError<T>> for Gone {
    fn from(_: crossbeam_channel::SendError<T>) -> Self {
        Gone
    }
}

/// Starts the tracking thread. Cameras are added and removed through `changes`; a change sent
/// before a camera's first frame is applied before that frame. The thread ends when the
/// detector's sender is gone, after ending every open track, or when the store is gone.
pub fn spawn(
    params: TrackerParams,
    rx: Receiver<Detections>,
    changes: Receiver<CameraChange>,
    tx: Sender<StoreMsg>,
    stats: Arc<Stats>,
) -> std::io::Result<JoinHandle<()>> {
    let mut cams = Cameras {
        params,
        slots: Vec::new(),
        next_ids: HashMap::new(),
    };
    std::thread::Builder::new()
        .name("tracker".into())
        .spawn(move || {
            let _ = track(&mut cams, &rx, &changes, &tx, &stats);
        })
}

fn track(
    cams: &mut Cameras,
    rx: &Receiver<Detections>,
    changes: &Receiver<CameraChange>,
    tx: &Sender<StoreMsg>,
    stats: &Stats,
) -> Result<(), Gone> {
    let mut changes_open = true;
    loop {
        let mut sel = Select::new();
        let dets_op = sel.recv(rx);
        let changes_op = changes_open.then(|| sel.recv(changes));
        let op = sel.select();
        if Some(op.index()) == changes_op {
            match op.recv(changes) {
                Ok(change) => cams.apply(change, tx)?,
                Err(_) => changes_open = false,
            }
            continue;
        }
        debug_assert_eq!(op.index(), dets_op);
        let Ok(dets) = op.recv(rx) else {
            break;
        };
        // Changes first, so a camera's slot exists before its first detections.
        while let Ok(change) = changes.try_recv() {
            cams.apply(change, tx)?;
        }
        if let Some(Some(cam)) = cams.slots.get_mut(dets.camera) {
            process(cam, &dets, tx, stats)?;
        }
    }
    for cam in cams.slots.iter_mut().flatten() {
        end_all(cam, tx)?;
    }
    Ok(())
}

/// Ends every open track of `cam`.
fn end_all(cam: &mut CameraTrack, tx: &Sender<StoreMsg>) -> Result<(), Gone> {
    for track_id in cam.tracker.finish() {
        tx.send(StoreMsg::TrackEnded {
            camera: Arc::clone(&cam.id),
            track_id,
        })?;
    }
    Ok(())
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
    let mut live = Vec::with_capacity(out.updates.len());
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
        // Points filled in over a gap come first; the frame's own box is a track's last.
        live.retain(|b: &LiveBox| b.track != u.id);
        live.push(LiveBox {
            track: u.id,
            bbox,
            floor,
        });
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
    stats.live.boxes(&cam.id, dets.captured_ms, live);
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

    fn camera(id: &str) -> CameraConfig {
        CameraConfig::new(id, "rtsp://127.0.0.1:1/x".parse().unwrap())
    }

    fn walker(camera: CameraIndex, i: u64) -> Detections {
        Detections {
            camera,
            seq: i,
            captured_ms: 1_000 + 100 * i as i64,
            source_size: (640, 480),
            persons: 1,
            boxes: vec![Detection {
                bbox: BBox::new(100.0 + 3.0 * i as f32, 50.0, 40.0, 100.0),
                score: 0.9,
            }],
        }
    }

    #[test]
    fn a_removed_camera_ends_its_tracks_and_a_restart_continues_its_ids() {
        let (det_tx, det_rx) = crossbeam_channel::bounded(64);
        let (store_tx, store_rx) = crossbeam_channel::unbounded();
        let (change_tx, changes) = crossbeam_channel::unbounded();
        let stats = Arc::new(Stats::new(3));
        let h = spawn(TrackerParams::default(), det_rx, changes, store_tx, stats).unwrap();
        let add = |slot, id: &str| CameraChange::Add {
            slot,
            camera: Box::new(camera(id)),
        };
        change_tx.send(add(0, "a")).unwrap();
        change_tx.send(add(1, "b")).unwrap();
        for i in 0..6 {
            det_tx.send(walker(0, i)).unwrap();
            det_tx.send(walker(1, i)).unwrap();
        }
        // Changes go before queued detections: let these be tracked first.
        while !det_tx.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        // b restarts in a new slot; a late frame of its old slot is ignored.
        change_tx.send(CameraChange::Remove { slot: 1 }).unwrap();
        change_tx.send(add(2, "b")).unwrap();
        det_tx.send(walker(1, 6)).unwrap();
        for i in 6..12 {
            det_tx.send(walker(0, i)).unwrap();
            det_tx.send(walker(2, i)).unwrap();
        }
        drop(det_tx);
        h.join().unwrap();
        let msgs: Vec<StoreMsg> = store_rx.iter().collect();
        let ended = |cam: &str| -> Vec<(usize, u64)> {
            msgs.iter()
                .enumerate()
                .filter_map(|(n, m)| match m {
                    StoreMsg::TrackEnded { camera, track_id } if &**camera == cam => {
                        Some((n, *track_id))
                    }
                    _ => None,
                })
                .collect()
        };
        let point_ids = |cam: &str| -> Vec<u64> {
            let mut v: Vec<u64> = msgs
                .iter()
                .filter_map(|m| match m {
                    StoreMsg::Point(p) if &*p.camera == cam => Some(p.track_id),
                    _ => None,
                })
                .collect();
            v.dedup();
            v
        };
        assert_eq!(point_ids("a"), [1], "a's track runs through b's restart");
        assert_eq!(point_ids("b"), [1, 2], "b's second track has a new id");
        let (b_ended, a_ended) = (ended("b"), ended("a"));
        assert_eq!(b_ended.iter().map(|e| e.1).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(a_ended.iter().map(|e| e.1).collect::<Vec<_>>(), [1]);
        assert!(
            b_ended[0].0 < a_ended[0].0,
            "b's first track ended at its removal"
        );
    }

    #[test]
    fn a_recovered_gap_reaches_the_store_as_interpolated_points() {
        let cam = camera("cam1");
        let (det_tx, det_rx) = crossbeam_channel::bounded(64);
        let (store_tx, store_rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Stats::new(1));
        let (change_tx, changes) = crossbeam_channel::unbounded();
        change_tx
            .send(CameraChange::Add {
                slot: 0,
                camera: Box::new(cam),
            })
            .unwrap();
        let h = spawn(TrackerParams::default(), det_rx, changes, store_tx, stats).unwrap();
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
