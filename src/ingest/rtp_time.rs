//! Presentation times taken from the camera's RTP timestamps.
//!
//! rtspsrc's jitterbuffer (slave mode) maps RTP time onto arrival time and re-syncs that
//! mapping whenever a packet arrives later than its `latency` behind it. Frames sent in decode
//! order with B-frames arrive up to the reordering delay (several frames) after their capture
//! time, so the buffer times out of rtspsrc jump, repeat and shrink, and everything after it
//! (frame choice, capture time) would see a stream whose timing is not the camera's. A probe on
//! rtspsrc's video pads therefore sets each packet's PTS from its RTP timestamp instead:
//! `extended RTP time / clock rate`, on an arbitrary but fixed origin, exact whatever the
//! arrival pattern, and in the camera's capture order. The arrival side (when a frame
//! actually came) is measured separately ([`super::clock`]).

use gstreamer as gst;
use gstreamer::prelude::*;

/// RTP clock rate assumed when the caps do not say (the video rate of RFC 3551).
const DEFAULT_CLOCK_RATE: u64 = 90_000;
/// The extended timestamp starts one wrap up, so frames captured before the first packet's
/// (B-frames sent after it) still get a positive time.
const FIRST_EPOCH: u64 = 1 << 32;

/// Extends one RTP stream's 32-bit timestamps and converts them to nanoseconds.
#[derive(Debug, Clone)]
pub struct RtpTime {
    clock_rate: u64,
    last: Option<u64>,
}

impl RtpTime {
    /// A stream with RTP clock `clock_rate` (Hz).
    pub fn new(clock_rate: u64) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            last: None,
        }
    }

    /// The extended timestamp of `rtp`: the one nearest to the previous packet's (a jump of
    /// more than half the 32-bit range is taken as a wrap).
    pub fn extend(&mut self, rtp: u32) -> u64 {
        let ext = match self.last {
            None => FIRST_EPOCH + u64::from(rtp),
            Some(last) => {
                let step = i64::from(rtp.wrapping_sub(last as u32) as i32);
                last.saturating_add_signed(step)
            }
        };
        self.last = Some(ext);
        ext
    }

    /// Presentation time (ns) of a packet with timestamp `rtp`.
    pub fn pts_ns(&mut self, rtp: u32) -> u64 {
        let ext = self.extend(rtp);
        ((u128::from(ext) * 1_000_000_000) / u128::from(self.clock_rate)) as u64
    }
}

/// The 32-bit RTP timestamp a presentation time made by [`RtpTime::pts_ns`] came from (for
/// tests and diagnostics that compare with a sender's RTP timestamps).
pub fn rtp_of_pts(pts_ns: u64, clock_rate: u64) -> u32 {
    let ticks = (u128::from(pts_ns) * u128::from(clock_rate) + 500_000_000) / 1_000_000_000;
    ticks as u32
}

/// The RTP timestamp of a packet (None if it is not an RTP version 2 packet).
fn rtp_timestamp(data: &[u8]) -> Option<u32> {
    (data.len() >= 12 && data[0] >> 6 == 2)
        .then(|| u32::from_be_bytes([data[4], data[5], data[6], data[7]]))
}

/// Sets the PTS of every packet on `src`'s video pads from its RTP timestamp (as pads appear).
/// Does nothing for a source that does not send RTP.
pub fn install(src: &gst::Element) {
    src.connect_pad_added(|_, pad| {
        let Some(rate) = video_clock_rate(pad) else {
            return;
        };
        let time = std::sync::Mutex::new(RtpTime::new(rate));
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                // The thread pushing packets out of rtspsrc (its jitterbuffer's) is a streaming
                // thread too.
                super::priority::lower_this_thread();
                let mut time = time.lock().unwrap_or_else(|p| p.into_inner());
                match &mut info.data {
                    Some(gst::PadProbeData::Buffer(b)) => restamp(b, &mut time),
                    Some(gst::PadProbeData::BufferList(list)) => {
                        list.make_mut().foreach_mut(|mut b, _| {
                            restamp(&mut b, &mut time);
                            std::ops::ControlFlow::Continue(Some(b))
                        });
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    });
}

fn restamp(buffer: &mut gst::Buffer, time: &mut RtpTime) {
    let rtp = {
        let Ok(map) = buffer.map_readable() else {
            return;
        };
        rtp_timestamp(&map)
    };
    if let Some(rtp) = rtp {
        let pts = gst::ClockTime::from_nseconds(time.pts_ns(rtp));
        buffer.make_mut().set_pts(pts);
    }
}

/// The RTP clock rate of a video pad (None for other pads: audio, or not RTP).
fn video_clock_rate(pad: &gst::Pad) -> Option<u64> {
    let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)))?;
    let s = caps.structure(0)?;
    if s.name() != "application/x-rtp" || s.get::<&str>("media").ok()? != "video" {
        return None;
    }
    Some(
        s.get::<i32>("clock-rate")
            .ok()
            .and_then(|r| u64::try_from(r).ok())
            .unwrap_or(DEFAULT_CLOCK_RATE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordered_and_wrapping_timestamps_keep_their_order_and_spacing() {
        let mut t = RtpTime::new(90_000);
        // I0 P3 B1 B2 at 10 fps (9,000 ticks a frame), starting just before the 32-bit wrap.
        let start = u32::MAX - 10_000;
        let order = [0u32, 3, 1, 2, 6, 4, 5];
        let pts: Vec<u64> = order
            .iter()
            .map(|&i| t.pts_ns(start.wrapping_add(i * 9_000)))
            .collect();
        let first = pts[0];
        let ms: Vec<u64> = pts.iter().map(|p| (p - first) / 1_000_000).collect();
        assert_eq!(ms, vec![0, 300, 100, 200, 600, 400, 500]);
        // Back to the 32-bit value the sender used.
        for (&i, &p) in order.iter().zip(&pts) {
            assert_eq!(rtp_of_pts(p, 90_000), start.wrapping_add(i * 9_000));
        }
    }

    #[test]
    fn a_frame_captured_before_the_first_packet_is_still_after_zero() {
        let mut t = RtpTime::new(90_000);
        let a = t.pts_ns(100);
        let b = t.pts_ns(100u32.wrapping_sub(18_000)); // 200 ms earlier, across the wrap
        assert!(b < a && a - b == 200_000_000, "{a} {b}");
    }

    #[test]
    fn only_rtp_version_2_packets_have_a_timestamp() {
        let mut p = vec![0x80, 96, 0, 1, 0, 0, 0x23, 0x28, 0, 0, 0, 1];
        assert_eq!(rtp_timestamp(&p), Some(9_000));
        p[0] = 0x40;
        assert_eq!(rtp_timestamp(&p), None);
        assert_eq!(rtp_timestamp(&[0x80, 96]), None);
    }
}
