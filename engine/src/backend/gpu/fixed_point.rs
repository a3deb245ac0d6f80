//! Rounds the GPU's exact float sums, 256-bit fixed point, to the nearest f64.
//!
//! `acc_add_float` (shaders/accumulators.wgsl) adds every f64 exactly into two 256-bit
//! integers in units of 2^-112, one for positive and one for negative values, and three flags
//! (NaN, +inf, -inf). The host subtracts the two and rounds the difference once, to nearest
//! with ties to even, as IEEE 754 addition would round the exact sum: the GPU sum of a window
//! is the correctly rounded sum of its values (Python's `math.fsum`), whatever their order.

/// Words per sign part, and where the flags sit.
const FX_WORDS: usize = 8;
const FX_FLAGS: usize = 16;
/// The fixed point's unit is 2^-112.
const FX_SCALE: i32 = -112;
const F_NAN: u32 = 1;
const F_PINF: u32 = 2;
const F_NINF: u32 = 4;

/// The f64 nearest the exact fixed-point sum held in `w` (ties to even).
pub(crate) fn fixed_point_sum(w: &[u32]) -> f64 {
    let flags = w[FX_FLAGS];
    if flags & F_NAN != 0 || flags & (F_PINF | F_NINF) == F_PINF | F_NINF {
        return f64::NAN;
    }
    if flags & F_PINF != 0 {
        return f64::INFINITY;
    }
    if flags & F_NINF != 0 {
        return f64::NEG_INFINITY;
    }
    let limbs = |from: usize| -> [u64; 4] {
        std::array::from_fn(|i| u64::from(w[from + 2 * i]) | (u64::from(w[from + 2 * i + 1]) << 32))
    };
    let (pos, neg) = (limbs(0), limbs(FX_WORDS));
    let (magnitude, negative) = if less_than(&pos, &neg) {
        (subtract(&neg, &pos), true)
    } else {
        (subtract(&pos, &neg), false)
    };
    let value = round_to_f64(&magnitude, FX_SCALE);
    if negative { -value } else { value }
}

/// `magnitude · 2^scale` rounded to the nearest f64, ties to even. The result is normal for
/// every 256-bit magnitude at scale -112 (from 2^-112 up to about 2^144), so only the
/// significand rounds.
fn round_to_f64(magnitude: &[u64; 4], scale: i32) -> f64 {
    let Some(top) = (0..4).rev().find(|&i| magnitude[i] != 0) else {
        return 0.0;
    };
    // Position of the highest set bit, counting from bit 0 of limb 0.
    let high = 64 * top as i32 + 63 - magnitude[top].leading_zeros() as i32;
    let bit = |i: i32| i >= 0 && (magnitude[(i / 64) as usize] >> (i % 64)) & 1 == 1;
    // The 53 significant bits [high - 52, high], then the first dropped bit and whether any
    // bit below it is set.
    let low = high - 52;
    let mut significand: u64 = (low.max(0)..=high)
        .rev()
        .fold(0, |m, i| (m << 1) | u64::from(bit(i)));
    let mut exponent = low.max(0) + scale;
    if low > 0 {
        let half = bit(low - 1);
        let sticky = (0..low - 1).any(bit);
        if half && (sticky || significand & 1 == 1) {
            significand += 1;
            if significand == 1 << 53 {
                significand >>= 1;
                exponent += 1;
            }
        }
    }
    // Exact: the significand has at most 53 bits and the power of two is a normal f64.
    significand as f64 * 2f64.powi(exponent)
}

fn less_than(a: &[u64; 4], b: &[u64; 4]) -> bool {
    a.iter().rev().cmp(b.iter().rev()) == std::cmp::Ordering::Less
}

fn subtract(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        out[i] = d;
        borrow = b1 || b2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::test_support::fsum;

    /// The host mirror of `acc_add_float`: each value's exact multiple of 2^-112 added into
    /// the positive or negative 256-bit part, with integer arithmetic on its bits.
    fn encode(values: &[f64]) -> Vec<u32> {
        let mut parts = [[0u64; 4]; 2];
        for &v in values {
            let bits = v.to_bits();
            let exp = ((bits >> 52) & 0x7FF) as i32;
            assert!(exp != 0 && exp != 0x7FF, "finite normal values only: {v}");
            let m = (bits & ((1 << 52) - 1)) | (1 << 52);
            // v = m · 2^(exp - 1075) = m · 2^shift units of 2^-112.
            let shift = exp - 1075 + 112;
            assert!(
                (0..=150).contains(&shift),
                "{v} is not a multiple of 2^-112"
            );
            let (limb, at) = ((shift / 64) as usize, shift % 64);
            let wide = u128::from(m) << at;
            let part = &mut parts[usize::from(v < 0.0)];
            let mut carry = 0u128;
            for (i, add) in [wide as u64, (wide >> 64) as u64].into_iter().enumerate() {
                if limb + i < 4 {
                    let sum = u128::from(part[limb + i]) + u128::from(add) + carry;
                    part[limb + i] = sum as u64;
                    carry = sum >> 64;
                }
            }
            for slot in part.iter_mut().skip(limb + 2) {
                let sum = u128::from(*slot) + carry;
                *slot = sum as u64;
                carry = sum >> 64;
            }
        }
        let mut words = vec![0u32; 20];
        for (k, part) in parts.iter().enumerate() {
            for (i, limb) in part.iter().enumerate() {
                words[k * FX_WORDS + 2 * i] = *limb as u32;
                words[k * FX_WORDS + 2 * i + 1] = (*limb >> 32) as u32;
            }
        }
        words
    }

    #[test]
    fn sums_cancel_exactly_and_keep_signs() {
        assert_eq!(fixed_point_sum(&encode(&[1.5, -0.25, 1e20, -1e20])), 1.25);
        assert_eq!(fixed_point_sum(&encode(&[-3.0, 1.0])), -2.0);
        assert_eq!(fixed_point_sum(&encode(&[])), 0.0);
        let mut w = encode(&[1.0]);
        w[FX_FLAGS] = F_PINF | F_NINF;
        assert!(fixed_point_sum(&w).is_nan());
    }

    /// Issue 12: two rows 14.943 and 56.71 summed to 71.65299999999999 on the GPU, one ulp
    /// below the correctly rounded 71.653.
    #[test]
    fn the_issue_s_pair_rounds_to_the_nearest_f64() {
        assert_eq!(fixed_point_sum(&encode(&[14.943, 56.71])), 71.653);
        assert_eq!(fsum(&[14.943, 56.71]), 71.653);
    }

    #[test]
    fn ties_round_to_even_and_carries_reach_the_exponent() {
        let ulp = 2f64.powi(-52);
        // 1 + ulp/2 lies half-way between 1 and 1 + ulp: even is 1.
        assert_eq!(fixed_point_sum(&encode(&[1.0, ulp / 2.0])), 1.0);
        // 1 + 3·ulp/2 lies half-way between 1 + ulp and 1 + 2·ulp: even is 1 + 2·ulp.
        assert_eq!(
            fixed_point_sum(&encode(&[1.0, ulp, ulp / 2.0])),
            1.0 + 2.0 * ulp
        );
        // Just above half-way rounds up.
        assert_eq!(
            fixed_point_sum(&encode(&[1.0, ulp / 2.0, ulp / 8.0])),
            1.0 + ulp
        );
        // The largest significand rounding up becomes the next power of two.
        let below_two = 2.0 - ulp;
        assert_eq!(fixed_point_sum(&encode(&[below_two, ulp / 2.0])), 2.0);
    }

    /// Random values of every magnitude the fixed point holds exactly, with cancellation:
    /// the rounded fixed-point sum equals the exact partials' sum bit for bit.
    #[test]
    fn random_sums_equal_the_correctly_rounded_sum() {
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state
        };
        for case in 0..2_000 {
            let n = 1 + (next() % 40) as usize;
            let spread: i32 = 1 + (case % 4) * 12;
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    let r = next();
                    // Decimal-looking prices, and raw values over a range of exponents.
                    let v = if r % 3 == 0 {
                        (r >> 40) as f64 / 1000.0
                    } else {
                        let exp = (r >> 52) as i32 % (2 * spread + 1) - spread;
                        (1.0 + (r & 0xFFFF_FFFF) as f64 / 4_294_967_296.0) * 2f64.powi(exp)
                    };
                    if r & 1 == 1 { -v } else { v }
                })
                .filter(|v| *v != 0.0)
                .collect();
            let want = fsum(&values);
            let got = fixed_point_sum(&encode(&values));
            assert_eq!(got.to_bits(), want.to_bits(), "case {case}: {values:?}");
        }
    }
}
