//! A simulated camera's video in memory: a file's H.264/H.265 access units, as they are or
//! re-encoded ([`Encoding`]: codec, frame rate, GOP, B-frames, open GOPs, size, variable frame
//! rate), each with its capture time (presentation time) and the time a camera would send it.
//!
//! A camera encoding B-frames sends its frames in decode order, one per frame interval, after
//! holding them for the reordering delay: unit `i` is sent at its decode time plus the largest
//! (presentation − decode) gap of the clip, so no frame is sent before it was captured and the
//! least delayed ones are sent as soon as they are captured (a hardware encoder). Without decode
//! times (an encoder that gives none), a unit is sent once every frame before it in decode
//! order was captured, as a software encoder sends in bursts ([`super::Variant::burst`] asks
//! for that whatever the decode times). Re-encoding ([`Clip::encode`]) is in `encode.rs`.

use std::path::Path;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::debug;

use super::SimError;
use super::variant::{Codec, Encoding};

/// Longest the simulator waits for the next access unit while loading or encoding a file.
const LOAD_TIMEOUT_S: u64 = 60;
/// How often loading checks for an error while it waits.
const PULL_POLL_MS: u64 = 200;
/// Frame duration assumed when a file does not say.
const DEFAULT_FRAME_NS: u64 = 100_000_000;
/// Units after a key frame searched for the leading B-frames that precede it in time.
const LEADING_SEARCH: usize = 16;

/// One access unit.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The compressed frame (byte-stream, timestamps and offsets cleared: the feeder sets the
    /// timestamps).
    pub data: gst::Buffer,
    /// Capture (presentation) time from the clip's start, ns.
    pub pts_ns: u64,
    /// When the camera sends it, from the clip's start, ns (never before `pts_ns`).
    pub send_ns: u64,
    /// A key frame (decodes on its own).
    pub key: bool,
}

/// A file demuxed (or re-encoded) into access units.
#[derive(Debug)]
pub struct Clip {
    codec: Codec,
    caps: gst::Caps,
    units: Vec<Unit>,
    /// Duration of one loop, ns.
    period_ns: u64,
    /// Nominal frame duration, ns.
    frame_ns: u64,
}

impl Clip {
    /// Reads a file's H.264 or H.265 video stream into memory, unchanged.
    pub fn load(path: &Path) -> Result<Clip, SimError> {
        let fail = fail_for(path);
        check_file(path)?;
        let (pipeline, sink) = demux_pipeline(path).map_err(|e| fail(e.to_string()))?;
        Self::collect(path, &pipeline, &sink, None)
    }

    /// This clip followed by `next` (same codec and caps), as one loop.
    pub(super) fn then(mut self, next: Clip) -> Clip {
        let shift = self.period_ns;
        self.units.extend(next.units.into_iter().map(|mut u| {
            u.pts_ns += shift;
            u.send_ns += shift;
            u
        }));
        self.period_ns += next.period_ns;
        self
    }

    /// Runs `pipeline` to its end and keeps what reaches `sink`.
    pub(super) fn collect(
        path: &Path,
        pipeline: &gst::Pipeline,
        sink: &gst_app::AppSink,
        encoding: Option<&Encoding>,
    ) -> Result<Clip, SimError> {
        let fail = fail_for(path);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(e.to_string()))?;
        let mut buffers = Vec::new();
        let mut caps = None;
        let mut last = std::time::Instant::now();
        let result = loop {
            match sink.try_pull_sample(gst::ClockTime::from_mseconds(PULL_POLL_MS)) {
                Some(sample) => {
                    last = std::time::Instant::now();
                    if caps.is_none() {
                        caps = sample.caps_owned();
                    }
                    buffers.extend(sample.buffer_owned());
                }
                None if sink.is_eos() => break Ok(()),
                None => {
                    if let Some(e) = bus_error(pipeline) {
                        break Err(fail(e));
                    }
                    if last.elapsed().as_secs() >= LOAD_TIMEOUT_S {
                        break Err(fail("timed out".into()));
                    }
                }
            }
        };
        let _ = pipeline.set_state(gst::State::Null);
        result?;
        let caps = caps.ok_or_else(|| fail("no H.264 or H.265 video in file".into()))?;
        let codec = caps
            .structure(0)
            .and_then(|s| codec_of_caps(s.name()))
            .ok_or_else(|| fail(format!("unsupported video {caps}")))?;
        let frame_ns = match encoding {
            Some(e) => 1_000_000_000 / u64::from(e.fps.max(1)),
            None => buffers
                .first()
                .and_then(|b| b.duration())
                .map_or(DEFAULT_FRAME_NS, |d| d.nseconds().max(1)),
        };
        // A clip of `seconds` ends before its first key frame from then on, so each loop is
        // whole GOPs and starts with a key frame (and the encoder's last frames, flushed with
        // other delays, are left out before send times are worked out).
        let period_cut = encoding
            .and_then(|e| e.seconds)
            .and_then(|s| cut_at_key(&mut buffers, (s * 1e9) as u64));
        let units = timeline(&buffers);
        let max_pts = units
            .iter()
            .map(|u| u.pts_ns)
            .max()
            .ok_or_else(|| fail("empty video".into()))?;
        let period_ns = period_cut.unwrap_or(max_pts + frame_ns);
        Ok(Clip {
            codec,
            caps,
            units,
            period_ns,
            frame_ns,
        })
    }

    /// The clip's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Caps of its byte-stream access units.
    pub fn caps(&self) -> &gst::Caps {
        &self.caps
    }

    /// Number of access units (frames).
    pub fn frames(&self) -> usize {
        self.units.len()
    }

    /// The access units in decode order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Duration of one loop, ns.
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// Nominal frame duration, ns.
    pub fn frame_ns(&self) -> u64 {
        self.frame_ns
    }

    /// Frames out of decode order (B-frames).
    pub fn reordered(&self) -> usize {
        self.units
            .windows(2)
            .filter(|w| w[1].pts_ns < w[0].pts_ns)
            .count()
    }

    /// Index of the `k`-th of `n` evenly spread key frames, used as a camera's start point.
    pub fn start_index(&self, k: usize, n: usize) -> usize {
        let target = self.units.len() * k / n.max(1);
        (target..self.units.len())
            .chain(0..target)
            .find(|&i| self.units[i].key)
            .unwrap_or(0)
    }

    /// Where a camera starting at unit `start` puts its time zero (ns on the clip's time line):
    /// early enough that neither that unit's send time nor the capture times of the B-frames
    /// leading its GOP are negative.
    pub fn origin_ns(&self, start: usize) -> u64 {
        let send = self.units.get(start).map_or(0, |u| u.send_ns);
        self.units
            .iter()
            .skip(start)
            .take(LEADING_SEARCH)
            .map(|u| u.pts_ns)
            .fold(send, u64::min)
    }
}

pub(super) fn fail_for(path: &Path) -> impl Fn(String) -> SimError + '_ {
    move |message| SimError::Load {
        path: path.to_path_buf(),
        message,
    }
}

pub(super) fn check_file(path: &Path) -> Result<(), SimError> {
    if path.is_file() {
        return Ok(());
    }
    Err(fail_for(path)(
        "no such file (run scripts/setup.sh to prepare the sample video)".into(),
    ))
}

/// The pipeline's first error, if it reported one.
fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let msg = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    }
}

/// The codec of caps named `name` (`video/x-h264`, `video/x-h265`).
pub(super) fn codec_of_caps(name: &str) -> Option<Codec> {
    match name {
        "video/x-h264" => Some(Codec::H264),
        "video/x-h265" => Some(Codec::H265),
        _ => None,
    }
}

/// Parser and RTP payloader of a codec.
pub(super) fn elements(codec: Codec) -> (&'static str, &'static str) {
    match codec {
        Codec::H264 => ("h264parse", "rtph264pay"),
        Codec::H265 => ("h265parse", "rtph265pay"),
    }
}

/// Byte-stream, one access unit per buffer.
fn byte_stream_caps(codec: Codec) -> gst::Caps {
    gst::Caps::builder(match codec {
        Codec::H264 => "video/x-h264",
        Codec::H265 => "video/x-h265",
    })
    .field("stream-format", "byte-stream")
    .field("alignment", "au")
    .build()
}

/// Cuts `buffers` (decode order) before their first key frame `end_ns` or more after the
/// earliest presentation time; returns that key frame's time from the earliest (the loop's
/// length), or None when there is no such key frame.
fn cut_at_key(buffers: &mut Vec<gst::Buffer>, end_ns: u64) -> Option<u64> {
    let pts = |b: &gst::Buffer| b.pts().map_or(0, |t| t.nseconds());
    let first = buffers.iter().map(pts).min()?;
    let cut = buffers.iter().skip(1).position(|b| {
        !b.flags().contains(gst::BufferFlags::DELTA_UNIT) && pts(b) >= first + end_ns
    })? + 1;
    let period = pts(&buffers[cut]) - first;
    buffers.truncate(cut);
    Some(period)
}

/// Capture and send times of `buffers` (decode order) from the clip's start; see the module
/// header for the send rule.
fn timeline(buffers: &[gst::Buffer]) -> Vec<Unit> {
    let pts: Vec<i128> = buffers
        .iter()
        .map(|b| b.pts().or(b.dts()).map_or(0, |t| i128::from(t.nseconds())))
        .collect();
    let first = pts.iter().copied().min().unwrap_or(0);
    let dts: Option<Vec<i128>> = buffers
        .iter()
        .map(|b| b.dts().map(|t| i128::from(t.nseconds()) - first))
        .collect();
    let mut sends: Vec<i128> = match dts {
        Some(dts) => {
            let lead = pts
                .iter()
                .zip(&dts)
                .map(|(p, d)| p - first - d)
                .max()
                .unwrap_or(0)
                .max(0);
            dts.iter().map(|d| d + lead).collect()
        }
        None => pts
            .iter()
            .scan(i128::MIN, |max, p| {
                *max = (*max).max(p - first);
                Some(*max)
            })
            .collect(),
    };
    // Never earlier than the unit before it.
    for i in 1..sends.len() {
        sends[i] = sends[i].max(sends[i - 1]);
    }
    buffers
        .iter()
        .zip(pts.iter().zip(&sends))
        .map(|(b, (p, s))| {
            let mut data = b.copy();
            {
                let d = data.make_mut();
                d.set_pts(gst::ClockTime::NONE);
                d.set_dts(gst::ClockTime::NONE);
                // A payloader takes an offset (an encoder's frame number, in decode order; u64::MAX is
                // GST_BUFFER_OFFSET_NONE) for
                // the RTP timestamp instead of the PTS.
                d.set_offset(u64::MAX);
                d.set_offset_end(u64::MAX);
            }
            Unit {
                data,
                pts_ns: (p - first).max(0) as u64,
                send_ns: (*s).max(0) as u64,
                key: !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
            }
        })
        .collect()
}

/// `filesrc ! qtdemux ! <parser for the stream's codec> ! byte-stream caps ! appsink`, the
/// parser chosen when the demuxer reveals the video stream's caps.
fn demux_pipeline(path: &Path) -> Result<(gst::Pipeline, gst_app::AppSink), glib::BoolError> {
    gst::init().map_err(|e| glib::bool_error!("{e}"))?;
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()?;
    let demux = gst::ElementFactory::make("qtdemux").build()?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline.add_many([&src, &demux, sink.upcast_ref()])?;
    src.link(&demux)?;
    let weak_pipeline = pipeline.downgrade();
    let weak_sink = sink.downgrade();
    demux.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(sink)) = (weak_pipeline.upgrade(), weak_sink.upgrade()) else {
            return;
        };
        let Some(codec) = pad
            .current_caps()
            .and_then(|c| c.structure(0).and_then(|s| codec_of_caps(s.name())))
        else {
            return; // audio or another codec: left unlinked
        };
        if let Err(e) = link_parser(&pipeline, pad, &sink, codec) {
            debug!(error = %e, "Simulator could not link the video stream.");
        }
    });
    Ok((pipeline, sink))
}

fn link_parser(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    sink: &gst_app::AppSink,
    codec: Codec,
) -> Result<(), glib::BoolError> {
    let (parse, _) = elements(codec);
    let parser = gst::ElementFactory::make(parse)
        .property("config-interval", -1i32)
        .build()?;
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", byte_stream_caps(codec))
        .build()?;
    pipeline.add_many([&parser, &filter])?;
    gst::Element::link_many([&parser, &filter, sink.upcast_ref()])?;
    for e in [&parser, &filter] {
        e.sync_state_with_parent()?;
    }
    let sinkpad = parser
        .static_pad("sink")
        .ok_or_else(|| glib::bool_error!("no pad"))?;
    pad.link(&sinkpad)
        .map(|_| ())
        .map_err(|e| glib::bool_error!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(pts_ms: u64, dts_ms: Option<u64>, key: bool) -> gst::Buffer {
        gst::init().unwrap();
        let mut b = gst::Buffer::new();
        let m = b.get_mut().unwrap();
        m.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        m.set_dts(dts_ms.map(gst::ClockTime::from_mseconds));
        if !key {
            m.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        b
    }

    #[test]
    fn b_frames_are_sent_in_decode_order_never_before_their_capture() {
        // I0 P3 B1 B2 P6 B4 B5, decode times 100 ms apart starting one frame early.
        let order = [0u64, 3, 1, 2, 6, 4, 5];
        let buffers: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(i, &p)| buf(1_000 + p * 100, Some(900 + i as u64 * 100), p == 0))
            .collect();
        let units = timeline(&buffers);
        let pts: Vec<u64> = units.iter().map(|u| u.pts_ns / 1_000_000).collect();
        let send: Vec<u64> = units.iter().map(|u| u.send_ns / 1_000_000).collect();
        assert_eq!(pts, vec![0, 300, 100, 200, 600, 400, 500]);
        // The largest lead is P3's (300 - 0 = 300 ms): it is sent when captured.
        assert_eq!(send, vec![200, 300, 400, 500, 600, 700, 800]);
        assert!(units.iter().all(|u| u.send_ns >= u.pts_ns));
        assert!(units[0].key && !units[1].key);
    }

    #[test]
    fn without_decode_times_a_frame_is_sent_once_everything_before_it_was_captured() {
        let buffers: Vec<_> = [0u64, 3, 1, 2]
            .iter()
            .map(|&p| buf(p * 100, None, p == 0))
            .collect();
        let send: Vec<u64> = timeline(&buffers)
            .iter()
            .map(|u| u.send_ns / 1_000_000)
            .collect();
        assert_eq!(send, vec![0, 300, 300, 300]);
    }

    #[test]
    fn a_clip_is_cut_before_its_first_key_frame_past_its_length() {
        let mut b: Vec<_> = (0..25u64)
            .map(|i| buf(1_000 + i * 100, Some(900 + i * 100), i % 10 == 0))
            .collect();
        assert_eq!(cut_at_key(&mut b, 1_500_000_000), Some(2_000_000_000));
        assert_eq!(b.len(), 20);
        assert_eq!(cut_at_key(&mut b, 5_000_000_000), None);
        assert_eq!(b.len(), 20);
    }
}
