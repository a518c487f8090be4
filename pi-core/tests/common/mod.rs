//! Shared test helpers: a random valid-model generator and a naive reference evaluator written
//! independently of the engine (i128 arithmetic, explicit index maths, no tiling, no planning).
#![allow(dead_code)]

use pi_core::Shape;
use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};

/// splitmix64: deterministic test data from a proptest-chosen seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

fn random_weights(rng: &mut Rng, n: usize, magnitude: i64) -> Vec<i16> {
    (0..n)
        .map(|_| rng.range(-magnitude, magnitude) as i16)
        .collect()
}

fn random_bias(rng: &mut Rng, n: usize) -> Option<Vec<i32>> {
    rng.chance(70).then(|| {
        (0..n)
            .map(|_| rng.range(-(1 << 20), 1 << 20) as i32)
            .collect()
    })
}

fn random_mask(rng: &mut Rng, len: usize) -> MaskSpec {
    match rng.range(0, 3) {
        0 => MaskSpec::All,
        1 => MaskSpec::None,
        2 => MaskSpec::Elements((0..len).map(|_| rng.chance(50)).collect()),
        // Sparse: picks the index-list encoding for larger tensors.
        _ => MaskSpec::Elements((0..len).map(|_| rng.chance(3)).collect()),
    }
}

/// A random model that `to_bytes` accepts: convs, pools, masked ReLUs, residual adds, then a
/// flatten or global pool and linear layers.
pub fn random_spec(rng: &mut Rng) -> ModelSpec {
    let input = Shape::new(
        rng.range(1, 4) as u16,
        rng.range(1, 9) as u16,
        rng.range(1, 9) as u16,
    );
    let mut shapes = vec![input];
    let mut layers = Vec::new();
    let spatial_layers = rng.range(1, 7);
    for _ in 0..spatial_layers {
        let cur = *shapes.last().unwrap();
        let (c, h, w) = (cur.channels, cur.height, cur.width);
        let choice = rng.range(0, 9);
        let (op, out) = match choice {
            0..=3 => {
                let k = rng.range(1, 3.min(h.min(w) as i64 + 2)) as u8;
                let p = rng.range(0, k as i64 - 1) as u8;
                let s = rng.range(1, 2) as u8;
                let (hp, wp) = (h as i64 + 2 * p as i64, w as i64 + 2 * p as i64);
                if hp < k as i64 || wp < k as i64 {
                    continue;
                }
                let oc = rng.range(1, 4) as u16;
                let out = Shape::new(
                    oc,
                    ((hp - k as i64) / s as i64 + 1) as u16,
                    ((wp - k as i64) / s as i64 + 1) as u16,
                );
                let magnitude = [1, 100, 32767][rng.range(0, 2) as usize];
                let op = OpSpec::Conv2d {
                    out_channels: oc,
                    kernel_h: k,
                    kernel_w: k,
                    stride: s,
                    padding: p,
                    weight_frac_bits: rng.range(0, 14) as u8,
                    weights: random_weights(
                        rng,
                        oc as usize * c as usize * (k as usize).pow(2),
                        magnitude,
                    ),
                    bias: random_bias(rng, oc as usize),
                };
                (op, out)
            }
            4..=5 => (
                OpSpec::MaskedRelu {
                    mask: random_mask(rng, cur.elements()),
                },
                cur,
            ),
            6 => {
                let k = rng.range(1, 2) as u8;
                if h < k as u16 || w < k as u16 {
                    continue;
                }
                let s = rng.range(1, 2) as u8;
                let out = Shape::new(
                    c,
                    (h - k as u16) / s as u16 + 1,
                    (w - k as u16) / s as u16 + 1,
                );
                (
                    OpSpec::AvgPool2d {
                        kernel: k,
                        stride: s,
                    },
                    out,
                )
            }
            _ => {
                // Residual: add an earlier tensor of the same shape, if any.
                let candidates: Vec<usize> =
                    (0..shapes.len()).filter(|&t| shapes[t] == cur).collect();
                let other = candidates[rng.range(0, candidates.len() as i64 - 1) as usize];
                (OpSpec::Add { other }, cur)
            }
        };
        layers.push(LayerSpec::new(op));
        shapes.push(out);
    }
    let cur = *shapes.last().unwrap();
    let head = if rng.chance(50) {
        OpSpec::Flatten
    } else {
        OpSpec::GlobalAvgPool
    };
    let features = if head == OpSpec::Flatten {
        cur.elements()
    } else {
        cur.channels as usize
    };
    layers.push(LayerSpec::new(head));
    let hidden = rng.range(1, 6) as usize;
    layers.push(LayerSpec::new(OpSpec::Linear {
        out_features: hidden as u32,
        weight_frac_bits: rng.range(0, 14) as u8,
        weights: random_weights(rng, hidden * features, 3000),
        bias: random_bias(rng, hidden),
    }));
    if rng.chance(50) {
        layers.push(LayerSpec::new(OpSpec::MaskedRelu {
            mask: random_mask(rng, hidden),
        }));
        let out = rng.range(1, 5) as usize;
        layers.push(LayerSpec::new(OpSpec::Linear {
            out_features: out as u32,
            weight_frac_bits: rng.range(0, 14) as u8,
            weights: random_weights(rng, out * hidden, 3000),
            bias: random_bias(rng, out),
        }));
    }
    ModelSpec {
        activation_frac_bits: rng.range(0, 12) as u8,
        input,
        layers,
    }
}

pub fn random_input(rng: &mut Rng, n: usize) -> Vec<i32> {
    let magnitude = [1 << 8, 1 << 16, i32::MAX as i64][rng.range(0, 2) as usize];
    (0..n)
        .map(|_| rng.range(-magnitude, magnitude) as i32)
        .collect()
}

fn sat(v: i128) -> i32 {
    v.clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

/// The documented rounding: `floor((acc + 2^(s-1)) / 2^s)`, saturated.
fn round_shift(acc: i128, s: u32) -> i32 {
    if s == 0 {
        sat(acc)
    } else {
        sat((acc + (1i128 << (s - 1))).div_euclid(1i128 << s))
    }
}

/// The mean `sum / n` rounded half up: `floor((2·sum + n) / (2n))`, exact rational rounding.
fn pool_mean(sum: i128, n: i128) -> i32 {
    sat((2 * sum + n).div_euclid(2 * n))
}

/// Evaluates a spec the slow, obvious way (32-bit activations).
#[allow(dead_code)]
pub fn reference_eval(spec: &ModelSpec, input: &[i32]) -> Vec<i32> {
    reference_eval_with(spec, input, 32)
}

/// [`reference_eval`] with `activation_bits` 16 or 32: with 16, the input and every tensor are
/// saturated to the `i16` range (format v2's rule), here after each layer's exact result.
pub fn reference_eval_with(spec: &ModelSpec, input: &[i32], activation_bits: u8) -> Vec<i32> {
    let narrow = |v: Vec<i32>| -> Vec<i32> {
        if activation_bits == 16 {
            v.into_iter().map(|x| x.clamp(-32768, 32767)).collect()
        } else {
            v
        }
    };
    let mut tensors: Vec<(Shape, Vec<i32>)> = vec![(spec.input, narrow(input.to_vec()))];
    for (index, layer) in spec.layers.iter().enumerate() {
        let (shape, x) = tensors[layer.input.unwrap_or(index)].clone();
        let (c, h, w) = (
            shape.channels as usize,
            shape.height as usize,
            shape.width as usize,
        );
        let out = match &layer.op {
            OpSpec::Conv2d {
                out_channels,
                kernel_h,
                kernel_w,
                stride,
                padding,
                weight_frac_bits,
                weights,
                bias,
            } => {
                let (oc_n, kh, kw, s, p) = (
                    *out_channels as usize,
                    *kernel_h as usize,
                    *kernel_w as usize,
                    *stride as usize,
                    *padding as usize,
                );
                let oh = (h + 2 * p - kh) / s + 1;
                let ow = (w + 2 * p - kw) / s + 1;
                let mut y = vec![0; oc_n * oh * ow];
                for oc in 0..oc_n {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc: i128 = bias.as_ref().map_or(0, |b| b[oc] as i128);
                            for ic in 0..c {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * s + ky) as i64 - p as i64;
                                        let ix = (ox * s + kx) as i64 - p as i64;
                                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                            continue;
                                        }
                                        let wv =
                                            weights[((oc * c + ic) * kh + ky) * kw + kx] as i128;
                                        acc += wv
                                            * x[(ic * h + iy as usize) * w + ix as usize] as i128;
                                    }
                                }
                            }
                            y[(oc * oh + oy) * ow + ox] =
                                round_shift(acc, *weight_frac_bits as u32);
                        }
                    }
                }
                (Shape::new(oc_n as u16, oh as u16, ow as u16), y)
            }
            OpSpec::Linear {
                out_features,
                weight_frac_bits,
                weights,
                bias,
            } => {
                let n = x.len();
                let y = (0..*out_features as usize)
                    .map(|o| {
                        let acc: i128 = bias.as_ref().map_or(0, |b| b[o] as i128)
                            + (0..n)
                                .map(|i| weights[o * n + i] as i128 * x[i] as i128)
                                .sum::<i128>();
                        round_shift(acc, *weight_frac_bits as u32)
                    })
                    .collect();
                (Shape::vector(*out_features as u16), y)
            }
            OpSpec::MaskedRelu { mask } => {
                let kept = |i: usize| match mask {
                    MaskSpec::All => true,
                    MaskSpec::None => false,
                    MaskSpec::Elements(e) => e[i],
                };
                let y = x
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if kept(i) { v.max(0) } else { v })
                    .collect();
                (shape, y)
            }
            OpSpec::AvgPool2d { kernel, stride } => {
                let (k, s) = (*kernel as usize, *stride as usize);
                let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
                let mut y = vec![0; c * oh * ow];
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut sum: i128 = 0;
                            for ky in 0..k {
                                for kx in 0..k {
                                    sum += x[(ch * h + oy * s + ky) * w + ox * s + kx] as i128;
                                }
                            }
                            y[(ch * oh + oy) * ow + ox] = pool_mean(sum, (k * k) as i128);
                        }
                    }
                }
                (Shape::new(c as u16, oh as u16, ow as u16), y)
            }
            OpSpec::GlobalAvgPool => {
                let y = (0..c)
                    .map(|ch| {
                        pool_mean(
                            x[ch * h * w..(ch + 1) * h * w]
                                .iter()
                                .map(|&v| v as i128)
                                .sum(),
                            (h * w) as i128,
                        )
                    })
                    .collect();
                (Shape::vector(c as u16), y)
            }
            OpSpec::Add { other } => {
                let b = &tensors[*other].1;
                (
                    shape,
                    x.iter()
                        .zip(b)
                        .map(|(&a, &b)| sat(a as i128 + b as i128))
                        .collect(),
                )
            }
            OpSpec::Flatten => (Shape::vector(x.len() as u16), x),
        };
        tensors.push((out.0, narrow(out.1)));
    }
    tensors.pop().unwrap().1
}

/// A random v2 encoding of `spec`, and the spec it describes: 16- or 32-bit activations, and
/// each conv or linear layer, at random, with its weights saturated to `i8` and stored so.
#[allow(dead_code)]
pub fn random_v2(rng: &mut Rng, spec: &ModelSpec) -> (ModelSpec, pi_core::spec::Encoding) {
    let mut spec = spec.clone();
    let bits = if rng.chance(50) { 16 } else { 32 };
    let mut narrow = vec![false; spec.layers.len()];
    for (i, layer) in spec.layers.iter_mut().enumerate() {
        if let OpSpec::Conv2d { weights, .. } | OpSpec::Linear { weights, .. } = &mut layer.op
            && rng.chance(60)
        {
            // Mostly in range, with both extremes; saturate the rest.
            weights.iter_mut().for_each(|w| *w = (*w).clamp(-128, 127));
            narrow[i] = true;
        }
    }
    (spec, pi_core::spec::Encoding::v2(bits, narrow))
}
