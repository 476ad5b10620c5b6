//! The buffer between cameras and the detector: one bounded channel per camera.
//!
//! Policy when full: drop the *oldest* frame (the detector should see the freshest picture),
//! counted by the caller. The consumer side takes frames round-robin across cameras so one busy
//! camera cannot starve the others.

use std::time::Duration;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, TrySendError, bounded};

use crate::messages::Frame;

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued after dropping the oldest queued frame.
    DroppedOldest,
    /// The detector is gone; stop producing.
    Closed,
}

/// Producer side for one camera. Never blocks.
#[derive(Debug, Clone)]
pub struct FrameSender {
    tx: Sender<Frame>,
    // A receiver clone lets the producer evict the oldest frame itself.
    evict: Receiver<Frame>,
}

impl FrameSender {
    /// Queues `frame`, evicting the oldest queued frame if the queue is full.
    pub fn push(&self, frame: Frame) -> Pushed {
        let mut frame = frame;
        let mut dropped = false;
        loop {
            match self.tx.try_send(frame) {
                Ok(()) if dropped => return Pushed::DroppedOldest,
                Ok(()) => return Pushed::Queued,
                Err(TrySendError::Disconnected(_)) => return Pushed::Closed,
                Err(TrySendError::Full(f)) => {
                    frame = f;
                    dropped |= self.evict.try_recv().is_ok();
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

/// Consumer side: round-robin over all cameras.
#[derive(Debug)]
pub struct FrameSource {
    rx: Vec<Receiver<Frame>>,
    open: Vec<bool>,
    next_camera: usize,
}

/// One queue per camera, `capacity` frames each.
pub fn frame_queues(cameras: usize, capacity: usize) -> (Vec<FrameSender>, FrameSource) {
    let (senders, rx): (Vec<_>, Vec<_>) = (0..cameras)
        .map(|_| {
            let (tx, rx) = bounded(capacity);
            (
                FrameSender {
                    tx,
                    evict: rx.clone(),
                },
                rx,
            )
        })
        .unzip();
    let open = vec![true; rx.len()];
    (
        senders,
        FrameSource {
            rx,
            open,
            next_camera: 0,
        },
    )
}

impl FrameSource {
    /// The next frame in round-robin order, without waiting.
    pub fn try_next(&mut self) -> Option<Frame> {
        let n = self.rx.len();
        for k in 0..n {
            let i = (self.next_camera + k) % n;
            if !self.open[i] {
                continue;
            }
            match self.rx[i].try_recv() {
                Ok(f) => {
                    self.next_camera = (i + 1) % n;
                    return Some(f);
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
        if !self.open.iter().any(|o| *o) {
            return Next::Closed;
        }
        let mut sel = Select::new();
        for (rx, _) in self.rx.iter().zip(&self.open).filter(|(_, o)| **o) {
            sel.recv(rx);
        }
        if sel.ready_timeout(timeout).is_err() {
            return Next::Idle;
        }
        match self.try_next() {
            Some(f) => Next::Frame(f),
            None if !self.open.iter().any(|o| *o) => Next::Closed,
            None => Next::Idle,
        }
    }
}
