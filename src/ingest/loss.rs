//! RTP packets lost before the decoder: gaps in the sequence numbers of the packets leaving
//! the packet queue (the element named `packets` in the template).
//!
//! Input: each RTP packet on the queue's src pad (after the jitterbuffer, which puts them in
//! order, and after the queue). Output: the camera's `packets_lost` counter. A gap is a packet
//! lost on the network (UDP: the jitterbuffer stopped waiting for it) or dropped from the leaky
//! packet queue while decoding was more than the queue's span behind; either way the frame it
//! belonged to, and the frames referring to that one up to the next key frame, are damaged
//! where they are decoded. A packet older than the last one (late, or repeated) is not a gap; a new
//! SSRC (the camera restarted its stream) starts counting afresh.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::stats::{self, CameraStats};

/// Gaps in one RTP stream's sequence numbers.
#[derive(Debug, Default)]
pub struct SeqGaps {
    /// SSRC and sequence number of the newest packet seen.
    last: Option<(u32, u16)>,
}

impl SeqGaps {
    /// The packet of source `ssrc` with sequence number `seq`; returns how many packets are
    /// missing just before it.
    pub fn packet(&mut self, ssrc: u32, seq: u16) -> u64 {
        let Some((last_ssrc, last)) = self.last.filter(|(s, _)| *s == ssrc) else {
            self.last = Some((ssrc, seq));
            return 0;
        };
        let ahead = seq.wrapping_sub(last);
        if ahead == 0 || ahead >= 0x8000 {
            return 0; // repeated, or older than the newest (late): not a gap
        }
        self.last = Some((last_ssrc, seq));
        u64::from(ahead - 1)
    }

    /// The packets missing before `buffer` (0 for anything but an RTP version 2 packet: its
    /// 12-byte header holds the sequence number at byte 2 and the SSRC at byte 8).
    fn buffer(&mut self, buffer: &gst::BufferRef) -> u64 {
        let Ok(map) = buffer.map_readable() else {
            return 0;
        };
        match map.as_slice() {
            [b0, _, s0, s1, _, _, _, _, c0, c1, c2, c3, ..] if b0 >> 6 == 2 => {
                let ssrc = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
                self.packet(ssrc, u16::from_be_bytes([*s0, *s1]))
            }
            _ => 0,
        }
    }
}

/// Counts the packets missing in what leaves `queue` into `cam.packets_lost`.
pub fn install(queue: &gst::Element, cam: &Arc<CameraStats>) {
    let Some(pad) = queue.static_pad("src") else {
        return;
    };
    let cam = Arc::clone(cam);
    // Only the queue's streaming thread takes it.
    let gaps = Mutex::new(SeqGaps::default());
    let mask = gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST;
    pad.add_probe(mask, move |_, info| {
        let mut gaps = gaps.lock().unwrap_or_else(|p| p.into_inner());
        let lost: u64 = match &info.data {
            Some(gst::PadProbeData::Buffer(b)) => gaps.buffer(b),
            Some(gst::PadProbeData::BufferList(list)) => list.iter().map(|b| gaps.buffer(b)).sum(),
            _ => 0,
        };
        if lost > 0 {
            stats::add(&cam.packets_lost, lost);
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_the_sequence_numbers_skipped_across_the_wrap() {
        let mut g = SeqGaps::default();
        let lost: Vec<u64> = [65_533, 65_534, 1, 2, 5]
            .into_iter()
            .map(|s| g.packet(7, s))
            .collect();
        // 65535 and 0 missing across the wrap, then 3 and 4.
        assert_eq!(lost, [0, 0, 2, 0, 2]);
    }

    #[test]
    fn late_and_repeated_packets_are_not_gaps_and_a_new_ssrc_starts_afresh() {
        let mut g = SeqGaps::default();
        assert_eq!(g.packet(1, 100), 0);
        assert_eq!(g.packet(1, 100), 0, "repeated");
        assert_eq!(g.packet(1, 90), 0, "late");
        assert_eq!(
            g.packet(1, 101),
            0,
            "the late one did not move the newest back"
        );
        assert_eq!(g.packet(2, 40_000), 0, "another source: no gap");
        assert_eq!(g.packet(2, 40_003), 2);
    }
}
