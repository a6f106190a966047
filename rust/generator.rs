//! The pseudo-random generator shared bit for bit with `pyfw/generator.py`: SplitMix64,
//! and the draws derived from it (`random`, `uniform`, `normal` by Box-Muller, `randbelow`,
//! `randperm`). docs/NUMERICS.md, "The random generator" and "Normal draws", gives every
//! formula and its test vectors.
//!
//! The generator holds the seed last given and the state `s`, nothing else: `state()` and
//! `set_state(seed, state)` save and restore both (the binding's `get_state()` dict).

use crate::error::{Error, Result};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX1: u64 = 0xBF58_476D_1CE4_E5B9;
const MIX2: u64 = 0x94D0_49BB_1331_11EB;
const TWO_M53: f64 = 1.0 / 9_007_199_254_740_992.0; // 2**-53, exact
/// 2*pi rounded to f64, the same double as Python's `math.tau` (`0x1.921fb54442d18p+2`).
const TAU: f64 = std::f64::consts::TAU;

/// The default seed of `Generator()` and of the default generator.
pub const DEFAULT_SEED: u64 = 0;

/// A SplitMix64 generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generator {
    seed: u64,
    state: u64,
}

impl Default for Generator {
    fn default() -> Self {
        Generator::new(DEFAULT_SEED)
    }
}

impl Generator {
    /// A generator seeded with `seed` (already reduced modulo 2**64).
    pub fn new(seed: u64) -> Generator {
        Generator { seed, state: seed }
    }

    /// Reset the state to `seed`.
    pub fn manual_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.state = seed;
    }

    /// The seed last given.
    pub fn initial_seed(&self) -> u64 {
        self.seed
    }

    /// The SplitMix64 state `s` (the next draw adds the golden gamma to it first).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Restore a generator saved by `initial_seed()` and `state()`: the draws continue
    /// where the saved generator's would have.
    pub fn set_state(&mut self, seed: u64, state: u64) {
        self.seed = seed;
        self.state = state;
    }

    /// The next raw 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(MIX1);
        z = (z ^ (z >> 27)).wrapping_mul(MIX2);
        z ^ (z >> 31)
    }

    /// A float uniform in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64) * TWO_M53
    }

    /// `low + (high - low) * random()`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.random()
    }

    /// `mean + std * z` with `z` standard normal, by Box-Muller from two `random()` draws
    /// (docs/NUMERICS.md, "Normal draws").
    ///
    /// The caller checks that `mean` and `std` are finite and `std >= 0` (the binding does,
    /// with `pyfw`'s messages); other values propagate as IEEE arithmetic does.
    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let u1 = self.random();
        let u2 = self.random();
        let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (TAU * u2).cos();
        mean + std * z
    }

    /// An unbiased integer in [0, n) for `1 <= n < 2**64`, by rejection.
    pub fn randbelow(&mut self, n: u64) -> Result<u64> {
        if n == 0 {
            return Err(Error::Value(
                "Generator.randbelow: n must be positive, got 0".into(),
            ));
        }
        Ok(self.below(n))
    }

    /// `randbelow` for `1 <= n < 2**64`: accept `r < 2**64 - rem`, i.e. `r <= u64::MAX - rem`.
    fn below(&mut self, n: u64) -> u64 {
        let rem = (u64::MAX % n).wrapping_add(1) % n; // 2**64 mod n
        let max_ok = u64::MAX - rem;
        loop {
            let r = self.next_u64();
            if r <= max_ok {
                return r % n;
            }
        }
    }

    /// A random permutation of `0..n` (Fisher-Yates, from the end).
    pub fn randperm(&mut self, n: usize) -> Result<Vec<usize>> {
        if n == 0 {
            return Err(Error::Value("randperm: n must be positive, got 0".into()));
        }
        let mut perm: Vec<usize> = Vec::new();
        perm.try_reserve_exact(n).map_err(|_| {
            Error::Memory(format!("randperm: n = {n} is too large to hold in memory"))
        })?;
        perm.extend(0..n);
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            perm.swap(i, j);
        }
        Ok(perm)
    }
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    /// SplitMix64 reference outputs for seed 0 and seed 1234567 (Vigna's splitmix64.c).
    #[test]
    fn splitmix64_test_vectors() {
        let mut g = Generator::new(0);
        let expect0 = [
            0xE220_A839_7B1D_CDAFu64,
            0x6E78_9E6A_A1B9_65F4,
            0x06C4_5D18_8009_454F,
            0xF88B_B8A8_724C_81EC,
            0x1B39_896A_51A8_749B,
        ];
        for &e in &expect0 {
            assert_eq!(g.next_u64(), e);
        }
        let mut g = Generator::new(1_234_567);
        let expect1 = [
            6_457_827_717_110_365_317u64,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for &e in &expect1 {
            assert_eq!(g.next_u64(), e);
        }
    }

    #[test]
    fn seeding_and_draws() {
        let mut g = Generator::new(7);
        let a: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        g.manual_seed(7);
        let b: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        assert_eq!(a, b);
        assert_eq!(g.initial_seed(), 7);
        let mut g = Generator::new(0);
        let r = g.random();
        assert_eq!(r, ((0xE220_A839_7B1D_CDAFu64 >> 11) as f64) * TWO_M53);
        for _ in 0..1000 {
            let r = g.random();
            assert!((0.0..1.0).contains(&r));
            let u = g.uniform(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&u));
        }
    }

    /// The first five `normal(0.0, 1.0)` of `Generator(0)`, as in docs/NUMERICS.md
    /// (`-0x1.e247d108691cfp+0`, `0x1.d2241bf902964p-3`, ...), compared bit for bit.
    #[test]
    fn normal_test_vectors() {
        assert_eq!(TAU.to_bits(), 0x4019_21FB_5444_2D18); // math.tau
        let mut g = Generator::new(0);
        let expect = [
            0xBFFE_247D_1086_91CFu64,
            0x3FCD_2241_BF90_2964,
            0xBFCC_5813_93A1_5295,
            0x3FB5_5AEA_EF33_4755,
            0x3FE6_F257_4FF9_78AA,
        ];
        for &e in &expect {
            assert_eq!(g.normal(0.0, 1.0).to_bits(), e);
        }
        // Generator(42), normal(1.5, 0.25): 0x1.b876c41dca02bp+0, 0x1.63254690186ffp+0, ...
        let mut g = Generator::new(42);
        let expect42 = [
            0x3FFB_876C_41DC_A02Bu64,
            0x3FF6_3254_6901_86FF,
            0x3FF8_C0DF_834E_92D2,
        ];
        for &e in &expect42 {
            assert_eq!(g.normal(1.5, 0.25).to_bits(), e);
        }
    }

    /// Each `normal` consumes exactly two `random()` draws and follows the written formula.
    #[test]
    fn normal_is_box_muller_of_two_draws() {
        let mut g = Generator::new(9);
        let mut h = Generator::new(9);
        for _ in 0..1000 {
            let v = g.normal(-0.5, 3.0);
            let u1 = h.random();
            let u2 = h.random();
            let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (TAU * u2).cos();
            assert_eq!(v.to_bits(), (-0.5 + 3.0 * z).to_bits());
        }
        assert_eq!(g.next_u64(), h.next_u64());
        // std = 0 gives the mean exactly.
        assert_eq!(g.normal(1.25, 0.0), 1.25);
    }

    /// Sample moments of 200k standard normals.
    #[test]
    fn normal_moments() {
        let mut g = Generator::new(1);
        let n = 200_000;
        let (mut s1, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let v = g.normal(0.0, 1.0);
            s1 += v;
            s2 += v * v;
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 0.01, "std {}", var.sqrt());
    }

    #[test]
    fn randbelow_bounds_and_errors() {
        let mut g = Generator::new(3);
        for n in 1..50u64 {
            assert!(g.randbelow(n).unwrap() < n);
        }
        let mut h = Generator::new(3);
        let raw = h.next_u64();
        let mut g = Generator::new(3);
        assert_eq!(g.randbelow(u64::MAX).unwrap(), raw % u64::MAX);
        assert!(matches!(g.randbelow(0), Err(Error::Value(_))));
    }

    #[test]
    fn randbelow_rejects_like_the_formula() {
        // n = 3 * 2**62: 2**64 mod n = 2**62, so draws >= 2**64 - 2**62 are rejected.
        let n: u128 = 3 << 62;
        let mut g = Generator::new(11);
        let mut h = Generator::new(11);
        for _ in 0..200 {
            let got = g.randbelow(n as u64).unwrap();
            let limit: u128 = (1u128 << 64) - ((1u128 << 64) % n);
            let mut r = h.next_u64() as u128;
            while r >= limit {
                r = h.next_u64() as u128;
            }
            assert_eq!(got as u128, r % n);
        }
    }

    #[test]
    fn set_state_resumes_the_stream() {
        let mut g = Generator::new(99);
        for _ in 0..5 {
            g.next_u64();
        }
        let (seed, state) = (g.initial_seed(), g.state());
        let ahead: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        let mut h = Generator::new(1);
        h.set_state(seed, state);
        assert_eq!(h.initial_seed(), 99);
        let again: Vec<u64> = (0..4).map(|_| h.next_u64()).collect();
        assert_eq!(ahead, again);
        assert_eq!(Generator::new(7).state(), 7);
    }

    #[test]
    fn randperm_is_a_permutation() {
        let mut g = Generator::new(5);
        let mut p = g.randperm(100).unwrap();
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
        assert_eq!(g.randperm(1).unwrap(), vec![0]);
        assert!(matches!(g.randperm(0), Err(Error::Value(_))));
    }
}
