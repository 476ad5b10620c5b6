//! The probes of one camera pipeline run: on the decoder's input, its output, and the appsink.
//!
//! Decoder input (decode order, on the pad feeding the decoder): each compressed frame's arrival
//! is told to the capture clock (its arrival envelope), its detection slot counted (`slots`),
//! and the frame gate says whether it is decoded (not: `undecoded`; of those, `shed` while the
//! packets waiting for the decoder show it lagging, see [`super::backlog`], and `damaged` after
//! packets lost before it, see [`super::loss`]); a decoder with nothing
//! to decode for a while (a camera analysed seldom, or at the end of its GOP's decoded frames) is
//! parked until its next frame to decode ([`super::park`]); an idle camera's current GOP is
//! held, and given again to the decoder when the camera wakes in the middle of it
//! ([`super::hold`]). Decoder output (presentation
//! order): every frame is counted (`decoded`), and dropped if the gate does not pick it
//! (`not_picked`) or the camera's queue holds a fresh frame (`skipped`), so such frames are
//! never scaled or converted; the output caps give the source size. Appsink: each frame is
//! stamped and queued without blocking (`delivered`; a full queue drops its oldest, `dropped`).
//! A frame that passed the decoder's output but never reached the appsink (the pipeline torn
//! down, no size known yet) is counted `dropped` too, so `decoded = inferred + not_picked +
//! skipped + dropped + failed` holds exactly once everything has stopped.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::{debug, info, warn};

use super::CameraTask;
use super::activity::Activity;
use super::backlog::PacketQueue;
use super::gate::{Backlog, FrameGate, Plan, Verdict};
use super::hold::Held;
use super::park::{PARK_BELOW_FPS, PARK_GAP_NS, Parking, Reach};
use super::stamping::CameraClock;
use crate::messages::Frame;
use crate::stats::{self, CameraStats};

/// State shared between the supervisor and the streaming-thread callbacks of one run.
#[derive(Debug, Default)]
pub(super) struct Live {
    width: AtomicU32,
    height: AtomicU32,
    /// Pixel aspect ratio of the decoded frames (letterboxing keeps the display aspect).
    par_n: AtomicU32,
    par_d: AtomicU32,
    /// Milliseconds since the run started at which the first and the last frame arrived
    /// (0 = none yet).
    pub first_frame_ms: AtomicU64,
    pub last_frame_ms: AtomicU64,
    /// Frames past the decoder's output, not yet at the appsink.
    in_transit: AtomicI64,
    /// Milliseconds since the run started at which the last compressed frame reached the
    /// decoder (a camera held to a low rate, or idle, is alive between its analysed frames).
    pub last_packet_ms: AtomicU64,
}

impl Live {
    /// The source picture size once known.
    pub fn size(&self) -> (u32, u32) {
        (
            self.width.load(Ordering::Relaxed),
            self.height.load(Ordering::Relaxed),
        )
    }

    /// Frames that left the decoder and never reached the appsink (call once it has stopped).
    pub fn lost_in_transit(&self) -> u64 {
        self.in_transit.load(Ordering::Relaxed).max(0) as u64
    }
}

/// Locks a mutex, taking the data of one poisoned by a panic elsewhere (it stays valid).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The decoder's input: arrivals to the clock, slots counted, and frames no analysed frame needs
/// dropped, shed while the packet queue shows decoding behind, or damaged by packets lost (all
/// counted); each change of the
/// decoding plan is logged, except while the camera is limited (fair share or idle rate: the plan
/// then changes GOP by GOP by design). A camera analysed at most [`PARK_BELOW_FPS`] has its decoder
/// and the chain after it parked between its analysed frames ([`Parking`]), and any other from
/// the end of its GOP's decoded frames when its next key frame is [`PARK_GAP_NS`] or more away
/// (not with B-frames, nor soon after its decoding lagged its stream): the chain, or the decoder
/// alone while the camera is held to a share of the detector ([`Reach`]); the probe sits on
/// the pad feeding the decoder, which stays active while it is parked.
pub(super) fn install_input(
    (decoder, sink): (&gst::Element, &gst::Element),
    task: &CameraTask,
    (live, started): (&Arc<Live>, Instant),
    (gate, queue): (Arc<Mutex<FrameGate>>, Option<PacketQueue>),
    clock: &Arc<Mutex<CameraClock>>,
) {
    let parking = Parking::new(decoder, sink);
    let Some(pad) = parking
        .as_ref()
        .map(|p| p.upstream().clone())
        .or_else(|| decoder.static_pad("sink"))
    else {
        return;
    };
    let parking = parking.map(Mutex::new);
    let fps = task.camera.detect_fps;
    let cam = Arc::clone(&task.stats);
    let id = task.camera.id.clone();
    let clock = Arc::clone(clock);
    let origin = Instant::now();
    let idle = Mutex::new(Idle::new(task));
    let held = Mutex::new(Held::new(Arc::clone(&task.stats)));
    cam.seat.ask(f64::from(fps), false);
    let live = Arc::clone(live);
    let stop = Arc::clone(&task.stop);
    // The camera's decoded frames before this run (the last run's pipeline is gone).
    let decoded_before = cam.decoded.load(Ordering::Relaxed);
    let mask = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    pad.add_probe(mask, move |_, info| {
        let buffer = match &info.data {
            Some(gst::PadProbeData::Buffer(buffer)) => buffer,
            Some(gst::PadProbeData::Event(_)) => return event_while_parked(parking.as_ref(), info),
            _ => return gst::PadProbeReturn::Ok,
        };
        super::priority::lower_this_thread();
        let now_ms = started.elapsed().as_millis().max(1) as u64;
        live.last_packet_ms.store(now_ms, Ordering::Relaxed);
        lock(&clock).arrived(buffer);
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let t_ns = buffer
            .pts()
            .or(buffer.dts())
            .map_or_else(|| origin.elapsed().as_nanos() as u64, |t| t.nseconds());
        let gating = lock(&idle).limit(&cam, key, buffer.size(), t_ns);
        if gating.woke
            && !key
            && gating.limit.is_none()
            && let Err(e) = wake_mid_gop(
                parking.as_ref(),
                &held,
                (&gate, t_ns),
                (&cam, || {
                    cam.decoded.load(Ordering::Relaxed) - decoded_before
                }),
            )
        {
            let stopping = stop.load(Ordering::Relaxed);
            if stopping {
                debug!(camera = %id, error = %e, "Held GOP not given: the camera stops.");
            } else {
                warn!(camera = %id, error = %e, "Decoder could not be given the held GOP.");
            }
            drop(info.take_buffer());
            info.flow_res = Err(if stopping {
                gst::FlowError::Flushing
            } else {
                gst::FlowError::Error
            });
            return gst::PadProbeReturn::Handled;
        }
        let mut gate = lock(&gate);
        gate.set_limit(gating.limit);
        let reorder_ns = gate.reorder_ns();
        let backlog = queue
            .as_ref()
            .map_or(Backlog::Keeping, |q| q.backlog(reorder_ns));
        gate.set_backlog(backlog);
        if gate.new_slot(t_ns) {
            stats::inc(&cam.slots);
            if gate.limit().is_some() {
                stats::inc(&cam.limited);
            }
        }
        let was = gate.plan();
        let verdict = gate.admit(key, t_ns);
        // Under a limit the plan changes GOP by GOP by design: not logged.
        if gate.plan() != was && gate.limit().is_none() {
            log_plan(&id, fps, &gate);
        }
        // Parked: a camera analysed seldom (the chain), or one whose decoder would sit idle a
        // while (not soon after its decoding lagged; not with B-frames: measured to cost frames
        // and save no memory, docs/overload.md); one held to a share of the detector has its
        // decoder alone parked then (the chain's parks, more work for its streaming thread,
        // saved less or broke the fair shares: sitting R).
        let seldom = gate.limit().is_some_and(|l| l <= PARK_BELOW_FPS);
        let gap = !gate.reordered() && gate.gop_cut() && gate.key_due_in(t_ns) >= Some(PARK_GAP_NS);
        // A GOP that lost packets is not held: replayed, its damaged frames would be decoded.
        let holdable = gating.idle && parking.is_some() && gate.resumable() && !gate.damaged();
        let drain = gate.reordered() && gate.gop_cut();
        let asked = gate.asked_fps();
        drop(gate);
        if fps == 0 {
            lock(&idle).asks(&cam, asked);
        }
        let outcome = match &parking {
            Some(p) => {
                let decoded = || cam.decoded.load(Ordering::Relaxed) - decoded_before;
                let mut p = lock(p);
                p.lag(backlog != Backlog::Keeping, t_ns);
                let park = if seldom {
                    Some(Reach::Chain)
                } else if gap && !p.lagged(t_ns) {
                    Some(if gating.shared {
                        Reach::Decoder
                    } else {
                        Reach::Chain
                    })
                } else {
                    None
                };
                park_or_wake(&mut p, &cam, (verdict, key), (park, drain), decoded)
            }
            None => Ok(verdict),
        };
        // Held while idle unless shed or damaged (or failed): a GOP with a frame missing cannot
        // be replayed.
        let kept = matches!(outcome, Ok(Verdict::Decode | Verdict::Skip));
        let decoded = matches!(outcome, Ok(Verdict::Decode));
        let held_back = lock(&held).frame(buffer, key, decoded, holdable && kept);
        let flow = match outcome {
            Ok(Verdict::Decode) => return gst::PadProbeReturn::Ok,
            Ok(Verdict::Skip) => Ok(gst::FlowSuccess::Ok),
            Ok(Verdict::Shed) => {
                stats::inc(&cam.shed);
                Ok(gst::FlowSuccess::Ok)
            }
            Ok(Verdict::Damaged) => {
                stats::inc(&cam.damaged);
                Ok(gst::FlowSuccess::Ok)
            }
            Err(e) if stop.load(Ordering::Relaxed) => {
                debug!(camera = %id, error = %e, "Decoder not woken: the camera stops.");
                Err(gst::FlowError::Flushing)
            }
            Err(e) => {
                warn!(camera = %id, error = %e, "Decoder could not be parked or woken.");
                Err(gst::FlowError::Error)
            }
        };
        if !held_back {
            stats::inc(&cam.undecoded);
        }
        // Handled, not Drop: gstreamer-rs has already taken the buffer out of the probe info,
        // and GStreamer would unref the emptied pointer after a Drop (a GStreamer-CRITICAL per
        // frame). Handled consumes it with the flow given.
        drop(info.take_buffer());
        info.flow_res = flow;
        gst::PadProbeReturn::Handled
    });
}

/// An event on its way to the decoder: held back while the decoder is parked (its inactive pad
/// would refuse it, and the refusal would stop the stream); the woken decoder gets the sticky
/// ones then. End of stream wakes the decoder and goes on.
fn event_while_parked(
    parking: Option<&Mutex<Parking>>,
    info: &mut gst::PadProbeInfo,
) -> gst::PadProbeReturn {
    let Some(mut p) = parking.map(lock).filter(|p| p.parked()) else {
        return gst::PadProbeReturn::Ok;
    };
    if info
        .event()
        .is_some_and(|ev| ev.type_() != gst::EventType::Eos)
    {
        // Handled, not Drop (see the buffers'); a sticky one stays stored on the pad, from
        // where waking gives it to the decoder.
        drop(info.take_event());
        return gst::PadProbeReturn::Handled;
    }
    if let Err(e) = p.wake() {
        debug!(error = %e, "Parked decoder not woken for the end of stream.");
    }
    gst::PadProbeReturn::Ok
}

/// A camera woke at a delta frame: when the GOP since its key frame is held ([`Held`]) and its
/// decoder is parked (or can be: every frame given has come out, after a drain for one holding
/// B-frames back), the gate decodes the rest of the GOP from this frame on and the woken
/// decoder is given the held GOP first (the gate's lock is let go before: the decoder's output
/// probe takes it for each frame). Otherwise the camera wakes at its next key frame.
fn wake_mid_gop(
    parking: Option<&Mutex<Parking>>,
    held: &Mutex<Held>,
    (gate, t_ns): (&Mutex<FrameGate>, u64),
    (cam, decoded): (&CameraStats, impl Fn() -> u64),
) -> Result<(), String> {
    let Some(mut p) = parking.map(lock) else {
        return Ok(());
    };
    let mut held = lock(held);
    if !held.whole() {
        return Ok(());
    }
    if !p.parked() {
        // A decoder holding frames back (B-frames) puts them out first: the held GOP is given
        // from its key frame, so the references the drain drops are not needed.
        if p.holds(decoded()) {
            p.drain()?;
        }
        if !p.park(decoded(), Reach::Chain)? {
            return Ok(());
        }
        stats::inc(&cam.parks);
    }
    let Some(gop) = held.take() else {
        return Ok(());
    };
    drop(held);
    let mut gate = lock(gate);
    gate.set_limit(None);
    gate.resume(t_ns);
    drop(gate);
    p.replay(gop)
}

/// After a skipped frame: drains a decoder holding frames back for B-frames once nothing more
/// of the GOP is decoded (`drain`: else its last frame would come out only when the next key
/// frame goes in, a GOP or two late), and parks the decoder (or the chain) when `park` says; wakes
/// it for a key frame to decode. Returns the verdict that stands (a delta frame for a parked
/// decoder is skipped: it lacks its references). `decoded`: frames out this run.
fn park_or_wake(
    p: &mut Parking,
    cam: &CameraStats,
    (verdict, key): (Verdict, bool),
    (park, drain): (Option<Reach>, bool),
    decoded: impl Fn() -> u64,
) -> Result<Verdict, String> {
    match verdict {
        Verdict::Skip | Verdict::Shed | Verdict::Damaged => {
            if drain && p.holds(decoded()) {
                p.drain()?;
            }
            if let Some(reach) = park
                && p.park(decoded(), reach)?
            {
                stats::inc(&cam.parks);
            }
            Ok(verdict)
        }
        Verdict::Decode if p.parked() && !key => Ok(Verdict::Skip),
        Verdict::Decode => {
            p.wake()?;
            p.given();
            Ok(Verdict::Decode)
        }
    }
}

/// A camera's idle gating: its motion state and the rate it asks for because of it.
struct Idle {
    activity: Activity,
    /// Rate while idle (None: no idle gating).
    idle_fps: Option<f64>,
    /// Rate asked for while not idle: `detect_fps`; with `detect_fps = 0` the stream's frame
    /// rate once measured (0 before: see `Seat::ask`).
    detect_fps: f64,
    was_idle: bool,
    /// The camera's person detections when last looked at.
    persons: u64,
    /// The camera's analysed frames when this connection started.
    inferred: u64,
}

impl Idle {
    fn new(task: &CameraTask) -> Self {
        let ms = task.ingest.idle_interval_ms;
        Self {
            activity: Activity::new(),
            idle_fps: (ms > 0).then(|| 1000.0 / ms as f64),
            detect_fps: f64::from(task.camera.detect_fps),
            was_idle: false,
            persons: task.stats.persons.load(Ordering::Relaxed),
            inferred: task.stats.inferred.load(Ordering::Relaxed),
        }
    }

    /// One compressed frame: what the camera asks for now (told to its seat), the limit of its
    /// gate (its idle rate while idle, its share of the detector while given one), and whether
    /// it is idle or woke at this frame.
    fn limit(&mut self, cam: &CameraStats, key: bool, bytes: usize, t_ns: u64) -> Gating {
        let mut limit = cam.seat.allowed();
        let shared = limit.is_some();
        let mut woke = false;
        if let Some(idle_fps) = self.idle_fps {
            self.activity.frame(key, bytes, t_ns);
            // The detector counts a frame, then its persons: read in the other order.
            let looked = cam.inferred.load(Ordering::Relaxed) > self.inferred;
            let persons = cam.persons.load(Ordering::Relaxed);
            if persons != self.persons {
                self.persons = persons;
                self.activity.seen(t_ns);
            }
            let idle = self.activity.idle(looked);
            if idle != self.was_idle {
                self.was_idle = idle;
                woke = !idle;
                debug!(camera = %cam.id, idle, "Camera activity changed.");
                cam.seat
                    .ask(if idle { idle_fps } else { self.detect_fps }, idle);
            }
            if idle {
                limit = Some(limit.map_or(idle_fps, |l| l.min(idle_fps)));
            }
        }
        Gating {
            limit,
            shared,
            idle: self.was_idle,
            woke,
        }
    }

    /// A camera at `detect_fps = 0` asks for its stream's frame rate once measured (`fps`):
    /// told to its seat when it changes, at once unless the camera is idle.
    fn asks(&mut self, cam: &CameraStats, fps: f64) {
        if fps > 0.0 && (fps - self.detect_fps).abs() > fps * 0.01 {
            self.detect_fps = fps;
            if !self.was_idle {
                cam.seat.ask(fps, false);
            }
        }
    }
}

/// What a compressed frame's camera asks of its gate ([`Idle::limit`]).
struct Gating {
    limit: Option<f64>,
    /// Held to a share of the detector (the box is short of CPU).
    shared: bool,
    idle: bool,
    woke: bool,
}

fn log_plan(id: &str, fps: u32, gate: &FrameGate) {
    let rate = gate
        .key_rate()
        .map_or("unknown".into(), |r| format!("{r:.2}"));
    let gop = gate.gop_frames();
    let b_frames = gate.reordered();
    match gate.plan() {
        Plan::Every => info!(camera = %id, key_frames_per_s = %rate, gop_frames = gop,
                             b_frames, detect_fps = fps, "Decoding every frame."),
        Plan::KeyOnly | Plan::Aligned(1) => info!(camera = %id, key_frames_per_s = %rate,
                             b_frames, detect_fps = fps, "Decoding key frames only."),
        Plan::Skip => {}
        Plan::Aligned(k) => info!(camera = %id, key_frames_per_s = %rate, gop_frames = gop,
                             detect_fps = fps, analysed_per_gop = k,
                             "Decoding each GOP up to its last analysed frame."),
    }
}

/// The decoder's output: counts decoded frames, drops those the gate does not pick and those
/// the camera's queue does not want (each counted), and reads the source size from the caps.
pub(super) fn install_output(
    decoder: &gst::Element,
    task: &CameraTask,
    live: &Arc<Live>,
    gate: Arc<Mutex<FrameGate>>,
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
                    if !lock(&gate).take(t_ns) {
                        stats::inc(&cam.not_picked);
                        return gst::PadProbeReturn::Drop;
                    }
                    // Skipped here, a frame costs no scaling or conversion.
                    if !frames.wants_frame() {
                        stats::inc(&cam.skipped);
                        return gst::PadProbeReturn::Drop;
                    }
                    live.in_transit.fetch_add(1, Ordering::Relaxed);
                }
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Caps(c) = ev.view()
                        && let Some(s) = c.caps().structure(0)
                    {
                        read_size(&live, s);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

fn read_size(live: &Live, s: &gst::StructureRef) {
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

/// The appsink callback: stamp, wrap and queue each frame without blocking.
pub(super) fn install_sink(
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
                live.in_transit.fetch_sub(1, Ordering::Relaxed);
                let Some(buffer) = sample.buffer_owned() else {
                    stats::inc(&cam.dropped);
                    return Ok(gst::FlowSuccess::Ok);
                };
                let size = live.size();
                if size.0 == 0 || size.1 == 0 {
                    stats::inc(&cam.dropped);
                    return Ok(gst::FlowSuccess::Ok);
                }
                let now_ms = started.elapsed().as_millis().max(1) as u64;
                let _ = live.first_frame_ms.compare_exchange(
                    0,
                    now_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                live.last_frame_ms.store(now_ms, Ordering::Relaxed);
                let captured_ms = lock(&clock).stamp(&camera, &buffer, &cam.clock);
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
                stats::inc(&cam.delivered);
                stats::add(&cam.dropped, frames.push(frame));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}
