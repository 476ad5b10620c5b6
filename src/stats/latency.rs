//! Analysed rate and frame age: a fixed-memory age histogram per camera, its quantiles, and
//! the per-camera and overall figures of a run (summary, benchmark).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Stats, inc};

/// Width of one [`AgeHistogram`] bucket, milliseconds.
pub const AGE_BUCKET_MS: i64 = 10;
/// Ages at or past this fall in the last bucket.
pub const AGE_MAX_MS: i64 = 10_000;
const AGE_BUCKETS: usize = (AGE_MAX_MS / AGE_BUCKET_MS) as usize + 1;

/// Frame ages in 10 ms buckets up to 10 s (fixed memory, lock-free, any run length).
#[derive(Debug)]
pub struct AgeHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for AgeHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..AGE_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl AgeHistogram {
    /// Records one age in milliseconds (negative ages, from clock steps, count as 0).
    pub fn record(&self, age_ms: i64) {
        let i = (age_ms.clamp(0, AGE_MAX_MS) / AGE_BUCKET_MS) as usize;
        inc(&self.buckets[i]);
    }

    /// Bucket counts, for merging.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// The `q`-quantile (0..=1) of bucket `counts`, in milliseconds (the bucket's upper edge), or
/// None when empty.
pub fn quantile_ms(counts: &[u64], q: f64) -> Option<i64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(((i as i64) + 1) * AGE_BUCKET_MS);
        }
    }
    Some(AGE_MAX_MS)
}

/// One camera's analysed rate and frame age over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraFigures {
    /// Camera id.
    pub id: String,
    /// Frames the detector finished.
    pub inferred: u64,
    /// Analysed frames per second.
    pub fps: f64,
    /// Median frame age at detection, ms.
    pub age_p50_ms: Option<i64>,
    /// 95th percentile frame age at detection, ms.
    pub age_p95_ms: Option<i64>,
}

/// Analysed rate and frame age, per camera and over all cameras.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Latency {
    /// Per configured camera, in slot order (as [`Stats::cameras`]).
    pub cameras: Vec<CameraFigures>,
    /// Median frame age over all cameras, ms.
    pub age_p50_ms: Option<i64>,
    /// 95th percentile frame age over all cameras, ms.
    pub age_p95_ms: Option<i64>,
}

impl Latency {
    /// The per-camera analysed fps, sorted ascending.
    pub fn sorted_fps(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.cameras.iter().map(|c| c.fps).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// (min, median, max) of the per-camera analysed fps.
    pub fn fps_spread(&self) -> Option<(f64, f64, f64)> {
        let v = self.sorted_fps();
        let (first, last) = (v.first()?, v.last()?);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some((*first, median, *last))
    }
}

impl Stats {
    /// Per-camera and overall analysed fps and frame age over `elapsed_s` seconds.
    pub fn latency(&self, elapsed_s: f64) -> Latency {
        let mut all = vec![0u64; AGE_BUCKETS];
        let cameras = self
            .cameras()
            .iter()
            .map(|c| {
                let counts = c.age.counts();
                for (a, b) in all.iter_mut().zip(&counts) {
                    *a += b;
                }
                let inferred = c.inferred.load(Ordering::Relaxed);
                CameraFigures {
                    id: c.id.clone(),
                    inferred,
                    fps: inferred as f64 / elapsed_s.max(1e-9),
                    age_p50_ms: quantile_ms(&counts, 0.5),
                    age_p95_ms: quantile_ms(&counts, 0.95),
                }
            })
            .collect();
        Latency {
            cameras,
            age_p50_ms: quantile_ms(&all, 0.5),
            age_p95_ms: quantile_ms(&all, 0.95),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_quantiles_come_from_the_recorded_ages() {
        let h = AgeHistogram::default();
        assert_eq!(quantile_ms(&h.counts(), 0.5), None);
        for age in 1..=100 {
            h.record(age * 10 - 5); // 5, 15, ..., 995 ms: one per bucket
        }
        h.record(-3);
        h.record(60_000);
        let c = h.counts();
        assert_eq!(c.iter().sum::<u64>(), 102);
        assert_eq!(quantile_ms(&c, 0.5), Some(500));
        assert_eq!(quantile_ms(&c, 0.95), Some(960));
        assert_eq!(quantile_ms(&c, 1.0), Some(AGE_MAX_MS + AGE_BUCKET_MS));
    }
}
