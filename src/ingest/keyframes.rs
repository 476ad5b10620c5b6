//! Key-frame-only decoding: which compressed frames reach a camera's decoder.
//!
//! A key frame decodes on its own; a delta frame needs every frame since the last key frame. A
//! camera whose detect fps is at or below its key-frame rate is fully served by its key frames,
//! so its delta frames can be dropped before the decoder and cost nothing (measured: 64 cameras
//! at 1 fps, 1 key frame per second, took 171 % CPU decoding every frame and 104 % decoding key
//! frames only). [`KeyframeGate`] sees each compressed frame on its way to the decoder and says
//! whether to pass it; the mode switches only at a key frame, so the decoder never gets a delta
//! frame whose references it skipped.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

/// Key frames remembered to measure the key-frame rate (the rate is known from the third).
const KEYS_MEASURED: usize = 4;
/// A measured key-frame rate this close under detect fps still counts as enough (RTP clock
/// jitter).
const RATE_TOLERANCE: f64 = 0.02;

/// Which frames a camera decodes (`decode` in `[ingest]` or per camera).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decode {
    /// Every frame.
    All,
    /// Key frames only, whatever detect fps asks for.
    Keyframes,
    /// Key frames only while detect fps (not 0) is at or below the stream's measured key-frame
    /// rate; every frame otherwise.
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
    /// A delta frame of a camera decoding key frames only.
    Skip,
}

/// Per-connection state: recent key-frame times and the current mode.
#[derive(Debug)]
pub struct KeyframeGate {
    mode: Decode,
    detect_fps: u32,
    /// Timestamps (ns) of the last key frames, oldest first.
    keys: VecDeque<u64>,
    key_only: bool,
}

impl KeyframeGate {
    pub fn new(mode: Decode, detect_fps: u32) -> Self {
        Self {
            mode,
            detect_fps,
            keys: VecDeque::with_capacity(KEYS_MEASURED),
            key_only: false,
        }
    }

    /// Whether this camera can ever drop a frame: not with `decode = "all"`, nor with `"auto"`
    /// when `detect_fps` is 0 (every frame wanted).
    pub fn can_skip(&self) -> bool {
        match self.mode {
            Decode::All => false,
            Decode::Keyframes => true,
            Decode::Auto => self.detect_fps > 0,
        }
    }

    /// One compressed frame on its way to the decoder; `t_ns` is its timestamp.
    pub fn admit(&mut self, key: bool, t_ns: u64) -> Verdict {
        if key {
            self.key_frame(t_ns);
            Verdict::Decode
        } else if self.key_only {
            Verdict::Skip
        } else {
            Verdict::Decode
        }
    }

    /// Whether delta frames are being dropped.
    pub fn key_only(&self) -> bool {
        self.key_only
    }

    /// Key frames per second over the remembered ones (None before the third key frame).
    pub fn key_rate(&self) -> Option<f64> {
        let (first, last) = (*self.keys.front()?, *self.keys.back()?);
        (self.keys.len() >= 3 && last > first)
            .then(|| (self.keys.len() - 1) as f64 * 1e9 / (last - first) as f64)
    }

    fn key_frame(&mut self, t_ns: u64) {
        if self.keys.back().is_some_and(|&prev| t_ns <= prev) {
            self.keys.clear(); // timestamps restarted: measure again
        }
        if self.keys.len() == KEYS_MEASURED {
            self.keys.pop_front();
        }
        self.keys.push_back(t_ns);
        self.key_only = match self.mode {
            Decode::All => false,
            Decode::Keyframes => true,
            Decode::Auto => {
                self.detect_fps > 0
                    && self.key_rate().is_some_and(|rate| {
                        f64::from(self.detect_fps) <= rate * (1.0 + RATE_TOLERANCE)
                    })
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Feeds `frames` frames at `fps` with a key frame every `gop`; returns the verdicts.
    fn feed(gate: &mut KeyframeGate, frames: u64, fps: u64, gop: u64) -> Vec<Verdict> {
        (0..frames)
            .map(|i| gate.admit(i % gop == 0, i * S / fps))
            .collect()
    }

    fn skipped(v: &[Verdict]) -> usize {
        v.iter().filter(|v| **v == Verdict::Skip).count()
    }

    #[test]
    fn auto_waits_for_the_rate_then_drops_delta_frames_only() {
        let mut gate = KeyframeGate::new(Decode::Auto, 1);
        let v = feed(&mut gate, 50, 10, 10);
        // Key frames 0, 10 decode everything; from key frame 20 the rate (1/s) is known.
        assert!(v[..20].iter().all(|v| *v == Verdict::Decode));
        assert_eq!(v[20], Verdict::Decode);
        assert!(v[21..30].iter().all(|v| *v == Verdict::Skip));
        assert_eq!(skipped(&v), 27);
        assert!(gate.key_only());
        assert!((gate.key_rate().unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn auto_decodes_everything_when_detect_fps_is_above_the_key_rate_or_unlimited() {
        for fps in [2, 0] {
            let mut gate = KeyframeGate::new(Decode::Auto, fps);
            assert_eq!(skipped(&feed(&mut gate, 60, 10, 10)), 0, "detect_fps {fps}");
        }
        // Two key frames per second serve 2 fps: from key frame 10 on, the 40 delta frames
        // of frames 11..59 are dropped.
        let mut gate = KeyframeGate::new(Decode::Auto, 2);
        assert_eq!(skipped(&feed(&mut gate, 60, 10, 5)), 40);
    }

    #[test]
    fn a_longer_gop_switches_back_at_a_key_frame() {
        let mut gate = KeyframeGate::new(Decode::Auto, 1);
        feed(&mut gate, 40, 10, 10);
        assert!(gate.key_only());
        // The camera now sends a key frame every 4 s: at the first key frame after the long
        // gap the rate falls under 1/s, and frames decode again from that key frame on.
        let base = 40 * S / 10;
        let verdicts: Vec<Verdict> = (0..120u64)
            .map(|i| gate.admit(i % 40 == 0, base + i * S / 10))
            .collect();
        assert!(verdicts[1..40].iter().all(|v| *v == Verdict::Skip));
        assert!(verdicts[40..].iter().all(|v| *v == Verdict::Decode));
        assert!(!gate.key_only());
    }

    #[test]
    fn fixed_modes_and_restarted_timestamps() {
        let mut all = KeyframeGate::new(Decode::All, 1);
        assert_eq!(skipped(&feed(&mut all, 40, 10, 10)), 0);
        let mut keys = KeyframeGate::new(Decode::Keyframes, 10);
        // Delta frames before the first key frame decode (the mode is set at a key frame).
        assert_eq!(keys.admit(false, 0), Verdict::Decode);
        assert_eq!(skipped(&feed(&mut keys, 40, 10, 10)), 36);
        let mut auto = KeyframeGate::new(Decode::Auto, 1);
        feed(&mut auto, 40, 10, 10);
        auto.admit(true, 0); // a timestamp from the past: the rate is measured again
        assert_eq!(auto.key_rate(), None);
        assert!(!auto.key_only());
    }

    #[test]
    fn only_a_gate_that_can_skip_needs_a_probe() {
        assert!(!KeyframeGate::new(Decode::All, 1).can_skip());
        assert!(!KeyframeGate::new(Decode::Auto, 0).can_skip());
        assert!(KeyframeGate::new(Decode::Auto, 1).can_skip());
        assert!(KeyframeGate::new(Decode::Keyframes, 0).can_skip());
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
