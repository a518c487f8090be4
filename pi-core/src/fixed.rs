//! The fixed-point rules: one place, so the host exporter, the plaintext engine and the secret-shared
//! evaluation all round the same way.
//!
//! * Activations are `i32` holding `value * 2^a` where `a` is the model's activation frac bits.
//! * A conv or linear layer with weight frac bits `s` accumulates `acc = bias + Σ w·x` exactly in
//!   `i64` (parsing proves it cannot overflow) and outputs [`requantize`]`(acc, s)`: add `2^(s-1)`,
//!   shift right arithmetically by `s` (round half up), saturate to `i32`.
//! * Average pools over `n` elements output [`pool_mean`]`(sum, n)`: the mean `sum / n` rounded
//!   half up, exactly (`floor((sum + floor(n/2)) / n)`, an integer division; a shift when `n` is
//!   a power of two). Exact for every `n` the format allows, so a pool over a 112x112 plane is
//!   as accurate as one over a 2x2 window.
//! * Inputs are quantized with [`quantize`]: round half away from zero, saturate.

/// Largest weight frac bits a layer may declare (an `i16` weight keeps at least its sign bit).
pub const MAX_WEIGHT_FRAC_BITS: u8 = 30;

/// Largest activation frac bits a model may declare.
pub const MAX_ACTIVATION_FRAC_BITS: u8 = 24;

/// Rounds `acc / 2^shift` half up and saturates to `i32`.
///
/// `acc` must satisfy `|acc| < 2^62` so the rounding add cannot overflow; parsing guarantees it
/// for every accumulator the engine produces.
#[inline(always)]
pub fn requantize(acc: i64, shift: u8) -> i32 {
    let rounded = if shift == 0 {
        acc
    } else {
        (acc + (1i64 << (shift - 1))) >> shift
    };
    saturate(rounded)
}

/// Clamps an `i64` to the `i32` range.
#[inline(always)]
pub fn saturate(v: i64) -> i32 {
    if v > i32::MAX as i64 {
        i32::MAX
    } else if v < i32::MIN as i64 {
        i32::MIN
    } else {
        v as i32
    }
}

/// The mean of `n` activations whose exact sum is `sum`, rounded half up and saturated to `i32`:
/// `floor((sum + floor(n/2)) / n)`, which is `round_half_up(sum / n)` exactly for every `n`.
///
/// A power-of-two `n` divides by [`requantize`]'s shift (same result, cheaper on a device);
/// any other `n` by one integer division. `n = 0` is treated as `n = 1`. `sum` must satisfy
/// `|sum| < 2^62`, which holds for every pool the engine runs (`n <= 2^24` values below `2^31`).
#[inline]
pub fn pool_mean(sum: i64, n: u32) -> i32 {
    let n = n.max(1);
    if n.is_power_of_two() {
        requantize(sum, n.trailing_zeros() as u8)
    } else {
        saturate((sum + (n / 2) as i64).div_euclid(n as i64))
    }
}

/// Quantizes a real value to fixed point with `frac_bits` fractional bits: round half away from
/// zero, saturate to `i32`; NaN maps to 0.
pub fn quantize(x: f32, frac_bits: u8) -> i32 {
    let scaled = libm::round(x as f64 * libm::ldexp(1.0, frac_bits as i32));
    if scaled.is_nan() {
        0
    } else if scaled >= i32::MAX as f64 {
        i32::MAX
    } else if scaled <= i32::MIN as f64 {
        i32::MIN
    } else {
        scaled as i32
    }
}

/// Converts a fixed-point value back to a real number.
pub fn dequantize(q: i32, frac_bits: u8) -> f32 {
    (q as f64 * libm::ldexp(1.0, -(frac_bits as i32))) as f32
}

/// Index of the largest value; the first one on ties; 0 for an empty slice.
pub fn argmax(values: &[i32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantize_rounds_half_up_and_saturates() {
        assert_eq!(requantize(5, 1), 3); // 2.5 -> 3
        assert_eq!(requantize(-5, 1), -2); // -2.5 -> -2 (half up)
        assert_eq!(requantize(-6, 2), -1); // -1.5 -> -1
        assert_eq!(requantize(7, 0), 7);
        assert_eq!(requantize(1 << 40, 1), i32::MAX);
        assert_eq!(requantize(-(1 << 40), 1), i32::MIN);
    }

    #[test]
    fn quantize_rounds_half_away_from_zero() {
        assert_eq!(quantize(0.5 / 256.0, 8), 1);
        assert_eq!(quantize(-0.5 / 256.0, 8), -1);
        assert_eq!(quantize(1.0, 8), 256);
        assert_eq!(quantize(f32::NAN, 8), 0);
        assert_eq!(quantize(1e30, 8), i32::MAX);
        assert_eq!(quantize(-1e30, 8), i32::MIN);
        assert_eq!(dequantize(384, 8), 1.5);
    }

    #[test]
    fn pool_mean_rounds_half_up() {
        assert_eq!(pool_mean(10, 4), 3); // 2.5 -> 3
        assert_eq!(pool_mean(-10, 4), -2); // -2.5 -> -2
        assert_eq!(pool_mean(-11, 4), -3); // -2.75 -> -3
        assert_eq!(pool_mean(7, 3), 2); // 2.33 -> 2
        assert_eq!(pool_mean(8, 3), 3); // 2.67 -> 3
        assert_eq!(pool_mean(-8, 3), -3); // -2.67 -> -3
        assert_eq!(pool_mean(-7, 3), -2); // -2.33 -> -2
        assert_eq!(pool_mean(49 * 1000 + 24, 49), 1000);
        assert_eq!(pool_mean(49 * 1000 + 25, 49), 1001);
        assert_eq!(pool_mean(5, 1), 5);
        assert_eq!(pool_mean(5, 0), 5);
        // A 112x112 plane of 2^20: the old multiplier round(2^16/n) gave 1_003_520.
        assert_eq!(pool_mean(12544 << 20, 12544), 1 << 20);
    }

    /// `q` is the mean `sum / n` rounded half up iff `sum/n - 1/2 < q <= sum/n + 1/2`, i.e.
    /// `-n < 2nq - 2sum <= n`: exact rational arithmetic, no division.
    fn is_rounded_mean(q: i32, sum: i64, n: u32) -> bool {
        let d = 2 * n as i128 * q as i128 - 2 * sum as i128;
        -(n as i128) < d && d <= n as i128
    }

    /// Every pool size the format allows (`1 ..= MAX_TENSOR_ELEMENTS`: a global pool's plane,
    /// or a window of up to 255x255), at both ends of the sum's range (`n` values of `i32::MIN`
    /// or `i32::MAX`), on both sides of a rounding tie, and at a pseudo-random sum: the pooled
    /// value is the exactly rounded mean. The old multiplier `round(2^16 / n)` fails this from
    /// `n = 3` on (4.3% off at 112x112, 2x off past 2^16).
    #[test]
    fn pool_mean_is_exact_for_every_pool_size() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for n in 1..=crate::MAX_TENSOR_ELEMENTS as u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (lo, hi) = (n as i64 * i32::MIN as i64, n as i64 * i32::MAX as i64);
            // A mean in the i32 range; the tie of that mean is `mean * n + n/2` for even n.
            let mean = (state >> 32) as u32 as i32 as i64;
            let tie = mean * n as i64 + (n / 2) as i64;
            let random = lo + (state % (hi - lo + 1) as u64) as i64;
            for sum in [lo, hi, tie - 1, tie, tie + 1, random] {
                let sum = sum.clamp(lo, hi);
                let q = pool_mean(sum, n);
                assert!(is_rounded_mean(q, sum, n), "n {n} sum {sum}: got {q}");
            }
        }
    }

    #[test]
    fn argmax_picks_first_maximum() {
        assert_eq!(argmax(&[1, 3, 3, 2]), 1);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[-5]), 0);
    }
}
