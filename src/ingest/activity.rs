//! Whether a camera sees anything move, from the sizes of its compressed frames (no decoding).
//!
//! Input: each compressed frame on its way to the decoder: key-frame flag, size in bytes,
//! presentation time; and when the detector saw someone ([`Activity::seen`]). Output: whether
//! the camera is idle (nothing moved and nobody seen for [`IDLE_AFTER_NS`]; a new connection
//! with a frame back from the detector and neither from its first key frame on, for
//! [`IDLE_AFTER_START_NS`]). Pure: times are inputs.
//!
//! A delta frame codes what changed since its references: on a still scene it carries sensor
//! noise only, and its size stays near a floor; something moving adds the moved area's
//! residuals and motion vectors. The floor ([`Activity`]'s baseline) follows the smaller delta
//! frames quickly and larger ones slowly, and frames counted as motion never raise it. Motion:
//! the median of the last [`MEDIAN_OF`] delta frames is more than [`RATIO`] × the floor +
//! [`MARGIN_BYTES`]. Key frames say nothing (their size is the whole picture's). This holds for
//! cameras whose bit rate follows the picture (VBR, constant quality, "smart codecs"); a
//! constant-bit-rate camera spends the same bytes on noise as on motion: it stays awake while the
//! detector sees people and, once idle, wakes at its next analysed frame that shows someone
//! (within `idle_interval_ms`), not at once.

use std::collections::VecDeque;

/// Nothing moving for this long makes a camera idle.
pub const IDLE_AFTER_NS: u64 = 3_000_000_000;
/// A connection with a frame back from the detector, in which nothing moved and nobody was
/// seen since its first key frame, is idle after this long: at the start every camera decodes
/// until it is found idle, so a store day's start held every decoder open for 3 s (the box's
/// peak memory, 6.4–6.6 MB a camera against 4.4 once idle cameras' decoders are parked).
pub const IDLE_AFTER_START_NS: u64 = 1_000_000_000;
/// Delta frames whose median is compared with the floor.
pub const MEDIAN_OF: usize = 3;
/// Motion: the median is more than this many times the floor ...
pub const RATIO: f64 = 2.0;
/// ... plus this many bytes.
pub const MARGIN_BYTES: f64 = 1_500.0;
/// Weight of a frame below the floor / above it (not motion) in the floor.
const DOWN: f64 = 0.2;
const UP: f64 = 0.01;

/// One camera connection's motion state.
#[derive(Debug, Default)]
pub struct Activity {
    floor: Option<f64>,
    recent: VecDeque<u32>,
    /// Time of the last frame that showed motion (or of the first frame, then of the first key
    /// frame).
    moved_ns: Option<u64>,
    last_ns: u64,
    /// The connection's first key frame's time (None before it: nothing decodable yet).
    first_key_ns: Option<u64>,
}

impl Activity {
    /// A new connection: active until it has been still for [`IDLE_AFTER_NS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// One compressed frame; returns whether it showed motion.
    pub fn frame(&mut self, key: bool, bytes: usize, t_ns: u64) -> bool {
        if self.moved_ns.is_none_or(|m| t_ns < m) {
            self.moved_ns = Some(t_ns); // first frame, or timestamps restarted
        }
        self.last_ns = self.last_ns.max(t_ns);
        if key {
            if self.first_key_ns.is_none() {
                (self.first_key_ns, self.moved_ns) = (Some(t_ns), Some(t_ns));
            }
            return false;
        }
        if self.recent.len() == MEDIAN_OF {
            self.recent.pop_front();
        }
        self.recent.push_back(bytes as u32);
        let size = bytes as f64;
        let floor = *self.floor.get_or_insert(size);
        let moving = self.recent.len() == MEDIAN_OF
            && f64::from(median(&self.recent)) > floor * RATIO + MARGIN_BYTES;
        if moving {
            self.moved_ns = Some(t_ns);
        } else {
            let w = if size < floor { DOWN } else { UP };
            self.floor = Some(floor + w * (size - floor));
        }
        moving
    }

    /// The detector saw someone in a frame of the camera, noticed at frame time `t_ns`: that
    /// counts as motion (a camera whose bit rate never varies is kept awake while people are
    /// in view, and wakes at the first analysed frame that shows someone).
    pub fn seen(&mut self, t_ns: u64) {
        self.moved_ns = Some(self.moved_ns.map_or(t_ns, |m| m.max(t_ns)));
    }

    /// Whether nothing moved for [`IDLE_AFTER_NS`] up to the last frame (never before the first
    /// key frame); for [`IDLE_AFTER_START_NS`] when nothing moved and nobody was seen since the
    /// first key frame and the detector has `looked` (a frame of this connection came back
    /// from it).
    pub fn idle(&self, looked: bool) -> bool {
        let start = looked && self.moved_ns == self.first_key_ns;
        let after = if start {
            IDLE_AFTER_START_NS
        } else {
            IDLE_AFTER_NS
        };
        self.first_key_ns.is_some()
            && self
                .moved_ns
                .is_some_and(|m| self.last_ns.saturating_sub(m) >= after)
    }
}

/// The median of the last [`MEDIAN_OF`] sizes (`v` holds exactly that many), sorted on the
/// stack: this runs for every delta frame of every camera.
fn median(v: &VecDeque<u32>) -> u32 {
    let mut s = [0u32; MEDIAN_OF];
    for (d, x) in s.iter_mut().zip(v) {
        *d = *x;
    }
    s.sort_unstable();
    s[MEDIAN_OF / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 100_000_000;

    /// Frames at 10 fps, a key frame a second, delta sizes from `size(i)`; whether the camera
    /// is idle after each, the detector having looked from frame `analysed_from` on.
    fn feed_from(
        a: &mut Activity,
        (from, to): (u64, u64),
        analysed_from: u64,
        size: impl Fn(u64) -> usize,
    ) -> Vec<bool> {
        (from..to)
            .map(|i| {
                let key = i.is_multiple_of(10);
                a.frame(key, if key { 40_000 } else { size(i) }, i * FRAME);
                a.idle(i >= analysed_from)
            })
            .collect()
    }

    /// As [`feed_from`], the detector not having looked (the rule for a camera once it moved or
    /// was seen).
    fn feed(a: &mut Activity, from: u64, to: u64, size: impl Fn(u64) -> usize) -> Vec<bool> {
        feed_from(a, (from, to), u64::MAX, size)
    }

    /// Sensor noise: 1.5-2.1 kB per delta frame.
    fn noise(i: u64) -> usize {
        1_500 + (i * 7919 % 600) as usize
    }

    #[test]
    fn a_still_noisy_scene_goes_idle_and_wakes_at_the_second_moving_frame() {
        let mut a = Activity::new();
        let idle = feed(&mut a, 0, 100, noise);
        assert!(!idle[25], "still active before 3 s");
        assert!(idle[40..].iter().all(|i| *i), "idle after 3 s of stillness");
        // A person walks in: delta frames of 6-9 kB.
        let walk = |i: u64| 6_000 + (i * 31 % 3_000) as usize;
        let woke = feed(&mut a, 101, 106, walk);
        assert_eq!(
            woke,
            [true, false, false, false, false],
            "median of 3 moving"
        );
        // Walking on keeps it awake; the floor did not rise.
        assert!(feed(&mut a, 106, 300, walk).iter().all(|i| !*i));
        assert!(a.floor.unwrap() < 2_500.0, "{:?}", a.floor);
        // Still again: idle 3 s later.
        let idle = feed(&mut a, 300, 400, noise);
        assert!(!idle[20] && idle[40]);
        // Someone seen by the detector keeps it awake 3 s more.
        a.seen(400 * FRAME);
        let idle = feed(&mut a, 400, 450, noise);
        assert!(!idle[25] && idle[35]);
    }

    #[test]
    fn a_busy_camera_started_mid_motion_finds_its_floor_in_still_moments() {
        let mut a = Activity::new();
        // Starts with big frames, then still: the floor falls fast, idle after 3 s.
        feed(&mut a, 0, 20, |_| 9_000);
        let idle = feed(&mut a, 20, 80, |_| 1_600);
        assert!(idle[45] && !idle[5]);
        assert!(!feed(&mut a, 80, 85, |_| 8_000)[4]);
    }

    #[test]
    fn a_still_camera_just_connected_is_idle_a_second_after_its_first_key_frame_once_looked_at() {
        // Joined mid-GOP: delta frames from 5, the first key frame at 10, back from the
        // detector from 11.
        let mut a = Activity::new();
        let idle = feed_from(&mut a, (5, 40), 11, noise);
        assert!(
            !idle[..5].iter().any(|i| *i),
            "not idle before its first key frame"
        );
        assert!(!idle[14], "still active 0.9 s after the key frame");
        assert!(idle[15..].iter().all(|i| *i), "idle from 1 s after it");
        // Nothing back from the detector: the ordinary 3 s.
        let mut a = Activity::new();
        let idle = feed_from(&mut a, (5, 60), 1_000, noise);
        assert!(!idle[34] && idle[35], "3 s after the key frame");
        // Someone seen by the detector: the ordinary 3 s from then.
        let mut a = Activity::new();
        feed_from(&mut a, (5, 12), 11, noise);
        a.seen(11 * FRAME);
        let idle = feed_from(&mut a, (12, 60), 11, noise);
        assert!(!idle[28] && idle[29], "3 s after the person seen at 11");
        // Motion since the key frame: the ordinary 3 s from the last moving frame.
        let mut a = Activity::new();
        feed_from(&mut a, (5, 12), 11, noise);
        let moved = feed_from(&mut a, (12, 16), 11, |i| 6_000 + (i * 31 % 3_000) as usize);
        let idle = feed_from(&mut a, (16, 60), 11, noise);
        assert!(moved.iter().all(|i| !*i));
        assert!(!idle[..28].iter().any(|i| *i) && idle[40], "{idle:?}");
    }
}
