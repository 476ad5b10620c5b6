//! The crate's one random source: SplitMix64, deterministic for a seed, so generated scenes are
//! identical on every machine and every build and jitter schedules are testable. Jitter that must
//! differ between boxes (reconnects, model-server probes) is seeded with [`box_seed`].

/// Where the machine id is read from (Linux).
const MACHINE_ID_FILE: &str = "/etc/machine-id";

/// A seed that differs between boxes and between runs on one box: host name, machine id,
/// process id and the time, mixed. Boxes sharing a model server draw different jitter from it.
pub fn box_seed() -> u64 {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    box_seed_from(
        &crate::host::name().unwrap_or_default(),
        read(MACHINE_ID_FILE).trim(),
        std::process::id(),
        nanos,
    )
}

/// [`box_seed`] from its parts (pure, for tests).
pub fn box_seed_from(host: &str, machine_id: &str, pid: u32, nanos: u128) -> u64 {
    let mut h = mix(0, pid as u64);
    for part in [host, machine_id] {
        for chunk in part.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = mix(h, u64::from_le_bytes(word));
        }
        h = mix(h, part.len() as u64);
    }
    mix(mix(h, nanos as u64), (nanos >> 64) as u64)
}

/// Folds `value` into the hash `h` (one SplitMix64 step over their combination).
pub fn mix(h: u64, value: u64) -> u64 {
    Rng::new(h.rotate_left(29) ^ value).next_u64()
}

/// Deterministic pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.f64() * n as f64) as usize % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Normal with mean 0 and standard deviation `sd` (Box–Muller).
    pub fn normal(&mut self, sd: f64) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson-distributed count with mean `lambda` (small lambda).
    pub fn poisson(&mut self, lambda: f64) -> usize {
        let l = (-lambda).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.f64();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_seeds_differ_by_host_machine_pid_and_time() {
        let base = box_seed_from("till-1", "0123abcd", 100, 1_700_000_000_000_000_000);
        let others = [
            box_seed_from("till-2", "0123abcd", 100, 1_700_000_000_000_000_000),
            box_seed_from("till-1", "0123abce", 100, 1_700_000_000_000_000_000),
            box_seed_from("till-1", "0123abcd", 101, 1_700_000_000_000_000_000),
            box_seed_from("till-1", "0123abcd", 100, 1_700_000_000_000_000_001),
            // The parts are kept apart: moving a character from one to the other changes it.
            box_seed_from("till-10", "123abcd", 100, 1_700_000_000_000_000_000),
        ];
        for o in others {
            assert_ne!(base, o);
        }
        assert_eq!(
            base,
            box_seed_from("till-1", "0123abcd", 100, 1_700_000_000_000_000_000)
        );
    }
}
