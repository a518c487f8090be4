//! Plaintext fixed-point kernels. Shapes were validated at parse time; slices that do not match
//! them make a kernel write less, never panic.

use crate::fixed::{pool_mean, requantize, saturate};
use crate::format::Shape;
use crate::layer::{Conv2d, Linear};

/// Output columns accumulated together. The accumulators live on the stack (256 bytes), and the
/// inner loop over them is a contiguous multiply-add that compilers vectorize.
const TILE: usize = 32;

/// Output widths from which the host uses row tiles; narrower maps (and every map on Arm, where
/// a tile's accumulators would round-trip through memory) use per-pixel accumulation.
#[cfg(not(target_arch = "arm"))]
const ROW_TILE_MIN_WIDTH: usize = 12;
#[cfg(target_arch = "arm")]
const ROW_TILE_MIN_WIDTH: usize = usize::MAX;

/// Direct convolution, choosing the loop structure that suits the map width and the target.
/// `scratch` holds at least the layer's fan-in (`in * kh * kw`) words.
pub(crate) fn conv2d(
    c: &Conv2d<'_>,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
    scratch: &mut [i32],
) {
    if outs.width as usize >= ROW_TILE_MIN_WIDTH {
        conv2d_row_tiles(c, ins, outs, input, output);
    } else {
        conv2d_pixel_pairs(c, ins, outs, input, output, scratch);
    }
}

/// Direct convolution, output-row tiles of [`TILE`] `i64` accumulators.
///
/// Loop order: output channel, output row, column tile, then input channel and kernel tap, with
/// the tap's weight held in a register while it is multiplied into the whole tile (a contiguous
/// multiply-add that vectorizes on the host).
fn conv2d_row_tiles(c: &Conv2d<'_>, ins: Shape, outs: Shape, input: &[i32], output: &mut [i32]) {
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

/// Direct convolution for narrow maps and MCUs: each output pixel's receptive field is gathered
/// once into `scratch` (zeros where it falls in the padding), then every pair of output channels
/// is one contiguous dot product over it ([`dot2`]), with both accumulators in registers.
fn conv2d_pixel_pairs(
    c: &Conv2d<'_>,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
    scratch: &mut [i32],
) {
    let (h, w) = (ins.height as usize, ins.width as usize);
    let (oh, ow) = (outs.height as usize, outs.width as usize);
    let plane = h * w;
    let out_plane = outs.plane();
    let (kh, kw, s, p) = (c.kernel_h, c.kernel_w, c.stride, c.padding);
    let fan_in = c.fan_in();
    let weights = c.weights.as_bytes();
    let Some(field) = scratch.get_mut(..fan_in) else {
        return;
    };
    for oy in 0..oh {
        for ox in 0..ow {
            gather(field, input, plane, w, h, kh, kw, oy * s, ox * s, p);
            let pixel = oy * ow + ox;
            let mut oc = 0;
            while oc < c.out_channels {
                let pair = oc + 1 < c.out_channels;
                let w0 = weights
                    .get(2 * oc * fan_in..2 * (oc + 1) * fan_in)
                    .unwrap_or(&[]);
                // A lone last channel pairs with itself; its second result is dropped.
                let w1 = if pair {
                    weights
                        .get(2 * (oc + 1) * fan_in..2 * (oc + 2) * fan_in)
                        .unwrap_or(&[])
                } else {
                    w0
                };
                let (a0, a1) = dot2(
                    field,
                    w0,
                    w1,
                    c.bias_at(oc) as i64,
                    c.bias_at(oc + 1) as i64,
                );
                if let Some(o) = output.get_mut(oc * out_plane + pixel) {
                    *o = requantize(a0, c.weight_frac_bits);
                }
                if pair && let Some(o) = output.get_mut((oc + 1) * out_plane + pixel) {
                    *o = requantize(a1, c.weight_frac_bits);
                }
                oc += 2;
            }
        }
    }
}

/// Copies the receptive field of the output pixel whose window starts at padded row `y0` and
/// column `x0` into `field`, in weight order `[in][kh][kw]`, with zeros for padding.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather(
    field: &mut [i32],
    input: &[i32],
    plane: usize,
    w: usize,
    h: usize,
    kh: usize,
    kw: usize,
    y0: usize,
    x0: usize,
    p: usize,
) {
    let mut taps = field.chunks_exact_mut(kw);
    for in_plane in input.chunks_exact(plane) {
        for ky in 0..kh {
            let Some(row_out) = taps.next() else {
                return;
            };
            let iy = (y0 + ky).wrapping_sub(p);
            let row = if iy < h {
                in_plane.get(iy * w..iy * w + w)
            } else {
                None
            };
            match row {
                Some(row) => {
                    for (kx, v) in row_out.iter_mut().enumerate() {
                        let ix = (x0 + kx).wrapping_sub(p);
                        *v = row.get(ix).copied().unwrap_or(0);
                    }
                }
                None => row_out.fill(0),
            }
        }
    }
}

/// Two dot products sharing one input run: `(a0 + Σ w0·x, a1 + Σ w1·x)`, weights little-endian
/// `i16`. Kept out of line so its three streams and two accumulators get all the registers.
#[inline(never)]
fn dot2(xs: &[i32], w0: &[u8], w1: &[u8], mut a0: i64, mut a1: i64) -> (i64, i64) {
    for ((&x, q0), q1) in xs.iter().zip(w0.chunks_exact(2)).zip(w1.chunks_exact(2)) {
        let x = x as i64;
        a0 += i16::from_le_bytes([q0[0], q0[1]]) as i64 * x;
        a1 += i16::from_le_bytes([q1[0], q1[1]]) as i64 * x;
    }
    (a0, a1)
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

/// Average pooling, no padding: the rounded mean of each window ([`pool_mean`]).
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
    let n = (kernel * kernel) as u32;
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
                *out = pool_mean(sum, n);
            }
        }
    }
}

/// Global average pooling: one mean per channel plane.
pub(crate) fn global_avg_pool(ins: Shape, input: &[i32], output: &mut [i32]) {
    let n = ins.plane() as u32;
    for (plane, out) in input.chunks_exact(ins.plane()).zip(output.iter_mut()) {
        let sum: i64 = plane.iter().map(|&x| x as i64).sum();
        *out = pool_mean(sum, n);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Bias, Weights};

    /// Both convolution loop structures give identical results on every geometry.
    #[test]
    fn row_tiles_and_pixel_pairs_agree() {
        let mut state = 0x1234_5678_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let cin = 1 + (next() % 3) as usize;
            let cout = 1 + (next() % 5) as usize;
            let k = 1 + (next() % 3) as usize;
            let p = (next() % k as u64) as usize;
            let s = 1 + (next() % 2) as usize;
            let h = k.saturating_sub(2 * p).max(1) + (next() % 40) as usize;
            let w = k.saturating_sub(2 * p).max(1) + (next() % 40) as usize;
            let ins = Shape::new(cin as u16, h as u16, w as u16);
            let outs = Shape::new(
                cout as u16,
                ((h + 2 * p - k) / s + 1) as u16,
                ((w + 2 * p - k) / s + 1) as u16,
            );
            let weight_bytes: std::vec::Vec<u8> = (0..cout * cin * k * k)
                .flat_map(|_| ((next() % 2001) as i16 - 1000).to_le_bytes())
                .collect();
            let bias_bytes: std::vec::Vec<u8> = (0..cout)
                .flat_map(|_| ((next() % 20001) as i32 - 10000).to_le_bytes())
                .collect();
            let conv = Conv2d {
                in_channels: cin,
                out_channels: cout,
                kernel_h: k,
                kernel_w: k,
                stride: s,
                padding: p,
                weight_frac_bits: (next() % 12) as u8,
                weights: Weights(&weight_bytes),
                bias: Some(Bias(&bias_bytes)),
            };
            let input: std::vec::Vec<i32> = (0..ins.elements())
                .map(|_| (next() % 200_001) as i32 - 100_000)
                .collect();
            let mut tiles = std::vec![0; outs.elements()];
            let mut pairs = std::vec![1; outs.elements()];
            let mut scratch = std::vec![7; conv.fan_in()];
            conv2d_row_tiles(&conv, ins, outs, &input, &mut tiles);
            conv2d_pixel_pairs(&conv, ins, outs, &input, &mut pairs, &mut scratch);
            assert_eq!(
                tiles, pairs,
                "cin {cin} cout {cout} k {k} p {p} s {s} {h}x{w}"
            );
        }
    }
}
