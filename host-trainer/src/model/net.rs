//! The burn module that evaluates any [`NetSpec`]: it owns one submodule per parameterised step
//! and interprets the graph in order.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::masked_relu::MaskedRelu;
use super::spec::{NetSpec, Op};

/// A convolution with its optional BatchNorm (folded into it at export).
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution (no bias when followed by BatchNorm).
    pub conv: Conv2d,
    /// The BatchNorm, if any.
    pub bn: Option<BatchNorm>,
}

/// A network: parameterised layers in step order plus the graph that connects them.
#[derive(Module, Debug)]
pub struct Net {
    /// One per [`Op::Conv`] step, in order.
    pub convs: Vec<ConvBn>,
    /// One per [`Op::Relu`] step, in order.
    pub relus: Vec<MaskedRelu>,
    /// One per [`Op::Linear`] step, in order.
    pub linears: Vec<Linear>,
    /// The graph (not a parameter: rebuilt from the run config, never stored in checkpoints).
    #[module(skip)]
    pub spec: NetSpec,
    /// [`Op::AvgPool`] steps to evaluate as max pooling instead. Empty except while the ONNX
    /// importer measures the original model (before its MaxPools became average pools), so that
    /// both accuracies come from this one interpreter; never trained or exported.
    #[module(skip)]
    pub max_pool_steps: Vec<usize>,
}

impl Net {
    /// Fresh parameters for `spec` on `device` (seed the device first for reproducibility).
    pub fn new(spec: &NetSpec, device: &Device) -> Self {
        let (mut convs, mut relus, mut linears) = (vec![], vec![], vec![]);
        for (i, step) in spec.steps.iter().enumerate() {
            let x = spec.shapes[step.input];
            match step.op {
                Op::Conv {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    batch_norm,
                } => {
                    let conv = Conv2dConfig::new([x.c, out_channels], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(
                            padding, padding, padding, padding,
                        ))
                        .with_bias(!batch_norm)
                        .init(device);
                    let bn = batch_norm.then(|| BatchNormConfig::new(out_channels).init(device));
                    convs.push(ConvBn { conv, bn });
                }
                Op::Relu => {
                    let y = spec.shapes[i + 1];
                    relus.push(MaskedRelu::new([y.c, y.h, y.w], device));
                }
                Op::Linear { out_features } => {
                    linears.push(LinearConfig::new(x.c, out_features).init(device));
                }
                Op::AvgPool { .. } | Op::GlobalAvgPool | Op::Flatten | Op::Add { .. } => {}
            }
        }
        Self {
            convs,
            relus,
            linears,
            spec: spec.clone(),
            max_pool_steps: vec![],
        }
    }

    /// Fresh parameters drawn from the device RNG seeded with `seed`, reproducibly: burn's RNG
    /// is shared and parameters are initialised lazily, so seeding, construction and
    /// materialisation happen under one lock (concurrent runs in one process, e.g. tests, would
    /// otherwise interleave their draws).
    pub fn seeded(spec: &NetSpec, device: &Device, seed: u64) -> Self {
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let net = Self::new(spec, device);
        // Reading every parameter forces the lazy initialisers to run now, under the lock.
        let _ = net.clone().into_record();
        net
    }

    /// Logits `[n, classes]` for images `[n, c, h, w]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        let out = self.forward_all(input, false);
        let [n, c, h, w] = out[0].dims();
        out[0].clone().reshape([n, c * h * w])
    }

    /// Runs the graph. With `keep_all`, returns every tensor by id (for calibration and
    /// debugging); otherwise only the output, and intermediate tensors are dropped after their
    /// last use to bound memory.
    pub fn forward_all(&self, input: Tensor<4>, keep_all: bool) -> Vec<Tensor<4>> {
        let last_use = self.spec.last_uses();
        let mut tensors: Vec<Option<Tensor<4>>> = vec![None; self.spec.steps.len() + 1];
        tensors[0] = Some(input);
        let (mut ci, mut ri, mut li) = (0, 0, 0);
        let take = |tensors: &mut Vec<Option<Tensor<4>>>, id: usize, step: usize| {
            let t = if !keep_all && last_use[id] == Some(step) {
                tensors[id].take()
            } else {
                tensors[id].clone()
            };
            t.expect("graph reads a tensor before it is produced or after its last use")
        };
        for (i, step) in self.spec.steps.iter().enumerate() {
            let x = take(&mut tensors, step.input, i);
            let y = match step.op {
                Op::Conv { .. } => {
                    let l = &self.convs[ci];
                    ci += 1;
                    let y = l.conv.forward(x);
                    match &l.bn {
                        Some(bn) => bn.forward(y),
                        None => y,
                    }
                }
                Op::Relu => {
                    ri += 1;
                    self.relus[ri - 1].forward(x)
                }
                Op::AvgPool { kernel, stride } if self.max_pool_steps.contains(&i) => {
                    MaxPool2dConfig::new([kernel, kernel])
                        .with_strides([stride, stride])
                        .init()
                        .forward(x)
                }
                Op::AvgPool { kernel, stride } => AvgPool2dConfig::new([kernel, kernel])
                    .with_strides([stride, stride])
                    .init()
                    .forward(x),
                Op::GlobalAvgPool => x.mean_dim(3).mean_dim(2),
                Op::Flatten => {
                    let [n, c, h, w] = x.dims();
                    x.reshape([n, c * h * w, 1, 1])
                }
                Op::Linear { .. } => {
                    li += 1;
                    let [n, c, _, _] = x.dims();
                    let y = self.linears[li - 1].forward(x.reshape([n, c]));
                    let [_, o] = y.dims();
                    y.reshape([n, o, 1, 1])
                }
                Op::Add { other } => {
                    let o = take(&mut tensors, other, i);
                    x + o
                }
            };
            tensors[i + 1] = Some(y);
        }
        if keep_all {
            tensors
                .into_iter()
                .map(|t| t.expect("every tensor kept"))
                .collect()
        } else {
            vec![tensors.pop().flatten().expect("the graph has an output")]
        }
    }
}
