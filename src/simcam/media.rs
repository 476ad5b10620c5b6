//! One simulated camera's RTSP media: feeds its clip through an appsrc with the capture and
//! send times of a live camera (looping, optionally switching to a resized clip), adds an audio
//! track if asked, rewrites the NTP time of its RTCP sender reports to what a faulty camera
//! clock would say, and remembers when each frame was captured (the ground truth tests compare
//! stored capture times with).
//!
//! The media pipeline's sinks are synchronised to its clock, so a unit goes out when its send
//! time (buffer DTS) comes; its RTP timestamp is its capture time (PTS) on the payloader's
//! fixed `timestamp-offset`, so a capture instant is known from an RTP timestamp alone
//! ([`MountState::capture_ns`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use tracing::debug;

use super::clip::{Clip, elements};
use super::variant::ClockFault;

/// RTP clock rate of the video payloads.
pub const VIDEO_CLOCK_RATE: u64 = 90_000;
/// Capture times remembered per mount (the oldest are forgotten).
const SENT_KEPT: usize = 100_000;
/// NTP seconds at the Unix epoch.
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

/// What one mount's media share with the simulator's callers.
#[derive(Debug)]
pub struct MountState {
    /// The video payloader's RTP timestamp of capture time zero.
    pub ts_offset: u32,
    /// Wall time (Unix ns) of the media's time zero, once it plays.
    anchor_ns: Mutex<Option<i64>>,
    /// Capture times (ns from time zero) of the frames fed, oldest first.
    sent: Mutex<VecDeque<u64>>,
}

impl MountState {
    /// A mount whose RTP timestamps start at `ts_offset`.
    pub fn new(ts_offset: u32) -> Self {
        Self {
            ts_offset,
            anchor_ns: Mutex::new(None),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// True capture time (Unix ns) of the frame with RTP timestamp `rtp`, once the media plays.
    pub fn capture_ns(&self, rtp: u32) -> Option<i64> {
        let since = u64::from(rtp.wrapping_sub(self.ts_offset)) * 1_000_000_000 / VIDEO_CLOCK_RATE;
        Some(self.anchor()? + since as i64)
    }

    /// True capture times (Unix ns) of the frames fed so far, in decode order.
    pub fn sent_ns(&self) -> Vec<i64> {
        let Some(anchor) = self.anchor() else {
            return Vec::new();
        };
        lock(&self.sent)
            .iter()
            .map(|t| anchor + *t as i64)
            .collect()
    }

    fn anchor(&self) -> Option<i64> {
        *lock(&self.anchor_ns)
    }

    fn record(&self, pts_ns: u64) {
        let mut sent = lock(&self.sent);
        if sent.len() == SENT_KEPT {
            sent.pop_front();
        }
        sent.push_back(pts_ns);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the feeder is in its clips.
struct Feeder {
    clips: Vec<Arc<Clip>>,
    /// Switch to `clips[1]` once this much of the stream was sent (ns).
    switch_at_ns: Option<u64>,
    /// Send each unit once it and every unit before it were captured (not at its send time).
    burst: bool,
    current: usize,
    index: usize,
    /// Added to a unit's clip times to get stream times.
    base_ns: i64,
    last_send_ns: u64,
    last_pts_ns: u64,
}

impl Feeder {
    fn new(clips: Vec<Arc<Clip>>, switch_at_ns: Option<u64>, start: usize, burst: bool) -> Self {
        let origin = clips[0].origin_ns(start) as i64;
        Self {
            clips,
            switch_at_ns,
            burst,
            current: 0,
            index: start,
            base_ns: -origin,
            last_send_ns: 0,
            last_pts_ns: 0,
        }
    }

    /// The next unit with its stream capture (PTS) and send (DTS) times.
    fn next(&mut self) -> gst::Buffer {
        let mut clip = Arc::clone(&self.clips[self.current]);
        if self.index == clip.frames() {
            self.index = 0;
            self.base_ns += clip.period_ns() as i64;
        }
        let switch = self.current + 1 < self.clips.len()
            && self.switch_at_ns.is_some_and(|t| self.last_send_ns >= t)
            && clip.units()[self.index].key;
        if switch {
            self.current += 1;
            clip = Arc::clone(&self.clips[self.current]);
            self.index = 0;
            let first = &clip.units()[0];
            let after = (self.last_pts_ns + clip.frame_ns()).max(self.last_send_ns);
            self.base_ns = after as i64 - first.pts_ns.min(first.send_ns) as i64;
        }
        let unit = &clip.units()[self.index];
        self.index += 1;
        let pts = (self.base_ns + unit.pts_ns as i64).max(0) as u64;
        let send = if self.burst {
            pts
        } else {
            (self.base_ns + unit.send_ns as i64).max(0) as u64
        }
        .max(self.last_send_ns);
        self.last_send_ns = send;
        self.last_pts_ns = self.last_pts_ns.max(pts);
        let mut buf = unit.data.copy();
        {
            let b = buf.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_dts(gst::ClockTime::from_nseconds(send));
        }
        buf
    }
}

/// What one mount serves.
pub struct MediaSpec {
    /// The clip, and the resized clip it switches to.
    pub clips: Vec<Arc<Clip>>,
    /// When it switches, ns from its start.
    pub switch_at_ns: Option<u64>,
    /// Unit it starts at.
    pub start: usize,
    /// Frames sent in bursts (see [`super::variant::Variant::burst`]).
    pub burst: bool,
    /// Also an audio track.
    pub audio: bool,
    /// Its clock's fault.
    pub clock: ClockFault,
    /// Shared with the simulator's callers.
    pub state: Arc<MountState>,
}

/// A shared media factory for `spec`.
pub fn factory(spec: MediaSpec) -> rtsp::RTSPMediaFactory {
    let f = rtsp::RTSPMediaFactory::new();
    let (_, pay) = elements(spec.clips[0].codec());
    let audio = if spec.audio {
        " audiotestsrc is-live=false wave=ticks volume=0.2 samplesperbuffer=160 \
           ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
    } else {
        ""
    };
    f.set_launch(&format!(
        "( appsrc name=src format=time max-bytes=2000000 \
           ! {pay} name=pay0 pt=96 config-interval=-1 timestamp-offset={}{audio} )",
        spec.state.ts_offset
    ));
    f.set_shared(true);
    let spec = Arc::new(spec);
    f.connect_media_configure(move |_, media| configure(media, &spec));
    f
}

fn configure(media: &rtsp::RTSPMedia, spec: &Arc<MediaSpec>) {
    let Some(src) = media
        .element()
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name_recurse_up("src"))
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
    else {
        return;
    };
    src.set_caps(Some(spec.clips[0].caps()));
    let feeder = Mutex::new(Feeder::new(
        spec.clips.clone(),
        spec.switch_at_ns,
        spec.start,
        spec.burst,
    ));
    let state = Arc::clone(&spec.state);
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |appsrc, _| {
                note_anchor(appsrc, &state);
                let buf = lock(&feeder).next();
                if let Some(pts) = buf.pts() {
                    state.record(pts.nseconds());
                }
                if appsrc.push_buffer(buf).is_err() {
                    debug!("Simulator client gone.");
                }
            })
            .build(),
    );
    if !spec.clock.is_none() {
        let fault = spec.clock;
        media.connect_prepared(move |media| rewrite_sender_reports(media, fault));
    }
}

/// Notes the wall time of the media's time zero once it plays (its base time is set then).
fn note_anchor(appsrc: &gst_app::AppSrc, state: &MountState) {
    if state.anchor().is_some() || appsrc.current_state() != gst::State::Playing {
        return;
    }
    let (Some(clock), Some(base)) = (appsrc.clock(), appsrc.base_time()) else {
        return;
    };
    let now = clock.time();
    let running = now.nseconds() as i64 - base.nseconds() as i64;
    *lock(&state.anchor_ns) = Some(crate::time::wall_ms() * 1_000_000 - running);
}

/// Makes the media's RTCP sender reports carry what a camera clock with `fault` reads.
fn rewrite_sender_reports(media: &rtsp::RTSPMedia, fault: ClockFault) {
    let Some(pipeline) = media
        .element()
        .parent()
        .and_then(|p| p.downcast::<gst::Bin>().ok())
    else {
        return;
    };
    let rtpbins = pipeline
        .iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().is_some_and(|f| f.name() == "rtpbin"));
    let start = Arc::new(Mutex::new(None::<i64>));
    for rtpbin in rtpbins {
        for pad in rtpbin.src_pads() {
            if !pad.name().starts_with("send_rtcp_src") {
                continue;
            }
            let start = Arc::clone(&start);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data
                    && let Ok(mut map) = buffer.make_mut().map_writable()
                {
                    rewrite_ntp(&mut map, |t| {
                        let s = *lock(&start).get_or_insert(t);
                        fault.camera_ns(t, s)
                    });
                }
                gst::PadProbeReturn::Ok
            });
        }
    }
}

/// Replaces the NTP timestamp of every sender report in an RTCP compound packet by `f` of it
/// (both as Unix ns).
pub fn rewrite_ntp(data: &mut [u8], f: impl Fn(i64) -> i64) {
    let mut at = 0;
    while at + 16 <= data.len() {
        let len = (usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]])) + 1) * 4;
        if data[at] >> 6 != 2 || at + len > data.len() {
            return;
        }
        if data[at + 1] == 200 && len >= 28 {
            let ntp = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap_or_default());
            let rewritten = unix_ns_to_ntp(f(ntp_to_unix_ns(ntp)));
            data[at + 8..at + 16].copy_from_slice(&rewritten.to_be_bytes());
        }
        at += len;
    }
}

fn ntp_to_unix_ns(ntp: u64) -> i64 {
    let secs = (ntp >> 32) as i64 - NTP_UNIX_OFFSET_S;
    let frac = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    secs * 1_000_000_000 + frac as i64
}

fn unix_ns_to_ntp(ns: i64) -> u64 {
    let secs = (ns.div_euclid(1_000_000_000) + NTP_UNIX_OFFSET_S) as u64;
    let frac = ((ns.rem_euclid(1_000_000_000) as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTCP compound packet: a sender report at Unix `ns`, then an SDES chunk.
    fn compound(ns: i64) -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&unix_ns_to_ntp(ns).to_be_bytes());
        p.extend_from_slice(&[0; 12]); // RTP time, packet and octet counts
        p.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn ntp_converts_both_ways() {
        let ns = 1_795_648_030_733_506_999;
        assert!((ntp_to_unix_ns(unix_ns_to_ntp(ns)) - ns).abs() <= 1);
    }

    #[test]
    fn sender_reports_carry_the_faulty_clock_and_the_rest_is_untouched() {
        let t = 1_795_648_030_000_000_000;
        let mut p = compound(t);
        let before = p.clone();
        rewrite_ntp(&mut p, |ns| ns - 300_000_000_000);
        assert_eq!(
            ntp_to_unix_ns(u64::from_be_bytes(p[8..16].try_into().unwrap())),
            t - 300_000_000_000
        );
        assert_eq!(p[..8], before[..8]);
        assert_eq!(p[16..], before[16..]);
        // A receiver report (PT 201) or garbage is left alone.
        let mut rr = vec![0x80, 201, 0, 1, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9];
        let copy = rr.clone();
        rewrite_ntp(&mut rr, |ns| ns + 1);
        assert_eq!(rr, copy);
    }

    #[test]
    fn an_rtp_timestamp_gives_the_capture_time() {
        let s = MountState::new(4_000_000_000);
        assert_eq!(s.capture_ns(4_000_000_000), None, "not playing yet");
        *lock(&s.anchor_ns) = Some(1_000_000_000_000);
        // 90 kHz: 9,000 ticks are 100 ms; the offset wraps around 2^32.
        assert_eq!(s.capture_ns(4_000_009_000), Some(1_000_100_000_000));
        let wrapped = 4_000_000_000u32.wrapping_add(400_000_000);
        assert_eq!(
            s.capture_ns(wrapped),
            Some(1_000_000_000_000 + 4_444_444_444_444)
        );
    }
}
