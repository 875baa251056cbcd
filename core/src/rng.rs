//! The session's random source (backoff jitter).
// Reachable from outside only with the `sim` feature (see `util`).
#![cfg_attr(not(feature = "sim"), allow(unreachable_pub, dead_code))]

/// SplitMix64: a tiny deterministic PRNG for backoff jitter, seeded from the session config
/// (the core reads no OS random source). Public only with the `sim` feature, for the
/// deterministic simulator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}
