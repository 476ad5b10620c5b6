//! The GOP an idle camera is in, held back so that the camera can wake in the middle of it.
//!
//! An idle camera's decoder is parked between its analysed frames ([`super::park`]), and the
//! frames no analysed frame needs are not decoded. When something moves, the camera wakes at
//! once (its delta frames grow), but a delta frame cannot be decoded without the frames since
//! its GOP's key frame, so the camera waited for its next key frame: measured at full rate
//! 1.0, 2.0 and 4.0 s after people appeared with 1, 2 and 4 s GOPs. So while a camera is idle,
//! the compressed frames of its current GOP (key frame first, decode order) are held here; on
//! waking in the middle of a GOP they are given to the woken decoder again (not analysed: the
//! analysis starts at the frame that woke the camera; about 1.5 ms of decoding a 768 × 576
//! frame each), and it is at full rate 0–200 ms after the people appear. With B-frames too (the
//! decoder drained before it is parked, `super::park`); an open GOP's leading frames (shown
//! before its key frame, sent after it) reference the GOP before, so they are not held.
//!
//! Holding costs memory only for compressed frames (the simulator's still scene: delta frames
//! of 0.1–2 kB, key frames of 23–38 kB; at most [`MAX_BYTES`] and [`MAX_FRAMES`], past which the GOP is not
//! held). A held frame the gate did not pass to the decoder is counted `undecoded` when its GOP
//! is let go without a replay (the next key frame, the camera no longer idle, the pipeline's
//! end), and `decoded` (not picked) if it is replayed, so every frame is counted once either
//! way; a frame decoded when it came (the idle frame analysed) and replayed counts as decoded
//! twice.

use std::sync::Arc;

use gstreamer as gst;

use crate::stats::{self, CameraStats};

/// Held bytes at most (compressed frames of one GOP).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Held frames at most (e.g. a 10 s GOP at 25 fps).
pub const MAX_FRAMES: usize = 250;

/// One pipeline run's held GOP.
pub(super) struct Held {
    /// The GOP's frames from its key frame on, in decode order.
    frames: Vec<gst::Buffer>,
    bytes: usize,
    /// Of `frames`: those not decoded when they came (counted `undecoded` if let go).
    pending: u64,
    /// Holding this GOP (from its key frame, within the bounds, while the camera is idle).
    holding: bool,
    /// The held key frame's presentation time: an open GOP's leading frames (earlier, sent
    /// after it) reference the GOP before, which is not held, so they are not held either.
    key_pts: Option<gst::ClockTime>,
    cam: Arc<CameraStats>,
}

impl Held {
    pub fn new(cam: Arc<CameraStats>) -> Self {
        Self {
            frames: Vec::new(),
            bytes: 0,
            pending: 0,
            holding: false,
            key_pts: None,
            cam,
        }
    }

    /// One compressed frame on its way to the decoder, `decoded` if the gate passed it; held
    /// while the camera is `idle` (from a key frame on). Returns whether the frame was held
    /// undecoded: then it is counted later, not now.
    pub fn frame(&mut self, buffer: &gst::Buffer, key: bool, decoded: bool, idle: bool) -> bool {
        if key || !idle {
            self.let_go();
            self.holding = key && idle;
            self.key_pts = buffer.pts().filter(|_| key);
        }
        let leading = !key && buffer.pts().is_some_and(|t| Some(t) < self.key_pts);
        if !self.holding || leading {
            return false;
        }
        if self.frames.len() >= MAX_FRAMES || self.bytes + buffer.size() > MAX_BYTES {
            self.let_go();
            return false;
        }
        self.bytes += buffer.size();
        self.frames.push(buffer.clone());
        self.pending += u64::from(!decoded);
        !decoded
    }

    /// Whether a GOP is held whole (from its key frame).
    pub fn whole(&self) -> bool {
        self.holding && !self.frames.is_empty()
    }

    /// The held GOP, key frame first, for the woken decoder (None when no GOP is held whole);
    /// its frames are counted as they come out of the decoder.
    pub fn take(&mut self) -> Option<Vec<gst::Buffer>> {
        if !self.whole() {
            return None;
        }
        let frames = std::mem::take(&mut self.frames);
        (self.bytes, self.pending, self.holding) = (0, 0, false);
        Some(frames)
    }

    /// Lets the held GOP go: its frames not decoded are counted so (nothing to do for a camera
    /// that holds nothing: this runs for each of its frames).
    fn let_go(&mut self) {
        if self.pending > 0 {
            stats::add(&self.cam.undecoded, self.pending);
        }
        self.frames.clear();
        (self.bytes, self.pending, self.holding) = (0, 0, false);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.let_go();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn buf(size: usize) -> gst::Buffer {
        gst::init().unwrap();
        gst::Buffer::with_size(size).unwrap()
    }

    fn undecoded(cam: &CameraStats) -> u64 {
        cam.undecoded.load(Ordering::Relaxed)
    }

    /// A camera's counters and its held GOP.
    fn held() -> (Arc<CameraStats>, Held) {
        let cam = Arc::new(CameraStats::new("c", "c", "rtsp://h/"));
        let h = Held::new(Arc::clone(&cam));
        (cam, h)
    }

    #[test]
    fn an_idle_gop_is_held_from_its_key_frame_and_counted_once_either_way() {
        let (cam, mut h) = held();
        // Idle from mid-GOP: nothing held until the next key frame.
        assert!(!h.frame(&buf(900), false, false, true));
        assert!(h.take().is_none());
        assert_eq!(undecoded(&cam), 0, "the caller counts a frame not held");
        // Key frame decoded (the idle frame), then three deltas not decoded: held.
        assert!(!h.frame(&buf(50_000), true, true, true));
        for _ in 0..3 {
            assert!(h.frame(&buf(900), false, false, true));
        }
        // The next key frame lets the GOP go: its three undecoded frames are counted.
        h.frame(&buf(50_000), true, false, true);
        assert_eq!(undecoded(&cam), 3);
        // Taken for a replay: key frame first, nothing counted (the decoder counts them).
        assert!(h.frame(&buf(900), false, false, true));
        let gop = h.take().expect("a GOP held from its key frame");
        assert_eq!(gop.len(), 2);
        assert_eq!(gop[0].size(), 50_000);
        assert!(h.take().is_none(), "taken once");
        drop(h);
        assert_eq!(undecoded(&cam), 3);
    }

    #[test]
    fn an_awake_camera_holds_nothing_and_a_gop_past_the_bounds_is_let_go() {
        let (cam, mut h) = held();
        assert!(!h.frame(&buf(50_000), true, true, false));
        assert!(!h.frame(&buf(900), false, false, false));
        assert!(h.take().is_none());
        // Idle, then awake mid-GOP: the held frames are let go (counted) without a replay.
        h.frame(&buf(50_000), true, true, true);
        h.frame(&buf(900), false, false, true);
        assert!(!h.frame(&buf(900), false, true, false));
        assert_eq!(undecoded(&cam), 1);
        // Past the byte bound: let go, and nothing more held until the next key frame.
        h.frame(&buf(50_000), true, true, true);
        assert!(h.frame(&buf(MAX_BYTES / 2), false, false, true));
        assert!(!h.frame(&buf(MAX_BYTES / 2), false, false, true));
        assert!(!h.frame(&buf(900), false, false, true));
        assert!(h.take().is_none());
        drop(h);
        assert_eq!(undecoded(&cam), 2);
    }

    #[test]
    fn an_open_gop_s_leading_frames_are_not_held() {
        let (cam, mut h) = held();
        let at = |size: usize, ms: u64| {
            let mut b = buf(size);
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(ms));
            b
        };
        // In decode order: the key frame (1,000 ms), a leading B-frame shown before it (900 ms,
        // referencing the GOP before), a P-frame (1,300 ms) and a B-frame before that (1,100).
        assert!(!h.frame(&at(50_000, 1_000), true, true, true));
        assert!(
            !h.frame(&at(900, 900), false, false, true),
            "leading: not held"
        );
        assert!(h.frame(&at(900, 1_300), false, false, true));
        assert!(h.frame(&at(900, 1_100), false, false, true));
        let gop = h.take().expect("held");
        let times: Vec<u64> = gop.iter().map(|b| b.pts().unwrap().mseconds()).collect();
        assert_eq!(times, [1_000, 1_300, 1_100]);
        assert_eq!(undecoded(&cam), 0, "the caller counts a frame not held");
    }
}
