//! Proven bounds on every activation of a private inference, for choosing how many bits the
//! split ReLU's sign circuit must cover ([`super::relu`]).
//!
//! Interval propagation from a bound on the input, over the values the *ring* holds (the
//! reconstructed shares, which do not saturate as pi-core's plaintext engine does), in LSBs of
//! the activation scale:
//!
//! * conv / linear with weight frac bits `k`: `ceil((L · B_in + |b|) / 2^k) + 1`, with `L` the
//!   largest row L1 norm of the weights and `|b|` the largest bias (the `+ 1`: local truncation
//!   rounds up by at most one, `ring::truncate`);
//! * average pools: `B_in + 1` (a rounded mean of values within `±B_in`, plus the local
//!   division's rounding up); masked ReLU, flatten: `B_in`; add: `B_a + B_b`.
//!
//! The bound uses the weights, so the server computes it; the client learns only the widths
//! derived from it (the session's ReLU plan).

use crate::layer::Op;
use crate::model::{MAX_LAYERS, Model};

fn row_l1(weights: crate::Weights<'_>, rows: usize, fan_in: usize) -> u128 {
    (0..rows)
        .map(|r| {
            weights
                .slice(r * fan_in, fan_in)
                .iter()
                .map(|w| u128::from(w.unsigned_abs()))
                .sum::<u128>()
        })
        .max()
        .unwrap_or(0)
}

fn linear_bound(b_in: u128, l1: u128, bias: u128, shift: u8) -> u128 {
    let acc = l1.saturating_mul(b_in).saturating_add(bias);
    if shift == 0 {
        acc
    } else {
        acc.div_ceil(1u128 << shift).saturating_add(1)
    }
}

/// `bounds[id]`: the largest `|x|` any element of tensor `id` can take in a private inference
/// whose inputs satisfy `|input| <= input_bound` (tensor 0 is the input, `k + 1` layer `k`'s
/// output). Saturates at `u128::MAX`.
pub fn activation_bounds(model: &Model<'_>, input_bound: u64) -> [u128; MAX_LAYERS + 1] {
    let mut bound = [0u128; MAX_LAYERS + 1];
    bound[0] = u128::from(input_bound);
    for layer in model.layers() {
        let b = bound.get(layer.input).copied().unwrap_or(0);
        let out = match layer.op {
            Op::Conv2d(c) => linear_bound(
                b,
                row_l1(c.weights, c.out_channels, c.fan_in()),
                c.bias.map_or(0, |bias| {
                    bias.iter()
                        .map(|v| u128::from(v.unsigned_abs()))
                        .max()
                        .unwrap_or(0)
                }),
                c.weight_frac_bits,
            ),
            Op::Linear(l) => linear_bound(
                b,
                row_l1(l.weights, l.out_features, l.in_features),
                l.bias.map_or(0, |bias| {
                    bias.iter()
                        .map(|v| u128::from(v.unsigned_abs()))
                        .max()
                        .unwrap_or(0)
                }),
                l.weight_frac_bits,
            ),
            Op::AvgPool2d { .. } | Op::GlobalAvgPool => b.saturating_add(1),
            Op::Add { other } => b.saturating_add(bound.get(other).copied().unwrap_or(0)),
            Op::MaskedRelu(_) | Op::Flatten => b,
        };
        if let Some(slot) = bound.get_mut(layer.output()) {
            *slot = out;
        }
    }
    bound
}

/// Bits of a two's-complement range that holds every value of magnitude at most `bound`:
/// the smallest `h` with `bound < 2^(h−1)`, capped at 64.
pub fn range_bits(bound: u128) -> u8 {
    let needed = 128 - bound.leading_zeros() + 1;
    needed.clamp(2, 64) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::ring::{self, Party};

    #[test]
    fn range_bits_hold_the_bound() {
        assert_eq!(range_bits(0), 2);
        assert_eq!(range_bits(1), 2);
        assert_eq!(range_bits(2), 3);
        assert_eq!(range_bits(127), 8);
        assert_eq!(range_bits(128), 9);
        assert_eq!(range_bits(u128::MAX), 64);
        for b in [3u128, 100, 1 << 20, (1 << 40) - 1] {
            let h = range_bits(b);
            assert!(b < 1u128 << (h - 1) && b >= 1u128 << (h - 2));
        }
    }

    #[test]
    fn bounds_hold_on_random_inputs_of_the_tiny_model() {
        let model = Model::parse(crate::testing::TINY_MODEL).unwrap();
        let bound_in = 1u64 << model.activation_frac_bits();
        let bounds = activation_bounds(&model, bound_in);
        let mut arena = [0i32; 256];
        let mut seed = 1u64;
        let n = model.input_shape().elements();
        for _ in 0..200 {
            let input: [i32; 16] = core::array::from_fn(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) % (2 * bound_in + 1)) as i32 - bound_in as i32
            });
            let out = model.infer(&input[..n], &mut arena).unwrap();
            let last = bounds[model.layer_count()];
            assert!(out.iter().all(|&v| u128::from(v.unsigned_abs()) <= last));
        }
        // The +1 per truncation covers the ring's rounding up.
        let (c, s) = ring::split(1000, 12345);
        let t = ring::reconstruct(
            ring::truncate(c, 4, Party::Client),
            ring::truncate(s, 4, Party::Server),
        );
        assert!(t <= 1000 / 16 + 1);
    }
}
