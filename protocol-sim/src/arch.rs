//! Standard architectures, without weights, for `protocol-sim cost --arch`.
//!
//! Weights are all zero (the cost depends only on shapes and kept-ReLU counts). Conv layers
//! stand for conv + folded BatchNorm; every ReLU is a masked ReLU. ReLU counts follow the
//! research notes' convention (§1.2): C·H·W of every ReLU output, per image, stem ReLU included.
//!
//! | Name | Input | Graph | ReLUs |
//! |---|---|---|---|
//! | `resnet18` | 3×32×32 | CIFAR ResNet-18: 3×3 stem (64), stages (2, 2, 2, 2) of basic blocks, widths 64–512, 1×1 strided shortcuts, GAP, FC 10 | 557,056 |
//! | `resnet20` | 3×32×32 | CIFAR ResNet-20 (He et al.): stem 16, 3 stages × 3 blocks, widths 16/32/64 | 188,416 |
//! | `resnet32` | 3×32×32 | CIFAR ResNet-32: 3 stages × 5 blocks | 303,104 |
//! | `digits-cnn` | 1×8×8 | host-trainer's default: conv3×3 (16) ReLU, avgpool 2, conv3×3 (32) ReLU, avgpool 2, flatten, FC 10 | 1,536 |
//! | `lenet` | 1×28×28 | host-trainer's LeNet: conv5×5 pad 2 (32) ReLU, avgpool 2, conv5×5 (64) ReLU, avgpool 2, flatten, FC 256 ReLU, FC 10 | 31,744 |
//!
//! A basic block is conv3×3, ReLU, conv3×3, add shortcut, ReLU, as in host-trainer's `resnet`.
//! `--budget N` keeps `N` ReLUs spread over the ReLU layers in proportion to their size (the same
//! keep fraction everywhere; cost depends only on the per-layer counts).

use pi_core::Shape;
use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};

use crate::SimError;

/// Names accepted by [`spec`].
pub const NAMES: [&str; 5] = ["resnet18", "resnet20", "resnet32", "digits-cnn", "lenet"];

struct Builder {
    spec: ModelSpec,
    shapes: Vec<Shape>,
}

impl Builder {
    fn new(input: Shape) -> Self {
        Self {
            spec: ModelSpec {
                activation_frac_bits: 8,
                input,
                layers: Vec::new(),
            },
            shapes: vec![input],
        }
    }

    fn current(&self) -> usize {
        self.shapes.len() - 1
    }

    fn push_from(&mut self, from: usize, op: OpSpec, out: Shape) -> usize {
        self.spec.layers.push(LayerSpec::reading(from, op));
        self.shapes.push(out);
        self.current()
    }

    fn conv_from(&mut self, from: usize, out_ch: u16, k: u8, stride: u8, pad: u8) -> usize {
        let s = self.shapes[from];
        let dim = |d: u16| (d + 2 * pad as u16 - k as u16) / stride as u16 + 1;
        let out = Shape::new(out_ch, dim(s.height), dim(s.width));
        let n = out_ch as usize * s.channels as usize * (k as usize).pow(2);
        let op = OpSpec::Conv2d {
            out_channels: out_ch,
            kernel_h: k,
            kernel_w: k,
            stride,
            padding: pad,
            weight_frac_bits: 8,
            weights: vec![0; n],
            bias: None,
        };
        self.push_from(from, op, out)
    }

    fn conv(&mut self, out_ch: u16, k: u8, stride: u8, pad: u8) -> usize {
        self.conv_from(self.current(), out_ch, k, stride, pad)
    }

    fn relu(&mut self) -> usize {
        let s = self.shapes[self.current()];
        let op = OpSpec::MaskedRelu {
            mask: MaskSpec::All,
        };
        self.push_from(self.current(), op, s)
    }

    fn avg_pool(&mut self, k: u8) -> usize {
        let s = self.shapes[self.current()];
        let out = Shape::new(s.channels, s.height / k as u16, s.width / k as u16);
        let op = OpSpec::AvgPool2d {
            kernel: k,
            stride: k,
        };
        self.push_from(self.current(), op, out)
    }

    fn flatten(&mut self) -> usize {
        let s = self.shapes[self.current()];
        self.push_from(
            self.current(),
            OpSpec::Flatten,
            Shape::vector(s.elements() as u16),
        )
    }

    fn gap(&mut self) -> usize {
        let s = self.shapes[self.current()];
        self.push_from(
            self.current(),
            OpSpec::GlobalAvgPool,
            Shape::vector(s.channels),
        )
    }

    fn linear(&mut self, out: u32) -> usize {
        let n = self.shapes[self.current()].elements() * out as usize;
        let op = OpSpec::Linear {
            out_features: out,
            weight_frac_bits: 8,
            weights: vec![0; n],
            bias: None,
        };
        self.push_from(self.current(), op, Shape::vector(out as u16))
    }

    fn add(&mut self, main: usize, other: usize) -> usize {
        let s = self.shapes[main];
        self.push_from(main, OpSpec::Add { other }, s)
    }
}

fn resnet(blocks: &[usize], width: u16) -> ModelSpec {
    let mut b = Builder::new(Shape::new(3, 32, 32));
    b.conv(width, 3, 1, 1);
    b.relu();
    for (stage, &n) in blocks.iter().enumerate() {
        let channels = width << stage;
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let block_in = b.current();
            let in_channels = b.shapes[block_in].channels;
            b.conv(channels, 3, stride, 1);
            b.relu();
            let main = b.conv(channels, 3, 1, 1);
            let shortcut = if stride != 1 || in_channels != channels {
                b.conv_from(block_in, channels, 1, stride, 0)
            } else {
                block_in
            };
            b.add(main, shortcut);
            b.relu();
        }
    }
    b.gap();
    b.linear(10);
    b.spec
}

fn digits_cnn() -> ModelSpec {
    let mut b = Builder::new(Shape::new(1, 8, 8));
    b.conv(16, 3, 1, 1);
    b.relu();
    b.avg_pool(2);
    b.conv(32, 3, 1, 1);
    b.relu();
    b.avg_pool(2);
    b.flatten();
    b.linear(10);
    b.spec
}

fn lenet() -> ModelSpec {
    let mut b = Builder::new(Shape::new(1, 28, 28));
    b.conv(32, 5, 1, 2);
    b.relu();
    b.avg_pool(2);
    b.conv(64, 5, 1, 0);
    b.relu();
    b.avg_pool(2);
    b.flatten();
    b.linear(256);
    b.relu();
    b.linear(10);
    b.spec
}

/// The all-ReLU spec of architecture `name`.
pub fn spec(name: &str) -> Result<ModelSpec, SimError> {
    Ok(match name {
        "resnet18" => resnet(&[2, 2, 2, 2], 64),
        "resnet20" => resnet(&[3, 3, 3], 16),
        "resnet32" => resnet(&[5, 5, 5], 16),
        "digits-cnn" => digits_cnn(),
        "lenet" => lenet(),
        _ => {
            return Err(SimError::Usage(format!(
                "unknown architecture {name:?} (known: {})",
                NAMES.join(", ")
            )));
        }
    })
}

/// Sets every ReLU mask of `spec` to keep `budget` ReLUs in total (`None`: keep all), spread
/// in proportion to layer size; the first elements of each layer are the kept ones.
pub fn apply_budget(spec: &mut ModelSpec, budget: Option<u64>) -> Result<(), SimError> {
    let sizes = relu_layer_sizes(spec);
    let total: u64 = sizes.iter().map(|&(_, n)| n).sum();
    let budget = budget.unwrap_or(total);
    if budget > total {
        return Err(SimError::Usage(format!(
            "budget {budget} exceeds the architecture's {total} ReLUs"
        )));
    }
    let mut kept: Vec<u64> = sizes
        .iter()
        .map(|&(_, n)| (budget as u128 * n as u128 / total.max(1) as u128) as u64)
        .collect();
    // Hand out the rounding remainder one ReLU per layer, in order.
    let mut left = budget - kept.iter().sum::<u64>();
    for (k, &(_, n)) in kept.iter_mut().zip(&sizes) {
        if left > 0 && *k < n {
            *k += 1;
            left -= 1;
        }
    }
    for (&(layer, n), &k) in sizes.iter().zip(&kept) {
        let mask = if k == n {
            MaskSpec::All
        } else if k == 0 {
            MaskSpec::None
        } else {
            MaskSpec::Elements((0..n).map(|i| i < k).collect())
        };
        spec.layers[layer].op = OpSpec::MaskedRelu { mask };
    }
    Ok(())
}

/// `(layer index, elements)` of every masked-ReLU layer.
fn relu_layer_sizes(spec: &ModelSpec) -> Vec<(usize, u64)> {
    let mut shapes = vec![spec.input];
    let mut out = Vec::new();
    // Only ReLU sizes are needed: parse the spec once to get every tensor's shape.
    if let Ok(bytes) = spec.to_bytes()
        && let Ok(model) = pi_core::Model::parse(&bytes)
    {
        shapes = (0..=model.layer_count())
            .filter_map(|t| model.tensor_shape(t))
            .collect();
    }
    for (i, layer) in spec.layers.iter().enumerate() {
        if matches!(layer.op, OpSpec::MaskedRelu { .. }) {
            let n = shapes.get(i + 1).map_or(0, |s| s.elements() as u64);
            out.push((i, n));
        }
    }
    out
}

/// Every ReLU of `spec` kept (for the "what linearization saved" comparison).
pub fn all_relu(spec: &ModelSpec) -> ModelSpec {
    let mut s = spec.clone();
    for layer in &mut s.layers {
        if let OpSpec::MaskedRelu { mask } = &mut layer.op {
            *mask = MaskSpec::All;
        }
    }
    s
}
