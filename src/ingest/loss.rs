//! RTP packets lost before the decoder: gaps in the sequence numbers of the packets leaving
//! the packet queue (the element named `packets` in the template).
//!
//! Input: each RTP packet on the queue's src pad (after the jitterbuffer, which puts them in
//! order, and after the queue). Output: the camera's `packets_lost` counter, and each gap told
//! to the frame gate with the times of the packets either side of it (`gate::Gap`). A gap is a
//! packet lost on the network (UDP: the jitterbuffer stopped waiting for it) or dropped from
//! the leaky packet queue while decoding was more than the queue's span behind; either way the
//! frame it belonged to, and the frames referring to that one up to the next key frame, would
//! be damaged where they are decoded, so the gate does not decode them. A packet older than
//! the last one (late, or repeated) is not a gap; a new SSRC (the camera restarted its stream)
//! starts counting afresh.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::gate::Gap;
use crate::stats::{self, CameraStats};

/// One RTP packet's place in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Synchronisation source.
    pub ssrc: u32,
    /// Sequence number.
    pub seq: u16,
    /// Presentation time (ns; its frame's RTP time), if set.
    pub at: Option<u64>,
    /// The RTP marker bit: the last packet of its frame (video).
    pub marker: bool,
}

/// Gaps in one RTP stream's sequence numbers.
#[derive(Debug, Default)]
pub struct SeqGaps {
    /// The newest packet seen.
    last: Option<Packet>,
}

impl SeqGaps {
    /// The next packet; returns how many packets are missing just before it, and the times
    /// either side of the gap (none without a gap).
    pub fn packet(&mut self, p: Packet) -> (u64, Gap) {
        let Some(last) = self.last.filter(|l| l.ssrc == p.ssrc) else {
            self.last = Some(p);
            return (0, Gap::default());
        };
        let ahead = p.seq.wrapping_sub(last.seq);
        if ahead == 0 || ahead >= 0x8000 {
            return (0, Gap::default()); // repeated, or older than the newest (late): not a gap
        }
        self.last = Some(p);
        if ahead == 1 {
            return (0, Gap::default());
        }
        let gap = Gap {
            open_before: last.at.filter(|_| !last.marker),
            after: p.at,
        };
        (u64::from(ahead - 1), gap)
    }

    /// The packets missing before `buffer` (0 for anything but an RTP version 2 packet: its
    /// 12-byte header holds the marker bit in byte 1, the sequence number at byte 2 and the
    /// SSRC at byte 8).
    fn buffer(&mut self, buffer: &gst::BufferRef) -> (u64, Gap) {
        let Ok(map) = buffer.map_readable() else {
            return (0, Gap::default());
        };
        match map.as_slice() {
            [b0, b1, s0, s1, _, _, _, _, c0, c1, c2, c3, ..] if b0 >> 6 == 2 => {
                self.packet(Packet {
                    ssrc: u32::from_be_bytes([*c0, *c1, *c2, *c3]),
                    seq: u16::from_be_bytes([*s0, *s1]),
                    at: buffer.pts().map(|t| t.nseconds()),
                    marker: b1 & 0x80 != 0,
                })
            }
            _ => (0, Gap::default()),
        }
    }
}

/// Counts the packets missing in what leaves `queue` into `cam.packets_lost`, and tells
/// `on_gap` where each gap is (in the queue's streaming thread, before the packet after it
/// goes on).
pub fn install(
    queue: &gst::Element,
    cam: &Arc<CameraStats>,
    on_gap: impl Fn(Gap) + Send + Sync + 'static,
) {
    let Some(pad) = queue.static_pad("src") else {
        return;
    };
    let cam = Arc::clone(cam);
    // Only the queue's streaming thread takes it.
    let gaps = Mutex::new(SeqGaps::default());
    let mask = gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST;
    pad.add_probe(mask, move |_, info| {
        let mut gaps = gaps.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = |b: &gst::BufferRef| {
            let (lost, gap) = gaps.buffer(b);
            if lost > 0 {
                stats::add(&cam.packets_lost, lost);
                on_gap(gap);
            }
        };
        match &info.data {
            Some(gst::PadProbeData::Buffer(b)) => found(b),
            Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(found),
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ssrc: u32, seq: u16) -> Packet {
        Packet {
            ssrc,
            seq,
            at: Some(u64::from(seq) * 10),
            marker: seq.is_multiple_of(2),
        }
    }

    #[test]
    fn gaps_are_the_sequence_numbers_skipped_across_the_wrap() {
        let mut g = SeqGaps::default();
        let lost: Vec<u64> = [65_533, 65_534, 1, 2, 5]
            .into_iter()
            .map(|s| g.packet(pkt(7, s)).0)
            .collect();
        // 65535 and 0 missing across the wrap, then 3 and 4.
        assert_eq!(lost, [0, 0, 2, 0, 2]);
    }

    #[test]
    fn late_and_repeated_packets_are_not_gaps_and_a_new_ssrc_starts_afresh() {
        let mut g = SeqGaps::default();
        assert_eq!(g.packet(pkt(1, 100)).0, 0);
        assert_eq!(g.packet(pkt(1, 100)).0, 0, "repeated");
        assert_eq!(g.packet(pkt(1, 90)).0, 0, "late");
        assert_eq!(
            g.packet(pkt(1, 101)).0,
            0,
            "the late one did not move the newest back"
        );
        assert_eq!(g.packet(pkt(2, 40_000)).0, 0, "another source: no gap");
        assert_eq!(g.packet(pkt(2, 40_003)).0, 2);
    }

    #[test]
    fn a_gap_names_the_frame_after_it_and_the_one_before_unless_that_one_ended() {
        let mut g = SeqGaps::default();
        g.packet(pkt(1, 10)); // marker: its frame ended
        let (lost, gap) = g.packet(pkt(1, 13));
        assert_eq!((lost, gap.open_before, gap.after), (2, None, Some(130)));
        let (lost, gap) = g.packet(pkt(1, 16)); // 13 had no marker: its frame lost its end
        assert_eq!(
            (lost, gap.open_before, gap.after),
            (2, Some(130), Some(160))
        );
        assert_eq!(
            g.packet(pkt(1, 17)).1,
            Gap::default(),
            "no gap: no frame named"
        );
    }
}
