//! The camera's key-frame rate, and when its next key frame is due: how long a decoder with
//! nothing more of its GOP to decode would sit idle (`super::super::park` parks it when that is
//! long).

use super::FrameGate;

impl FrameGate {
    /// Key frames per second over the remembered ones (None before the second key frame: one
    /// GOP is decoded whole to measure it).
    pub fn key_rate(&self) -> Option<f64> {
        let (first, last) = (*self.keys.front()?, *self.keys.back()?);
        (self.keys.len() >= 2 && last > first)
            .then(|| (self.keys.len() - 1) as f64 * 1e9 / (last - first) as f64)
    }

    /// Time (ns) from the frame at `t_ns` to the next key frame, expected one mean GOP after the
    /// last (None before the key-frame rate is measured, or when it is already due).
    pub fn key_due_in(&self, t_ns: u64) -> Option<u64> {
        let gop_ns = (1e9 / self.key_rate()?) as u64;
        let due = self.keys.back()? + gop_ns;
        due.checked_sub(t_ns).filter(|&d| d > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decode, FrameGate};

    const MS: u64 = 1_000_000;

    #[test]
    fn the_next_key_frame_is_due_a_mean_gop_after_the_last() {
        let mut g = FrameGate::new(Decode::Auto, 1);
        // 10 fps, a key frame every 10 frames: the rate is known from the second key frame.
        for i in 0..21u64 {
            g.admit(i % 10 == 0, i * 100 * MS);
            if i < 10 {
                assert_eq!(g.key_due_in(i * 100 * MS), None, "frame {i}");
            }
        }
        assert_eq!(g.key_due_in(2_100 * MS), Some(900 * MS));
        assert_eq!(g.key_due_in(2_600 * MS), Some(400 * MS));
        assert_eq!(g.key_due_in(3_000 * MS), None, "due now");
        assert_eq!(g.key_due_in(3_200 * MS), None, "late");
    }
}
