use super::fake::{detected, frame};
use super::*;
use crate::ingest::queue::frame_queues;
use crate::messages::Frame;

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

/// Which frames (camera, seq) the fake backend fails, and with what error.
type FailWith = fn(CameraIndex, u64) -> Option<InferError>;

/// Finishes the most recently submitted frame first (the opposite of submission order), so
/// every camera's frames come back out of order; one frame per waiting poll.
struct LastInFirstOut {
    capacity: usize,
    running: Vec<Frame>,
    log: Vec<Event>,
    /// The dispatcher's output, to see how much was sent on at each step.
    out: crossbeam_channel::Receiver<Detections>,
    fail: FailWith,
}

impl LastInFirstOut {
    fn new(capacity: usize, out: crossbeam_channel::Receiver<Detections>, fail: FailWith) -> Self {
        Self {
            capacity,
            running: Vec::new(),
            log: Vec::new(),
            out,
            fail,
        }
    }

    /// The frames finished, in the order they finished.
    fn finished(&self) -> Vec<(CameraIndex, u64)> {
        self.log
            .iter()
            .filter_map(|e| match *e {
                Event::Finish { camera, seq, .. } => Some((camera, seq)),
                Event::Submit { .. } => None,
            })
            .collect()
    }
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
        if let Some(error) = (self.fail)(camera, seq) {
            return Ok(Some(Finished::Failed { camera, seq, error }));
        }
        Ok(Some(detected(&f, 1)))
    }
}

/// `per_camera` frames (seq 1, 2, ...) of each of `cameras` cameras, queued and closed.
fn queued(cameras: usize, per_camera: u64) -> FrameSource {
    // Room to spare: a full queue would hand over only its newest frame.
    let (senders, source) = frame_queues(cameras, per_camera as usize + 1);
    gstreamer::init().unwrap();
    for seq in 1..=per_camera {
        for (cam, tx) in senders.iter().enumerate() {
            tx.push(frame(cam, seq));
        }
    }
    source
}

/// The sequence numbers `camera`'s detections came out in.
fn seqs(got: &[Detections], camera: CameraIndex) -> Vec<u64> {
    got.iter()
        .filter(|d| d.camera == camera)
        .map(|d| d.seq)
        .collect()
}

fn bad_frame() -> InferError {
    InferError::ModelMismatch {
        model: "test".into(),
        message: "frame does not fit".into(),
    }
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[test]
fn results_finishing_out_of_order_reach_the_tracker_in_camera_order() {
    let cameras = 3;
    let per_camera = 6;
    let source = queued(cameras, per_camera as u64);
    let stats = Arc::new(Stats::new(cameras));
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut backend = LastInFirstOut::new(4, rx.clone(), |_, _| None);
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
    let finished = backend.finished();
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

#[test]
fn failed_frames_are_counted_and_the_others_arrive_in_camera_order() {
    let (cameras, per_camera) = (3, 6);
    let stats = Stats::new(cameras);
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut backend = LastInFirstOut::new(4, rx.clone(), |camera, seq| {
        matches!((camera, seq), (0, 2) | (0, 5) | (1, 3)).then(bad_frame)
    });
    // Two failures in a row would end the loop; here a detected frame comes between any two.
    let limit = FailLimit {
        frames: 2,
        lasting: Duration::ZERO,
    };
    let stop = AtomicBool::new(false);
    serve(
        &mut backend,
        queued(cameras, per_camera),
        tx,
        &stats,
        &stop,
        limit,
    )
    .unwrap();

    assert_eq!(load(&stats.infer_errors), 3);
    let got: Vec<Detections> = rx.try_iter().collect();
    assert_eq!(seqs(&got, 0), vec![1, 3, 4, 6]);
    assert_eq!(seqs(&got, 1), vec![1, 2, 4, 5, 6]);
    assert_eq!(seqs(&got, 2), vec![1, 2, 3, 4, 5, 6]);
    let inferred: Vec<u64> = stats
        .all_cameras()
        .iter()
        .map(|c| load(&c.inferred))
        .collect();
    assert_eq!(inferred, vec![4, 5, 6]);
    // Failed frames are not "dropped before inference".
    assert!(stats.all_cameras().iter().all(|c| load(&c.dropped) == 0));
    assert_eq!(backend.finished().len(), cameras * per_camera as usize);
}

#[test]
fn a_device_failing_every_frame_ends_the_loop_at_the_limit() {
    let stats = Stats::new(3);
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut backend = LastInFirstOut::new(4, rx.clone(), |_, _| Some(bad_frame()));
    let limit = FailLimit {
        frames: 5,
        lasting: Duration::ZERO,
    };
    let stop = AtomicBool::new(false);
    let err = serve(&mut backend, queued(3, 6), tx, &stats, &stop, limit).unwrap_err();

    match err {
        InferError::DeviceFailed { failures, last, .. } => {
            assert_eq!(failures, 5);
            assert!(matches!(*last, InferError::ModelMismatch { .. }), "{last}");
        }
        other => panic!("expected DeviceFailed, got {other:?}"),
    }
    assert_eq!(load(&stats.infer_errors), 5);
    assert_eq!(
        backend.finished().len(),
        5,
        "the loop stopped at the fifth failure"
    );
    assert_eq!(rx.try_iter().count(), 0);
}

#[test]
fn a_stuck_request_ends_the_loop_at_once() {
    let stats = Stats::new(3);
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut backend = LastInFirstOut::new(4, rx.clone(), |camera, seq| {
        ((camera, seq) == (1, 2)).then_some(InferError::Stuck)
    });
    let stop = AtomicBool::new(false);
    let limit = FailLimit::DEVICE;
    let err = serve(&mut backend, queued(3, 6), tx, &stats, &stop, limit).unwrap_err();

    assert!(matches!(err, InferError::Stuck), "{err:?}");
    assert_eq!(load(&stats.infer_errors), 1);
    // Nothing was submitted or finished after the stuck frame came back.
    assert_eq!(
        backend.log.last(),
        Some(&Event::Finish {
            camera: 1,
            seq: 2,
            sent: 0
        })
    );
}
