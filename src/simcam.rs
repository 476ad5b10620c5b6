//! Camera simulator: serves H.264 or H.265 video files as live RTSP cameras on 127.0.0.1, one
//! mount per camera, paced in real time and looping forever.
//!
//! Input: (mount, file) pairs. Output: an RTSP server (gst-rtsp-server) whose URLs the service
//! and the tests use. Each file is demuxed once into memory (access units with timestamps);
//! each mount's media feeds those units through an appsrc with timestamps that keep increasing
//! across loops, so clients see one endless stream. Cameras sharing a file start at different
//! key frames, as real cameras are never in step.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use tracing::{debug, info};

/// Where the simulator listens.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1";
/// Its default port.
pub const DEFAULT_PORT: u16 = 8554;
/// Longest the simulator waits for a file to be demuxed.
const LOAD_TIMEOUT_S: u64 = 60;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// GStreamer failed to initialise.
    #[error("GStreamer initialisation failed: {0}")]
    Init(#[from] glib::Error),
    /// A video file could not be loaded.
    #[error("{}: cannot load video: {message}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The server could not listen.
    #[error("cannot start RTSP server on {address}:{port}: {message}")]
    Listen {
        /// Address.
        address: String,
        /// Port.
        port: u16,
        /// What went wrong.
        message: String,
    },
}

/// Video codecs the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

impl Codec {
    /// The codec of demuxer caps named `name` (`video/x-h264`, `video/x-h265`).
    fn from_caps_name(name: &str) -> Option<Codec> {
        match name {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            _ => None,
        }
    }

    /// The parser element and RTP payloader element of this codec.
    fn elements(self) -> (&'static str, &'static str) {
        match self {
            Codec::H264 => ("h264parse", "rtph264pay"),
            Codec::H265 => ("h265parse", "rtph265pay"),
        }
    }
}

/// One file demuxed into H.264 or H.265 access units.
#[derive(Debug)]
pub struct Clip {
    codec: Codec,
    caps: gst::Caps,
    units: Vec<gst::Buffer>,
    /// Duration of one loop.
    period: gst::ClockTime,
}

impl Clip {
    /// Reads an MP4 (or any qtdemux-able file) holding H.264 into memory.
    pub fn load(path: &Path) -> Result<Clip, SimError> {
        gst::init()?;
        let fail = |message: String| SimError::Load {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(fail(
                "no such file (run scripts/setup.sh to prepare the sample video)".into(),
            ));
        }
        let (pipeline, sink) = demux_pipeline(path).map_err(|e| fail(e.to_string()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(e.to_string()))?;
        let mut units = Vec::new();
        let mut caps = None;
        let result = loop {
            match sink.try_pull_sample(gst::ClockTime::from_seconds(LOAD_TIMEOUT_S)) {
                Some(sample) => {
                    if caps.is_none() {
                        caps = sample.caps_owned();
                    }
                    if let Some(b) = sample.buffer_owned() {
                        units.push(b);
                    }
                }
                None if sink.is_eos() => break Ok(()),
                None => {
                    let msg = pipeline
                        .bus()
                        .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
                        .map(|m| match m.view() {
                            gst::MessageView::Error(e) => e.error().to_string(),
                            _ => String::new(),
                        })
                        .unwrap_or_else(|| "timed out".into());
                    break Err(fail(msg));
                }
            }
        };
        let _ = pipeline.set_state(gst::State::Null);
        result?;
        let caps = caps.ok_or_else(|| fail("no H.264 or H.265 video in file".into()))?;
        let codec = caps
            .structure(0)
            .and_then(|s| Codec::from_caps_name(s.name()))
            .ok_or_else(|| fail(format!("unsupported video {caps}")))?;
        let first = units
            .first()
            .and_then(|b| b.pts())
            .unwrap_or(gst::ClockTime::ZERO);
        let last = units.last().ok_or_else(|| fail("empty video".into()))?;
        let frame = last
            .duration()
            .unwrap_or(gst::ClockTime::from_mseconds(100));
        let period = last.pts().unwrap_or(first).saturating_sub(first) + frame;
        // Rebase timestamps so the clip starts at zero.
        for b in &mut units {
            let b = b.make_mut();
            let pts = b.pts().map(|p| p.saturating_sub(first));
            b.set_pts(pts);
            b.set_dts(pts);
        }
        Ok(Clip {
            codec,
            caps,
            units,
            period,
        })
    }

    /// The clip's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Number of access units (frames).
    pub fn frames(&self) -> usize {
        self.units.len()
    }

    /// Index of the `k`-th of `n` evenly spread key frames, used as a camera's start point.
    fn start_index(&self, k: usize, n: usize) -> usize {
        let target = self.units.len() * k / n.max(1);
        (target..self.units.len())
            .chain(0..target)
            .find(|&i| !self.units[i].flags().contains(gst::BufferFlags::DELTA_UNIT))
            .unwrap_or(0)
    }
}

/// A running simulator.
pub struct SimCam {
    server: rtsp::RTSPServer,
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    mounts: Vec<String>,
}

impl SimCam {
    /// Serves each `(mount, file)` at `rtsp://address:port/mount`. Port 0 picks a free port.
    pub fn start(
        address: &str,
        port: u16,
        mounts: &[(String, PathBuf)],
    ) -> Result<SimCam, SimError> {
        gst::init()?;
        let listen_err = |message: String| SimError::Listen {
            address: address.into(),
            port,
            message,
        };
        let mut clips: Vec<(PathBuf, Arc<Clip>)> = Vec::new();
        let server = rtsp::RTSPServer::new();
        server.set_address(address);
        server.set_service(&port.to_string());
        let points = server
            .mount_points()
            .ok_or_else(|| listen_err("no mount points".into()))?;
        for (k, (mount, file)) in mounts.iter().enumerate() {
            let clip = match clips.iter().find(|(p, _)| p == file) {
                Some((_, c)) => Arc::clone(c),
                None => {
                    let c = Arc::new(Clip::load(file)?);
                    info!(file = %file.display(), frames = c.frames(), "Simulator loaded video.");
                    clips.push((file.clone(), Arc::clone(&c)));
                    c
                }
            };
            let sharing = mounts.iter().filter(|(_, f)| f == file).count();
            let nth = mounts[..k].iter().filter(|(_, f)| f == file).count();
            let start = clip.start_index(nth, sharing);
            points.add_factory(
                &format!("/{}", mount.trim_start_matches('/')),
                factory(clip, start),
            );
        }
        let ctx = glib::MainContext::new();
        server
            .attach(Some(&ctx))
            .map_err(|e| listen_err(e.to_string()))?;
        let bound =
            u16::try_from(server.bound_port()).map_err(|_| listen_err("not bound".into()))?;
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let ml = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("simcam".into())
            .spawn(move || {
                ctx.with_thread_default(|| ml.run()).ok();
            })
            .map_err(|e| listen_err(e.to_string()))?;
        let names: Vec<String> = mounts
            .iter()
            .map(|(m, _)| m.trim_start_matches('/').to_string())
            .collect();
        info!(port = bound, mounts = %names.join(","), "Simulator serving.");
        Ok(SimCam {
            server,
            port: bound,
            main_loop,
            thread: Some(thread),
            mounts: names,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of mount `name`.
    pub fn url(&self, name: &str) -> String {
        format!("rtsp://{DEFAULT_ADDRESS}:{}/{name}", self.port)
    }

    /// Mount names.
    pub fn mounts(&self) -> &[String] {
        &self.mounts
    }
}

impl Drop for SimCam {
    /// Stops like a camera that is switched off: every client connection is closed (streaming
    /// media would otherwise go on from its own threads), then the server stops listening.
    fn drop(&mut self) {
        self.server
            .client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `filesrc ! qtdemux ! <parser for the stream's codec> ! byte-stream caps ! appsink`, the
/// parser chosen when the demuxer reveals the video stream's caps.
fn demux_pipeline(path: &Path) -> Result<(gst::Pipeline, gst_app::AppSink), glib::BoolError> {
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
            .and_then(|c| c.structure(0).and_then(|s| Codec::from_caps_name(s.name())))
        else {
            return; // audio or another codec: left unlinked
        };
        let (parse, _) = codec.elements();
        let caps = gst::Caps::builder(match codec {
            Codec::H264 => "video/x-h264",
            Codec::H265 => "video/x-h265",
        })
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build();
        let linked = (|| -> Result<(), glib::BoolError> {
            let parser = gst::ElementFactory::make(parse)
                .property("config-interval", -1i32)
                .build()?;
            let filter = gst::ElementFactory::make("capsfilter")
                .property("caps", &caps)
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
        })();
        if let Err(e) = linked {
            debug!(error = %e, "Simulator could not link the video stream.");
        }
    });
    Ok((pipeline, sink))
}

/// A shared media factory that plays `clip` from unit `start`, looping.
fn factory(clip: Arc<Clip>, start: usize) -> rtsp::RTSPMediaFactory {
    let f = rtsp::RTSPMediaFactory::new();
    let (parse, pay) = clip.codec.elements();
    f.set_launch(&format!(
        "( appsrc name=src format=time max-bytes=2000000 \
           ! {parse} ! {pay} name=pay0 pt=96 config-interval=-1 )"
    ));
    f.set_shared(true);
    f.connect_media_configure(move |_, media| {
        let Some(src) = media
            .element()
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name_recurse_up("src"))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        else {
            return;
        };
        src.set_caps(Some(&clip.caps));
        let state = Mutex::new((start, 0u64));
        let clip = Arc::clone(&clip);
        src.set_callbacks(
            gst_app::AppSrcCallbacks::builder()
                .need_data(move |appsrc, _| {
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    let (i, loops) = *st;
                    let unit = &clip.units[i];
                    // Timestamps run on across loops, counted from the start unit.
                    let start_ns = clip.units[start].pts().map_or(0, |p| p.nseconds());
                    let unit_ns = unit.pts().map_or(0, |p| p.nseconds());
                    let ns = (unit_ns + clip.period.nseconds() * loops).saturating_sub(start_ns);
                    let mut buf = unit.copy();
                    {
                        let b = buf.make_mut();
                        let pts = Some(gst::ClockTime::from_nseconds(ns));
                        b.set_pts(pts);
                        b.set_dts(pts);
                    }
                    let next = (i + 1) % clip.units.len();
                    *st = (next, loops + u64::from(next == 0));
                    drop(st);
                    if appsrc.push_buffer(buf).is_err() {
                        debug!("Simulator client gone.");
                    }
                })
                .build(),
        );
    });
    f
}
