//! Conv and linear layers over `Z_2^64`: the products `W · v` the server evaluates on the masked
//! input `x - r`, and the trusted dealer on the mask `r` (standing in for homomorphic encryption).
//!
//! Only the weight products live here; bias, the server's offline share and the rounding offset
//! are added by the caller (see [`finish_server`]), then each party truncates its own share.
//! The client never runs these: its output share comes from the offline phase.

use crate::format::Shape;
use crate::layer::{Conv2d, Linear};

use super::ring::{self, Party};

/// `out = W ⊛ x` (zero padding, no bias) with wrapping `u64` arithmetic.
pub fn conv2d(c: &Conv2d<'_>, ins: Shape, outs: Shape, input: &[u64], output: &mut [u64]) {
    let (h, w) = (ins.height as usize, ins.width as usize);
    let (oh, ow) = (outs.height as usize, outs.width as usize);
    let (kh, kw, s, p) = (c.kernel_h, c.kernel_w, c.stride, c.padding);
    let plane = h * w;
    output.fill(0);
    for oc in 0..c.out_channels {
        let taps = c.weights.slice(oc * c.fan_in(), c.fan_in());
        let out_plane = match output.get_mut(oc * oh * ow..(oc + 1) * oh * ow) {
            Some(o) => o,
            None => return,
        };
        let mut t = 0;
        for ic in 0..c.in_channels {
            let in_plane = input.get(ic * plane..(ic + 1) * plane).unwrap_or(&[]);
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = taps.get(t) as i64 as u64;
                    t += 1;
                    if wv == 0 {
                        continue;
                    }
                    for oy in 0..oh {
                        let iy = (oy * s + ky).wrapping_sub(p);
                        if iy >= h {
                            continue;
                        }
                        for ox in 0..ow {
                            let ix = (ox * s + kx).wrapping_sub(p);
                            if ix >= w {
                                continue;
                            }
                            if let Some(&x) = in_plane.get(iy * w + ix) {
                                let o = &mut out_plane[oy * ow + ox];
                                *o = o.wrapping_add(wv.wrapping_mul(x));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `out = W · x` (no bias) with wrapping `u64` arithmetic.
pub fn linear(l: &Linear<'_>, input: &[u64], output: &mut [u64]) {
    let n = l.in_features;
    for (o, out) in output.iter_mut().enumerate() {
        *out = l
            .weights
            .slice(o * n, n)
            .iter()
            .zip(input)
            .fold(0u64, |a, (wv, &x)| {
                a.wrapping_add((wv as i64 as u64).wrapping_mul(x))
            });
    }
}

/// The server's output share of a linear output element: `W(x - r) + b + s`, rounded and
/// truncated. `product` is `W(x - r)`, `bias` the layer bias, `offline` the server's share `s`.
#[inline]
pub fn finish_server(product: u64, bias: i32, offline: u64, shift: u8) -> u64 {
    let acc = product
        .wrapping_add(bias as i64 as u64)
        .wrapping_add(offline);
    ring::requantize(acc, shift, Party::Server)
}

/// The client's output share of a linear output element from its offline share `W r - s`.
#[inline]
pub fn finish_client(offline: u64, shift: u8) -> u64 {
    ring::requantize(offline, shift, Party::Client)
}
