//! The detector loop: feeds a [`Backend`] from the camera queues, collects frames in the order
//! they finish, and passes detections on in each camera's own order.
//!
//! Input: a [`FrameSource`] (round-robin over cameras, newest frames kept). Output:
//! [`Detections`] on a bounded channel, per camera in sequence order. A finished frame frees a
//! slot that is refilled *before* its results are sent on, so the device never idles while the
//! tracker stage is slow to accept. A frame that finishes early waits in its camera's reorder
//! buffer only for the same camera's earlier frames; other cameras are not held back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use tracing::debug;

use crate::infer::InferError;
use crate::infer::backend::{Backend, Finished};
use crate::ingest::queue::{FrameSource, Next};
use crate::ingest::wall_ms;
use crate::messages::{CameraIndex, Detections};
use crate::stats::{self, Stats};

/// How long the loop waits for a frame or a result before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Per-camera reorder buffers: frames submitted, in order, each with its result once known
/// (`Some(None)`: dropped by the backend, a gap that holds nothing back).
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
    /// (dropped frames are skipped). A result for a frame never submitted is passed straight
    /// through.
    pub fn finished(&mut self, finished: Finished) -> Vec<Detections> {
        let (camera, seq, dets) = match finished {
            Finished::Detected(d) => (d.camera, d.seq, Some(d)),
            Finished::Dropped { camera, seq } => (camera, seq, None),
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
/// flight; detections go to `out` in per-camera order.
pub fn run<B: Backend>(
    backend: B,
    source: FrameSource,
    out: Sender<Detections>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Result<(), InferError> {
    let result = serve(backend, source, out, &stats, &stop);
    if result.is_err() {
        stats::inc(&stats.infer_errors);
    }
    result
}

fn serve<B: Backend>(
    mut backend: B,
    mut source: FrameSource,
    out: Sender<Detections>,
    stats: &Stats,
    stop: &AtomicBool,
) -> Result<(), InferError> {
    let capacity = backend.capacity().max(1);
    let mut in_flight = 0usize;
    let mut reorder = Reorder::default();
    let mut closed = false;
    loop {
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
        if in_flight == 0 {
            if stopping {
                // Frames still queued are seconds old by the time anyone would see them.
                return Ok(());
            }
            match source.next(IDLE_POLL) {
                Next::Frame(frame) => {
                    reorder.submitted(frame.camera, frame.seq);
                    backend.submit(frame)?;
                    in_flight += 1;
                }
                Next::Idle => {}
                Next::Closed => closed = true,
            }
            continue;
        }
        // Everything that has finished, the first one waited for.
        let mut done = Vec::new();
        let mut wait = IDLE_POLL;
        while let Some(d) = backend.poll(wait)? {
            done.push(d);
            in_flight -= 1;
            wait = Duration::ZERO;
            if in_flight == 0 {
                break;
            }
        }
        if done.is_empty() {
            continue;
        }
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
                return Ok(());
            }
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
mod tests {
    use super::*;
    use crate::infer::InputSpec;
    use crate::infer::resize::{ColorOrder, Layout, ResizeMode};
    use crate::ingest::queue::frame_queues;
    use crate::messages::Frame;
    use gstreamer as gst;

    /// What the fake backend saw, in order, with how many results had been sent on by then.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        Submit {
            camera: CameraIndex,
            seq: u64,
            sent: usize,
        },
        Finish {
            camera: CameraIndex,
            seq: u64,
            sent: usize,
        },
    }

    /// Finishes the most recently submitted frame first (the opposite of submission order), so
    /// every camera's frames come back out of order; one frame per waiting poll.
    struct LastInFirstOut {
        capacity: usize,
        running: Vec<Frame>,
        log: Vec<Event>,
        /// The dispatcher's output, to see how much was sent on at each step.
        out: crossbeam_channel::Receiver<Detections>,
    }

    impl Backend for &mut LastInFirstOut {
        fn capacity(&self) -> usize {
            self.capacity
        }
        fn submit(&mut self, frame: Frame) -> Result<(), InferError> {
            assert!(
                self.running.len() < self.capacity,
                "submitted past capacity"
            );
            let (camera, seq, sent) = (frame.camera, frame.seq, self.out.len());
            self.log.push(Event::Submit { camera, seq, sent });
            self.running.push(frame);
            Ok(())
        }
        fn poll(&mut self, timeout: Duration) -> Result<Option<Finished>, InferError> {
            if timeout.is_zero() {
                return Ok(None);
            }
            let Some(f) = self.running.pop() else {
                return Ok(None);
            };
            let (camera, seq, sent) = (f.camera, f.seq, self.out.len());
            self.log.push(Event::Finish { camera, seq, sent });
            Ok(Some(Finished::Detected(Detections {
                camera,
                seq,
                captured_ms: f.captured_ms,
                source_size: (8, 8),
                persons: 1,
                boxes: Vec::new(),
            })))
        }
    }

    fn frame(camera: usize, seq: u64) -> Frame {
        gst::init().unwrap();
        let spec = InputSpec {
            width: 8,
            height: 8,
            resize: ResizeMode::Stretch,
            color: ColorOrder::Rgb,
            layout: Layout::Nhwc,
        };
        Frame {
            camera,
            seq,
            captured_ms: wall_ms(),
            mapping: spec.mapping((8, 8), (1, 1)),
            pixels: gst::Buffer::new(),
        }
    }

    #[test]
    fn results_finishing_out_of_order_reach_the_tracker_in_camera_order() {
        let cameras = 3;
        let per_camera = 6;
        // Room to spare: a full queue would hand over only its newest frame.
        let (senders, source) = frame_queues(cameras, per_camera + 1);
        for seq in 1..=per_camera as u64 {
            for (cam, tx) in senders.iter().enumerate() {
                tx.push(frame(cam, seq));
            }
        }
        drop(senders);
        let stats = Arc::new(Stats::new(cameras));
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut backend = LastInFirstOut {
            capacity: 4,
            running: Vec::new(),
            log: Vec::new(),
            out: rx.clone(),
        };
        run(&mut backend, source, tx, Arc::clone(&stats), Arc::default()).unwrap();

        let got: Vec<Detections> = rx.try_iter().collect();
        assert_eq!(
            got.len(),
            cameras * per_camera,
            "every frame comes out once"
        );
        for cam in 0..cameras {
            let seqs: Vec<u64> = got
                .iter()
                .filter(|d| d.camera == cam)
                .map(|d| d.seq)
                .collect();
            assert_eq!(
                seqs,
                (1..=per_camera as u64).collect::<Vec<_>>(),
                "camera {cam}"
            );
            assert_eq!(
                stats.camera(cam).inferred.load(Ordering::Relaxed),
                per_camera as u64
            );
        }
        let log = &backend.log;
        // The fake really did finish some camera's frames out of submission order.
        let finished: Vec<(usize, u64)> = log
            .iter()
            .filter_map(|e| match *e {
                Event::Finish { camera, seq, .. } => Some((camera, seq)),
                Event::Submit { .. } => None,
            })
            .collect();
        assert!(
            finished
                .iter()
                .enumerate()
                .any(|(i, a)| finished[i + 1..].iter().any(|b| b.0 == a.0 && b.1 < a.1))
        );
        // A freed slot is refilled before results are sent on: while frames remain, every
        // finish is followed by a submit, with nothing sent in between.
        let last_submit = log
            .iter()
            .rposition(|e| matches!(e, Event::Submit { .. }))
            .unwrap();
        for (i, e) in log[..last_submit].iter().enumerate() {
            if let Event::Finish { sent, .. } = *e {
                match log[i + 1] {
                    Event::Submit { sent: s, .. } => {
                        assert_eq!(s, sent, "sent before refill: {log:?}")
                    }
                    other => panic!("finish not followed by a refill ({other:?}): {log:?}"),
                }
            }
        }
    }

    #[test]
    fn reorder_releases_only_the_in_order_prefix_of_a_camera() {
        let mut r = Reorder::new(2);
        for seq in 1..=3 {
            r.submitted(0, seq);
        }
        r.submitted(1, 1);
        let det = |camera, seq| Detections {
            camera,
            seq,
            captured_ms: 0,
            source_size: (1, 1),
            persons: 0,
            boxes: Vec::new(),
        };
        let done = |camera, seq| Finished::Detected(det(camera, seq));
        assert!(r.finished(done(0, 3)).is_empty());
        // Another camera is not held back by camera 0's gap.
        assert_eq!(r.finished(done(1, 1)).len(), 1);
        assert!(r.finished(done(0, 2)).is_empty());
        let seqs: Vec<u64> = r.finished(done(0, 1)).iter().map(|d| d.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(r.pending(), 0);
        // A dropped frame releases the frames behind it and is not passed on itself.
        for seq in 4..=6 {
            r.submitted(0, seq);
        }
        assert!(r.finished(done(0, 5)).is_empty());
        let seqs: Vec<u64> = r
            .finished(Finished::Dropped { camera: 0, seq: 4 })
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(seqs, vec![5]);
        assert_eq!(r.pending(), 1);
    }
}
