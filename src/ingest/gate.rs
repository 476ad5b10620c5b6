//! Which of a camera's frames are decoded, and which decoded frames are analysed.
//!
//! A key frame decodes on its own; a delta frame needs every frame since the last key frame. A
//! camera analysed at `detect_fps` (not 0) needs one frame per 1/`detect_fps` s. When its GOP
//! spans a whole number k of those intervals, [`FrameGate`] places the analysed frames from each
//! key frame on and leaves the frames after the GOP's k-th analysed frame undecoded, because no
//! analysed frame needs them: k = 1 is key frames only; with a key frame a second, 2 fps decodes
//! frames 0–5 of 10 and 3 fps frames 0–7. Key frames faster than `detect_fps` are decoded
//! only when analysed. Otherwise (another ratio, a GOP changing length, frames out of timestamp
//! order) every frame is decoded and the analysed ones are picked on an even grid. The gate sees each compressed frame on its way into the
//! decoder ([`FrameGate::admit`]: decode or drop) and each decoded frame on its way out
//! ([`FrameGate::take`]: analyse or drop). The plan changes only at a key frame, so the decoder
//! never gets a delta frame whose references it skipped.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

/// Key frames remembered to measure the key-frame rate (the rate is known from the third).
const KEYS_MEASURED: usize = 4;
/// Relative slack when comparing detect fps with a multiple of the key-frame rate (RTP clock
/// jitter).
const RATE_TOLERANCE: f64 = 0.02;
/// Frames chosen for analysis and not yet out of the decoder, at most.
const CHOSEN_MAX: usize = 32;

/// Which frames a camera decodes (`decode` in `[ingest]` or per camera).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decode {
    /// Every frame.
    All,
    /// Key frames only, whatever detect fps asks for.
    Keyframes,
    /// Each GOP up to its last analysed frame while detect fps (not 0) is a whole multiple of
    /// the stream's steady key-frame rate (key frames only at that rate, only the analysed key
    /// frames below it); every frame otherwise, and for streams with B-frames unless one
    /// analysed frame per GOP or fewer.
    #[default]
    Auto,
}

impl FromStr for Decode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "keyframes" => Ok(Self::Keyframes),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "expected \"auto\", \"all\" or \"keyframes\", not {other:?}"
            )),
        }
    }
}

impl fmt::Display for Decode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::All => "all",
            Self::Keyframes => "keyframes",
            Self::Auto => "auto",
        })
    }
}

/// What to do with one compressed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Decode,
    /// Not needed by any analysed frame.
    Skip,
}

/// How the current GOP is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Every frame; the analysed ones on an even grid.
    Every,
    /// Key frames only, those the grid wants (key frames come faster than detect fps).
    KeyOnly,
    /// Frames up to the GOP's k-th analysed one, analysed frames placed from the key frame
    /// (k = 1: the key frame only).
    Aligned(u32),
}

/// Per-connection state of one camera's decoder input and output.
#[derive(Debug)]
pub struct FrameGate {
    mode: Decode,
    detect_fps: u32,
    /// Timestamps (ns) of the last key frames, oldest first.
    keys: VecDeque<u64>,
    plan: Plan,
    /// Frames (decode order) of the last complete GOP, and since the current GOP's key frame.
    gop_frames: u32,
    in_gop: u32,
    /// Analysed frames chosen in the current GOP; with `Aligned`, the rest of it is skipped.
    chosen_in_gop: u32,
    tail: bool,
    /// Previous frame's timestamp and the stream's frame interval (ns, 0 = not known yet).
    last_t: Option<u64>,
    frame_ns: u64,
    /// Frames arrive out of timestamp order (B-frames): a GOP's leading frames may reference
    /// the previous GOP's tail, so no tail is skipped.
    reordered: bool,
    /// Time of the next analysis slot (ns).
    next_slot: Option<u64>,
    /// Timestamps of frames chosen for analysis, not yet out of the decoder.
    chosen: VecDeque<u64>,
}

impl FrameGate {
    pub fn new(mode: Decode, detect_fps: u32) -> Self {
        Self {
            mode,
            detect_fps,
            keys: VecDeque::with_capacity(KEYS_MEASURED),
            plan: if mode == Decode::Keyframes {
                Plan::KeyOnly
            } else {
                Plan::Every
            },
            gop_frames: 0,
            in_gop: 0,
            chosen_in_gop: 0,
            tail: false,
            last_t: None,
            frame_ns: 0,
            reordered: false,
            next_slot: None,
            chosen: VecDeque::with_capacity(CHOSEN_MAX),
        }
    }

    /// Whether the gate has anything to do: not with `detect_fps = 0` (every frame analysed)
    /// unless `decode = "keyframes"`.
    pub fn needed(&self) -> bool {
        self.detect_fps > 0 || self.mode == Decode::Keyframes
    }

    /// One compressed frame on its way to the decoder; `t_ns` is its timestamp.
    pub fn admit(&mut self, key: bool, t_ns: u64) -> Verdict {
        self.measure_frame(t_ns);
        if key {
            self.key_frame(t_ns);
        } else {
            self.in_gop += 1;
            if self.plan == Plan::KeyOnly || self.tail {
                return Verdict::Skip;
            }
        }
        if self.choose(t_ns) {
            self.chosen_in_gop += 1;
            if let Plan::Aligned(k) = self.plan {
                self.tail = self.chosen_in_gop >= k;
            }
        } else if key && self.plan == Plan::KeyOnly {
            return Verdict::Skip; // a key frame the grid does not want is needed by nothing
        }
        Verdict::Decode
    }

    /// One decoded frame with timestamp `t_ns`: whether it is analysed.
    pub fn take(&mut self, t_ns: Option<u64>) -> bool {
        let Some(t) = t_ns.filter(|_| self.detect_fps > 0) else {
            return true;
        };
        // Decoded frames leave in timestamp order: a chosen frame older than this one was
        // lost in the decoder.
        self.chosen.retain(|&c| c >= t);
        match self.chosen.iter().position(|&c| c == t) {
            Some(i) => {
                self.chosen.remove(i);
                true
            }
            None => false,
        }
    }

    /// The current GOP's plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Key frames per second over the remembered ones (None before the third key frame).
    pub fn key_rate(&self) -> Option<f64> {
        let (first, last) = (*self.keys.front()?, *self.keys.back()?);
        (self.keys.len() >= 3 && last > first)
            .then(|| (self.keys.len() - 1) as f64 * 1e9 / (last - first) as f64)
    }

    /// The key-frame interval (s) while the remembered key frames are evenly spaced (a GOP
    /// that just grew or shrank gives None until it is steady again).
    fn steady_gop_s(&self) -> Option<f64> {
        let gaps = self
            .keys
            .iter()
            .zip(self.keys.iter().skip(1))
            .map(|(a, b)| b - a);
        let (lo, hi) = gaps.fold((u64::MAX, 0), |(lo, hi), g| (lo.min(g), hi.max(g)));
        let span = self.keys.back()? - self.keys.front()?;
        (self.keys.len() >= 3 && lo > 0 && hi as f64 <= lo as f64 * (1.0 + RATE_TOLERANCE))
            .then(|| span as f64 / 1e9 / (self.keys.len() - 1) as f64)
    }

    /// Frames in the last complete GOP (0 before the second key frame).
    pub fn gop_frames(&self) -> u32 {
        self.gop_frames
    }

    fn measure_frame(&mut self, t_ns: u64) {
        self.reordered |= self.last_t.is_some_and(|prev| t_ns < prev);
        if let Some(prev) = self.last_t
            && t_ns > prev
            && (self.frame_ns == 0 || t_ns - prev < self.frame_ns)
        {
            self.frame_ns = t_ns - prev;
        }
        self.last_t = Some(t_ns);
    }

    fn key_frame(&mut self, t_ns: u64) {
        if self.keys.back().is_some_and(|&prev| t_ns <= prev) {
            // Timestamps restarted: measure again.
            self.keys.clear();
            self.next_slot = None;
            self.frame_ns = 0;
        }
        if !self.keys.is_empty() {
            self.gop_frames = self.in_gop + 1;
        }
        if self.keys.len() == KEYS_MEASURED {
            self.keys.pop_front();
        }
        self.keys.push_back(t_ns);
        (self.in_gop, self.chosen_in_gop, self.tail) = (0, 0, false);
        self.plan = self.plan_for_gop();
        if let Plan::Aligned(_) = self.plan {
            self.next_slot = Some(t_ns);
        }
    }

    fn plan_for_gop(&self) -> Plan {
        match self.mode {
            Decode::All => Plan::Every,
            Decode::Keyframes => Plan::KeyOnly,
            Decode::Auto => {
                let Some(gop_s) = self.steady_gop_s().filter(|_| self.detect_fps > 0) else {
                    return Plan::Every;
                };
                let k = f64::from(self.detect_fps) * gop_s;
                let whole = k.round();
                if k < 1.0 - RATE_TOLERANCE {
                    Plan::KeyOnly
                } else if (k - whole).abs() <= whole * RATE_TOLERANCE
                    && (whole as u32) < self.gop_frames
                    && (whole == 1.0 || !self.reordered)
                {
                    Plan::Aligned(whole as u32)
                } else {
                    Plan::Every
                }
            }
        }
    }

    /// Whether the frame at `t_ns` fills the next analysis slot (half a frame early counts).
    fn choose(&mut self, t_ns: u64) -> bool {
        if self.detect_fps == 0 {
            return true;
        }
        let interval = 1_000_000_000 / u64::from(self.detect_fps);
        let early = (self.frame_ns / 2).min(interval / 2);
        let slot = *self.next_slot.get_or_insert(t_ns);
        if t_ns + early < slot {
            return false;
        }
        // After a gap the grid restarts at this frame instead of catching up.
        let next = slot + interval;
        self.next_slot = Some(if next + early <= t_ns {
            t_ns + interval
        } else {
            next
        });
        if self.chosen.len() == CHOSEN_MAX {
            self.chosen.pop_front();
        }
        self.chosen.push_back(t_ns);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Feeds frames `range` of a stream at `fps` with a key frame every `gop`, each decoded frame
    /// straight out of the decoder; returns the numbers of the decoded and the analysed frames.
    fn run(
        gate: &mut FrameGate,
        range: std::ops::Range<u64>,
        fps: u64,
        gop: u64,
    ) -> (Vec<u64>, Vec<u64>) {
        let (mut decoded, mut analysed) = (Vec::new(), Vec::new());
        for i in range {
            let t = i * S / fps;
            if gate.admit(i % gop == 0, t) == Verdict::Decode {
                decoded.push(i);
                if gate.take(Some(t)) {
                    analysed.push(i);
                }
            }
        }
        (decoded, analysed)
    }

    /// Positions within the GOP starting at frame `start`.
    fn in_gop(frames: &[u64], start: u64, gop: u64) -> Vec<u64> {
        frames
            .iter()
            .filter(|&&i| (start..start + gop).contains(&i))
            .map(|i| i - start)
            .collect()
    }

    #[test]
    fn one_fps_with_a_key_frame_a_second_decodes_key_frames_only() {
        let mut gate = FrameGate::new(Decode::Auto, 1);
        let (decoded, analysed) = run(&mut gate, 0..50, 10, 10);
        // The first two GOPs decode every frame (the key-frame rate is known from the third).
        assert_eq!(decoded.len(), 23);
        assert_eq!(&decoded[20..], &[20, 30, 40]);
        assert_eq!(analysed, vec![0, 10, 20, 30, 40]);
        assert_eq!(gate.plan(), Plan::Aligned(1));
        assert!((gate.key_rate().unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_gop_of_whole_detection_intervals_decodes_up_to_its_last_analysed_frame() {
        for (fps, positions, decoded) in [
            (2, vec![0, 5], 6),
            (3, vec![0, 3, 7], 8),
            (5, vec![0, 2, 4, 6, 8], 9),
        ] {
            let mut gate = FrameGate::new(Decode::Auto, fps);
            let (dec, ana) = run(&mut gate, 0..60, 10, 10);
            assert_eq!(gate.plan(), Plan::Aligned(fps), "detect_fps {fps}");
            for start in [30, 40, 50] {
                assert_eq!(in_gop(&ana, start, 10), positions, "detect_fps {fps}");
                assert_eq!(in_gop(&dec, start, 10), (0..decoded).collect::<Vec<_>>());
            }
        }
        // A 2 s GOP at 25 fps analysed at 1 fps: frames 0 and 25 of 50, 24 of 50 not decoded.
        let mut gate = FrameGate::new(Decode::Auto, 1);
        let (dec, ana) = run(&mut gate, 0..300, 25, 50);
        assert_eq!(gate.plan(), Plan::Aligned(2));
        assert_eq!(in_gop(&ana, 200, 50), vec![0, 25]);
        assert_eq!(in_gop(&dec, 200, 50).len(), 26);
    }

    #[test]
    fn other_rates_decode_every_frame_and_analyse_on_an_even_grid() {
        // 2 fps with a key frame every 0.7 s (1.4 intervals), 10 fps on a 10 fps camera, and
        // 0 (every frame).
        for (detect, gop, analysed) in [(2, 7, 12), (10, 10, 60), (0, 10, 60)] {
            let mut gate = FrameGate::new(Decode::Auto, detect);
            let (dec, ana) = run(&mut gate, 0..60, 10, gop);
            assert_eq!(
                (dec.len(), ana.len()),
                (60, analysed),
                "detect_fps {detect}"
            );
            assert_eq!(gate.plan(), Plan::Every);
        }
        // A 25 fps camera analysed at 10 fps without usable key frames: 100 of 250 frames.
        let mut gate = FrameGate::new(Decode::Auto, 10);
        let (dec, ana) = run(&mut gate, 0..250, 25, 1000);
        assert_eq!((dec.len(), ana.len()), (250, 100));
        assert!(ana.windows(2).all(|w| (2..=3).contains(&(w[1] - w[0]))));
    }

    #[test]
    fn key_frames_faster_than_detect_fps_decode_only_those_analysed() {
        // Two key frames a second at 1 fps: every other key frame, the others not decoded.
        let mut gate = FrameGate::new(Decode::Auto, 1);
        let (dec, ana) = run(&mut gate, 0..100, 10, 5);
        assert_eq!(gate.plan(), Plan::KeyOnly);
        assert_eq!(in_gop(&dec, 50, 50), vec![0, 10, 20, 30, 40]);
        assert_eq!(in_gop(&ana, 50, 50), vec![0, 10, 20, 30, 40]);
    }

    #[test]
    fn a_gop_that_grows_is_decoded_whole_until_it_is_steady_again() {
        let mut gate = FrameGate::new(Decode::Auto, 1);
        run(&mut gate, 0..40, 10, 10);
        assert_eq!(gate.plan(), Plan::Aligned(1));
        // From frame 40 the camera sends a key frame every 4 s: frames 41..80 still follow the
        // old plan, the next two GOPs (uneven key-frame gaps) decode every frame and are
        // analysed at 1 fps, and from the third 4 s GOP on each decodes up to its 4th
        // analysed frame.
        let (dec, ana) = run(&mut gate, 40..240, 10, 40);
        assert_eq!(in_gop(&dec, 40, 40), vec![0]);
        assert_eq!(in_gop(&dec, 80, 80).len(), 80);
        assert_eq!(
            in_gop(&ana, 80, 80),
            (0..8).map(|i| i * 10).collect::<Vec<_>>()
        );
        assert_eq!(gate.plan(), Plan::Aligned(4));
        assert_eq!(in_gop(&dec, 200, 40), (0..=30).collect::<Vec<_>>());
        assert_eq!(in_gop(&ana, 200, 40), vec![0, 10, 20, 30]);
    }

    #[test]
    fn b_frames_keep_key_frames_only_but_no_other_tail_skipping() {
        // Decode order I0 P2 B1 P4 B3 ... P8 B7 P9: timestamps go back, so a GOP's frames may
        // reference the previous GOP's tail (open GOPs), and a GOP is not cut after its k-th
        // analysed frame; key frames alone still serve one analysed frame per GOP.
        let pts = |i: u64| {
            let (gop, j) = (i - i % 10, i % 10);
            gop + match j {
                0 | 9 => j,
                j if j % 2 == 1 => j + 1,
                j => j - 1,
            }
        };
        let mut gate = FrameGate::new(Decode::Auto, 2);
        for i in 0..60 {
            let verdict = gate.admit(i % 10 == 0, pts(i) * S / 10);
            assert_eq!(verdict, Verdict::Decode, "frame {i}");
        }
        assert_eq!(gate.plan(), Plan::Every);
        let mut keys = FrameGate::new(Decode::Auto, 1);
        for i in 0..60 {
            keys.admit(i % 10 == 0, pts(i) * S / 10);
        }
        assert_eq!(keys.plan(), Plan::Aligned(1));
    }

    #[test]
    fn fixed_modes_and_restarted_timestamps() {
        let mut all = FrameGate::new(Decode::All, 1);
        let (dec, ana) = run(&mut all, 0..40, 10, 10);
        assert_eq!(
            (dec.len(), ana, all.plan()),
            (40, vec![0, 10, 20, 30], Plan::Every)
        );
        let mut keys = FrameGate::new(Decode::Keyframes, 10);
        let (dec, _) = run(&mut keys, 0..40, 10, 10);
        assert_eq!(dec, vec![0, 10, 20, 30]);
        let mut auto = FrameGate::new(Decode::Auto, 1);
        run(&mut auto, 0..40, 10, 10);
        auto.admit(true, 0); // a timestamp from the past: the rate is measured again
        assert_eq!(auto.key_rate(), None);
        assert_eq!(auto.plan(), Plan::Every);
    }

    #[test]
    fn decoded_frames_lost_or_reordered_keep_the_rest_of_the_choice() {
        let mut gate = FrameGate::new(Decode::All, 5);
        // Frames at 0, 100, ... ms; chosen: 0, 200, 400 and 600 ms.
        for i in 0..7 {
            gate.admit(i == 0, i * S / 10);
        }
        // The decoder lost the 200 ms frame and emits the rest in timestamp order.
        let out: Vec<bool> = [0, 1, 3, 4, 5, 6]
            .map(|i| gate.take(Some(i * S / 10)))
            .to_vec();
        assert_eq!(out, vec![true, false, false, true, false, true]);
        assert!(gate.take(None), "a frame without a timestamp is analysed");
    }

    #[test]
    fn only_a_gate_with_something_to_do_is_needed() {
        assert!(!FrameGate::new(Decode::All, 0).needed());
        assert!(!FrameGate::new(Decode::Auto, 0).needed());
        assert!(FrameGate::new(Decode::All, 1).needed());
        assert!(FrameGate::new(Decode::Keyframes, 0).needed());
    }

    #[test]
    fn parses_and_prints() {
        for m in [Decode::All, Decode::Keyframes, Decode::Auto] {
            assert_eq!(m.to_string().parse::<Decode>(), Ok(m));
        }
        assert!(
            "every"
                .parse::<Decode>()
                .unwrap_err()
                .contains("\"keyframes\"")
        );
    }
}
