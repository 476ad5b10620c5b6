//! How far a camera's decoding lags its stream: the stream time waiting in its packet queue (the
//! element named `packets` in the template), read before each compressed frame is given to the
//! decoder.
//!
//! Input: the queue's `current-level-time` against its `max-size-time` (the span past which it
//! drops its oldest packets), less the stream's reordering span: the level is the newest
//! packet's presentation time minus the one leaving, and with B-frames a reference frame sent
//! ahead of the frames it precedes in presentation order is that far ahead though nothing
//! waits. Output: a [`Backlog`] for the frame gate, which sheds whole GOPs
//! (or the rest of one) while decoding is behind, so the decoder catches up on frames it never
//! starts instead of on packets dropped from the full queue (each of which damages its frame and
//! every frame after it up to the next key frame).

use gstreamer as gst;
use gstreamer::prelude::*;

use super::gate::Backlog;

/// Share of the queue's span waiting from which decoding is behind (the next GOP is shed).
const BEHIND: f64 = 0.25;
/// Share from which it is far behind (the current GOP is cut too).
const FAR: f64 = 0.5;

/// The backlog for `level_ns` of stream waiting in a queue that spans `max_ns`.
pub fn of(level_ns: u64, max_ns: u64) -> Backlog {
    let share = level_ns as f64 / max_ns.max(1) as f64;
    if share >= FAR {
        Backlog::Far
    } else if share >= BEHIND {
        Backlog::Behind
    } else {
        Backlog::Keeping
    }
}

/// A camera's packet queue, read for its backlog.
#[derive(Debug)]
pub struct PacketQueue {
    queue: gst::Element,
    max_ns: u64,
}

impl PacketQueue {
    /// The queue named `packets`, if it bounds its span in time (a queue bounded otherwise, or
    /// not a queue, says nothing about the lag).
    pub fn new(queue: &gst::Element) -> Option<Self> {
        let max_ns = queue
            .find_property("max-size-time")
            .and(queue.find_property("current-level-time"))
            .map(|_| queue.property::<u64>("max-size-time"))?;
        (max_ns > 0).then(|| Self {
            queue: queue.clone(),
            max_ns,
        })
    }

    /// How far decoding lags now, for a stream whose frames come up to `reorder_ns` behind
    /// the newest one (B-frames; 0 without).
    pub fn backlog(&self, reorder_ns: u64) -> Backlog {
        let level: u64 = self.queue.property("current-level-time");
        of(level.saturating_sub(reorder_ns), self.max_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_grows_with_the_share_of_the_queue_waiting() {
        let s = 1_000_000_000;
        assert_eq!(of(0, s), Backlog::Keeping);
        assert_eq!(of(s / 4 - 1, s), Backlog::Keeping);
        assert_eq!(of(s / 4, s), Backlog::Behind);
        assert_eq!(of(s / 2 - 1, s), Backlog::Behind);
        assert_eq!(of(s / 2, s), Backlog::Far);
        assert_eq!(of(2 * s, s), Backlog::Far);
    }
}
