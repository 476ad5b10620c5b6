//! What the running service shows live (the web page's camera stills, boxes and floor positions),
//! kept in memory and shared by the stages that feed it and the HTTP API that reads it.
//!
//! Input: a copy of an analysed frame now and then ([`Live::offer_frame`], from the detector's
//! frame source, at most every [`STILL_EVERY_MS`] per camera), each analysed frame's confirmed
//! tracks ([`Live::boxes`], from the tracker stage) and the configuration in force
//! ([`Live::set_config`], at start and after each reload). Output: the latest still of a camera
//! with the boxes of the same frame ([`Live::still`]), the latest positions of every camera
//! ([`Live::latest`]), the configuration ([`Live::config`]). Nothing here blocks a stage for more
//! than a short lock; a still is a copy, so the frame's pooled buffer goes back at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use crate::geometry::BBox;
use crate::messages::{CameraIndex, Frame};

/// Shortest time between two stills copied from one camera (the web page refreshes a camera's
/// picture about once a second).
pub const STILL_EVERY_MS: i64 = 500;
/// Analysed frames whose boxes are kept per camera (so a still finds the boxes of its frame).
const BOX_FRAMES: usize = 32;

/// One analysed frame as the detector saw it: the model's input picture.
#[derive(Debug, Clone)]
pub struct Still {
    /// Capture time, Unix ms.
    pub captured_ms: i64,
    /// Picture size (the model's input), pixels.
    pub size: (u32, u32),
    /// Bytes from one row to the next.
    pub stride: usize,
    /// The source picture's place in it (x, y, width, height): all of it for a stretching
    /// resize, less the borders for a letterboxed one.
    pub content: (u32, u32, u32, u32),
    /// The camera's decoded picture size, pixels.
    pub source: (u32, u32),
    /// Channels are blue, green, red (else red, green, blue).
    pub bgr: bool,
    /// Packed 3-byte pixels, `stride` bytes a row.
    pub pixels: Vec<u8>,
}

/// A camera id and its latest still.
type CameraStill = (Arc<str>, Arc<Still>);

/// A confirmed track's box in one analysed frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveBox {
    /// Track id (per camera).
    pub track: u64,
    /// Box in source pixels.
    pub bbox: BBox,
    /// Floor position of its foot point, metres, when the camera is calibrated.
    pub floor: Option<(f64, f64)>,
}

/// The boxes of one analysed frame.
#[derive(Debug, Clone, Default)]
pub struct FrameBoxes {
    /// Capture time, Unix ms.
    pub ts_ms: i64,
    /// Confirmed tracks seen in it.
    pub boxes: Vec<LiveBox>,
}

/// The shared live state (one per service, in [`crate::stats::Stats`]).
#[derive(Debug, Default)]
pub struct Live {
    stills: Mutex<Vec<Option<CameraStill>>>,
    copied_ms: Mutex<Vec<i64>>,
    boxes: Mutex<HashMap<Arc<str>, VecDeque<FrameBoxes>>>,
    names: RwLock<Vec<Arc<str>>>,
    bgr: AtomicBool,
    config: RwLock<Option<Arc<Config>>>,
}

impl Live {
    /// Names camera slot `slot` (stills are looked up by camera id).
    pub fn name_slot(&self, slot: CameraIndex, id: &str) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if names.len() <= slot {
            names.resize(slot + 1, Arc::from(""));
        }
        names[slot] = Arc::from(id);
    }

    /// Whether frames hold blue, green, red (the model's colour order).
    pub fn set_bgr(&self, bgr: bool) {
        self.bgr.store(bgr, Ordering::Relaxed);
    }

    /// Copies `frame` as its camera's still unless one was copied less than
    /// [`STILL_EVERY_MS`] ago (by `now_ms`).
    pub fn offer_frame(&self, frame: &Frame, now_ms: i64) {
        {
            let mut copied = self.copied_ms.lock().unwrap_or_else(|e| e.into_inner());
            if copied.len() <= frame.camera {
                copied.resize(frame.camera + 1, i64::MIN);
            }
            if now_ms.saturating_sub(copied[frame.camera]) < STILL_EVERY_MS {
                return;
            }
            copied[frame.camera] = now_ms;
        }
        let Some(id) = self.slot_name(frame.camera) else {
            return;
        };
        let Ok(map) = frame.pixels.map_readable() else {
            return;
        };
        let (w, h) = frame.mapping.input_size();
        let stride = map.len() / h.max(1) as usize;
        if stride < w as usize * 3 {
            return; // not packed 3-byte pixels
        }
        let still = Still {
            captured_ms: frame.captured_ms,
            size: (w, h),
            stride,
            content: frame.mapping.content(),
            source: frame.mapping.source_size(),
            bgr: self.bgr.load(Ordering::Relaxed),
            pixels: map.as_slice().to_vec(),
        };
        let mut stills = self.stills.lock().unwrap_or_else(|e| e.into_inner());
        if stills.len() <= frame.camera {
            stills.resize(frame.camera + 1, None);
        }
        stills[frame.camera] = Some((id, Arc::new(still)));
    }

    fn slot_name(&self, slot: CameraIndex) -> Option<Arc<str>> {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names.get(slot).filter(|n| !n.is_empty()).cloned()
    }

    /// Records the confirmed tracks of camera `camera`'s frame captured at `ts_ms`.
    pub fn boxes(&self, camera: &Arc<str>, ts_ms: i64, boxes: Vec<LiveBox>) {
        let mut all = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        let ring = all.entry(Arc::clone(camera)).or_default();
        if ring.len() == BOX_FRAMES {
            ring.pop_front();
        }
        ring.push_back(FrameBoxes { ts_ms, boxes });
    }

    /// Camera `id`'s latest still and the boxes of that frame (empty when the tracker has not
    /// reported it, or it held none).
    pub fn still(&self, id: &str) -> Option<(Arc<Still>, Vec<LiveBox>)> {
        let still = {
            let stills = self.stills.lock().unwrap_or_else(|e| e.into_inner());
            stills
                .iter()
                .flatten()
                .rev()
                .find(|(cam, _)| &**cam == id)
                .map(|(_, s)| Arc::clone(s))?
        };
        let all = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        let boxes = all
            .get(id)
            .and_then(|ring| ring.iter().find(|f| f.ts_ms == still.captured_ms))
            .map(|f| f.boxes.clone())
            .unwrap_or_default();
        Some((still, boxes))
    }

    /// Each camera's latest analysed frame's boxes, by camera id.
    pub fn latest(&self) -> Vec<(Arc<str>, FrameBoxes)> {
        let all = self.boxes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = all
            .iter()
            .filter_map(|(id, ring)| Some((Arc::clone(id), ring.back()?.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Sets the configuration in force (at start and after a reload).
    pub fn set_config(&self, cfg: Arc<Config>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Some(cfg);
    }

    /// The configuration in force, once the service has set it.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_ring_keeps_the_latest_frames() {
        let live = Live::default();
        let cam: Arc<str> = Arc::from("c");
        for t in 0..40 {
            live.boxes(&cam, t, Vec::new());
        }
        let latest = live.latest();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].1.ts_ms, 39);
        assert_eq!(live.boxes.lock().unwrap()[&cam].len(), BOX_FRAMES);
        assert!(live.still("c").is_none());
    }
}
