//! The buffer between cameras and the detector: one bounded channel per camera.
//!
//! Depth: `queue_frames` frames, and up to [`BURST_FRAMES`] more while frames come in a burst
//! (each pushed less than [`BURST_MS`] after the previous one): an encoder with B-frames may send
//! a reference frame and the B-frames before it back to back, and the decoder then gives them
//! out within milliseconds, faster than the detector picks up one frame; held briefly, they are
//! all analysed. Outside a burst a push that finds the queue at its depth drops the *oldest*
//! frames down to it (the detector should see the freshest picture; counted by the caller). The
//! consumer side takes the next frame from the camera served longest ago that has one
//! (round-robin that keeps the place of a camera whose frame was not there yet), so one busy
//! camera cannot starve the others and cameras whose frames come at the same moments take turns
//! at being last. Frames are taken in order from each camera's queue, except that a frame that
//! waited [`FRESH_MS`] or more with a newer one behind it is dropped (counted): the detector is
//! behind on that camera, so under overload the newest frame wins.
//!
//! Frames left in a queue when its camera stops ([`FrameSender::discard_queued`]) or when the
//! detector stops (the source is dropped) are counted as dropped too.
//!
//! Before a decoded frame is scaled and converted, the camera asks [`FrameSender::wants_frame`]:
//! while the queue is at its depth with frames younger than [`FRESH_MS`] and no burst is on, a
//! new frame would only push out a picture that is still fresh, so it is skipped before any
//! conversion work is spent on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, TrySendError, bounded, unbounded};

use crate::messages::{CameraIndex, Frame};
use crate::stats::{self, Stats};
use crate::time::wall_ms;

/// A full queue whose newest frame is younger than this needs no new frame yet (ms). Under
/// overload a camera then converts at most about 1000 / FRESH_MS frames a second instead of
/// every decoded frame, and the frame the detector takes is at most about two of these old.
pub const FRESH_MS: i64 = 250;
/// Frames pushed less than this after the previous one are a burst (ms).
pub const BURST_MS: i64 = 50;
/// Frames a queue holds beyond its depth during a burst.
pub const BURST_FRAMES: usize = 4;

/// A queued frame and when it was pushed (Unix ms).
#[derive(Debug)]
struct Queued {
    pushed_ms: i64,
    frame: Frame,
}

/// Producer side for one camera. Never blocks.
#[derive(Debug, Clone)]
pub struct FrameSender {
    tx: Sender<Queued>,
    // A receiver clone lets the producer evict the oldest frame itself.
    evict: Receiver<Queued>,
    /// Depth outside bursts.
    capacity: usize,
    /// Wall time of the last push, Unix ms.
    last_push_ms: Arc<AtomicI64>,
}

impl FrameSender {
    /// Whether a frame decoded now should be converted and pushed: the queue is below its
    /// depth, or a burst is on and it has room, or its newest frame is [`FRESH_MS`] old.
    pub fn wants_frame(&self) -> bool {
        self.wants_frame_at(wall_ms())
    }

    /// [`FrameSender::wants_frame`] at wall time `now_ms`.
    pub fn wants_frame_at(&self, now_ms: i64) -> bool {
        let since = now_ms - self.last_push_ms.load(Ordering::Relaxed);
        let len = self.tx.len();
        len < self.capacity
            || (since < BURST_MS && len < self.capacity + BURST_FRAMES)
            || since >= FRESH_MS
    }

    /// Takes every frame still queued (the camera stopped: nobody will analyse them) and says
    /// how many there were.
    pub fn discard_queued(&self) -> u64 {
        std::iter::from_fn(|| self.evict.try_recv().ok()).count() as u64
    }

    /// Queues `frame`, first dropping the oldest frames down to the queue's depth (outside a
    /// burst) or its room (in one); returns how many were dropped. Never blocks. (The sender's
    /// own receiver keeps the channel open, so there is no "closed" outcome: if the detector
    /// stops, frames are simply dropped until the service shuts the camera down.)
    pub fn push(&self, frame: Frame) -> u64 {
        self.push_at(frame, wall_ms())
    }

    /// [`FrameSender::push`] at wall time `now_ms`.
    pub fn push_at(&self, frame: Frame, now_ms: i64) -> u64 {
        let burst = now_ms - self.last_push_ms.swap(now_ms, Ordering::Relaxed) < BURST_MS;
        let depth = if burst {
            self.capacity + BURST_FRAMES
        } else {
            self.capacity
        };
        let mut dropped = 0;
        while self.tx.len() >= depth && self.evict.try_recv().is_ok() {
            dropped += 1;
        }
        let mut item = Queued {
            pushed_ms: now_ms,
            frame,
        };
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return dropped,
                Err(TrySendError::Full(f) | TrySendError::Disconnected(f)) => {
                    item = f;
                    dropped += u64::from(self.evict.try_recv().is_ok());
                }
            }
        }
    }
}

/// What [`FrameSource::next`] found.
#[derive(Debug)]
pub enum Next {
    /// A frame.
    Frame(Frame),
    /// Nothing arrived within the timeout.
    Idle,
    /// Every camera's sender is gone: no frame will ever come.
    Closed,
}

/// Consumer side: the camera served longest ago first.
#[derive(Debug)]
pub struct FrameSource {
    /// Indexed by camera slot; a slot not (yet) added holds a receiver that never yields.
    rx: Vec<Receiver<Queued>>,
    open: Vec<bool>,
    /// Every camera slot, the one served longest ago first (a slot added later after the
    /// others).
    turns: Vec<CameraIndex>,
    /// Where frames passed over for a newer one are counted (`dropped` per camera).
    stats: Option<Arc<Stats>>,
    /// Queues of cameras started after the source was made (see [`QueueMaker`]).
    added: Receiver<(CameraIndex, Receiver<Queued>)>,
    /// False once every [`QueueMaker`] is gone: no camera can be added any more.
    can_grow: bool,
}

/// Makes the queue of a camera started while the detector runs (a reload adding a camera).
#[derive(Debug, Clone)]
pub struct QueueMaker {
    capacity: usize,
    tx: Sender<(CameraIndex, Receiver<Queued>)>,
}

impl QueueMaker {
    /// A new queue for camera slot `camera`; the detector reads it from its next poll on.
    pub fn add(&self, camera: CameraIndex) -> FrameSender {
        let (sender, rx) = one_queue(self.capacity);
        // The source gone means the detector stopped: frames pushed are then simply dropped.
        let _ = self.tx.send((camera, rx));
        sender
    }
}

fn one_queue(capacity: usize) -> (FrameSender, Receiver<Queued>) {
    let (tx, rx) = bounded(capacity + BURST_FRAMES);
    let sender = FrameSender {
        tx,
        evict: rx.clone(),
        capacity,
        last_push_ms: Arc::default(),
    };
    (sender, rx)
}

/// Queues of depth `capacity` (plus [`BURST_FRAMES`] in a burst): a source with no camera yet and the maker of each camera's
/// queue. The source reports [`Next::Closed`] once every maker and sender is gone.
pub fn growing_queues(capacity: usize) -> (QueueMaker, FrameSource) {
    let (tx, added) = unbounded();
    let source = FrameSource {
        rx: Vec::new(),
        open: Vec::new(),
        turns: Vec::new(),
        stats: None,
        added,
        can_grow: true,
    };
    (QueueMaker { capacity, tx }, source)
}

/// One queue per camera (slots 0..cameras), depth `capacity` each, and no way to add more.
pub fn frame_queues(cameras: usize, capacity: usize) -> (Vec<FrameSender>, FrameSource) {
    let (maker, source) = growing_queues(capacity);
    let senders = (0..cameras).map(|i| maker.add(i)).collect();
    (senders, source)
}

impl Drop for FrameSource {
    /// Frames still queued when the detector stops are never analysed: counted as dropped.
    fn drop(&mut self) {
        self.take_added();
        let Some(stats) = &self.stats else {
            return;
        };
        for (i, rx) in self.rx.iter().enumerate() {
            stats::add(&stats.camera(i).dropped, rx.try_iter().count() as u64);
        }
    }
}

impl FrameSource {
    /// Takes in the queues of cameras added since the last call.
    fn take_added(&mut self) {
        loop {
            match self.added.try_recv() {
                Ok((camera, rx)) => {
                    if camera >= self.rx.len() {
                        self.turns.extend(self.rx.len()..camera + 1);
                        self.rx.resize_with(camera + 1, crossbeam_channel::never);
                        self.open.resize(camera + 1, false);
                    }
                    self.rx[camera] = rx;
                    self.open[camera] = true;
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.can_grow = false;
                    return;
                }
            }
        }
    }

    /// No frame can come any more: every queue is closed and no camera can be added.
    fn closed(&self) -> bool {
        !self.can_grow && !self.open.iter().any(|o| *o)
    }

    /// Counts frames passed over for a newer one in `stats` (each camera's `dropped`).
    pub fn count_drops(&mut self, stats: Arc<Stats>) {
        self.stats = Some(stats);
    }

    /// The next frame, without waiting: from the camera served longest ago that has one, the
    /// oldest of its queue, passing over (counted) frames that waited [`FRESH_MS`] or more with
    /// a newer one behind.
    pub fn try_next(&mut self) -> Option<Frame> {
        self.try_next_at(wall_ms())
    }

    /// [`FrameSource::try_next`] at wall time `now_ms`.
    pub fn try_next_at(&mut self, now_ms: i64) -> Option<Frame> {
        self.take_added();
        for turn in 0..self.turns.len() {
            let i = self.turns[turn];
            if !self.open[i] {
                continue;
            }
            match self.rx[i].try_recv() {
                Ok(mut q) => {
                    // Served now: its turn comes after every other camera's.
                    self.turns.remove(turn);
                    self.turns.push(i);
                    while now_ms - q.pushed_ms >= FRESH_MS
                        && let Ok(newer) = self.rx[i].try_recv()
                    {
                        if let Some(s) = &self.stats {
                            stats::inc(&s.camera(i).dropped);
                        }
                        q = newer;
                    }
                    if let Some(s) = &self.stats {
                        s.live.offer_frame(&q.frame, now_ms);
                    }
                    return Some(q.frame);
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.open[i] = false,
            }
        }
        None
    }

    /// The next frame, waiting up to `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Next {
        if let Some(f) = self.try_next() {
            return Next::Frame(f);
        }
        if self.closed() {
            return Next::Closed;
        }
        let mut sel = Select::new();
        for (rx, _) in self.rx.iter().zip(&self.open).filter(|(_, o)| **o) {
            sel.recv(rx);
        }
        if self.can_grow {
            sel.recv(&self.added);
        }
        if sel.ready_timeout(timeout).is_err() {
            return Next::Idle;
        }
        match self.try_next() {
            Some(f) => Next::Frame(f),
            None if self.closed() => Next::Closed,
            None => Next::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstreamer as gst;

    fn frame(camera: usize, seq: u64) -> Frame {
        gst::init().unwrap();
        Frame {
            camera,
            seq,
            captured_ms: seq as i64,
            mapping: crate::resize::InputSpec {
                width: 8,
                height: 8,
                resize: crate::resize::ResizeMode::Stretch,
                color: crate::resize::ColorOrder::Rgb,
                layout: crate::resize::Layout::Nhwc,
            }
            .mapping((8, 8), (1, 1)),
            pixels: gst::Buffer::new(),
        }
    }

    /// Wall time of the tests' pushes.
    const T: i64 = 1_795_648_030_000;

    #[test]
    fn outside_a_burst_a_full_queue_drops_its_oldest_frame() {
        let (senders, mut source) = frame_queues(1, 2);
        let stats = Arc::new(Stats::new(1));
        source.count_drops(Arc::clone(&stats));
        // Frames 100 ms apart (no burst): the queue keeps its depth of 2.
        assert_eq!(senders[0].push_at(frame(0, 1), T), 0);
        assert_eq!(senders[0].push_at(frame(0, 2), T + 100), 0);
        assert_eq!(senders[0].push_at(frame(0, 3), T + 200), 1, "1 dropped");
        let seqs: Vec<u64> = std::iter::from_fn(|| source.try_next_at(T + 210))
            .map(|f| f.seq)
            .collect();
        assert_eq!(seqs, vec![2, 3], "read in order while fresh");
        assert_eq!(stats.camera(0).dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_burst_is_held_whole_and_read_in_order() {
        // Depth 1: a reference frame and three B-frames decoded within 6 ms.
        let (senders, mut source) = frame_queues(1, 1);
        let tx = &senders[0];
        assert_eq!(tx.push_at(frame(0, 1), T), 0);
        for (i, seq) in (2..=4).enumerate() {
            let at = T + 2 * (i as i64 + 1);
            assert!(tx.wants_frame_at(at), "burst frame {seq}");
            assert_eq!(tx.push_at(frame(0, seq), at), 0);
        }
        let seqs: Vec<u64> = std::iter::from_fn(|| source.try_next_at(T + 30))
            .map(|f| f.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        // A burst longer than the allowance drops its oldest.
        for seq in 0..=BURST_FRAMES as u64 + 1 {
            tx.push_at(frame(0, 10 + seq), T + 1_000 + seq as i64);
        }
        assert_eq!(tx.tx.len(), 1 + BURST_FRAMES);
    }

    #[test]
    fn a_detector_behind_on_a_camera_takes_its_newest_frame() {
        let (senders, mut source) = frame_queues(1, 1);
        let stats = Arc::new(Stats::new(1));
        source.count_drops(Arc::clone(&stats));
        for seq in 1..=3 {
            senders[0].push_at(frame(0, seq), T + seq as i64);
        }
        // 300 ms later the first two have waited too long behind a newer one.
        assert_eq!(source.try_next_at(T + 302).map(|f| f.seq), Some(3));
        assert_eq!(stats.camera(0).dropped.load(Ordering::Relaxed), 2);
        // A lone frame is taken however old.
        senders[0].push_at(frame(0, 4), T + 400);
        assert_eq!(source.try_next_at(T + 2_000).map(|f| f.seq), Some(4));
    }

    #[test]
    fn a_full_queue_of_fresh_frames_wants_no_new_frame() {
        let (senders, mut source) = frame_queues(1, 2);
        let tx = &senders[0];
        assert!(tx.wants_frame_at(T), "empty queue");
        tx.push_at(frame(0, 1), T);
        assert!(tx.wants_frame_at(T + 100), "room left");
        tx.push_at(frame(0, 2), T + 100);
        assert!(
            tx.wants_frame_at(T + 100 + BURST_MS - 1),
            "a burst may go on"
        );
        assert!(!tx.wants_frame_at(T + 100 + BURST_MS), "full and fresh");
        assert!(!tx.wants_frame_at(T + 100 + FRESH_MS - 1), "full and fresh");
        assert!(tx.wants_frame_at(T + 100 + FRESH_MS), "full but stale");
        source.try_next_at(T + 150);
        assert!(tx.wants_frame_at(T + 160), "the detector took one");
    }

    #[test]
    fn frames_are_taken_round_robin_across_cameras() {
        let (senders, mut source) = frame_queues(3, 4);
        for seq in 1..=3 {
            senders[0].push(frame(0, seq));
        }
        senders[2].push(frame(2, 1));
        let order: Vec<(usize, u64)> = std::iter::from_fn(|| source.try_next())
            .map(|f| (f.camera, f.seq))
            .collect();
        assert_eq!(order, vec![(0, 1), (2, 1), (0, 2), (0, 3)]);
    }

    #[test]
    fn a_camera_passed_over_before_its_frame_came_is_served_first_once_it_has_one() {
        let (senders, mut source) = frame_queues(3, 1);
        let take = |source: &mut FrameSource| source.try_next_at(T + 10).map(|f| f.camera);
        senders[1].push_at(frame(1, 1), T);
        assert_eq!(take(&mut source), Some(1), "0 has no frame yet");
        senders[2].push_at(frame(2, 1), T + 1);
        senders[0].push_at(frame(0, 1), T + 2);
        // Round-robin would go on after camera 1 (to 2); camera 0 has waited longest.
        assert_eq!(take(&mut source), Some(0));
        assert_eq!(take(&mut source), Some(2));
    }

    #[test]
    fn cameras_whose_frames_come_together_take_turns_at_being_last() {
        // Depth 1, each camera's frames 100 ms apart. Even rounds: cameras 0 and 1 come, the
        // detector takes one frame, camera 2 comes. Odd rounds: 2 comes, the detector takes one,
        // 1 comes, it takes two, 0 comes (a frame left over is taken later or replaced).
        // Round-robin gave camera 1 twice as many frames as the others (24 / 12 / 12).
        let (senders, mut source) = frame_queues(3, 1);
        let mut served = [0u32; 3];
        for round in 0..24 {
            let at = T + round * 100;
            let script: &[Option<usize>] = if round % 2 == 0 {
                &[Some(0), Some(1), None, Some(2)]
            } else {
                &[Some(2), None, Some(1), None, None, Some(0)]
            };
            for (k, step) in script.iter().enumerate() {
                match step {
                    Some(cam) => {
                        senders[*cam].push_at(frame(*cam, round as u64), at + k as i64);
                    }
                    None => {
                        if let Some(f) = source.try_next_at(at + k as i64) {
                            served[f.camera] += 1;
                        }
                    }
                }
            }
        }
        let (lo, hi) = (served.iter().min(), served.iter().max());
        assert!(
            hi.zip(lo).is_some_and(|(h, l)| h - l <= 1),
            "served {served:?}"
        );
    }

    #[test]
    fn source_reports_closed_when_every_camera_is_gone() {
        let (senders, mut source) = frame_queues(2, 2);
        senders[1].push(frame(1, 1));
        drop(senders);
        assert!(matches!(
            source.next(Duration::from_millis(10)),
            Next::Frame(_)
        ));
        assert!(matches!(
            source.next(Duration::from_millis(10)),
            Next::Closed
        ));
    }

    #[test]
    fn a_camera_added_later_is_read_and_the_source_closes_when_all_are_gone() {
        let (maker, mut source) = growing_queues(2);
        assert!(matches!(source.next(Duration::from_millis(10)), Next::Idle));
        let first = maker.add(0);
        first.push(frame(0, 1));
        assert_eq!(source.try_next().map(|f| (f.camera, f.seq)), Some((0, 1)));
        // A slot past the end (earlier slots were never added here).
        let later = maker.add(3);
        later.push(frame(3, 1));
        first.push(frame(0, 2));
        let mut got: Vec<(usize, u64)> = std::iter::from_fn(|| source.try_next())
            .map(|f| (f.camera, f.seq))
            .collect();
        got.sort();
        assert_eq!(got, vec![(0, 2), (3, 1)]);
        drop((first, later));
        assert!(
            matches!(source.next(Duration::from_millis(10)), Next::Idle),
            "the maker can still add cameras"
        );
        drop(maker);
        assert!(matches!(
            source.next(Duration::from_millis(10)),
            Next::Closed
        ));
    }

    #[test]
    fn frames_left_behind_when_camera_or_detector_stops_are_counted_dropped() {
        let stats = Arc::new(Stats::new(2));
        let (senders, mut source) = frame_queues(2, 2);
        source.count_drops(Arc::clone(&stats));
        senders[0].push_at(frame(0, 1), T);
        senders[0].push_at(frame(0, 2), T + 100);
        senders[1].push_at(frame(1, 1), T);
        assert_eq!(senders[1].discard_queued(), 1, "camera 1 stopped");
        let next = source.try_next_at(T + 400).map(|f| f.seq);
        assert_eq!(next, Some(2), "1 waited too long behind 2");
        senders[0].push_at(frame(0, 3), T + 500);
        drop(source);
        let dropped = |i| stats.camera(i).dropped.load(Ordering::Relaxed);
        assert_eq!(
            (dropped(0), dropped(1)),
            (2, 0),
            "seq 1 passed over, seq 3 left"
        );
    }

    #[test]
    fn idle_when_nothing_arrives() {
        let (_senders, mut source) = frame_queues(2, 2);
        assert!(matches!(source.next(Duration::from_millis(10)), Next::Idle));
    }

    #[test]
    fn producer_never_blocks_when_the_detector_is_gone() {
        let (senders, source) = frame_queues(1, 1);
        drop(source);
        assert_eq!(senders[0].push_at(frame(0, 1), T), 0);
        assert_eq!(senders[0].push_at(frame(0, 2), T + 100), 1);
    }
}
