//! The fixed-point rules: one place, so the host exporter, the plaintext engine and the secret-shared
//! evaluation all round the same way.
//!
//! * Activations are `i32` holding `value * 2^a` where `a` is the model's activation frac bits.
//! * A conv or linear layer with weight frac bits `s` accumulates `acc = bias + Σ w·x` exactly in
//!   `i64` (parsing proves it cannot overflow) and outputs [`requantize`]`(acc, s)`: add `2^(s-1)`,
//!   shift right arithmetically by `s` (round half up), saturate to `i32`.
//! * Average pools over `n` elements output [`requantize`]`(sum · M, 16)` with
//!   `M = `[`pool_multiplier`]`(n) = (2^16 + n/2) / n`.
//! * Inputs are quantized with [`quantize`]: round half away from zero, saturate.

/// Shift applied after multiplying a pooling sum by [`pool_multiplier`].
pub const POOL_SHIFT: u8 = 16;

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

/// The integer multiplier that stands for `1/n` in average pooling: `(2^16 + n/2) / n`.
#[inline]
pub const fn pool_multiplier(n: u32) -> i64 {
    ((1i64 << POOL_SHIFT) + (n as i64) / 2) / n as i64
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
    fn pool_multiplier_is_rounded_reciprocal() {
        assert_eq!(pool_multiplier(4), 16384);
        assert_eq!(pool_multiplier(49), 1337);
        assert_eq!(pool_multiplier(1), 65536);
    }

    #[test]
    fn argmax_picks_first_maximum() {
        assert_eq!(argmax(&[1, 3, 3, 2]), 1);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[-5]), 0);
    }
}
