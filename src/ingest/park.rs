//! Parking a decoder with nothing to decode for a while: a camera analysed seldom (idle, or
//! held to a low share), so a camera that sees nobody holds no decoded pictures between its
//! analysed frames, and a camera whose GOP's decoded frames are done long before its next key
//! frame (one analysed frame a GOP: 1 fps with a key frame a second decodes one frame in ten).
//!
//! A decoder keeps its pictures, its codec context and its output pool for as long as it runs:
//! at 768 × 576 about 4.5 MB a camera (issue 21: libav's picture pool 1.7 MB, the output pool
//! 1.3 MB, the H.264 context 0.8 MB, the scaled and converted pictures' pools 0.65 MB), the same
//! for a camera decoding one key frame every few seconds as for one decoding five frames a
//! second. Parked, the decoder and the elements after it up to the appsink are in READY: they
//! have freed all of that (the decoder alone, [`Reach::Decoder`]: all but the last). Woken at
//! the next key frame to decode (or to be given the held GOP again when the camera wakes
//! mid-GOP, [`super::hold`]), they are PLAYING again and get
//! the stream's sticky events (stream start, caps, segment) from the element before the decoder;
//! the decoder opens afresh. A park and wake-up costs about 3 ms of CPU at 768 × 576 (0.5 ms
//! parking, 0.6 ms waking, 2 ms more for the first frame: libav's tables, negotiation, fresh
//! pages), for 3.6 MB less per camera while parked (docs/measurements/overload.md, sittings G
//! and O): so a decoder is parked at the end of its GOP only when the next key frame is
//! [`PARK_GAP_NS`] or more away; not for [`LAG_HOLD_NS`] after its decoding lagged its stream
//! (past the connection's start, [`LAG_START_NS`]: the streaming threads are short of CPU);
//! nor with B-frames (measured: a box of B-frame cameras had no CPU to spare for it,
//! docs/overload.md). A camera held to a share of the detector (the box short of CPU for
//! inference) has its decoder alone parked then ([`Reach::Decoder`]): at 96 cameras × 5 fps
//! that saved 0–2 MB a camera (5.0–7.1 MB against 6.9–7.0: the lag hold-off keeps most such
//! decoders open) with no fewer frames analysed, where the chain's parks saved less or, without
//! the hold-off, broke the fair shares (sitting R; on the slower box of sitting S 2.5–6.7 MB, the
//! frames analysed a few per cent below the build before it, ranges overlapping; in sitting T
//! 5.7–7.2 MB against 6.9 for a build before any parking at GOP ends: on that box the hold-off
//! kept nearly every such decoder open).
//!
//! Runs in the camera's streaming thread, in the probe on the pad that feeds the decoder: before
//! the decoder's sink pad, which refuses data while it is inactive. A decoder is parked only
//! when every frame it was given has come out of it, so no frame is lost inside it; a decoder
//! that holds frames back (a stream with B-frames: it reorders) is drained whenever nothing
//! more of the GOP is decoded ([`Parking::drain`]; parked or not), so its key frame comes out
//! at once rather than when the next ones go in.

use gstreamer as gst;
use gstreamer::prelude::*;
use std::ops::ControlFlow;

/// A camera analysed at most this many frames a second (2 s or more apart) gets its decoder
/// parked between them (an idle camera at the default `idle_interval_ms` is at 0.33).
pub const PARK_BELOW_FPS: f64 = 0.5;
/// A camera has its decoder parked at the end of its GOP's decoded frames when its next key
/// frame is this far away or more (ns): 1 fps with a key frame a second (900 ms idle), not 2 fps
/// (frames 0 and 5 of 10 decoded: 400 ms).
pub const PARK_GAP_NS: u64 = 500_000_000;
/// Nor when its decoding lagged its stream within this long (ns): the box is short of CPU for
/// the streaming threads, which is what parking costs.
pub const LAG_HOLD_NS: u64 = 10_000_000_000;
/// A lag within this long of the connection's first frame (ns) does not count: the start's
/// burst (cameras connecting, decoders opening, each camera's first GOP decoded whole to measure
/// its key-frame rate) is over by then; counted, it held parking off at every camera and kept
/// every decoder open for the first 12 s of 100 cameras at 1 fps (docs/overload.md).
pub const LAG_START_NS: u64 = 5_000_000_000;
/// The structure of GStreamer's still-frame event (`gst_video_event_new_still_frame`).
const STILL_FRAME: &str = "GstEventStillFrame";

/// One pipeline run's decoder chain and whether it is parked.
#[derive(Debug)]
pub(super) struct Parking {
    /// The decoder first, then each element after it up to (not including) the appsink.
    chain: Vec<gst::Element>,
    /// The pad feeding the decoder, whose sticky events the woken decoder is given.
    upstream: gst::Pad,
    /// Frames given to the decoder this run.
    given: u64,
    /// How many of `chain`'s elements are parked, from the decoder on (0: none).
    parked: usize,
    lag: Lag,
}

/// How far a park reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// The decoder alone: its pictures, codec context and output pool; the scaling and
    /// conversion after it stay running, with their pools.
    Decoder,
    /// The decoder and every element after it up to the appsink.
    Chain,
}

/// When the camera's decoding last lagged its stream (the time of that frame), not counting the
/// connection's first [`LAG_START_NS`].
#[derive(Debug, Default, Clone, Copy)]
struct Lag {
    at: Option<u64>,
    /// The connection's first frame's time.
    first: Option<u64>,
}

impl Lag {
    fn note(&mut self, behind: bool, t_ns: u64) {
        let first = *self.first.get_or_insert(t_ns);
        if behind && t_ns.abs_diff(first) >= LAG_START_NS {
            self.at = Some(t_ns);
        }
    }

    /// Within [`LAG_HOLD_NS`] of the frame at `t_ns` (either side: timestamps may restart).
    fn recent(&self, t_ns: u64) -> bool {
        self.at.is_some_and(|at| at.abs_diff(t_ns) < LAG_HOLD_NS)
    }
}

impl Parking {
    /// The chain from `decoder` to `sink`: elements with one sink and one source pad, stopping
    /// before a queue (a thread of its own) or anything else. None when the decoder has no
    /// linked sink pad.
    pub fn new(decoder: &gst::Element, sink: &gst::Element) -> Option<Self> {
        let upstream = decoder.static_pad("sink")?.peer()?;
        let mut chain = vec![decoder.clone()];
        let mut at = decoder.clone();
        while let Some(next) = at
            .static_pad("src")
            .and_then(|p| p.peer())
            .and_then(|p| p.parent_element())
        {
            let simple = next.num_sink_pads() == 1 && next.num_src_pads() == 1;
            let queue = next.factory().is_some_and(|f| f.name().contains("queue"));
            if &next == sink || !simple || queue {
                break;
            }
            chain.push(next.clone());
            at = next;
        }
        Some(Self {
            chain,
            upstream,
            given: 0,
            parked: 0,
            lag: Lag::default(),
        })
    }

    /// The pad feeding the decoder (the probe that parks and wakes sits on it).
    pub fn upstream(&self) -> &gst::Pad {
        &self.upstream
    }

    /// The elements parked: the decoder, then those after it.
    #[cfg(test)]
    pub fn chain(&self) -> &[gst::Element] {
        &self.chain
    }

    /// Whether the decoder is parked.
    pub fn parked(&self) -> bool {
        self.parked > 0
    }

    /// How many of the chain's elements are parked, from the decoder on.
    #[cfg(test)]
    pub fn parked_elements(&self) -> usize {
        self.parked
    }

    /// Notes whether decoding lags its stream at the frame at `t_ns`.
    pub fn lag(&mut self, behind: bool, t_ns: u64) {
        self.lag.note(behind, t_ns);
    }

    /// Whether decoding lagged its stream within [`LAG_HOLD_NS`] of the frame at `t_ns`.
    pub fn lagged(&self, t_ns: u64) -> bool {
        self.lag.recent(t_ns)
    }

    /// A frame goes into the decoder.
    pub fn given(&mut self) {
        self.given += 1;
    }

    /// Parks the decoder, or the chain (`reach`), if every frame given to the decoder came out
    /// of it (`decoded` this run); returns whether the decoder was parked now (a decoder already
    /// parked has the rest of the chain parked when `reach` asks, not counted again).
    pub fn park(&mut self, decoded: u64, reach: Reach) -> Result<bool, String> {
        let upto = match reach {
            Reach::Decoder => 1,
            Reach::Chain => self.chain.len(),
        };
        if self.parked >= upto || decoded < self.given {
            return Ok(false);
        }
        let was = self.parked;
        for e in &self.chain[was..upto] {
            e.set_state(gst::State::Ready)
                .map_err(|_| format!("cannot park {}", e.name()))?;
        }
        self.parked = upto;
        Ok(was == 0)
    }

    /// Whether the decoder holds frames given to it that have not come out (`decoded` this
    /// run): a decoder reordering B-frames keeps the last ones until more come.
    pub fn holds(&self, decoded: u64) -> bool {
        self.parked == 0 && decoded < self.given
    }

    /// Makes the decoder put out every frame it holds, in this streaming thread: a still-frame
    /// event, on which GStreamer's video decoder base class drains the decoder (gst-libav 1.22
    /// drains libav and flushes it: its references are dropped, so only a key frame may
    /// follow), then the event that ends the still frame.
    pub fn drain(&self) -> Result<(), String> {
        let Some(sink) = self.upstream.peer() else {
            return Err("decoder unlinked".into());
        };
        for still in [true, false] {
            let s = gst::Structure::builder(STILL_FRAME)
                .field("still-state", still)
                .build();
            if !sink.send_event(gst::event::CustomDownstream::new(s)) {
                return Err("decoder refused the still-frame event".into());
            }
        }
        Ok(())
    }

    /// Wakes the chain and gives the decoder `frames` (a GOP held back while the camera was
    /// idle, key frame first, [`super::hold`]), in this streaming thread, before the frame that
    /// woke the camera goes on.
    pub fn replay(&mut self, frames: Vec<gst::Buffer>) -> Result<(), String> {
        self.wake()?;
        let Some(sink) = self.upstream.peer() else {
            return Err("decoder unlinked".into());
        };
        for frame in frames {
            self.given += 1;
            sink.chain(frame)
                .map_err(|e| format!("decoder refused a replayed frame: {e:?}"))?;
        }
        Ok(())
    }

    /// Wakes what is parked (downstream first) and gives the decoder the stream's sticky events.
    pub fn wake(&mut self) -> Result<(), String> {
        if self.parked == 0 {
            return Ok(());
        }
        for e in self.chain[..self.parked].iter().rev() {
            e.sync_state_with_parent()
                .map_err(|_| format!("cannot wake {}", e.name()))?;
        }
        let Some(sink) = self.upstream.peer() else {
            return Err("decoder unlinked".into());
        };
        // A refused tag event loses only metadata; any other refusal leaves the decoder
        // without its stream start, caps or segment.
        let mut refused = None;
        self.upstream.sticky_events_foreach(|ev| {
            if !sink.send_event(ev.clone()) && ev.type_() != gst::EventType::Tag {
                refused = Some(ev.type_());
            }
            ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        if let Some(t) = refused {
            return Err(format!("woken decoder refused the {t:?} event"));
        }
        self.parked = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{LAG_HOLD_NS, LAG_START_NS, Lag};

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_lag_holds_gap_parking_off_for_its_hold_time() {
        let mut lag = Lag::default();
        assert!(!lag.recent(5 * S), "no lag yet");
        lag.note(false, 5 * S);
        assert!(!lag.recent(5 * S), "keeping up is no lag");
        lag.note(true, 20 * S);
        assert!(lag.recent(20 * S));
        assert!(lag.recent(20 * S + LAG_HOLD_NS - 1));
        assert!(!lag.recent(20 * S + LAG_HOLD_NS), "held off too long");
        lag.note(false, 25 * S);
        assert!(
            lag.recent(25 * S),
            "a frame keeping up does not end the hold"
        );
        assert!(lag.recent(15 * S), "timestamps restarted just before");
        assert!(!lag.recent(S), "timestamps restarted long before");
    }

    #[test]
    fn a_lag_in_the_connections_first_seconds_does_not_count() {
        let mut lag = Lag::default();
        lag.note(false, 100 * S);
        lag.note(true, 100 * S + LAG_START_NS - 1);
        assert!(!lag.recent(100 * S + LAG_START_NS), "the start's burst");
        lag.note(true, 100 * S + LAG_START_NS);
        assert!(lag.recent(100 * S + LAG_START_NS));
        let mut lag = Lag::default();
        lag.note(true, 100 * S);
        assert!(!lag.recent(100 * S), "lagging from the first frame on");
        lag.note(true, 100 * S + LAG_START_NS);
        assert!(lag.recent(100 * S + LAG_START_NS + 1));
    }
}
