//! The layers that are local on shares: pools, residual adds and flatten need no message.
//!
//! Sums are exact in `Z_2^64`; the division by the pool size `n` is the local division of
//! [`ring::pool_mean`] (a truncation when `n` is a power of two), so a pooled share reconstructs
//! to pi-core's plaintext pool result ([`crate::fixed::pool_mean`]) or one more (see the
//! [module docs](super)).

use crate::format::Shape;

use super::ring::{self, Party};

/// Average pooling (no padding) of one party's shares: [`ring::pool_mean`] of each window's sum.
pub fn avg_pool(
    kernel: usize,
    stride: usize,
    ins: Shape,
    outs: Shape,
    input: &[u64],
    output: &mut [u64],
    party: Party,
) {
    let w = ins.width as usize;
    let ow = outs.width as usize;
    let n = (kernel * kernel) as u32;
    for (in_plane, out_plane) in input
        .chunks_exact(ins.plane())
        .zip(output.chunks_exact_mut(outs.plane()))
    {
        for (oy, out_row) in out_plane.chunks_exact_mut(ow).enumerate() {
            for (ox, out) in out_row.iter_mut().enumerate() {
                let mut sum = 0u64;
                for ky in 0..kernel {
                    let start = (oy * stride + ky) * w + ox * stride;
                    if let Some(xs) = in_plane.get(start..start + kernel) {
                        sum = xs.iter().fold(sum, |a, &x| a.wrapping_add(x));
                    }
                }
                *out = ring::pool_mean(sum, n, party);
            }
        }
    }
}

/// Global average pooling of one party's shares: one mean per channel plane.
pub fn global_avg_pool(ins: Shape, input: &[u64], output: &mut [u64], party: Party) {
    let n = ins.plane() as u32;
    for (plane, out) in input.chunks_exact(ins.plane()).zip(output.iter_mut()) {
        let sum = plane.iter().fold(0u64, |a, &x| a.wrapping_add(x));
        *out = ring::pool_mean(sum, n, party);
    }
}

/// `acc[i] += other[i]` on shares (a residual connection).
pub fn add_into(acc: &mut [u64], other: &[u64]) {
    for (a, &b) in acc.iter_mut().zip(other) {
        *a = a.wrapping_add(b);
    }
}

/// `acc[i] += acc[i]` (a tensor added to itself).
pub fn double(acc: &mut [u64]) {
    for a in acc.iter_mut() {
        *a = a.wrapping_add(*a);
    }
}

/// Runs a messageless layer (pools, add, flatten) of `party` on its share arena: reads the
/// tensors `input` (and `other` for an add) and writes `output`. Returns `Ok(false)` for layers
/// that are not local (conv, linear, ReLU). Both protocol clients share this step.
pub(crate) fn run_layer(
    shares: &mut [u64],
    layer: &crate::Layer<'_>,
    range: impl Fn(usize) -> core::ops::Range<usize>,
    party: Party,
) -> Result<bool, super::ProtocolError> {
    use super::client::split_rw;
    use crate::layer::Op;
    let (inp, out) = (range(layer.input), range(layer.output()));
    match layer.op {
        Op::AvgPool2d { kernel, stride } => {
            let (src, dst) = split_rw(shares, inp, out)?;
            avg_pool(
                kernel,
                stride,
                layer.input_shape,
                layer.output_shape,
                src,
                dst,
                party,
            );
        }
        Op::GlobalAvgPool => {
            let (src, dst) = split_rw(shares, inp, out)?;
            global_avg_pool(layer.input_shape, src, dst, party);
        }
        Op::Add { other } => {
            let other = range(other);
            if inp == out && other == out {
                double(
                    shares
                        .get_mut(out)
                        .ok_or(super::ProtocolError::Inconsistent)?,
                );
            } else {
                if inp != out {
                    let (src, dst) = split_rw(shares, inp, out.clone())?;
                    dst.copy_from_slice(src);
                }
                let (src, dst) = split_rw(shares, other, out)?;
                add_into(dst, src);
            }
        }
        Op::Flatten => {
            if inp != out {
                let (src, dst) = split_rw(shares, inp, out)?;
                dst.copy_from_slice(src);
            }
        }
        Op::Conv2d(_) | Op::Linear(_) | Op::MaskedRelu(_) => return Ok(false),
    }
    Ok(true)
}
