//! Plaintext fixed-point kernels. Shapes were validated at parse time; slices that do not match
//! them make a kernel write less, never panic.

use crate::fixed::{pool_mean, requantize, saturate};
use crate::format::Shape;
use crate::layer::{Conv2d, Linear, WeightWidth};

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
/// `scratch` holds at least the layer's fan-in (`in * kh * kw`) rounded up to even, in words.
/// `narrow_acc`: parsing proved that this layer's accumulators fit `i32` for `i16` inputs
/// ([`crate::Model`]'s accumulator check); the packed kernels then accumulate in `i32`.
///
/// `act16`: the model's activations are `i16` (format v2); outputs are saturated to `i16`.
/// Layers with `i8` weights always run [`conv2d_packed_i8`], which saturates as it rounds; the
/// other kernels saturate in a pass after the layer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    c: &Conv2d<'_>,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
    scratch: &mut [i32],
    narrow_acc: bool,
    act16: bool,
) {
    if c.weights.width() == WeightWidth::I8 {
        conv2d_packed_i8(c, ins, outs, input, output, scratch, narrow_acc, act16);
        return;
    }
    if outs.width as usize >= ROW_TILE_MIN_WIDTH {
        conv2d_row_tiles(c, ins, outs, input, output);
    } else if cfg!(target_arch = "arm") {
        conv2d_packed(c, ins, outs, input, output, scratch, narrow_acc);
    } else {
        // On the host the i64 pixel-pair loop vectorizes and beats the packed kernel's portable
        // dual MACs (callgrind: LeNet 10% fewer instructions); the result is the same.
        conv2d_pixel_pairs(c, ins, outs, input, output, scratch, 0..outs.plane());
    }
}

/// Words of kernel scratch a convolution needs (see [`crate::Model::arena_words`]): two
/// receptive fields of packed `i16` pairs, each padded to whole words; with `i8` weights, to
/// whole groups of four inputs ([`conv2d_packed_i8`]). The exact `i64` fallback uses one
/// field of `fan_in` words, never more.
pub(crate) fn scratch_words(c: &Conv2d<'_>) -> usize {
    match c.weights.width() {
        WeightWidth::I16 => c.fan_in().next_multiple_of(2),
        WeightWidth::I8 => c.fan_in().next_multiple_of(4),
    }
}

/// Saturates every value to the `i16` range (a model with 16-bit activations).
pub(crate) fn saturate_i16(values: &mut [i32]) {
    for v in values {
        *v = (*v).clamp(i16::MIN as i32, i16::MAX as i32);
    }
}

/// Direct convolution with `i8` weights over `i16` inputs, two output pixels by two output
/// channels at a time, four MACs per weight word.
///
/// A weight row is read a word (four `i8`) at a time and split by [`sxtb16`] into its even
/// weights (0, 2) and odd weights (1, 3) as `i16` pairs, the way CMSIS-NN's s8/s16 kernels do.
/// The gather writes each group of four inputs `x0..x3` of a receptive field in the matching
/// order, `[x0 | x2 << 16, x1 | x3 << 16]`, and the two pixels' groups side by side, so each
/// group is four words `[a even, a odd, b even, b odd]` and one weight word feeds four dual
/// MACs. Nothing is copied from flash to RAM. Accumulators are `i32` where parsing proved they
/// cannot overflow (`narrow_acc`), `i64` otherwise; a pixel pair with an input beyond `i16`
/// (possible only with 32-bit activations) takes the exact `i64` path for those pixels.
/// Rounding then saturates to `i16` when `act16`, in the same step.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn conv2d_packed_i8(
    c: &Conv2d<'_>,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
    scratch: &mut [i32],
    narrow_acc: bool,
    act16: bool,
) {
    let (h, w) = (ins.height as usize, ins.width as usize);
    let ow = outs.width as usize;
    let plane = h * w;
    let out_plane = outs.plane();
    let (kh, kw, s, p) = (c.kernel_h, c.kernel_w, c.stride, c.padding);
    let fan_in = c.fan_in();
    let words = 4 * fan_in.div_ceil(4);
    let weights = c.weights.as_bytes();
    let shift = c.weight_frac_bits;
    let (lo, hi) = if act16 {
        (i16::MIN as i32, i16::MAX as i32)
    } else {
        (i32::MIN, i32::MAX)
    };
    let mut pixel = 0;
    while pixel < out_plane {
        // A lone last pixel pairs with itself; its second result is dropped.
        let pair = pixel + 1 < out_plane;
        let pixel_b = if pair { pixel + 1 } else { pixel };
        let (ay, ax) = (pixel / ow, pixel % ow);
        let (by, bx) = (pixel_b / ow, pixel_b % ow);
        let Some(field) = scratch.get_mut(..words) else {
            return;
        };
        // With 16-bit activations every input fits i16 (the engine saturates the model input
        // and every layer's output), so the gather need not check.
        let fits = if act16 {
            gather_quads::<false>(field, 0, input, plane, w, h, kh, kw, ay * s, ax * s, p);
            gather_quads::<false>(field, 2, input, plane, w, h, kh, kw, by * s, bx * s, p);
            true
        } else {
            let a = gather_quads::<true>(field, 0, input, plane, w, h, kh, kw, ay * s, ax * s, p);
            let b = gather_quads::<true>(field, 2, input, plane, w, h, kh, kw, by * s, bx * s, p);
            a && b
        };
        if !fits {
            // Only with 32-bit activations: exact i64 path, one pixel at a time.
            conv2d_pixel_pairs(c, ins, outs, input, output, scratch, pixel..pixel_b + 1);
            for oc in 0..c.out_channels {
                for px in [pixel, pixel_b] {
                    if let Some(o) = output.get_mut(oc * out_plane + px) {
                        *o = (*o).clamp(lo, hi);
                    }
                }
            }
            pixel += 2;
            continue;
        }
        let field: &[i32] = field;
        if narrow_acc {
            let pixel_b = pair.then_some(pixel_b);
            let done = if act16 {
                channel_pairs_i8::<true>(c, field, output, out_plane, pixel, pixel_b)
            } else {
                channel_pairs_i8::<false>(c, field, output, out_plane, pixel, pixel_b)
            };
            channels_i8(c, field, output, out_plane, pixel, pixel_b, lo, hi, done);
            pixel += 2;
            continue;
        }
        let mut oc = 0;
        while oc < c.out_channels {
            let pair_c = oc + 1 < c.out_channels;
            let row1 = if pair_c { oc + 1 } else { oc };
            let (b0, b1) = (c.bias_at(oc), c.bias_at(oc + 1));
            let w0 = weights.get(oc * fan_in..(oc + 1) * fan_in).unwrap_or(&[]);
            let w1 = weights
                .get(row1 * fan_in..(row1 + 1) * fan_in)
                .unwrap_or(&[]);
            let r = dot2x2_i8_wide(field, w0, w1, b0 as i64, b1 as i64)
                .map(|a| requantize(a, shift).clamp(lo, hi));
            store_2x2(output, out_plane, oc, [pixel, pixel_b], pair_c, pair, r);
            oc += 2;
        }
        pixel += 2;
    }
}

/// Stores the results `r = [oc at a, oc at b, oc+1 at a, oc+1 at b]` of a pair of channels at
/// a pair of pixels `[a, b]`; `pair_c` and `pair` say whether channel `oc + 1` and pixel `b`
/// exist (a lone last channel or pixel is computed twice but stored once).
#[inline(always)]
fn store_2x2(
    output: &mut [i32],
    out_plane: usize,
    oc: usize,
    [a, b]: [usize; 2],
    pair_c: bool,
    pair: bool,
    r: [i32; 4],
) {
    let mut put = |index: usize, v: i32| {
        if let Some(o) = output.get_mut(index) {
            *o = v;
        }
    };
    put(oc * out_plane + a, r[0]);
    if pair {
        put(oc * out_plane + b, r[1]);
    }
    if pair_c {
        put((oc + 1) * out_plane + a, r[2]);
        if pair {
            put((oc + 1) * out_plane + b, r[3]);
        }
    }
}

/// The taps of one receptive field in weight order `[in][kh][kw]`, one at a time: zeros for
/// padding, and zeros after the last tap (so a last partial group of four is padded). Keeps
/// its position in registers, unlike a chain of iterator adapters.
struct Taps<'x> {
    input: &'x [i32],
    plane: usize,
    w: usize,
    h: usize,
    kh: usize,
    kw: usize,
    y0: usize,
    x0: usize,
    p: usize,
    /// The current input row (`None` in the padding or past the last tap), its channel start,
    /// and the position inside the kernel.
    row: Option<&'x [i32]>,
    channel: usize,
    ky: usize,
    kx: usize,
}

impl<'x> Taps<'x> {
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn new(
        input: &'x [i32],
        plane: usize,
        w: usize,
        h: usize,
        kh: usize,
        kw: usize,
        y0: usize,
        x0: usize,
        p: usize,
    ) -> Self {
        let mut taps = Self {
            input,
            plane,
            w,
            h,
            kh,
            kw,
            y0,
            x0,
            p,
            row: None,
            channel: 0,
            ky: 0,
            kx: 0,
        };
        taps.row = taps.current_row();
        taps
    }

    /// The input row under kernel row `ky` of the current channel, if inside the image.
    #[inline(always)]
    fn current_row(&self) -> Option<&'x [i32]> {
        let iy = (self.y0 + self.ky).wrapping_sub(self.p);
        if iy < self.h {
            let start = self.channel + iy * self.w;
            self.input.get(start..start + self.w)
        } else {
            None
        }
    }

    #[inline(always)]
    fn next(&mut self) -> i32 {
        let v = match self.row {
            Some(row) => row
                .get((self.x0 + self.kx).wrapping_sub(self.p))
                .copied()
                .unwrap_or(0),
            None => 0,
        };
        self.kx += 1;
        if self.kx == self.kw {
            self.kx = 0;
            self.ky += 1;
            if self.ky == self.kh {
                self.ky = 0;
                self.channel += self.plane;
            }
            // Past the last channel `current_row` finds no row: zeros from then on.
            self.row = self.current_row();
        }
        v
    }
}

/// Gathers one receptive field (weight order `[in][kh][kw]`, zeros for padding) into `field`
/// in [`conv2d_packed_i8`]'s layout: group `g` of inputs `x0..x3` goes to words `4g + offset`
/// (`x0 | x2 << 16`) and `4g + offset + 1` (`x1 | x3 << 16`); a last partial group is padded
/// with zeros. With `CHECK`, returns whether every input fit `i16` (if not, `field` must not be
/// used); without, returns `true` and the caller guarantees it.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn gather_quads<const CHECK: bool>(
    field: &mut [i32],
    offset: usize,
    input: &[i32],
    plane: usize,
    w: usize,
    h: usize,
    kh: usize,
    kw: usize,
    y0: usize,
    x0: usize,
    p: usize,
) -> bool {
    let mut taps = Taps::new(input, plane, w, h, kh, kw, y0, x0, p);
    // Inputs outside i16 set bits above bit 15 of `x + 2^15` (as u32).
    let mut out_of_range = 0u32;
    for group in field.chunks_exact_mut(4) {
        let [x0, x1, x2, x3] = [taps.next(), taps.next(), taps.next(), taps.next()];
        if CHECK {
            for x in [x0, x1, x2, x3] {
                out_of_range |= (x as u32).wrapping_add(0x8000);
            }
        }
        if let Some(pair) = group.get_mut(offset..offset + 2) {
            pair[0] = ((x0 as u32 & 0xffff) | (x2 as u32) << 16) as i32;
            pair[1] = ((x1 as u32 & 0xffff) | (x3 as u32) << 16) as i32;
        }
    }
    out_of_range >> 16 == 0
}

/// Sign-extends bytes 0 and 2 of `x` into the two `i16` halves of the result (`sxtb16`).
#[inline(always)]
#[allow(unsafe_code)]
fn sxtb16(x: u32) -> u32 {
    #[cfg(pi_dsp)]
    {
        let out: u32;
        // SAFETY: `sxtb16` only reads and writes the named registers; no memory, no flags.
        unsafe {
            core::arch::asm!(
                "sxtb16 {out}, {x}",
                out = lateout(reg) out,
                x = in(reg) x,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        out
    }
    #[cfg(not(pi_dsp))]
    {
        (x as u8 as i8 as i16 as u16 as u32)
            | ((((x >> 16) as u8 as i8 as i16 as u16) as u32) << 16)
    }
}

/// Sign-extends bytes 1 and 3 of `x` into the two `i16` halves (`sxtb16` with `ror #8`).
#[inline(always)]
#[allow(unsafe_code)]
fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(pi_dsp)]
    {
        let out: u32;
        // SAFETY: as for `sxtb16`: registers only.
        unsafe {
            core::arch::asm!(
                "sxtb16 {out}, {x}, ror #8",
                out = lateout(reg) out,
                x = in(reg) x,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        out
    }
    #[cfg(not(pi_dsp))]
    {
        sxtb16(x.rotate_right(8))
    }
}

/// Four `i8` weights as one little-endian word; a short tail is padded with zero weights
/// (which meet the zero inputs the gather pads with).
#[inline(always)]
fn weight_quad(chunk: &[u8]) -> u32 {
    match chunk {
        [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => {
            let mut bytes = [0u8; 4];
            for (d, s) in bytes.iter_mut().zip(chunk) {
                *d = *s;
            }
            u32::from_le_bytes(bytes)
        }
    }
}

/// The weight word at byte `start` of `weights` for a group that ends a row early: bytes past
/// the row's end meet zero inputs (the gather pads with zeros), so any value works there; the
/// next row's bytes are read when they exist, zeros past the end of the layer.
#[inline(always)]
fn tail_quad(weights: &[u8], start: usize) -> u32 {
    match weights.get(start..start + 4) {
        Some(q) => weight_quad(q),
        None => weight_quad(weights.get(start..).unwrap_or(&[])),
    }
}

/// Every output channel of the pixel pair (`pixel`, `pixel_b`; `None` for a lone last pixel)
/// from its [`gather_quads`] field, two channels at a time, with `i32` accumulators (the
/// parse-time bound holds): `[w0·a, w0·b, w1·a, w1·b]` over whole groups by [`mac_groups`],
/// then a last partial group, then rounding by the layer's shift and saturation to `lo..=hi`.
/// Kept out of line and lean: this per-channel-pair work is what remains of a layer's cost
/// besides the MAC loop and the gather.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn channels_i8(
    c: &Conv2d<'_>,
    field: &[i32],
    output: &mut [i32],
    out_plane: usize,
    pixel: usize,
    pixel_b: Option<usize>,
    lo: i32,
    hi: i32,
    from: usize,
) {
    let fan_in = c.fan_in();
    let weights = c.weights.as_bytes();
    let full = fan_in / 4;
    let (x_full, x_tail) = field.split_at((4 * full).min(field.len()));
    let x_tail = match x_tail {
        [ae, ao, be, bo, ..] if !fan_in.is_multiple_of(4) => {
            Some([*ae as u32, *ao as u32, *be as u32, *bo as u32])
        }
        _ => None,
    };
    let shift = c.weight_frac_bits as u32;
    // Round half up: add half of the divisor (0 for a shift of 0), then shift.
    let half = (1i32 << shift) >> 1;
    let bias = c.bias.map_or(&[][..], |b| b.as_bytes());
    let bias_at = |oc: usize| {
        bias.get(4 * oc..4 * oc + 4)
            .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut oc = from;
    while oc < c.out_channels {
        let pair_c = oc + 1 < c.out_channels;
        let row1 = if pair_c { oc + 1 } else { oc };
        let (r0, r1) = (oc * fan_in, row1 * fan_in);
        let (b0, b1) = (bias_at(oc), bias_at(row1));
        let mut acc = [b0, b0, b1, b1];
        // A last partial group reads on into the next row's weights, which meet the zero
        // inputs the gather padded with: one loop covers it, except at the end of the layer.
        if x_tail.is_some()
            && let (Some(w0), Some(w1)) = (
                weights.get(r0..r0 + 4 * (full + 1)),
                weights.get(r1..r1 + 4 * (full + 1)),
            )
        {
            acc = mac_groups(acc, field, w0, w1);
        } else if let (Some(w0), Some(w1)) = (
            weights.get(r0..r0 + 4 * full),
            weights.get(r1..r1 + 4 * full),
        ) {
            acc = mac_groups(acc, x_full, w0, w1);
        }
        if x_tail.is_some()
            && weights.len() < r1.max(r0) + 4 * (full + 1)
            && let Some([ae, ao, be, bo]) = x_tail
        {
            let (q0, q1) = (
                tail_quad(weights, r0 + 4 * full),
                tail_quad(weights, r1 + 4 * full),
            );
            let (e0, o0, e1, o1) = (sxtb16(q0), sxtb16_ror8(q0), sxtb16(q1), sxtb16_ror8(q1));
            acc[0] = dual_mac(dual_mac(acc[0], ae, e0), ao, o0);
            acc[1] = dual_mac(dual_mac(acc[1], be, e0), bo, o0);
            acc[2] = dual_mac(dual_mac(acc[2], ae, e1), ao, o1);
            acc[3] = dual_mac(dual_mac(acc[3], be, e1), bo, o1);
        }
        let round = |a: i32| ((a + half) >> shift).clamp(lo, hi);
        let base = oc * out_plane;
        if let Some(o) = output.get_mut(base + pixel) {
            *o = round(acc[0]);
        }
        if let Some(pb) = pixel_b
            && let Some(o) = output.get_mut(base + pb)
        {
            *o = round(acc[1]);
        }
        if pair_c {
            if let Some(o) = output.get_mut(base + out_plane + pixel) {
                *o = round(acc[2]);
            }
            if let Some(pb) = pixel_b
                && let Some(o) = output.get_mut(base + out_plane + pb)
            {
                *o = round(acc[3]);
            }
        }
        oc += 2;
    }
}

/// The common case of [`channels_i8`], lean: pairs of output channels whose two weight rows,
/// read on to a whole number of groups (into the next row, against zero inputs), lie inside
/// the layer's weights, so one bounds check covers both rows; rounding saturates to `i16`
/// with one `ssat` when `ACT16`. Returns the first channel it did not compute (the last one or
/// two, left to [`channels_i8`]).
#[inline(never)]
fn channel_pairs_i8<const ACT16: bool>(
    c: &Conv2d<'_>,
    field: &[i32],
    output: &mut [i32],
    out_plane: usize,
    pixel: usize,
    pixel_b: Option<usize>,
) -> usize {
    let fan_in = c.fan_in();
    let weights = c.weights.as_bytes();
    let span = 4 * fan_in.div_ceil(4);
    let Some(x) = field.get(..span) else {
        return 0;
    };
    let shift = c.weight_frac_bits as u32;
    let half = (1i32 << shift) >> 1;
    let round = |a: i32| {
        let v = (a + half) >> shift;
        if ACT16 {
            v.clamp(i16::MIN as i32, i16::MAX as i32)
        } else {
            v
        }
    };
    let bias = c.bias.map(|b| b.as_bytes());
    let pb = pixel_b.unwrap_or(pixel);
    let mut oc = 0;
    while oc + 1 < c.out_channels {
        let r0 = oc * fan_in;
        let Some(w) = weights.get(r0..r0 + fan_in + span) else {
            break;
        };
        let (b0, b1) = match bias.and_then(|b| b.get(4 * oc..4 * oc + 8)) {
            Some(b) => (
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            ),
            None => (0, 0),
        };
        let (w0, w1) = (&w[..span], &w[fan_in..]);
        let [a0, a1, a2, a3] = mac_groups([b0, b0, b1, b1], x, w0, w1);
        let base = oc * out_plane;
        if let Some(o) = output.get_mut(base + pixel) {
            *o = round(a0);
        }
        // A lone last pixel (no `pixel_b`) writes its value twice.
        if let Some(o) = output.get_mut(base + pb) {
            *o = if pixel_b.is_some() {
                round(a1)
            } else {
                round(a0)
            };
        }
        if let Some(o) = output.get_mut(base + out_plane + pixel) {
            *o = round(a2);
        }
        if let Some(o) = output.get_mut(base + out_plane + pb) {
            *o = if pixel_b.is_some() {
                round(a3)
            } else {
                round(a2)
            };
        }
        oc += 2;
    }
    oc
}

/// The multiply-accumulate loop of [`channel_pairs_i8`] over whole groups: `x` holds `4·n` words
/// (`[a even, a odd, b even, b odd]` per group), `w0` and `w1` `4·n` bytes each. Callers
/// guarantee (parse-time bound) that every partial sum fits `i32`.
///
/// On Arm with the DSP extension this is a hand-scheduled loop of 19 instructions per 16 MACs
/// that keeps all twelve values in registers (the compiler's version spills accumulators);
/// elsewhere portable code with the same result.
#[inline(always)]
#[allow(unsafe_code)]
fn mac_groups(acc: [i32; 4], x: &[i32], w0: &[u8], w1: &[u8]) -> [i32; 4] {
    let n = (x.len() / 4).min(w0.len() / 4).min(w1.len() / 4);
    if n == 0 {
        return acc;
    }
    #[cfg(pi_dsp)]
    {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        // SAFETY: the loop reads `n` words of `w0` and `w1` and `4n` words of `x`, all inside the
        // slices (`n` is bounded by each length above, and `n >= 1`); it writes only registers,
        // and `subs` sets flags, which the asm does not promise to preserve.
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {q}, [{w0}], #4",
                "sxtb16 {e}, {q}",
                "sxtb16 {q}, {q}, ror #8",
                "ldrd {xe}, {xo}, [{x}]",
                "smlad {a0}, {xe}, {e}, {a0}",
                "smlad {a0}, {xo}, {q}, {a0}",
                "ldrd {xe}, {xo}, [{x}, #8]",
                "smlad {a1}, {xe}, {e}, {a1}",
                "smlad {a1}, {xo}, {q}, {a1}",
                "ldr {q}, [{w1}], #4",
                "sxtb16 {e}, {q}",
                "sxtb16 {q}, {q}, ror #8",
                "smlad {a3}, {xe}, {e}, {a3}",
                "smlad {a3}, {xo}, {q}, {a3}",
                "ldrd {xe}, {xo}, [{x}], #16",
                "smlad {a2}, {xe}, {e}, {a2}",
                "smlad {a2}, {xo}, {q}, {a2}",
                "subs {n}, {n}, #1",
                "bne 2b",
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                x = inout(reg) x.as_ptr() => _,
                w0 = inout(reg) w0.as_ptr() => _,
                w1 = inout(reg) w1.as_ptr() => _,
                n = inout(reg) n => _,
                q = out(reg) _,
                e = out(reg) _,
                xe = out(reg) _,
                xo = out(reg) _,
                options(nostack, readonly)
            );
        }
        [a0, a1, a2, a3]
    }
    #[cfg(not(pi_dsp))]
    {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        for ((x, q0), q1) in x
            .chunks_exact(4)
            .zip(w0.chunks_exact(4))
            .zip(w1.chunks_exact(4))
            .take(n)
        {
            let (q0, q1) = (weight_quad(q0), weight_quad(q1));
            let (e0, o0, e1, o1) = (sxtb16(q0), sxtb16_ror8(q0), sxtb16(q1), sxtb16_ror8(q1));
            let (ae, ao, be, bo) = (x[0] as u32, x[1] as u32, x[2] as u32, x[3] as u32);
            a0 = dual_mac(dual_mac(a0, ae, e0), ao, o0);
            a1 = dual_mac(dual_mac(a1, be, e0), bo, o0);
            a2 = dual_mac(dual_mac(a2, ae, e1), ao, o1);
            a3 = dual_mac(dual_mac(a3, be, e1), bo, o1);
        }
        [a0, a1, a2, a3]
    }
}

/// [`channel_pairs_i8`] with `i64` accumulators (`smlald`), for `i8` layers whose `i32` bound parsing
/// could not prove (a large bias or a very wide fan-in). Exact for every `i16` input.
#[inline(never)]
fn dot2x2_i8_wide(field: &[i32], w0: &[u8], w1: &[u8], b0: i64, b1: i64) -> [i64; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (b0, b0, b1, b1);
    let groups = field.chunks_exact(4).zip(w0.chunks(4).zip(w1.chunks(4)));
    for (x, (q0, q1)) in groups {
        let (q0, q1) = (weight_quad(q0), weight_quad(q1));
        let (e0, o0, e1, o1) = (sxtb16(q0), sxtb16_ror8(q0), sxtb16(q1), sxtb16_ror8(q1));
        let (ae, ao, be, bo) = (x[0] as u32, x[1] as u32, x[2] as u32, x[3] as u32);
        a0 = dual_mac_wide(dual_mac_wide(a0, ae, e0), ao, o0);
        a1 = dual_mac_wide(dual_mac_wide(a1, be, e0), bo, o0);
        a2 = dual_mac_wide(dual_mac_wide(a2, ae, e1), ao, o1);
        a3 = dual_mac_wide(dual_mac_wide(a3, be, e1), bo, o1);
    }
    [a0, a1, a2, a3]
}

/// Direct convolution over packed `i16` pairs, two output pixels by two output channels at a
/// time (the loop structure of CMSIS-NN's s16 kernels, and the reason they reach under two
/// instructions per MAC on a Cortex-M4).
///
/// The receptive fields of two output pixels are gathered into `scratch` as words holding two
/// `i16` inputs each (low half first, a zero half after an odd fan-in), so one word load feeds a
/// dual 16-bit multiply-accumulate ([`dual_mac`], `smlad` on Arm DSP targets) against one word
/// of two little-endian `i16` weights. Whether the inputs fit `i16` is checked while gathering;
/// a pair of pixels with an input outside it falls back to [`conv2d_pixel_pairs`]'s exact `i64`
/// path for those pixels, so the result never depends on the path taken. Accumulators are `i32`
/// where parsing proved they cannot overflow (`narrow_acc`), `i64` otherwise.
fn conv2d_packed(
    c: &Conv2d<'_>,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
    scratch: &mut [i32],
    narrow_acc: bool,
) {
    let (h, w) = (ins.height as usize, ins.width as usize);
    let ow = outs.width as usize;
    let plane = h * w;
    let out_plane = outs.plane();
    let (kh, kw, s, p) = (c.kernel_h, c.kernel_w, c.stride, c.padding);
    let fan_in = c.fan_in();
    let words = fan_in.div_ceil(2);
    let weights = c.weights.as_bytes();
    let row_bytes = 2 * fan_in;
    let mut pixel = 0;
    while pixel < out_plane {
        // A lone last pixel pairs with itself; its second result is dropped.
        let pair = pixel + 1 < out_plane;
        let pixel_b = if pair { pixel + 1 } else { pixel };
        let (ay, ax) = (pixel / ow, pixel % ow);
        let (by, bx) = (pixel_b / ow, pixel_b % ow);
        let Some((field_a, rest)) = scratch.split_at_mut_checked(words) else {
            return;
        };
        let Some(field_b) = rest.get_mut(..words) else {
            return;
        };
        let fits_a = gather_packed(field_a, input, plane, w, h, kh, kw, ay * s, ax * s, p);
        let fits_b = gather_packed(field_b, input, plane, w, h, kh, kw, by * s, bx * s, p);
        if !(fits_a && fits_b) {
            // Rare (an input beyond i16): exact i64 path, one pixel at a time.
            conv2d_pixel_pairs(c, ins, outs, input, output, scratch, pixel..pixel_b + 1);
            // `conv2d_pixel_pairs` overwrote the scratch; the next pair gathers afresh.
            pixel += 2;
            continue;
        }
        let mut oc = 0;
        while oc < c.out_channels {
            let pair_c = oc + 1 < c.out_channels;
            let w0 = weights
                .get(oc * row_bytes..(oc + 1) * row_bytes)
                .unwrap_or(&[]);
            let w1 = if pair_c {
                weights
                    .get((oc + 1) * row_bytes..(oc + 2) * row_bytes)
                    .unwrap_or(&[])
            } else {
                w0
            };
            let (b0, b1) = (c.bias_at(oc), c.bias_at(oc + 1));
            let r = if narrow_acc {
                let r = dot2x2_i32(field_a, field_b, w0, w1, b0, b1);
                r.map(|a| requantize_narrow(a, c.weight_frac_bits))
            } else {
                let [a0, a2] = dot2_wide(field_a, w0, w1, b0 as i64, b1 as i64);
                // A lone last pixel's second field is the first; not computed twice.
                let [a1, a3] = if pair {
                    dot2_wide(field_b, w0, w1, b0 as i64, b1 as i64)
                } else {
                    [a0, a2]
                };
                [a0, a1, a2, a3].map(|a| requantize(a, c.weight_frac_bits))
            };
            store_2x2(output, out_plane, oc, [pixel, pixel_b], pair_c, pair, r);
            oc += 2;
        }
        pixel += 2;
    }
}

/// [`crate::fixed::requantize`] for an `i32` accumulator whose rounding cannot overflow (the
/// parse-time bound includes the rounding offset): the same result without 64-bit arithmetic.
#[inline(always)]
fn requantize_narrow(acc: i32, shift: u8) -> i32 {
    if shift == 0 {
        acc
    } else {
        (acc + (1i32 << (shift - 1))) >> shift
    }
}

/// [`gather`] into packed `i16` pairs (`field[k]` = input `2k` in the low half, `2k+1` in the
/// high half, a zero high half after an odd fan-in). Returns whether every input fit `i16`; if
/// not, `field` holds truncated values and must not be used.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_packed(
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
) -> bool {
    // Inputs outside i16 set bits above bit 15 of `x + 2^15` (as u32).
    let mut out_of_range = 0u32;
    let mut low: Option<u32> = None;
    let mut words = field.iter_mut();
    let mut push = |v: i32, words: &mut core::slice::IterMut<'_, i32>| {
        out_of_range |= (v as u32).wrapping_add(0x8000);
        let half = v as u32 & 0xffff;
        match low.take() {
            None => low = Some(half),
            Some(l) => {
                if let Some(word) = words.next() {
                    *word = (l | (half << 16)) as i32;
                }
            }
        }
    };
    for in_plane in input.chunks_exact(plane) {
        for ky in 0..kh {
            let iy = (y0 + ky).wrapping_sub(p);
            let row = if iy < h {
                in_plane.get(iy * w..iy * w + w)
            } else {
                None
            };
            match row {
                Some(row) => {
                    for kx in 0..kw {
                        let ix = (x0 + kx).wrapping_sub(p);
                        push(row.get(ix).copied().unwrap_or(0), &mut words);
                    }
                }
                None => {
                    for _ in 0..kw {
                        push(0, &mut words);
                    }
                }
            }
        }
    }
    if let Some(l) = low
        && let Some(word) = words.next()
    {
        *word = l as i32;
    }
    out_of_range >> 16 == 0
}

/// One dual 16-bit multiply-accumulate: `acc + lo(x)·lo(w) + hi(x)·hi(w)`, halves signed.
///
/// On Arm with the DSP extension this is the `smlad` instruction; elsewhere portable code with
/// the same result. Callers guarantee (parse-time bound) that the exact sum fits `i32`, where
/// both agree; both wrap otherwise.
#[inline(always)]
#[allow(unsafe_code)]
fn dual_mac(acc: i32, x: u32, w: u32) -> i32 {
    #[cfg(pi_dsp)]
    {
        let out: i32;
        // SAFETY: `smlad` only reads and writes the named registers; no memory, no flags that
        // Rust relies on (it may set the sticky Q flag, which nothing here reads).
        unsafe {
            core::arch::asm!(
                "smlad {out}, {x}, {w}, {acc}",
                out = lateout(reg) out,
                x = in(reg) x,
                w = in(reg) w,
                acc = in(reg) acc,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        out
    }
    #[cfg(not(pi_dsp))]
    {
        let lo = (x as i16 as i32).wrapping_mul(w as i16 as i32);
        let hi = ((x >> 16) as i16 as i32).wrapping_mul((w >> 16) as i16 as i32);
        acc.wrapping_add(lo).wrapping_add(hi)
    }
}

/// One dual 16-bit multiply-accumulate into 64 bits: `acc + lo(x)·lo(w) + hi(x)·hi(w)`
/// (`smlald` on Arm with the DSP extension). Exact for every input: the sum of two products
/// is below `2^31` in magnitude plus `acc`, which parsing keeps below `2^62`.
#[inline(always)]
#[allow(unsafe_code)]
fn dual_mac_wide(acc: i64, x: u32, w: u32) -> i64 {
    #[cfg(pi_dsp)]
    {
        let mut lo = acc as u32;
        let mut hi = (acc >> 32) as u32;
        // SAFETY: `smlald` reads and writes only the named registers.
        unsafe {
            core::arch::asm!(
                "smlald {lo}, {hi}, {x}, {w}",
                lo = inout(reg) lo,
                hi = inout(reg) hi,
                x = in(reg) x,
                w = in(reg) w,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        (((hi as u64) << 32) | lo as u64) as i64
    }
    #[cfg(not(pi_dsp))]
    {
        let lo = (x as i16 as i64) * (w as i16 as i64);
        let hi = ((x >> 16) as i16 as i64) * ((w >> 16) as i16 as i64);
        acc + lo + hi
    }
}

/// Word `k` of a weight row: weights `2k` (low half) and `2k+1` (high half), little-endian.
/// Missing bytes (past an odd fan-in) read as zero; they meet a zero input half anyway.
#[inline(always)]
fn weight_pair(chunk: &[u8]) -> u32 {
    match chunk {
        [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
        [a, b] => u16::from_le_bytes([*a, *b]) as u32,
        _ => 0,
    }
}

/// Four dot products over two packed fields (`xa`, `xb`) and two weight rows (`w0`, `w1`),
/// accumulated in `i32` from the biases: `[w0·xa, w0·xb, w1·xa, w1·xb]`. Each loaded word is
/// used twice: four loads and four dual MACs per eight MACs.
#[inline(never)]
fn dot2x2_i32(xa: &[i32], xb: &[i32], w0: &[u8], w1: &[u8], b0: i32, b1: i32) -> [i32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (b0, b0, b1, b1);
    let full = w0.len() / 4;
    let (w0_full, w0_tail) = w0.split_at(4 * full);
    let (w1_full, w1_tail) = w1.split_at((4 * full).min(w1.len()));
    for (((&xa, &xb), q0), q1) in xa
        .iter()
        .zip(xb)
        .zip(w0_full.chunks_exact(4))
        .zip(w1_full.chunks_exact(4))
    {
        let (xa, xb) = (xa as u32, xb as u32);
        let (q0, q1) = (weight_pair(q0), weight_pair(q1));
        a0 = dual_mac(a0, xa, q0);
        a1 = dual_mac(a1, xb, q0);
        a2 = dual_mac(a2, xa, q1);
        a3 = dual_mac(a3, xb, q1);
    }
    // An odd fan-in leaves one weight per row and one input (low half) per field.
    if let (Some(&xa), Some(&xb)) = (xa.get(full), xb.get(full))
        && !w0_tail.is_empty()
    {
        let (xa, xb) = (xa as u32, xb as u32);
        let (q0, q1) = (weight_pair(w0_tail), weight_pair(w1_tail));
        a0 = dual_mac(a0, xa, q0);
        a1 = dual_mac(a1, xb, q0);
        a2 = dual_mac(a2, xa, q1);
        a3 = dual_mac(a3, xb, q1);
    }
    [a0, a1, a2, a3]
}

/// [`dot2x2_i32`] with `i64` accumulators, for layers whose `i32` bound parsing could not prove:
/// one field against two weight rows, `[w0·x, w1·x]`. One pixel at a time because four 64-bit
/// accumulators (eight registers) with the streams would not fit Thumb's registers and spill.
#[inline(never)]
fn dot2_wide(x: &[i32], w0: &[u8], w1: &[u8], b0: i64, b1: i64) -> [i64; 2] {
    let (mut a0, mut a1) = (b0, b1);
    let full = w0.len() / 4;
    let (w0_full, w0_tail) = w0.split_at(4 * full);
    let (w1_full, w1_tail) = w1.split_at((4 * full).min(w1.len()));
    for ((&x, q0), q1) in x
        .iter()
        .zip(w0_full.chunks_exact(4))
        .zip(w1_full.chunks_exact(4))
    {
        a0 = dual_mac_wide(a0, x as u32, weight_pair(q0));
        a1 = dual_mac_wide(a1, x as u32, weight_pair(q1));
    }
    if let Some(&x) = x.get(full)
        && !w0_tail.is_empty()
    {
        a0 = dual_mac_wide(a0, x as u32, weight_pair(w0_tail));
        a1 = dual_mac_wide(a1, x as u32, weight_pair(w1_tail));
    }
    [a0, a1]
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
                // Only `i16` weights reach this kernel (`conv2d` sends `i8` layers elsewhere).
                let mut taps = weights
                    .as_bytes()
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]));
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
///
/// Only the output pixels in `pixels` (row-major indices into the output plane) are computed.
fn conv2d_pixel_pairs(
    c: &Conv2d<'_>,
    ins: Shape,
    outs: Shape,
    input: &[i32],
    output: &mut [i32],
    scratch: &mut [i32],
    pixels: core::ops::Range<usize>,
) {
    let (h, w) = (ins.height as usize, ins.width as usize);
    let ow = outs.width as usize;
    let plane = h * w;
    let out_plane = outs.plane();
    let (kh, kw, s, p) = (c.kernel_h, c.kernel_w, c.stride, c.padding);
    let fan_in = c.fan_in();
    let weights = c.weights.as_bytes();
    let wb = c.weights.width().bytes();
    let Some(field) = scratch.get_mut(..fan_in) else {
        return;
    };
    for pixel in pixels.start..pixels.end.min(out_plane) {
        let (oy, ox) = (pixel / ow, pixel % ow);
        {
            gather(field, input, plane, w, h, kh, kw, oy * s, ox * s, p);
            let mut oc = 0;
            while oc < c.out_channels {
                let pair = oc + 1 < c.out_channels;
                let w0 = weights
                    .get(wb * oc * fan_in..wb * (oc + 1) * fan_in)
                    .unwrap_or(&[]);
                // A lone last channel pairs with itself; its second result is dropped.
                let w1 = if pair {
                    weights
                        .get(wb * (oc + 1) * fan_in..wb * (oc + 2) * fan_in)
                        .unwrap_or(&[])
                } else {
                    w0
                };
                let (b0, b1) = (c.bias_at(oc) as i64, c.bias_at(oc + 1) as i64);
                let (a0, a1) = if wb == 1 {
                    dot2::<1>(field, w0, w1, b0, b1)
                } else {
                    dot2::<2>(field, w0, w1, b0, b1)
                };
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

/// Two dot products sharing one input run: `(a0 + Σ w0·x, a1 + Σ w1·x)`, weights of `W` bytes
/// (little-endian `i16` for 2, `i8` for 1). Kept out of line so its three streams and two
/// accumulators get all the registers.
#[inline(never)]
fn dot2<const W: usize>(xs: &[i32], w0: &[u8], w1: &[u8], mut a0: i64, mut a1: i64) -> (i64, i64) {
    let weight = |q: &[u8]| {
        if W == 1 {
            q[0] as i8 as i64
        } else {
            i16::from_le_bytes([q[0], q[1]]) as i64
        }
    };
    for ((&x, q0), q1) in xs.iter().zip(w0.chunks_exact(W)).zip(w1.chunks_exact(W)) {
        let x = x as i64;
        a0 += weight(q0) * x;
        a1 += weight(q1) * x;
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

/// `a + Σ w·x` over weights of `W` bytes (see [`dot2`]).
#[inline(always)]
fn dot1<const W: usize>(xs: &[i32], ws: &[u8], mut a: i64) -> i64 {
    for (&x, q) in xs.iter().zip(ws.chunks_exact(W)) {
        let wv = if W == 1 {
            q[0] as i8 as i64
        } else {
            i16::from_le_bytes([q[0], q[1]]) as i64
        };
        a += wv * x as i64;
    }
    a
}

/// Fully connected layer: one `i64` dot product per output.
pub(crate) fn linear(l: &Linear<'_>, input: &[i32], output: &mut [i32]) {
    let n = l.in_features;
    let bytes = l.weights.as_bytes();
    let wb = l.weights.width().bytes();
    for (o, out) in output.iter_mut().enumerate() {
        let row = bytes.get(wb * o * n..wb * (o + 1) * n).unwrap_or(&[]);
        let bias = l.bias_at(o) as i64;
        let acc = if wb == 1 {
            dot1::<1>(input, row, bias)
        } else {
            dot1::<2>(input, row, bias)
        };
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
    if kernel == 2 && stride == 2 {
        avg_pool_2x2(w, ow, ins, outs, input, output);
        return;
    }
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

/// The common 2x2 window with stride 2, walking two input rows in step: the same result as
/// the general loop ([`pool_mean`] of a 4-element sum is a shift by 2), without its per-window
/// slicing. The mean of four `i32` values fits `i32`, so nothing saturates.
fn avg_pool_2x2(w: usize, ow: usize, ins: Shape, outs: Shape, input: &[i32], output: &mut [i32]) {
    for (in_plane, out_plane) in input
        .chunks_exact(ins.plane())
        .zip(output.chunks_exact_mut(outs.plane()))
    {
        for (rows, out_row) in in_plane
            .chunks_exact(2 * w)
            .zip(out_plane.chunks_exact_mut(ow))
        {
            let (top, bottom) = rows.split_at(w);
            for ((t, b), out) in top
                .chunks_exact(2)
                .zip(bottom.chunks_exact(2))
                .zip(out_row.iter_mut())
            {
                let sum = t[0] as i64 + t[1] as i64 + b[0] as i64 + b[1] as i64;
                *out = ((sum + 2) >> 2) as i32;
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

    /// A xorshift64 stream: deterministic test cases without a dependency.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// A random convolution geometry `(cin, cout, k, p, s, ins, outs)`: up to `max_cin` input
    /// channels, kernels 1 to 3, any padding below the kernel, strides 1 and 2, and up to
    /// `extra` rows and columns beyond the smallest input.
    fn random_geometry(
        next: &mut impl FnMut() -> u64,
        max_cin: u64,
        extra: u64,
    ) -> (usize, usize, usize, usize, usize, Shape, Shape) {
        let cin = 1 + (next() % max_cin) as usize;
        let cout = 1 + (next() % 5) as usize;
        let k = 1 + (next() % 3) as usize;
        let p = (next() % k as u64) as usize;
        let s = 1 + (next() % 2) as usize;
        let h = k.saturating_sub(2 * p).max(1) + (next() % extra) as usize;
        let w = k.saturating_sub(2 * p).max(1) + (next() % extra) as usize;
        let ins = Shape::new(cin as u16, h as u16, w as u16);
        let outs = Shape::new(
            cout as u16,
            ((h + 2 * p - k) / s + 1) as u16,
            ((w + 2 * p - k) / s + 1) as u16,
        );
        (cin, cout, k, p, s, ins, outs)
    }

    /// `n` inputs, mostly in the `i16` range with both extremes; with `wide`, a few beyond it.
    fn random_inputs(next: &mut impl FnMut() -> u64, n: usize, wide: bool) -> std::vec::Vec<i32> {
        (0..n)
            .map(|_| match next() % 16 {
                0 => -32768,
                1 => 32767,
                2 if wide => (next() % 2_000_001) as i32 - 1_000_000,
                _ => (next() % 65_536) as i32 - 32768,
            })
            .collect()
    }

    /// The parse-time bound, stated here independently of `model`: every output channel has
    /// `|bias| + 2^15 · Σ|w| + 2^(s-1) < 2^31`.
    fn narrow_bound_holds(conv: &Conv2d) -> bool {
        let frac = conv.weight_frac_bits;
        (0..conv.out_channels).all(|oc| {
            let l1: u128 = (0..conv.fan_in())
                .map(|i| conv.weights.get(oc * conv.fan_in() + i).unsigned_abs() as u128)
                .sum();
            let round = if frac == 0 { 0 } else { 1u128 << (frac - 1) };
            l1 * (1 << 15) + conv.bias_at(oc).unsigned_abs() as u128 + round < 1 << 31
        })
    }

    /// Both convolution loop structures give identical results on every geometry.
    #[test]
    fn row_tiles_and_pixel_pairs_agree() {
        let mut next = xorshift(0x1234_5678_u64);
        for _ in 0..300 {
            let (cin, cout, k, p, s, ins, outs) = random_geometry(&mut next, 3, 40);
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
                weights: Weights::i16(&weight_bytes),
                bias: Some(Bias(&bias_bytes)),
            };
            let input: std::vec::Vec<i32> = (0..ins.elements())
                .map(|_| (next() % 200_001) as i32 - 100_000)
                .collect();
            let mut tiles = std::vec![0; outs.elements()];
            let mut pairs = std::vec![1; outs.elements()];
            let mut scratch = std::vec![7; conv.fan_in()];
            conv2d_row_tiles(&conv, ins, outs, &input, &mut tiles);
            conv2d_pixel_pairs(
                &conv,
                ins,
                outs,
                &input,
                &mut pairs,
                &mut scratch,
                0..outs.plane(),
            );
            assert_eq!(
                tiles, pairs,
                "cin {cin} cout {cout} k {k} p {p} s {s} in {ins:?}"
            );
        }
    }

    /// Exact reference: `i128` accumulation, then the rounding rule of `fixed::requantize`.
    fn reference_conv(
        c: &Conv2d<'_>,
        ins: Shape,
        outs: Shape,
        input: &[i32],
    ) -> std::vec::Vec<i32> {
        let (h, w) = (ins.height as i64, ins.width as i64);
        let mut out = std::vec::Vec::new();
        for oc in 0..c.out_channels {
            for oy in 0..outs.height as i64 {
                for ox in 0..outs.width as i64 {
                    let mut acc = c.bias_at(oc) as i128;
                    for ic in 0..c.in_channels {
                        for ky in 0..c.kernel_h {
                            for kx in 0..c.kernel_w {
                                let iy = oy * c.stride as i64 + ky as i64 - c.padding as i64;
                                let ix = ox * c.stride as i64 + kx as i64 - c.padding as i64;
                                if iy < 0 || ix < 0 || iy >= h || ix >= w {
                                    continue;
                                }
                                let x = input[(ic as i64 * h * w + iy * w + ix) as usize];
                                acc += c.weight(oc, ic, ky, kx) as i128 * x as i128;
                            }
                        }
                    }
                    let s = c.weight_frac_bits;
                    let r = if s == 0 {
                        acc
                    } else {
                        (acc + (1i128 << (s - 1))) >> s
                    };
                    out.push(r.clamp(i32::MIN as i128, i32::MAX as i128) as i32);
                }
            }
        }
        out
    }

    /// Every variant of the packed kernel (i32 accumulators, i64 accumulators, inputs beyond
    /// i16 falling back per pixel pair; odd fan-ins, odd channel and pixel counts) equals the
    /// exact `i128` reference. `narrow_acc` is only set where the parse-time bound holds, as
    /// parsing does; the i64 variant runs on every case too.
    #[test]
    fn packed_kernels_match_i128_reference() {
        let mut next = xorshift(0x0DDB_1A5E_5BAD_5EEDu64);
        let mut seen = [0usize; 3];
        for case in 0..600 {
            let (cin, cout, k, p, s, ins, outs) = random_geometry(&mut next, 4, 9);
            // Small weights keep the i32 bound; full-range ones break it.
            let wmax: u64 = if case % 3 == 0 { 65_536 } else { 512 };
            let weight_bytes: std::vec::Vec<u8> = (0..cout * cin * k * k)
                .map(|_| ((next() % wmax) as i64 - (wmax / 2) as i64).clamp(-32768, 32767) as i16)
                .flat_map(i16::to_le_bytes)
                .collect();
            let bias_bytes: std::vec::Vec<u8> = (0..cout)
                .flat_map(|_| ((next() % 20001) as i32 - 10000).to_le_bytes())
                .collect();
            let frac = (next() % 16) as u8;
            let conv = Conv2d {
                in_channels: cin,
                out_channels: cout,
                kernel_h: k,
                kernel_w: k,
                stride: s,
                padding: p,
                weight_frac_bits: frac,
                weights: Weights::i16(&weight_bytes),
                bias: Some(Bias(&bias_bytes)),
            };
            // Mostly i16 inputs (with both extremes); every fourth case has a few beyond i16.
            let wide_inputs = case % 4 == 1;
            let input = random_inputs(&mut next, ins.elements(), wide_inputs);
            let narrow_ok = narrow_bound_holds(&conv);
            let expected = reference_conv(&conv, ins, outs, &input);
            let mut variants = std::vec![false];
            if narrow_ok {
                variants.push(true);
            }
            for narrow in variants {
                let mut got = std::vec![i32::MIN + 7; outs.elements()];
                let mut scratch = std::vec![7; conv.fan_in().next_multiple_of(2)];
                conv2d_packed(&conv, ins, outs, &input, &mut got, &mut scratch, narrow);
                assert_eq!(
                    got, expected,
                    "narrow {narrow} cin {cin} cout {cout} k {k} p {p} s {s} in {ins:?} frac {frac}"
                );
                seen[narrow as usize] += 1;
            }
            seen[2] += wide_inputs as usize;
        }
        // Each variant really ran (the test would pass vacuously otherwise).
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    /// The `i8`-weight kernel against the exact `i128` reference, in every variant: `i32`
    /// accumulators (where the parse-time bound holds, as parsing decides), `i64` accumulators,
    /// inputs beyond `i16` falling back per pixel pair, and saturation to `i16` outputs
    /// (`act16`); fan-ins that are and are not multiples of four, odd channel and pixel counts.
    #[test]
    fn i8_kernels_match_i128_reference() {
        let mut next = xorshift(0x5EED_0F18_8B17u64);
        // [narrow acc, wide acc, wide inputs, act16, a result saturated by act16]
        let mut seen = [0usize; 5];
        for case in 0..800 {
            let (cin, cout, k, p, s, ins, outs) = random_geometry(&mut next, 5, 9);
            let weight_bytes: std::vec::Vec<u8> = (0..cout * cin * k * k)
                .map(|_| match next() % 8 {
                    0 => 0x80,
                    1 => 0x7f,
                    _ => next() as u8,
                })
                .collect();
            // Every fifth case has biases too large for the i32 bound.
            let bias_range: u64 = if case % 5 == 0 { 1 << 31 } else { 20_001 };
            let bias_bytes: std::vec::Vec<u8> = (0..cout)
                .map(|_| ((next() % bias_range) as i64 - (bias_range / 2) as i64) as i32)
                .flat_map(i32::to_le_bytes)
                .collect();
            let frac = (next() % 16) as u8;
            let conv = Conv2d {
                in_channels: cin,
                out_channels: cout,
                kernel_h: k,
                kernel_w: k,
                stride: s,
                padding: p,
                weight_frac_bits: frac,
                weights: Weights::i8(&weight_bytes),
                bias: Some(Bias(&bias_bytes)),
            };
            let wide_inputs = case % 4 == 1;
            let input = random_inputs(&mut next, ins.elements(), wide_inputs);
            let narrow_ok = narrow_bound_holds(&conv);
            let mut variants = std::vec![false];
            if narrow_ok {
                variants.push(true);
            }
            for narrow in variants {
                for act16 in [false, true] {
                    // With 16-bit activations the engine hands every kernel i16 inputs.
                    let input: std::vec::Vec<i32> = if act16 {
                        input.iter().map(|&x| x.clamp(-32768, 32767)).collect()
                    } else {
                        input.clone()
                    };
                    let expected = reference_conv(&conv, ins, outs, &input);
                    let want: std::vec::Vec<i32> = expected
                        .iter()
                        .map(|&v| if act16 { v.clamp(-32768, 32767) } else { v })
                        .collect();
                    let mut got = std::vec![i32::MIN + 7; outs.elements()];
                    let mut scratch = std::vec![7; scratch_words(&conv)];
                    conv2d(
                        &conv,
                        ins,
                        outs,
                        &input,
                        &mut got,
                        &mut scratch,
                        narrow,
                        act16,
                    );
                    assert_eq!(
                        got, want,
                        "narrow {narrow} act16 {act16} cin {cin} cout {cout} k {k} p {p} s {s} \
                         in {ins:?} frac {frac}"
                    );
                    seen[if narrow { 0 } else { 1 }] += 1;
                    seen[3] += act16 as usize;
                    seen[4] += (act16 && want != expected) as usize;
                }
            }
            seen[2] += wide_inputs as usize;
        }
        // Each variant really ran (the test would pass vacuously otherwise).
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
