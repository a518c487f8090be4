//! Plaintext fixed-point kernels. Shapes were validated at parse time; slices that do not match
//! them make a kernel write less, never panic.

use crate::fixed::{POOL_SHIFT, pool_multiplier, requantize, saturate};
use crate::format::Shape;
use crate::layer::{Conv2d, Linear};

/// Output columns accumulated together. The accumulators live on the stack (256 bytes), and the
/// inner loop over them is a contiguous multiply-add that compilers vectorize.
const TILE: usize = 32;

/// Direct convolution, output-row tiles of [`TILE`] `i64` accumulators.
///
/// Loop order: output channel, output row, column tile, then input channel and kernel tap, with
/// the tap's weight held in a register while it is multiplied into the whole tile.
pub(crate) fn conv2d(c: &Conv2d<'_>, ins: Shape, outs: Shape, input: &[i32], output: &mut [i32]) {
    let (h, w) = (ins.height as usize, ins.width as usize);
    let ow = outs.width as usize;
    let plane = h * w;
    let out_plane = outs.plane();
    let (kh, kw, s, p) = (c.kernel_h, c.kernel_w, c.stride, c.padding);
    let fan_in = c.fan_in();
    for (oc, out_channel) in output.chunks_exact_mut(out_plane).enumerate() {
        let weights = c.weights.slice(oc * fan_in, fan_in);
        let bias = c.bias_at(oc) as i64;
        for (oy, out_row) in out_channel.chunks_exact_mut(ow).enumerate() {
            for (tile, out_tile) in out_row.chunks_mut(TILE).enumerate() {
                let ox0 = tile * TILE;
                let n = out_tile.len();
                let mut acc = [bias; TILE];
                let mut taps = weights.iter();
                for in_plane in input.chunks_exact(plane) {
                    for ky in 0..kh {
                        let iy = (oy * s + ky).wrapping_sub(p);
                        let row = if iy < h {
                            in_plane.get(iy * w..iy * w + w)
                        } else {
                            None
                        };
                        let Some(row) = row else {
                            // The whole kernel row falls in the zero padding.
                            taps.nth(kw.saturating_sub(1));
                            continue;
                        };
                        for kx in 0..kw {
                            let wv = taps.next().unwrap_or(0) as i64;
                            let (lo, hi) = valid_columns(ox0, n, s, kx, p, w);
                            if lo >= hi {
                                continue;
                            }
                            let start = (ox0 + lo) * s + kx - p;
                            let Some(accs) = acc.get_mut(lo..hi) else {
                                continue;
                            };
                            if s == 1 {
                                let Some(xs) = row.get(start..start + (hi - lo)) else {
                                    continue;
                                };
                                for (a, &x) in accs.iter_mut().zip(xs) {
                                    *a += wv * x as i64;
                                }
                            } else {
                                let xs = row.iter().skip(start).step_by(s);
                                for (a, &x) in accs.iter_mut().zip(xs) {
                                    *a += wv * x as i64;
                                }
                            }
                        }
                    }
                }
                for (o, &a) in out_tile.iter_mut().zip(&acc[..n]) {
                    *o = requantize(a, c.weight_frac_bits);
                }
            }
        }
    }
}

/// Tile positions `lo..hi` (relative to `ox0`) whose input column `(ox0+j)*s + kx - p` lies
/// inside `0..w`.
#[inline(always)]
fn valid_columns(ox0: usize, n: usize, s: usize, kx: usize, p: usize, w: usize) -> (usize, usize) {
    let first = if p > kx { (p - kx).div_ceil(s) } else { 0 };
    if w + p <= kx {
        return (0, 0);
    }
    let end = (w - 1 + p - kx) / s + 1;
    let lo = first.max(ox0).min(ox0 + n) - ox0;
    let hi = end.min(ox0 + n).max(ox0) - ox0;
    (lo, hi)
}

/// Fully connected layer: one `i64` dot product per output.
pub(crate) fn linear(l: &Linear<'_>, input: &[i32], output: &mut [i32]) {
    let n = l.in_features;
    for (o, out) in output.iter_mut().enumerate() {
        let mut acc = l.bias_at(o) as i64;
        for (wv, &x) in l.weights.slice(o * n, n).iter().zip(input) {
            acc += wv as i64 * x as i64;
        }
        *out = requantize(acc, l.weight_frac_bits);
    }
}

/// Average pooling, no padding: `requantize(sum · M, 16)`.
pub(crate) fn avg_pool(
    kernel: usize,
    stride: usize,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
) {
    let w = ins.width as usize;
    let ow = outs.width as usize;
    let m = pool_multiplier((kernel * kernel) as u32);
    for (in_plane, out_plane) in input
        .chunks_exact(ins.plane())
        .zip(output.chunks_exact_mut(outs.plane()))
    {
        for (oy, out_row) in out_plane.chunks_exact_mut(ow).enumerate() {
            for (ox, out) in out_row.iter_mut().enumerate() {
                let mut sum = 0i64;
                for ky in 0..kernel {
                    let start = (oy * stride + ky) * w + ox * stride;
                    if let Some(xs) = in_plane.get(start..start + kernel) {
                        sum += xs.iter().map(|&x| x as i64).sum::<i64>();
                    }
                }
                *out = requantize(sum * m, POOL_SHIFT);
            }
        }
    }
}

/// Global average pooling: one mean per channel plane.
pub(crate) fn global_avg_pool(ins: Shape, input: &[i32], output: &mut [i32]) {
    let m = pool_multiplier(ins.plane() as u32);
    for (plane, out) in input.chunks_exact(ins.plane()).zip(output.iter_mut()) {
        let sum: i64 = plane.iter().map(|&x| x as i64).sum();
        *out = requantize(sum * m, POOL_SHIFT);
    }
}

/// `acc[i] = saturate(acc[i] + other[i])`.
pub(crate) fn add_into(acc: &mut [i32], other: &[i32]) {
    for (a, &b) in acc.iter_mut().zip(other) {
        *a = saturate(*a as i64 + b as i64);
    }
}

/// `acc[i] = saturate(2 · acc[i])` (a tensor added to itself).
pub(crate) fn double(acc: &mut [i32]) {
    for a in acc.iter_mut() {
        *a = saturate(*a as i64 * 2);
    }
}
