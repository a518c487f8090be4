//! A sound bound on `|private - plaintext|` for a model's output, from the truncation rules.
//!
//! Each local truncation adds 0 or +1 LSB (see [`ring::truncate`](super::ring::truncate)); later
//! layers scale that error. Per tensor the bound `e` propagates as:
//!
//! * conv / linear with weight frac bits `k`: `ceil(L · e_in / 2^k) + 1` where `L` is the largest
//!   row L1 norm of the weights (the `+1` is this layer's truncation, the ceiling the rounding
//!   boundary); exactly `L · e_in` when `k = 0` (no truncation);
//! * average pools: `e_in + 1` (the mean of values each off by at most `e_in` is off by at most
//!   `e_in`, and the exactly rounded plaintext mean moves by at most `ceil` of that; the `+1` is
//!   this layer's local division, [`ring::pool_mean`](super::ring::pool_mean));
//! * masked ReLU and flatten: `e_in` (ReLU is 1-Lipschitz and the garbled circuit is exact);
//! * add: `e_a + e_b`.
//!
//! It holds when no share pair wraps and no plaintext value saturates (both documented in the
//! [module docs](super)).

use crate::layer::Op;
use crate::model::{MAX_LAYERS, Model};

fn scaled(e: u64, gain: u64, shift: u8) -> u64 {
    if shift == 0 {
        return e.saturating_mul(gain);
    }
    let num = (e as u128) * (gain as u128);
    let up = num.div_ceil(1u128 << shift);
    u64::try_from(up).unwrap_or(u64::MAX).saturating_add(1)
}

fn row_l1(weights: crate::Weights<'_>, rows: usize, fan_in: usize) -> u64 {
    (0..rows)
        .map(|r| {
            weights
                .slice(r * fan_in, fan_in)
                .iter()
                .map(|w| w.unsigned_abs() as u64)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

/// The largest possible `|reconstructed - plaintext|` of any output element, in LSBs of the
/// activation scale.
pub fn output_tolerance(model: &Model<'_>) -> u64 {
    let mut bound = [0u64; MAX_LAYERS + 1];
    for layer in model.layers() {
        let e = bound.get(layer.input).copied().unwrap_or(0);
        let out = match layer.op {
            Op::Conv2d(c) => scaled(
                e,
                row_l1(c.weights, c.out_channels, c.fan_in()),
                c.weight_frac_bits,
            ),
            Op::Linear(l) => scaled(
                e,
                row_l1(l.weights, l.out_features, l.in_features),
                l.weight_frac_bits,
            ),
            Op::AvgPool2d { .. } | Op::GlobalAvgPool => e.saturating_add(1),
            Op::Add { other } => e.saturating_add(bound.get(other).copied().unwrap_or(0)),
            _ => e,
        };
        if let Some(slot) = bound.get_mut(layer.output()) {
            *slot = out;
        }
    }
    bound.get(model.layer_count()).copied().unwrap_or(0)
}
