//! Where each camera's frames went over a run, and whether the camera was analysed at the rate
//! it asked for (the summary's per-camera lines and its warnings).
//!
//! Every decoded frame ends exactly one way: analysed, not picked by the frame gate (more
//! frames than `detect_fps`), skipped (the detector's queue held a fresher frame), dropped
//! (between decoder and detector), or failed (in the detector). A camera could be analysed at
//! most once per detection slot in which it sent a frame (`slots`: min(detect_fps, its own
//! rate), slot by slot); below [`SHORTFALL`] of that, the summary says which loss is to blame.

use std::sync::atomic::Ordering;

use super::{CameraStats, Stats};

/// A camera analysed at less than this share of what it could be is reported.
pub const SHORTFALL: f64 = 0.9;

/// One camera's frames over a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameAccount {
    /// Camera id.
    pub id: String,
    /// Detection slots in which the camera sent a frame.
    pub slots: u64,
    /// Compressed frames not decoded (no analysed frame needed them, or shed).
    pub undecoded: u64,
    /// Of `undecoded`: shed while the camera's decoding was behind its stream.
    pub shed: u64,
    /// Of `undecoded`: damaged by packets lost before them (up to a key frame that lost none).
    pub damaged: u64,
    /// Frames out of the decoder.
    pub decoded: u64,
    /// Frames the detector finished.
    pub analysed: u64,
    /// Decoded frames the gate did not pick.
    pub not_picked: u64,
    /// Frames skipped before conversion (the detector's queue held a fresher one).
    pub skipped: u64,
    /// Frames dropped between the decoder and the detector.
    pub dropped: u64,
    /// Frames the detector could not analyse.
    pub failed: u64,
    /// Detection slots that fell while the camera was held below its `detect_fps` (its share
    /// of an overloaded detector, or its idle rate; see [`super::admission`]).
    pub limited: u64,
    /// Seconds the camera streamed.
    pub streamed_s: f64,
    /// RTP packets missing before the decoder (lost on the network, or from its full packet
    /// queue).
    pub packets_lost: u64,
}

/// What one camera's capture clock found over a run (see [`crate::ingest::clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockFigures {
    /// The camera's RTCP clock minus the capture-time reference, ms (None without sender
    /// reports).
    pub offset_ms: Option<i64>,
    /// Capture delay measured from its clock and subtracted, ms (None: clock not in step).
    pub delay_ms: Option<i64>,
    /// Times its clock moved by more than 100 ms.
    pub jumps: u64,
    /// Times the capture times were corrected towards the reference.
    pub corrections: u64,
}

impl ClockFigures {
    /// The figures of one camera slot.
    pub fn of(c: &CameraStats) -> Self {
        Self {
            offset_ms: c.clock.offset(),
            delay_ms: c.clock.delay(),
            jumps: c.clock.jumps.load(Ordering::Relaxed),
            corrections: c.clock.corrections.load(Ordering::Relaxed),
        }
    }
}

/// Why a camera was analysed below what it could be: the largest loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Frames it sent that never came out of the decoder picked (decode errors, or frame
    /// times the gate could not place).
    NotDecodedOrPicked(u64),
    /// Slots lost to frames shed before the decoder while its decoding was behind its stream
    /// (counted apart from the previous).
    Shed(u64),
    /// Slots lost to frames not decoded after packets lost before the decoder (counted apart
    /// from the first).
    Damaged(u64),
    /// Skipped while the detector's queue held a fresher frame: the detector is too slow.
    Skipped(u64),
    /// Dropped between the decoder and the detector.
    Dropped(u64),
    /// The detector failed on them.
    Failed(u64),
    /// Slots in which the camera was held to its fair share or its idle rate.
    Limited(u64),
}

impl FrameAccount {
    /// Adds the counters of another slot of the same camera (a camera changed by a reload).
    pub fn add(&mut self, o: &FrameAccount) {
        self.slots += o.slots;
        self.undecoded += o.undecoded;
        self.shed += o.shed;
        self.damaged += o.damaged;
        self.decoded += o.decoded;
        self.analysed += o.analysed;
        self.not_picked += o.not_picked;
        self.skipped += o.skipped;
        self.dropped += o.dropped;
        self.failed += o.failed;
        self.limited += o.limited;
        self.streamed_s += o.streamed_s;
        self.packets_lost += o.packets_lost;
    }

    /// The counters of one camera slot.
    pub fn of(c: &CameraStats) -> Self {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Self {
            id: c.id.clone(),
            slots: get(&c.slots),
            undecoded: get(&c.undecoded),
            shed: get(&c.shed),
            damaged: get(&c.damaged),
            decoded: get(&c.decoded),
            analysed: get(&c.inferred),
            not_picked: get(&c.not_picked),
            skipped: get(&c.skipped),
            dropped: get(&c.dropped),
            failed: get(&c.failed),
            limited: get(&c.limited),
            streamed_s: get(&c.streamed_ms) as f64 / 1000.0,
            packets_lost: get(&c.packets_lost),
        }
    }

    /// Whether every decoded frame is accounted for exactly once (true once the camera and
    /// the detector have stopped).
    pub fn balanced(&self) -> bool {
        self.decoded == self.analysed + self.not_picked + self.skipped + self.dropped + self.failed
    }

    /// Frames analysed per second of streaming.
    pub fn analysed_fps(&self) -> f64 {
        self.analysed as f64 / self.streamed_s.max(1e-9)
    }

    /// Frames that could have been analysed per second of streaming.
    pub fn possible_fps(&self) -> f64 {
        self.slots as f64 / self.streamed_s.max(1e-9)
    }

    /// Why the camera was analysed at less than [`SHORTFALL`] of what it could be (None when
    /// it was not).
    pub fn shortfall(&self) -> Option<Shortfall> {
        if self.slots == 0 || self.analysed as f64 >= SHORTFALL * self.slots as f64 {
            return None;
        }
        let picked = self.decoded.saturating_sub(self.not_picked);
        let lost = self.slots.saturating_sub(picked);
        let shed = self.shed.min(lost);
        let damaged = self.damaged.min(lost - shed);
        [
            Shortfall::Skipped(self.skipped),
            Shortfall::Dropped(self.dropped),
            Shortfall::Failed(self.failed),
            Shortfall::Shed(shed),
            Shortfall::Damaged(damaged),
            Shortfall::NotDecodedOrPicked(lost - shed - damaged),
            Shortfall::Limited(self.limited),
        ]
        .into_iter()
        .max_by_key(|s| match s {
            Shortfall::NotDecodedOrPicked(n)
            | Shortfall::Shed(n)
            | Shortfall::Damaged(n)
            | Shortfall::Skipped(n)
            | Shortfall::Dropped(n)
            | Shortfall::Failed(n)
            | Shortfall::Limited(n) => *n,
        })
    }
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shortfall::Skipped(n) => write!(
                f,
                "{n} frames skipped while a fresher one waited: the detector cannot keep up \
                 (lower detect_fps, or more inference capacity)"
            ),
            Shortfall::Dropped(n) => write!(
                f,
                "{n} frames dropped between the decoder and the detector (its queue was full)"
            ),
            Shortfall::Failed(n) => write!(f, "{n} frames failed in the detector"),
            Shortfall::Shed(n) => write!(
                f,
                "{n} detection slots lost to frames shed before the decoder while its decoding \
                 was behind its stream: \
                 the box is short of CPU for the cameras' streaming threads (fewer cameras, a \
                 lower detect_fps, or substreams)"
            ),
            Shortfall::Damaged(n) => write!(
                f,
                "{n} detection slots lost to frames not decoded after RTP packets were lost \
                 before the decoder (on the network, or from its full packet queue; use tcp, or \
                 fewer cameras)"
            ),
            Shortfall::Limited(n) => write!(
                f,
                "held to its fair share of an overloaded detector, or to its idle rate while \
                 nothing moved, in {n} of its detection slots"
            ),
            Shortfall::NotDecodedOrPicked(n) => write!(
                f,
                "{n} frames it sent never came out of the decoder picked for analysis \
                 (decoding errors, or frame times the gate could not place)"
            ),
        }
    }
}

impl Stats {
    /// Every configured camera's frame account, in slot order.
    pub fn accounts(&self) -> Vec<FrameAccount> {
        self.cameras().iter().map(|c| FrameAccount::of(c)).collect()
    }

    /// Every configured camera's clock figures, in slot order.
    pub fn clocks(&self) -> Vec<(String, ClockFigures)> {
        self.cameras()
            .iter()
            .map(|c| (c.id.clone(), ClockFigures::of(c)))
            .collect()
    }

    /// Per camera id, over every slot it had (removed cameras included): its frames summed and
    /// its latest slot's clock.
    pub fn by_camera(&self) -> Vec<(FrameAccount, ClockFigures)> {
        let mut out: Vec<(FrameAccount, ClockFigures)> = Vec::new();
        for c in self.all_cameras() {
            let (a, clock) = (FrameAccount::of(&c), ClockFigures::of(&c));
            match out.iter_mut().find(|(o, _)| o.id == a.id) {
                Some((o, k)) => {
                    o.add(&a);
                    *k = clock;
                }
                None => out.push((a, clock)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(slots: u64, analysed: u64, skipped: u64, dropped: u64, failed: u64) -> FrameAccount {
        FrameAccount {
            id: "cam1".into(),
            slots,
            decoded: analysed + skipped + dropped + failed + 50,
            analysed,
            not_picked: 50,
            skipped,
            dropped,
            failed,
            streamed_s: 10.0,
            ..FrameAccount::default()
        }
    }

    #[test]
    fn a_camera_analysed_at_its_rate_has_no_shortfall() {
        let a = account(100, 95, 3, 2, 0);
        assert!(a.balanced());
        assert_eq!(a.shortfall(), None);
        assert!((a.analysed_fps() - 9.5).abs() < 1e-9 && (a.possible_fps() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn the_largest_loss_is_blamed() {
        assert_eq!(
            account(100, 60, 30, 10, 0).shortfall(),
            Some(Shortfall::Skipped(30))
        );
        assert_eq!(
            account(100, 80, 0, 2, 18).shortfall(),
            Some(Shortfall::Failed(18))
        );
        // 43 analysed of 100 possible, nothing lost after the gate: the gate picked too few.
        let gate = FrameAccount {
            decoded: 100,
            not_picked: 57,
            ..account(100, 43, 0, 0, 0)
        };
        assert!(gate.balanced());
        assert_eq!(gate.shortfall(), Some(Shortfall::NotDecodedOrPicked(57)));
        assert!(gate.shortfall().unwrap().to_string().contains("57 frames"));
        // Of 57 slots never picked, 40 shed while decoding was behind: that is blamed.
        let behind = FrameAccount {
            shed: 40,
            ..gate.clone()
        };
        assert_eq!(behind.shortfall(), Some(Shortfall::Shed(40)));
        // Shed frames count only up to the slots lost (a shed GOP's frames outnumber them).
        // Of them, 45 damaged by lost packets (and 10 shed): the damage is blamed, counted apart.
        let lossy = FrameAccount {
            shed: 10,
            damaged: 45,
            ..gate.clone()
        };
        assert_eq!(lossy.shortfall(), Some(Shortfall::Damaged(45)));
        assert!(
            lossy
                .shortfall()
                .unwrap()
                .to_string()
                .contains("RTP packets were lost")
        );
        let all_shed = FrameAccount { shed: 500, ..gate };
        assert_eq!(all_shed.shortfall(), Some(Shortfall::Shed(57)));
        assert!(
            all_shed
                .shortfall()
                .unwrap()
                .to_string()
                .starts_with("57 detection slots")
        );
    }

    #[test]
    fn an_unbalanced_account_is_seen() {
        let mut a = account(100, 95, 3, 2, 0);
        a.decoded += 1;
        assert!(!a.balanced());
    }
}
