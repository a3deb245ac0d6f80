//! Which state partition (thread) owns a key, and the hasher used for key tables.

use std::hash::{BuildHasherDefault, Hasher};

/// Spreads a key id over 64 bits. A multiply by the golden ratio (Fibonacci hashing) is
/// enough here: ids are integers, not attacker-chosen strings, and it costs one instruction.
#[inline]
pub fn mix(key: u64) -> u64 {
    (key ^ (key >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The partition in `0..partitions` that owns `key` (from the high bits, which mix best).
#[inline]
pub fn partition_of(key: u64, partitions: usize) -> usize {
    (((mix(key) >> 32) * partitions as u64) >> 32) as usize
}

/// A `Hasher` for `u64` keys that applies [`mix`]; used by the per-window key tables.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    #[inline]
    fn write_i64(&mut self, key: i64) {
        self.write_u64(key as u64);
    }

    #[inline]
    fn write_u64(&mut self, key: u64) {
        // hashbrown takes the top 7 bits for its control bytes and the low bits for the bucket:
        // fold the high half down so both ends are well mixed.
        let h = mix(key);
        self.0 = h ^ (h >> 32);
    }
}

/// Builds [`KeyHasher`]s.
pub type BuildKeyHasher = BuildHasherDefault<KeyHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_balanced_for_sequential_keys() {
        let mut counts = [0usize; 3];
        for key in 0..30_000u64 {
            counts[partition_of(key, 3)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert!((0..1000).all(|k| partition_of(k, 1) == 0));
    }
}
