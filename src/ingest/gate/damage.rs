//! Frames damaged by packets lost before the decoder.
//!
//! A packet missing before the decoder (lost on the network, or dropped from a full packet
//! queue: `super::super::loss`) damages the frame it belonged to and every frame after it up to
//! the next key frame, which refer to it; the decoder would conceal the damage and the detector
//! would analyse what the decoder made up. So from a loss on, the frames a plan would decode
//! are not decoded ([`Verdict::Damaged`]) until a key frame that lost none of its packets.
//!
//! Which frame lost packets is known only by the times of the packets either side of the gap
//! (each packet's presentation time is its frame's RTP time, `super::super::rtp_time`): the
//! frame of the packet after the gap (it may have lost its first packets), and the frame of the
//! packet before it unless that packet ended its frame (RTP marker bit). A key frame with one of
//! those times is taken as damaged (at worst, a key frame whose packets all came is not decoded,
//! nor its GOP); without times, the first frame after the loss is.

use super::{FrameGate, Verdict};

/// Frame times remembered as having lost packets, at most (losses in one GOP).
const TIMES_KEPT: usize = 8;

/// What is known of the frames that lost packets since the last clean key frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Damage {
    /// Presentation times (ns) of the frames that may have lost packets.
    times: Vec<u64>,
    /// A loss without a time came, and no frame since.
    untimed: bool,
}

/// The packets either side of a gap in one camera's RTP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gap {
    /// Presentation time (ns) of the packet before the gap, if it did not end its frame.
    pub open_before: Option<u64>,
    /// Presentation time (ns) of the packet after the gap.
    pub after: Option<u64>,
}

impl FrameGate {
    /// Packets were lost before the decoder, at `gap`: the frames the plan would decode are
    /// not decoded until a key frame that lost none.
    pub fn packets_lost(&mut self, gap: Gap) {
        let damage = self.damage.get_or_insert_with(Damage::default);
        for t in [gap.open_before, gap.after].into_iter().flatten() {
            if damage.times.len() == TIMES_KEPT {
                damage.times.remove(0);
            }
            damage.times.push(t);
        }
        damage.untimed |= gap.open_before.is_none() && gap.after.is_none();
    }

    /// Whether frames are being held back as damaged (the decoder's next frame is a key frame).
    pub fn damaged(&self) -> bool {
        self.damage.is_some()
    }

    /// The verdict for the frame at `t_ns` given the plan's `verdict`: [`Verdict::Damaged`]
    /// while a loss damages it; a key frame that lost no packet ends the damage.
    pub(super) fn after_loss(&mut self, key: bool, t_ns: u64, verdict: Verdict) -> Verdict {
        let Some(damage) = &mut self.damage else {
            return verdict;
        };
        let lost_here = damage.times.contains(&t_ns) || damage.untimed;
        damage.untimed = false;
        if key && !lost_here {
            self.damage = None;
            return verdict;
        }
        if verdict != Verdict::Decode {
            return verdict;
        }
        if key && matches!(self.plan, super::Plan::Aligned(_)) {
            self.anchors.pop_back(); // no frame of the GOP reaches the output grid
        }
        Verdict::Damaged
    }
}
