//! Per-camera order for results that complete out of order: requests to several servers finish
//! in any order, but each camera's tracker must see its frames in sequence. A frame whose
//! request failed is released as a gap (dropped, counted by the caller) so it cannot hold back
//! the frames behind it.

use std::collections::{HashMap, VecDeque};

use crate::messages::CameraIndex;

/// Results waiting for the frames submitted before them.
#[derive(Debug)]
pub struct Reorder<T> {
    cameras: Vec<CameraQueue<T>>,
}

#[derive(Debug)]
struct CameraQueue<T> {
    order: VecDeque<u64>,
    done: HashMap<u64, Option<T>>,
}

impl<T> Reorder<T> {
    /// For `cameras` cameras.
    pub fn new(cameras: usize) -> Self {
        Self {
            cameras: (0..cameras)
                .map(|_| CameraQueue {
                    order: VecDeque::new(),
                    done: HashMap::new(),
                })
                .collect(),
        }
    }

    /// Frame `seq` of `camera` was submitted (call in submission order).
    pub fn submitted(&mut self, camera: CameraIndex, seq: u64) {
        self.cameras[camera].order.push_back(seq);
    }

    /// Frame `seq` of `camera` finished: `Some(result)`, or None when it was dropped. Returns
    /// the results now releasable for that camera, in submission order (gaps skipped).
    pub fn finished(&mut self, camera: CameraIndex, seq: u64, result: Option<T>) -> Vec<T> {
        let q = &mut self.cameras[camera];
        q.done.insert(seq, result);
        let mut out = Vec::new();
        while let Some(front) = q.order.front() {
            let Some(r) = q.done.remove(front) else {
                break;
            };
            q.order.pop_front();
            out.extend(r);
        }
        out
    }

    /// Frames submitted and not yet released, over all cameras.
    pub fn pending(&self) -> usize {
        self.cameras.iter().map(|q| q.order.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_completions_are_released_in_order_with_gaps_skipped() {
        let mut r = Reorder::new(2);
        for seq in 1..=4 {
            r.submitted(0, seq);
        }
        r.submitted(1, 7);
        assert!(r.finished(0, 3, Some("c3")).is_empty());
        assert_eq!(
            r.finished(1, 7, Some("d7")),
            ["d7"],
            "other camera unaffected"
        );
        assert!(
            r.finished(0, 2, None).is_empty(),
            "frame 1 still outstanding"
        );
        assert_eq!(r.finished(0, 1, Some("c1")), ["c1", "c3"], "2 was dropped");
        assert_eq!(r.pending(), 1);
        assert_eq!(r.finished(0, 4, Some("c4")), ["c4"]);
        assert_eq!(r.pending(), 0);
    }
}
