//! Camera ingest: one GStreamer pipeline per camera, supervised by its own thread.
//!
//! Input: a camera's config, the pipeline template and the model's input spec. Output:
//! [`Frame`]s (the model's input picture, with capture time and the mapping back to source
//! pixels) pushed into that camera's queue. Packets get their presentation time from their RTP
//! timestamps ([`rtp_time`]: exact, in capture order, whatever the encoder's frame order). The
//! camera's [`gate::FrameGate`] picks the frames analysed at `detect_fps` (or its share, or its
//! idle rate; at `detect_fps = 0` every frame until limited) in presentation order at the
//! decoder's output, and drops at its input the compressed frames no analysed frame
//! needs; frames not picked, or arriving while the camera's queue holds fresh ones, are dropped
//! before any scaling or conversion ([`queue::FrameSender::wants_frame`]); every frame is
//! counted where it ends ([`probes`]). A camera analysed every 2 s or less often (idle) has its
//! decoder parked between its frames (`park.rs`). RTP packets missing before the decoder (lost
//! on the network, or dropped from the full packet queue) are counted (`loss.rs`); before that
//! queue fills, the gate sheds GOPs while decoding lags (`backlog.rs`). The decoder
//! gets the cores divided among the cameras as threads ([`decoder_threads`]). The appsink
//! callback never blocks: a full queue drops its oldest frame (counted). A pipeline that
//! errors, ends or stalls is torn down, counted, and rebuilt after a backoff delay
//! ([`backoff`]: from `retry_interval_ms`, doubling, capped at `retry_max_ms`, jittered);
//! other cameras are unaffected. A camera logs one line when it
//! goes down and when it comes back, and a reminder every [`DOWN_REMINDER`] while it stays
//! down. Capture times come from the camera's [`clock`]: strictly increasing across
//! reconnections, from arrival (reordering and queueing left out) corrected by the camera's
//! RTCP clock when that is in step with the host's.

pub mod activity;
mod backlog;
pub mod backoff;
pub mod clock;
pub mod gate;
mod hold;
mod loss;
mod park;
pub mod pipeline;
mod priority;
mod probes;
pub mod queue;
pub mod rtp_time;
mod stamping;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use tracing::{debug, info, warn};

use crate::config::{CameraConfig, IngestConfig};
use crate::messages::CameraIndex;
use crate::redact;
use crate::resize::InputSpec;
use crate::stats::{self, CameraStats};
use gate::FrameGate;
pub use pipeline::{PipelineError, Template};
use probes::Live;
use queue::FrameSender;
use stamping::CameraClock;

/// How often the supervisor wakes to check for stop and stalls.
const BUS_POLL: Duration = Duration::from_millis(250);
/// While a camera stays down, a reminder is logged this often (failures in between go to DEBUG).
pub const DOWN_REMINDER: Duration = Duration::from_secs(600);

/// Unix time in milliseconds (moved to [`crate::time`]; this path stays for older callers).
pub use crate::time::wall_ms;

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
    // Frames still queued when the camera stops are never analysed.
    stats::add(&task.stats.dropped, task.frames.discard_queued());
}

/// Runs `run` (one pipeline run: how it ended, and whether any frame arrived) until it ends
/// with [`Ended::Stopped`] or `task.stop` is set; after a failure or a panic it waits out the
/// backoff and runs it again.
fn supervise_with(task: &CameraTask, mut run: impl FnMut(&CameraTask) -> (Ended, bool)) {
    let cam_stats = &task.stats;
    let id = task.camera.id.clone();
    let mut backoff = backoff::new(
        task.ingest.retry_interval_ms,
        task.ingest.retry_max_ms,
        crate::rng::mix(crate::rng::box_seed(), task.index as u64),
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
        let delay = backoff.next_wait();
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
    let gate = Arc::new(Mutex::new(FrameGate::new(
        task.camera.decode,
        task.camera.detect_fps,
    )));
    rtp_time::install(&parts.src);
    if let Some(queue) = &parts.packets {
        let gate = Arc::clone(&gate);
        loss::install(queue, &task.stats, move |gap| {
            gate.lock()
                .unwrap_or_else(|p| p.into_inner())
                .packets_lost(gap);
        });
    }
    let live = Arc::new(Live::default());
    let started = Instant::now();
    if parts.decoder.has_property("max-threads") {
        parts
            .decoder
            .set_property("max-threads", task.decoder_threads as i32);
    }
    clock.lock().unwrap_or_else(|p| p.into_inner()).restart();
    let sink = parts.sink.upcast_ref::<gst::Element>();
    let queue = parts.packets.as_ref().and_then(backlog::PacketQueue::new);
    probes::install_input(
        (&parts.decoder, sink),
        task,
        (&live, started),
        (gate.clone(), queue),
        clock,
    );
    probes::install_output(&parts.decoder, task, &live, gate);
    probes::install_sink(&parts.sink, task, &live, seq, clock, started);

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
                let (width, height) = live.size();
                info!(camera = %task.camera.id, width, height, "Camera streaming.");
            }
            // Packets count once frames came: a camera held to a low rate (or idle) is alive.
            let alive = if last > 0 {
                last.max(live.last_packet_ms.load(Ordering::Relaxed))
            } else {
                0
            };
            let since = started
                .elapsed()
                .saturating_sub(Duration::from_millis(alive));
            if since > stall {
                return Ended::Failed(format!("no frame for {} ms", since.as_millis()));
            }
        }
    })();
    if let Err(e) = pipeline.set_state(gst::State::Null) {
        warn!(camera = %task.camera.id, error = %e, "Pipeline did not shut down cleanly.");
    }
    let cam = &task.stats;
    stats::add(&cam.dropped, live.lost_in_transit());
    let (first, last) = (
        live.first_frame_ms.load(Ordering::Relaxed),
        live.last_frame_ms.load(Ordering::Relaxed),
    );
    if first > 0 {
        stats::add(
            &cam.streamed_ms,
            started.elapsed().as_millis() as u64 - first,
        );
    }
    (ended, last > 0)
}

#[cfg(test)]
mod tests;
