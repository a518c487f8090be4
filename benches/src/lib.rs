//! Reference models for the benchmarks: the shapes of the networks the project targets, with
//! random weights at realistic scales (the engine's speed does not depend on the values, only on
//! the shapes and the ReLU masks).
//!
//! * [`lenet`]: LeNet-style CNN on 1×28×28 (conv 5×5 ×6, pool, conv 5×5 ×16, pool, 3 linear).
//! * [`resnet_cifar`]: CIFAR ResNet-(6n+2) at a given width on 3×32×32, 1×1 projection shortcuts.
//! * [`conv_layer`]: one 3×3 convolution, for kernel throughput.
//!
//! Each takes the fraction of ReLUs to keep, so dense and linearized variants share weights.

use pi_core::Shape;
use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};

/// Activation frac bits used by every fixture.
pub const ACTIVATION_FRAC_BITS: u8 = 10;

/// Deterministic non-cryptographic generator for benchmark weights (splitmix64).
pub struct WeightRng(u64);

impl WeightRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// `true` with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Quantizes He-uniform weights for `fan_in` inputs the way the exporter does: the largest
/// weight frac bits (at most 15) that keep every weight in `i16`.
fn quantized_weights(rng: &mut WeightRng, count: usize, fan_in: usize) -> (u8, Vec<i16>) {
    let bound = (6.0 / fan_in as f64).sqrt();
    let real: Vec<f64> = (0..count).map(|_| rng.symmetric() * bound).collect();
    let max = real.iter().fold(0.0f64, |m, w| m.max(w.abs())).max(1e-9);
    let frac = (0..=15u8)
        .rev()
        .find(|&s| max * f64::from(1u32 << s) <= 32767.0)
        .unwrap_or(0);
    let scale = f64::from(1u32 << frac);
    (
        frac,
        real.iter().map(|w| (w * scale).round() as i16).collect(),
    )
}

fn conv(
    rng: &mut WeightRng,
    input: Option<usize>,
    cin: usize,
    cout: u16,
    k: u8,
    stride: u8,
) -> LayerSpec {
    let fan_in = cin * (k as usize).pow(2);
    let (frac, weights) = quantized_weights(rng, cout as usize * fan_in, fan_in);
    let op = OpSpec::Conv2d {
        out_channels: cout,
        kernel_h: k,
        kernel_w: k,
        stride,
        padding: k / 2,
        weight_frac_bits: frac,
        weights,
        bias: Some(vec![0; cout as usize]),
    };
    LayerSpec { input, op }
}

fn linear(rng: &mut WeightRng, n_in: usize, n_out: u32) -> LayerSpec {
    let (frac, weights) = quantized_weights(rng, n_in * n_out as usize, n_in);
    LayerSpec::new(OpSpec::Linear {
        out_features: n_out,
        weight_frac_bits: frac,
        weights,
        bias: Some(vec![0; n_out as usize]),
    })
}

fn relu(rng: &mut WeightRng, elements: usize, keep: f64) -> LayerSpec {
    let mask = if keep >= 1.0 {
        MaskSpec::All
    } else {
        MaskSpec::Elements((0..elements).map(|_| rng.bernoulli(keep)).collect())
    };
    LayerSpec::new(OpSpec::MaskedRelu { mask })
}

/// LeNet-style CNN on 1×28×28 with `keep` of its ReLUs (1.0 = dense).
pub fn lenet(keep: f64) -> ModelSpec {
    let rng = &mut WeightRng::new(28);
    let mut layers = vec![conv(rng, None, 1, 6, 5, 1)];
    layers[0].op = match layers[0].op.clone() {
        OpSpec::Conv2d {
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            weight_frac_bits,
            weights,
            bias,
            ..
        } => OpSpec::Conv2d {
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            padding: 0,
            weight_frac_bits,
            weights,
            bias,
        },
        op => op,
    };
    layers.push(relu(rng, 6 * 24 * 24, keep));
    layers.push(LayerSpec::new(OpSpec::AvgPool2d {
        kernel: 2,
        stride: 2,
    }));
    let mut c2 = conv(rng, None, 6, 16, 5, 1);
    if let OpSpec::Conv2d { padding, .. } = &mut c2.op {
        *padding = 0;
    }
    layers.push(c2);
    layers.push(relu(rng, 16 * 8 * 8, keep));
    layers.push(LayerSpec::new(OpSpec::AvgPool2d {
        kernel: 2,
        stride: 2,
    }));
    layers.push(LayerSpec::new(OpSpec::Flatten));
    layers.push(linear(rng, 256, 120));
    layers.push(relu(rng, 120, keep));
    layers.push(linear(rng, 120, 84));
    layers.push(relu(rng, 84, keep));
    layers.push(linear(rng, 84, 10));
    ModelSpec {
        activation_frac_bits: ACTIVATION_FRAC_BITS,
        input: Shape::new(1, 28, 28),
        layers,
    }
}

/// CIFAR ResNet with `blocks_per_stage` basic blocks per stage (ResNet-20: 3), base `width`, on
/// 3×32×32, keeping `keep` of its ReLUs.
pub fn resnet_cifar(blocks_per_stage: usize, width: u16, keep: f64) -> ModelSpec {
    let rng = &mut WeightRng::new(20);
    let mut layers = Vec::new();
    let mut shape = Shape::new(3, 32, 32);
    let push = |layers: &mut Vec<LayerSpec>, layer: LayerSpec| {
        layers.push(layer);
        layers.len() // id of the tensor just written
    };
    push(&mut layers, conv(rng, None, 3, width, 3, 1));
    shape = Shape::new(width, shape.height, shape.width);
    let mut current = push(&mut layers, relu(rng, shape.elements(), keep));
    for stage in 0..3u32 {
        let channels = width << stage;
        for block in 0..blocks_per_stage {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let block_input = current;
            let in_channels = shape.channels as usize;
            let out_shape = Shape::new(
                channels,
                shape.height / stride as u16,
                shape.width / stride as u16,
            );
            push(
                &mut layers,
                conv(rng, Some(block_input), in_channels, channels, 3, stride),
            );
            push(&mut layers, relu(rng, out_shape.elements(), keep));
            let main = push(
                &mut layers,
                conv(rng, None, channels as usize, channels, 3, 1),
            );
            let shortcut = if stride == 1 && in_channels == channels as usize {
                block_input
            } else {
                push(
                    &mut layers,
                    conv(rng, Some(block_input), in_channels, channels, 1, stride),
                )
            };
            push(
                &mut layers,
                LayerSpec::reading(main, OpSpec::Add { other: shortcut }),
            );
            current = push(&mut layers, relu(rng, out_shape.elements(), keep));
            shape = out_shape;
        }
    }
    layers.push(LayerSpec::new(OpSpec::GlobalAvgPool));
    layers.push(linear(rng, shape.channels as usize, 10));
    ModelSpec {
        activation_frac_bits: ACTIVATION_FRAC_BITS,
        input: Shape::new(3, 32, 32),
        layers,
    }
}

/// One 3×3 convolution (padding 1) from `channels` to `channels` on a `size`×`size` map.
pub fn conv_layer(channels: u16, size: u16) -> ModelSpec {
    let rng = &mut WeightRng::new(3);
    ModelSpec {
        activation_frac_bits: ACTIVATION_FRAC_BITS,
        input: Shape::new(channels, size, size),
        layers: vec![conv(rng, None, channels as usize, channels, 3, 1)],
    }
}

/// A deterministic input for `model` (values in about ±2).
pub fn input_for(spec: &ModelSpec) -> Vec<i32> {
    let rng = &mut WeightRng::new(7);
    (0..spec.input.elements())
        .map(|_| (rng.symmetric() * 2.0 * f64::from(1u32 << ACTIVATION_FRAC_BITS)) as i32)
        .collect()
}

/// The benchmark cases by name: (name, model spec).
pub fn cases() -> Vec<(&'static str, ModelSpec)> {
    vec![
        ("conv3x3_16ch_32x32", conv_layer(16, 32)),
        ("conv3x3_64ch_16x16", conv_layer(64, 16)),
        ("lenet_dense", lenet(1.0)),
        ("lenet_10pct_relus", lenet(0.1)),
        ("resnet20_w16_dense", resnet_cifar(3, 16, 1.0)),
        ("resnet20_w16_10pct_relus", resnet_cifar(3, 16, 0.1)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use pi_core::Model;

    #[test]
    fn fixtures_parse_and_have_the_expected_relu_counts() {
        let lenet = lenet(1.0).to_bytes().unwrap();
        assert_eq!(
            Model::parse(&lenet).unwrap().relu_count().total,
            6 * 576 + 16 * 64 + 120 + 84
        );
        let resnet = resnet_cifar(3, 16, 1.0).to_bytes().unwrap();
        let model = Model::parse(&resnet).unwrap();
        // Stem 16·32·32, then 3 stages × 3 blocks × 2 ReLUs at 16·32·32, 32·16·16, 64·8·8.
        assert_eq!(
            model.relu_count().total,
            16384 + 6 * 16384 + 6 * 8192 + 6 * 4096
        );
        assert_eq!(model.output_shape().elements(), 10);
        let linearized = Model::parse(&resnet_cifar(3, 16, 0.1).to_bytes().unwrap())
            .unwrap()
            .relu_count();
        assert!(linearized.kept * 8 < linearized.total && linearized.kept * 12 > linearized.total);
    }

    #[test]
    fn every_case_runs() {
        for (name, spec) in cases() {
            let bytes = spec.to_bytes().unwrap();
            let model = Model::parse(&bytes).unwrap();
            let mut arena = vec![0; model.arena_words()];
            let out = model.infer(&input_for(&spec), &mut arena).unwrap();
            assert!(!out.is_empty(), "{name}");
        }
    }
}
