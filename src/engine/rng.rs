//! A small deterministic random number generator (xoshiro256**, seeded by SplitMix64), so a run
//! with the same seed is the same on every machine. It implements `rand`'s generator trait, so
//! `rand_distr`'s distributions (ziggurat exponential and normal, gamma, beta) sample from it.

use std::convert::Infallible;

#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self { s: [next(), next(), next(), next()] }
    }

    /// An independent stream for one purpose (arrivals, service demands, routing, ...): the
    /// same seed and purpose always give the same stream, and streams of different purposes do
    /// not share draws, so changing how one is used leaves the others as they were.
    pub fn stream(seed: u64, purpose: u64) -> Self {
        Self::new(seed ^ purpose.wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`; Lemire's multiply, bias below 2^-64·n).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// Exponential with mean 1 (ziggurat: no logarithm on the fast path).
    #[inline]
    pub fn exp1(&mut self) -> f64 {
        use rand_distr::Distribution;
        rand_distr::Exp1.sample(self)
    }
}

impl rand::TryRng for Rng {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(8).next_u64(), xs[0]);
        assert_ne!(Rng::stream(7, 1).next_u64(), Rng::stream(7, 2).next_u64());
        assert_eq!(Rng::stream(7, 1).next_u64(), Rng::stream(7, 1).next_u64());
    }

    #[test]
    fn uniform_mean_is_about_half() {
        let mut r = Rng::new(1);
        let m: f64 = (0..10_000).map(|_| r.uniform()).sum::<f64>() / 10_000.0;
        assert!((m - 0.5).abs() < 0.02, "{m}");
    }

    #[test]
    fn exp1_and_below_have_their_moments() {
        let mut r = Rng::new(3);
        let n = 200_000;
        let m: f64 = (0..n).map(|_| r.exp1()).sum::<f64>() / f64::from(n);
        assert!((m - 1.0).abs() < 0.01, "{m}");
        let mut counts = [0u32; 5];
        for _ in 0..n {
            counts[r.below(5)] += 1;
        }
        for c in counts {
            assert!((f64::from(c) / f64::from(n) - 0.2).abs() < 0.005, "{counts:?}");
        }
    }
}
