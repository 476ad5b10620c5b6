//! Camera ingest: one GStreamer pipeline per camera, supervised by its own thread.
//!
//! Input: a camera's config, the pipeline template and the model's input spec. Output:
//! [`Frame`]s (the model's input picture, with capture time and the mapping back to source
//! pixels) pushed into that camera's queue. A probe on the decoder's output skips frames
//! (counted) while the queue holds fresh frames, so frames nobody will analyse are never scaled
//! or converted ([`queue::FrameSender::wants_frame`]); the decoder gets the cores divided among
//! the cameras as threads ([`decoder_threads`]). The camera's [`gate::FrameGate`] picks the
//! frames analysed at `detect_fps`: a probe on the decoder's input drops, counted, the frames
//! no analysed frame needs, and the output probe drops decoded frames it did not pick. The appsink
//! callback never blocks: a full queue drops its oldest frame (counted). A pipeline that errors,
//! ends or stalls is torn down, counted, and rebuilt after a backoff delay ([`backoff`]: from
//! `retry_interval_ms`, doubling, capped at `retry_max_ms`, jittered); other cameras are
//! unaffected. A camera logs one line when it goes down and when it comes back, and a reminder
//! every [`DOWN_REMINDER`] while it stays down. Capture times come from the camera's
//! [`clock`]: strictly increasing across reconnections, from the camera's RTCP sender reports
//! when it sends them, else from arrival on the host clock.

pub mod backoff;
pub mod clock;
pub mod gate;
pub mod pipeline;
pub mod queue;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::{debug, info, warn};

use crate::config::{CameraConfig, IngestConfig};
use crate::infer::InputSpec;
use crate::messages::{CameraIndex, Frame};
use crate::redact;
use crate::stats::{self, CameraStats};
use backoff::Backoff;
use clock::{Adjust, CaptureClock, Reading, Reference};
use gate::{FrameGate, Plan, Verdict};
pub use pipeline::{PipelineError, Template};
use queue::{FrameSender, Pushed};

/// How often the supervisor wakes to check for stop and stalls.
const BUS_POLL: Duration = Duration::from_millis(250);
/// While a camera stays down, a reminder is logged this often (failures in between go to DEBUG).
pub const DOWN_REMINDER: Duration = Duration::from_secs(600);

/// Unix time in milliseconds.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Everything a camera thread needs.
pub struct CameraTask {
    /// Position in the config's camera list.
    pub index: CameraIndex,
    /// The camera.
    pub camera: CameraConfig,
    /// Shared ingest settings.
    pub ingest: IngestConfig,
    /// Pipeline template.
    pub template: Template,
    /// What the model's input picture must be.
    pub input: InputSpec,
    /// Decoder threads (`max-threads` of the `dec` element, if it has one); see
    /// [`decoder_threads`].
    pub decoder_threads: u32,
    /// This camera's queue to the detector.
    pub frames: FrameSender,
    /// The camera's counters.
    pub stats: Arc<CameraStats>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// The camera's last stored capture time (earlier runs): new stamps follow it.
    pub resume_after_ms: Option<i64>,
}

/// How one pipeline run ended.
enum Ended {
    Stopped,
    Failed(String),
}

/// State shared between the supervisor and the streaming-thread callbacks of one run.
#[derive(Default)]
struct Live {
    width: AtomicU32,
    height: AtomicU32,
    /// Pixel aspect ratio of the decoded frames (letterboxing keeps the display aspect).
    par_n: AtomicU32,
    par_d: AtomicU32,
    /// Milliseconds since the run started at which the last frame arrived (0 = none yet).
    last_frame_ms: AtomicU64,
}

/// Decoder threads per camera when `cameras` share the machine: the cores divided among the
/// cameras, at least one. (A decoder's default of one thread per core oversubscribes the CPU
/// many times over with tens of cameras; a single camera still gets every core.)
pub fn decoder_threads(cameras: usize) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / cameras.max(1)).max(1) as u32
}

/// Starts the camera's supervisor thread.
pub fn spawn(task: CameraTask) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("cam-{}", task.camera.id))
        .spawn(move || supervise(task))
}

/// A camera that is down: since when, and when it was last reported.
struct Down {
    since: Instant,
    reported: Instant,
}

fn supervise(task: CameraTask) {
    let seq = Arc::new(AtomicU64::new(0));
    // One clock for the camera's life: stamps keep increasing across reconnections.
    let clock = Arc::new(Mutex::new(CameraClock::new(task.resume_after_ms)));
    supervise_with(&task, |task| run_once(task, &seq, &clock));
}

/// Runs `run` (one pipeline run: how it ended, and whether any frame arrived) until it ends
/// with [`Ended::Stopped`] or `task.stop` is set; after a failure or a panic it waits out the
/// backoff and runs it again.
fn supervise_with(task: &CameraTask, mut run: impl FnMut(&CameraTask) -> (Ended, bool)) {
    let cam_stats = &task.stats;
    let id = task.camera.id.clone();
    let mut backoff = Backoff::new(
        task.ingest.retry_interval_ms,
        task.ingest.retry_max_ms,
        wall_ms() as u64 ^ task.index as u64,
    );
    let mut down: Option<Down> = None;
    info!(camera = %id, url = %redact::url(&task.camera.url), "Camera starting.");
    while !task.stop.load(Ordering::Relaxed) {
        stats::inc(&cam_stats.starts);
        // A bug in one camera's run must not take the camera down for good: a panic counts as
        // a failure and the pipeline is rebuilt like after any other.
        let (ended, streamed) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(task))).unwrap_or_else(
                |panic| {
                    stats::inc(&cam_stats.panics);
                    (Ended::Failed(panic_message(panic.as_ref())), false)
                },
            );
        cam_stats.up.store(false, Ordering::Relaxed);
        let Ended::Failed(reason) = ended else {
            break;
        };
        stats::inc(&cam_stats.failures);
        // GStreamer debug strings span lines and may carry the URL; a log record stays on one.
        let one_line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        let reason = redact::text(&task.camera.url, &one_line).to_string();
        cam_stats.set_last_error(&reason);
        if streamed {
            backoff.reset();
            down = None;
        }
        let delay = backoff.next_delay();
        let now = Instant::now();
        match &mut down {
            None => {
                warn!(camera = %id, retry_ms = delay.as_millis() as u64, reason = %reason,
                      "Camera down; reconnecting with backoff.");
                down = Some(Down {
                    since: now,
                    reported: now,
                });
            }
            Some(d) if now.duration_since(d.reported) >= DOWN_REMINDER => {
                warn!(camera = %id, down_s = d.since.elapsed().as_secs(), attempts = backoff.failures(),
                      retry_ms = delay.as_millis() as u64, reason = %reason, "Camera still down.");
                d.reported = now;
            }
            Some(_) => debug!(camera = %id, retry_ms = delay.as_millis() as u64, reason = %reason,
                              "Camera reconnect failed."),
        }
        let until = Instant::now() + delay;
        while Instant::now() < until && !task.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    info!(camera = %id, "Camera stopped.");
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    format!("camera thread panicked: {}", crate::panic_text(panic))
}

/// Runs the camera's pipeline once, until it fails or the service stops; also says whether any
/// frame arrived (a camera that streamed starts its backoff afresh).
fn run_once(
    task: &CameraTask,
    seq: &Arc<AtomicU64>,
    clock: &Arc<Mutex<CameraClock>>,
) -> (Ended, bool) {
    let parts = match task.template.build(&task.camera, &task.ingest, &task.input) {
        Ok(p) => p,
        Err(e) => return (Ended::Failed(e.to_string()), false),
    };
    let live = Arc::new(Live::default());
    let started = Instant::now();
    if parts.decoder.has_property("max-threads") {
        parts
            .decoder
            .set_property("max-threads", task.decoder_threads as i32);
    }
    let gate = FrameGate::new(task.camera.decode, task.camera.detect_fps);
    let gate = gate.needed().then(|| Arc::new(Mutex::new(gate)));
    install_probe(&parts.decoder, task, &live, gate.clone());
    if let Some(gate) = gate {
        install_gate(&parts.decoder, task, gate);
    }
    clock.lock().unwrap_or_else(|p| p.into_inner()).restart();
    install_sink(&parts.sink, task, &live, seq, clock, started);

    let pipeline = parts.pipeline;
    let ended = (|| {
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            return Ended::Failed(format!("cannot start pipeline: {e}"));
        }
        let Some(bus) = pipeline.bus() else {
            return Ended::Failed("pipeline has no bus".into());
        };
        let stall = Duration::from_millis(task.ingest.stall_timeout_ms);
        let mut announced = false;
        loop {
            if task.stop.load(Ordering::Relaxed) {
                return Ended::Stopped;
            }
            if let Some(msg) =
                bus.timed_pop(gst::ClockTime::from_mseconds(BUS_POLL.as_millis() as u64))
            {
                use gst::MessageView;
                match msg.view() {
                    MessageView::Error(err) => {
                        let src = msg
                            .src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default();
                        return Ended::Failed(format!(
                            "error from {src}: {} ({})",
                            err.error(),
                            err.debug().map(|d| d.to_string()).unwrap_or_default()
                        ));
                    }
                    MessageView::Eos(_) => return Ended::Failed("end of stream".into()),
                    MessageView::Warning(w) => debug!(camera = %task.camera.id,
                        warning = %redact::text(&task.camera.url, &w.error().to_string()), "Pipeline warning."),
                    _ => {}
                }
            }
            let last = live.last_frame_ms.load(Ordering::Relaxed);
            if last > 0 && !announced {
                announced = true;
                info!(camera = %task.camera.id,
                      width = live.width.load(Ordering::Relaxed),
                      height = live.height.load(Ordering::Relaxed), "Camera streaming.");
            }
            let since = started
                .elapsed()
                .saturating_sub(Duration::from_millis(last));
            if since > stall {
                return Ended::Failed(format!("no frame for {} ms", since.as_millis()));
            }
        }
    })();
    if let Err(e) = pipeline.set_state(gst::State::Null) {
        warn!(camera = %task.camera.id, error = %e, "Pipeline did not shut down cleanly.");
    }
    (ended, live.last_frame_ms.load(Ordering::Relaxed) > 0)
}

/// Counts decoded frames, drops those the gate did not pick for analysis, skips those the
/// camera's queue does not want (counted), and reads the source size from the decoder's output
/// caps.
fn install_probe(
    decoder: &gst::Element,
    task: &CameraTask,
    live: &Arc<Live>,
    gate: Option<Arc<Mutex<FrameGate>>>,
) {
    let Some(pad) = decoder.static_pad("src") else {
        return;
    };
    let live = Arc::clone(live);
    let cam = Arc::clone(&task.stats);
    let frames = task.frames.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    stats::inc(&cam.decoded);
                    let t_ns = buffer.pts().map(|t| t.nseconds());
                    if let Some(gate) = &gate
                        && !gate.lock().unwrap_or_else(|p| p.into_inner()).take(t_ns)
                    {
                        return gst::PadProbeReturn::Drop;
                    }
                    // Skipped here, a frame costs no scaling or conversion.
                    if !frames.wants_frame() {
                        stats::inc(&cam.skipped);
                        return gst::PadProbeReturn::Drop;
                    }
                }
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Caps(c) = ev.view()
                        && let Some(s) = c.caps().structure(0)
                    {
                        let w = s.get::<i32>("width").unwrap_or(0).max(0) as u32;
                        let h = s.get::<i32>("height").unwrap_or(0).max(0) as u32;
                        let par = s
                            .get::<gst::Fraction>("pixel-aspect-ratio")
                            .map_or((1, 1), |f| {
                                (f.numer().max(1) as u32, f.denom().max(1) as u32)
                            });
                        live.width.store(w, Ordering::Relaxed);
                        live.height.store(h, Ordering::Relaxed);
                        live.par_n.store(par.0, Ordering::Relaxed);
                        live.par_d.store(par.1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Drops, counted, the compressed frames the gate says no analysed frame needs, and logs each
/// change of the decoding plan.
fn install_gate(decoder: &gst::Element, task: &CameraTask, gate: Arc<Mutex<FrameGate>>) {
    let Some(pad) = decoder.static_pad("sink") else {
        return;
    };
    let fps = task.camera.detect_fps;
    let cam = Arc::clone(&task.stats);
    let id = task.camera.id.clone();
    let origin = Instant::now();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let t_ns = buffer
            .pts()
            .or(buffer.dts())
            .map_or_else(|| origin.elapsed().as_nanos() as u64, |t| t.nseconds());
        let mut gate = gate.lock().unwrap_or_else(|p| p.into_inner());
        let was = gate.plan();
        let verdict = gate.admit(key, t_ns);
        if gate.plan() != was {
            log_plan(&id, fps, &gate);
        }
        drop(gate);
        if verdict == Verdict::Skip {
            stats::inc(&cam.undecoded);
            // Handled, not Drop: on a sink pad, gstreamer-rs has already taken the buffer out of
            // the probe info, and GStreamer would unref the emptied pointer after a Drop
            // (a GStreamer-CRITICAL per frame). Handled consumes it with flow OK.
            drop(info.take_buffer());
            info.flow_res = Ok(gst::FlowSuccess::Ok);
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
}

fn log_plan(id: &str, fps: u32, gate: &FrameGate) {
    let rate = gate
        .key_rate()
        .map_or("unknown".into(), |r| format!("{r:.2}"));
    let gop = gate.gop_frames();
    match gate.plan() {
        Plan::Every => info!(camera = %id, key_frames_per_s = %rate, gop_frames = gop,
                             detect_fps = fps, "Decoding every frame."),
        Plan::KeyOnly | Plan::Aligned(1) => info!(camera = %id, key_frames_per_s = %rate,
                             detect_fps = fps, "Decoding key frames only."),
        Plan::Aligned(k) => info!(camera = %id, key_frames_per_s = %rate, gop_frames = gop,
                             detect_fps = fps, analysed_per_gop = k,
                             "Decoding each GOP up to its last analysed frame."),
    }
}

/// A camera's [`CaptureClock`], fed from buffers, reporting changes of its time source.
struct CameraClock {
    clock: CaptureClock,
    origin: Instant,
    /// Logged once per connection: the camera's sender reports are in use.
    ntp_announced: bool,
    ntp_refused_logged: bool,
    slewing: bool,
}

impl CameraClock {
    fn new(resume_after_ms: Option<i64>) -> Self {
        Self {
            clock: CaptureClock::resuming_after(resume_after_ms),
            origin: Instant::now(),
            ntp_announced: false,
            ntp_refused_logged: false,
            slewing: false,
        }
    }

    fn restart(&mut self) {
        self.clock.restart();
        self.ntp_announced = false;
    }

    /// The capture time of `buffer`, Unix ms; logs (rarely) what the clock does.
    fn stamp(&mut self, camera: &str, buffer: &gst::BufferRef) -> i64 {
        let s = self.clock.stamp(Reading {
            pts_ms: buffer.pts().map(|p| p.mseconds() as i64),
            ntp_ms: ntp_capture_ms(buffer),
            wall_ms: wall_ms(),
            mono_ms: self.origin.elapsed().as_millis() as i64,
        });
        if s.reference == Reference::Ntp && !self.ntp_announced {
            self.ntp_announced = true;
            info!(
                camera = %camera,
                "Capture time from the camera's RTCP sender reports (NTP)."
            );
        }
        if s.resume_ignored {
            warn!(
                camera = %camera,
                max_ahead_ms = clock::MAX_RESUME_AHEAD_MS,
                "The camera's last stored time is far ahead of this host's clock; \
                   new times start from the clock and are earlier than stored ones."
            );
        }
        if s.ntp_refused && !self.ntp_refused_logged {
            self.ntp_refused_logged = true;
            warn!(
                camera = %camera,
                max_skew_ms = clock::MAX_NTP_SKEW_MS,
                "The camera's NTP time is far from this host's clock; using arrival time."
            );
        }
        match s.adjust {
            Adjust::StepForward(ms) => {
                info!(camera = %camera, by_ms = ms, "Capture clock stepped forward.")
            }
            Adjust::Slew(ms) if !self.slewing => {
                info!(
                    camera = %camera,
                    ahead_ms = ms,
                    "Capture clock ahead of its reference; slowing down."
                )
            }
            Adjust::PtsJump => {
                debug!(camera = %camera, "Stream timestamps jumped; using arrival spacing.")
            }
            _ => {}
        }
        self.slewing = matches!(s.adjust, Adjust::Slew(_));
        s.ms
    }
}

/// The camera's capture time attached by rtspsrc (`add-reference-timestamp-meta=true`) once
/// an RTCP sender report has mapped RTP time to the camera's NTP clock.
fn ntp_capture_ms(buffer: &gst::BufferRef) -> Option<i64> {
    buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp")
        })
        .map(|m| clock::ntp_ns_to_unix_ms(m.timestamp().nseconds()))
}

/// The appsink callback: stamp, wrap and queue each frame without blocking.
fn install_sink(
    sink: &gst_app::AppSink,
    task: &CameraTask,
    live: &Arc<Live>,
    seq: &Arc<AtomicU64>,
    clock: &Arc<Mutex<CameraClock>>,
    started: Instant,
) {
    let live = Arc::clone(live);
    let seq = Arc::clone(seq);
    let cam = Arc::clone(&task.stats);
    let frames = task.frames.clone();
    let index = task.index;
    let input = task.input;
    let clock = Arc::clone(clock);
    let camera = task.camera.id.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let size = (
                    live.width.load(Ordering::Relaxed),
                    live.height.load(Ordering::Relaxed),
                );
                if size.0 == 0 || size.1 == 0 {
                    return Ok(gst::FlowSuccess::Ok);
                }
                live.last_frame_ms.store(
                    started.elapsed().as_millis().max(1) as u64,
                    Ordering::Relaxed,
                );
                // The clock is plain data: still valid after a panic elsewhere poisoned it.
                let captured_ms = clock
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .stamp(&camera, &buffer);
                cam.up.store(true, Ordering::Relaxed);
                let par = (
                    live.par_n.load(Ordering::Relaxed),
                    live.par_d.load(Ordering::Relaxed),
                );
                let frame = Frame {
                    camera: index,
                    seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
                    captured_ms,
                    mapping: input.mapping(size, par),
                    pixels: buffer,
                };
                match frames.push(frame) {
                    Pushed::Queued => stats::inc(&cam.delivered),
                    Pushed::DroppedOldest => {
                        stats::inc(&cam.delivered);
                        stats::inc(&cam.dropped);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

#[cfg(test)]
mod tests;
