//! The detector loop: feeds a [`Backend`] from the camera queues, collects frames in the order
//! they finish, and passes detections on in each camera's own order.
//!
//! Input: a [`FrameSource`] (camera served longest ago first, newest frames kept). Output:
//! [`Detections`] on a bounded channel, per camera in sequence order. A finished frame frees a
//! slot that is refilled *before* its results are sent on, so the device never idles while the
//! tracker stage is slow to accept. A frame that finishes early waits in its camera's reorder
//! buffer only for the same camera's earlier frames; other cameras are not held back. A frame
//! whose inference failed is counted (`infer_errors`); it and a frame no model server took
//! count as their camera's `failed` and leave a gap like a dropped one; the loop goes on until
//! the failures are fatal ([`crate::infer::failures`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tracing::debug;

use crate::infer::InferError;
use crate::infer::backend::{Backend, Finished};
use crate::infer::failures::{FailLimit, Failures};
use crate::ingest::queue::{FrameSource, Next};
use crate::messages::{CameraIndex, Detections};
use crate::stats::admission::Load;
use crate::stats::{self, Stats};
use crate::time::wall_ms;

/// How long the loop waits for a frame or a result before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Per-camera reorder buffers: frames submitted, in order, each with its result once known
/// (`Some(None)`: dropped or failed, a gap that holds nothing back).
#[derive(Debug, Default)]
pub struct Reorder {
    cameras: Vec<VecDeque<(u64, Option<Option<Detections>>)>>,
}

impl Reorder {
    /// Buffers for `cameras` cameras.
    pub fn new(cameras: usize) -> Self {
        Self {
            cameras: (0..cameras).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Notes that frame `seq` of `camera` was submitted (in submission order).
    pub fn submitted(&mut self, camera: CameraIndex, seq: u64) {
        if camera >= self.cameras.len() {
            self.cameras.resize_with(camera + 1, VecDeque::new);
        }
        self.cameras[camera].push_back((seq, None));
    }

    /// Stores a finished frame and returns every result of its camera that is now in order
    /// (dropped and failed frames are skipped). A result for a frame never submitted is passed
    /// straight through.
    pub fn finished(&mut self, finished: Finished) -> Vec<Detections> {
        let (camera, seq, dets) = match finished {
            Finished::Detected(d) => (d.camera, d.seq, Some(d)),
            Finished::Dropped { camera, seq } | Finished::Failed { camera, seq, .. } => {
                (camera, seq, None)
            }
        };
        let Some(queue) = self.cameras.get_mut(camera) else {
            return dets.into_iter().collect();
        };
        match queue.iter_mut().find(|(s, d)| *s == seq && d.is_none()) {
            Some(slot) => slot.1 = Some(dets),
            None => return dets.into_iter().collect(),
        }
        let mut ready = Vec::new();
        while let Some((_, Some(_))) = queue.front() {
            if let Some((_, Some(d))) = queue.pop_front() {
                ready.extend(d);
            }
        }
        ready
    }

    /// Frames submitted and not yet released.
    pub fn pending(&self) -> usize {
        self.cameras.iter().map(VecDeque::len).sum()
    }
}

/// Runs `backend` until every camera's queue is closed (or `stop` is set) and nothing is in
/// flight; detections go to `out` in per-camera order. Ends with an error when the backend
/// fails, a request is stuck, or frames fail in a row past [`FailLimit::DEVICE`].
pub fn run<B: Backend>(
    backend: B,
    source: FrameSource,
    out: Sender<Detections>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Result<(), InferError> {
    serve(backend, source, out, &stats, &stop, FailLimit::DEVICE)
}

fn serve<B: Backend>(
    mut backend: B,
    mut source: FrameSource,
    out: Sender<Detections>,
    stats: &Stats,
    stop: &AtomicBool,
    limit: FailLimit,
) -> Result<(), InferError> {
    let capacity = backend.capacity().max(1);
    let mut in_flight = 0usize;
    let mut reorder = Reorder::default();
    let mut failures = Failures::new(limit);
    let mut closed = false;
    // How busy the slots are: the cameras' shares follow it (crate::stats::admission).
    let mut load = Load::new(Instant::now(), capacity);
    loop {
        let now = Instant::now();
        load.set(now, in_flight);
        if let Some((busy, window)) = load.take(now) {
            stats.admit(busy, window);
        }
        let stopping = closed || stop.load(Ordering::Relaxed);
        if !stopping {
            fill(
                &mut backend,
                &mut source,
                &mut reorder,
                &mut in_flight,
                capacity,
            )?;
        }
        load.set(Instant::now(), in_flight);
        if in_flight == 0 {
            if stopping {
                // Frames still queued are seconds old by the time anyone would see them.
                return Ok(());
            }
            closed = submit_next(&mut backend, &mut source, &mut reorder, &mut in_flight)?;
            continue;
        }
        let done = poll_finished(&mut backend, &mut in_flight)?;
        if done.is_empty() {
            continue;
        }
        let done = done
            .into_iter()
            .map(|f| account(f, &mut failures, stats))
            .collect::<Result<Vec<_>, _>>()?;
        // Refill the freed slots before anything is sent on.
        if !(closed || stop.load(Ordering::Relaxed)) {
            fill(
                &mut backend,
                &mut source,
                &mut reorder,
                &mut in_flight,
                capacity,
            )?;
        }
        if !send_in_order(done, &mut reorder, stats, &out) {
            return Ok(());
        }
    }
}

/// With nothing in flight: waits up to [`IDLE_POLL`] for a frame and submits it. True when
/// every camera's queue is closed.
fn submit_next<B: Backend>(
    backend: &mut B,
    source: &mut FrameSource,
    reorder: &mut Reorder,
    in_flight: &mut usize,
) -> Result<bool, InferError> {
    match source.next(IDLE_POLL) {
        Next::Frame(frame) => {
            reorder.submitted(frame.camera, frame.seq);
            backend.submit(frame)?;
            *in_flight += 1;
        }
        Next::Idle => {}
        Next::Closed => return Ok(true),
    }
    Ok(false)
}

/// Everything that has finished, the first one waited for (up to [`IDLE_POLL`]); each one
/// taken off `in_flight`.
fn poll_finished<B: Backend>(
    backend: &mut B,
    in_flight: &mut usize,
) -> Result<Vec<Finished>, InferError> {
    let mut done = Vec::new();
    let mut wait = IDLE_POLL;
    while let Some(d) = backend.poll(wait)? {
        done.push(d);
        *in_flight -= 1;
        wait = Duration::ZERO;
        if *in_flight == 0 {
            break;
        }
    }
    Ok(done)
}

/// Sends on every detection of `done` that is now in its camera's order, counted (frames
/// analysed, persons, age). False when the tracker stage is gone.
fn send_in_order(
    done: Vec<Finished>,
    reorder: &mut Reorder,
    stats: &Stats,
    out: &Sender<Detections>,
) -> bool {
    let now = wall_ms();
    for d in done.into_iter().flat_map(|d| reorder.finished(d)) {
        let cam = stats.camera(d.camera);
        stats::inc(&cam.inferred);
        stats::add(&cam.persons, u64::from(d.persons));
        cam.age.record(now - d.captured_ms);
        cam.frame_age
            .observe((now - d.captured_ms).max(0) as f64 / 1000.0);
        if out.send(d).is_err() {
            debug!("Tracker stage is gone; detector stops.");
            return false;
        }
    }
    true
}

/// Counts a failed frame (turned into a dropped one, a gap in its camera's order) and ends the
/// detector if the failure is fatal; a detected frame ends the failures in a row.
fn account(
    finished: Finished,
    failures: &mut Failures,
    stats: &Stats,
) -> Result<Finished, InferError> {
    match finished {
        Finished::Failed { camera, seq, error } => {
            stats::inc(&stats.infer_errors);
            let cam = stats.camera(camera);
            stats::inc(&cam.failed);
            failures.failed(camera, &cam.id, error, Instant::now())?;
            Ok(Finished::Dropped { camera, seq })
        }
        Finished::Detected(d) => {
            failures.detected(d.camera, || stats.camera(d.camera).id.clone());
            Ok(Finished::Detected(d))
        }
        Finished::Dropped { camera, seq } => {
            // Not analysed (no model server up): a frame the detector could not do.
            stats::inc(&stats.camera(camera).failed);
            Ok(Finished::Dropped { camera, seq })
        }
    }
}

/// Submits queued frames while the backend has free slots.
fn fill<B: Backend>(
    backend: &mut B,
    source: &mut FrameSource,
    reorder: &mut Reorder,
    in_flight: &mut usize,
    capacity: usize,
) -> Result<(), InferError> {
    while *in_flight < capacity {
        let Some(frame) = source.try_next() else {
            break;
        };
        reorder.submitted(frame.camera, frame.seq);
        backend.submit(frame)?;
        *in_flight += 1;
    }
    Ok(())
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod overload;
#[cfg(test)]
mod tests;
