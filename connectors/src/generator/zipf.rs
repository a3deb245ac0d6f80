//! Zipf-distributed keys by Vose's alias method: built once in O(n), sampled in O(1).
//!
//! Rank `r` (0-based) has weight `1 / (r + 1)^s`. Each table slot packs the acceptance
//! threshold and the alias into one `u64` so a sample touches one cache line.

/// An alias table over ranks `0..n` with Zipf weights.
#[derive(Debug, Clone)]
pub struct ZipfTable {
    /// `threshold << 32 | alias`: keep the slot when the low 32 random bits are below threshold.
    slots: Vec<u64>,
}

impl ZipfTable {
    /// The most keys a table may hold (12 bytes of build memory per key, 8 kept).
    pub const MAX_KEYS: u64 = 16 << 20;

    /// Builds the table for `n` ranks (1 ≤ n ≤ `MAX_KEYS`) and exponent `s` ≥ 0.
    pub fn new(n: u64, s: f64) -> Self {
        let n = n.clamp(1, Self::MAX_KEYS) as usize;
        let weights: Vec<f64> = (0..n).map(|r| ((r + 1) as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        // Probabilities scaled so the average slot holds exactly 1.
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut threshold = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s_i), Some(&l_i)) = (small.last(), large.last()) {
            small.pop();
            threshold[s_i] = (scaled[s_i] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[s_i] = l_i as u32;
            scaled[l_i] -= 1.0 - scaled[s_i];
            if scaled[l_i] < 1.0 {
                large.pop();
                small.push(l_i);
            }
        }
        // Whatever is left (either list, from rounding) keeps its own slot with certainty.
        let slots = threshold
            .iter()
            .zip(&alias)
            .map(|(&t, &a)| (u64::from(t) << 32) | u64::from(a))
            .collect();
        ZipfTable { slots }
    }

    /// A rank in `0..len()` from 64 random bits: the high half picks a slot, the low half decides
    /// between the slot and its alias.
    #[inline(always)]
    pub fn sample(&self, bits: u64) -> u64 {
        let slot_index = (((bits >> 32) * self.slots.len() as u64) >> 32) as usize;
        let slot = self.slots[slot_index];
        if (bits as u32) < (slot >> 32) as u32 {
            slot_index as u64
        } else {
            slot & 0xffff_ffff
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::rng::Stream;

    fn frequencies(table: &ZipfTable, samples: u64) -> Vec<f64> {
        let stream = Stream::new(3, 0);
        let mut counts = vec![0u64; table.slots.len()];
        for i in 0..samples {
            counts[table.sample(stream.bits(i)) as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / samples as f64).collect()
    }

    #[test]
    fn sampled_frequencies_follow_the_zipf_weights() {
        // s = 1 over 4 ranks: weights 1, 1/2, 1/3, 1/4 sum to 25/12, so p = 12/25, 6/25, 4/25, 3/25.
        let freq = frequencies(&ZipfTable::new(4, 1.0), 400_000);
        for (got, want) in freq.iter().zip([0.48, 0.24, 0.16, 0.12]) {
            assert!((got - want).abs() < 0.005, "{freq:?}");
        }
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let freq = frequencies(&ZipfTable::new(5, 0.0), 500_000);
        assert!(freq.iter().all(|f| (f - 0.2).abs() < 0.005), "{freq:?}");
    }

    #[test]
    fn a_single_rank_always_samples_it() {
        let table = ZipfTable::new(1, 2.0);
        assert_eq!(table.sample(0), 0);
        assert_eq!(table.sample(u64::MAX), 0);
    }
}
