//! Architecture descriptions: a small dataflow graph with the same shape as pi-core's model
//! format, so one interpreter runs every architecture in burn and one exporter writes them all.
//!
//! Tensor ids follow pi-core: 0 is the model input, step `i` (0-based) produces tensor `i + 1`.

use serde::{Deserialize, Serialize};

/// Shape of one sample's activation tensor: channels, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chw {
    /// Channels (features after `Flatten`).
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Chw {
    /// Elements per sample.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True for an empty shape.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Chw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

/// One operation. Every ReLU site is [`Op::Relu`], evaluated as the masked activation
/// `y = x - m * min(x, 0)`; pooling is average pooling only (max pooling is not PI-friendly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// 2-D convolution (square kernel, symmetric zero padding). With `batch_norm` the conv has
    /// no bias and a BatchNorm follows; export folds it into the conv.
    Conv {
        /// Output channels.
        out_channels: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
        /// Followed by BatchNorm (folded at export).
        batch_norm: bool,
    },
    /// Masked ReLU: per element, a kept ReLU (`m = 1`) or the identity (`m = 0`).
    Relu,
    /// Average pooling, no padding, floor output size.
    AvgPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Mean over H and W: `(C,H,W) -> (C,1,1)`.
    GlobalAvgPool,
    /// `(C,H,W) -> (C*H*W,1,1)`, channel-major.
    Flatten,
    /// Fully connected layer with bias; input must be `(n,1,1)`.
    Linear {
        /// Output features.
        out_features: usize,
    },
    /// Residual: input tensor plus tensor `other` (same shape).
    Add {
        /// Id of the other tensor.
        other: usize,
    },
}

/// One step of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Human-readable layer name (e.g. `layer2.0.relu1`), used in reports.
    pub name: String,
    /// Id of the input tensor.
    pub input: usize,
    /// The operation.
    pub op: Op,
}

/// A whole network: input shape and steps; the last step's output is the logits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSpec {
    /// Architecture name, for reports.
    pub arch: String,
    /// Shape of one input image.
    pub input: Chw,
    /// The steps, in evaluation order.
    pub steps: Vec<Step>,
    /// Shape of every tensor: `shapes[0]` is the input, `shapes[i + 1]` the output of step `i`.
    pub shapes: Vec<Chw>,
}

/// One ReLU site: a layer of masked activations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReluSite {
    /// Layer name.
    pub name: String,
    /// Index of the step.
    pub step: usize,
    /// Activation shape (one mask element per value).
    pub shape: Chw,
}

impl NetSpec {
    /// The ReLU sites, in order.
    pub fn relu_sites(&self) -> Vec<ReluSite> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.op == Op::Relu)
            .map(|(i, s)| ReluSite {
                name: s.name.clone(),
                step: i,
                shape: self.shapes[i + 1],
            })
            .collect()
    }

    /// ReLUs of the unlinearized network (every mask element kept), per image.
    pub fn total_relus(&self) -> usize {
        self.relu_sites().iter().map(|s| s.shape.len()).sum()
    }

    /// Shape of the output (logits).
    pub fn output(&self) -> Chw {
        self.shapes[self.steps.len()]
    }

    /// For each tensor id, the last step that reads it (`None`: only the final output).
    pub fn last_uses(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.steps.len() + 1];
        for (i, s) in self.steps.iter().enumerate() {
            last[s.input] = Some(i);
            if let Op::Add { other } = s.op {
                last[other] = Some(i);
            }
        }
        last
    }
}

/// Errors in a graph under construction (a bug in an architecture, or bad sizes from the CLI).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{arch}: step `{step}`: {reason}")]
pub struct SpecError {
    arch: String,
    step: String,
    reason: String,
}

impl SpecError {
    pub(crate) fn new(arch: &str, step: &str, reason: &str) -> Self {
        Self {
            arch: arch.into(),
            step: step.into(),
            reason: reason.into(),
        }
    }
}

/// Builds a [`NetSpec`] step by step, inferring shapes. Each method appends one step reading
/// the current tensor (or the one set by [`SpecBuilder::from`]) and returns the new tensor id.
#[derive(Debug)]
pub struct SpecBuilder {
    spec: NetSpec,
    current: usize,
}

impl SpecBuilder {
    /// Starts a network for inputs of shape `input`.
    pub fn new(arch: impl Into<String>, input: Chw) -> Self {
        Self {
            spec: NetSpec {
                arch: arch.into(),
                input,
                steps: vec![],
                shapes: vec![input],
            },
            current: 0,
        }
    }

    /// Id of the current tensor (the input of the next step).
    pub fn current(&self) -> usize {
        self.current
    }

    /// Makes tensor `id` the input of the next step (for residual branches).
    pub fn from(&mut self, id: usize) -> &mut Self {
        self.current = id;
        self
    }

    /// Shape of tensor `id`.
    pub fn shape(&self, id: usize) -> Chw {
        self.spec.shapes[id]
    }

    fn push(&mut self, name: &str, op: Op) -> Result<usize, SpecError> {
        let x = self.spec.shapes[self.current];
        let err = |reason: String| SpecError {
            arch: self.spec.arch.clone(),
            step: name.to_string(),
            reason,
        };
        let out = match &op {
            Op::Conv {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (k, s, p) = (*kernel, *stride, *padding);
                if *out_channels == 0 || k == 0 || s == 0 || x.h + 2 * p < k || x.w + 2 * p < k {
                    return Err(err(format!(
                        "conv k={k} s={s} p={p} does not fit input {x}"
                    )));
                }
                Chw {
                    c: *out_channels,
                    h: (x.h + 2 * p - k) / s + 1,
                    w: (x.w + 2 * p - k) / s + 1,
                }
            }
            Op::Relu => x,
            Op::AvgPool { kernel, stride } => {
                if *kernel == 0 || *stride == 0 || x.h < *kernel || x.w < *kernel {
                    return Err(err(format!(
                        "avg pool {kernel}/{stride} does not fit input {x}"
                    )));
                }
                Chw {
                    c: x.c,
                    h: (x.h - kernel) / stride + 1,
                    w: (x.w - kernel) / stride + 1,
                }
            }
            Op::GlobalAvgPool => Chw { c: x.c, h: 1, w: 1 },
            Op::Flatten => Chw {
                c: x.len(),
                h: 1,
                w: 1,
            },
            Op::Linear { out_features } => {
                if x.h != 1 || x.w != 1 {
                    return Err(err(format!("linear needs a (n,1,1) input, got {x}")));
                }
                Chw {
                    c: *out_features,
                    h: 1,
                    w: 1,
                }
            }
            Op::Add { other } => {
                if self.spec.shapes.get(*other) != Some(&x) {
                    return Err(err(format!("add of tensors with different shapes ({x})")));
                }
                x
            }
        };
        self.spec.steps.push(Step {
            name: name.to_string(),
            input: self.current,
            op,
        });
        self.spec.shapes.push(out);
        self.current = self.spec.steps.len();
        Ok(self.current)
    }

    /// Convolution (+ BatchNorm when `batch_norm`).
    pub fn conv(
        &mut self,
        name: &str,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        batch_norm: bool,
    ) -> Result<usize, SpecError> {
        self.push(
            name,
            Op::Conv {
                out_channels,
                kernel,
                stride,
                padding,
                batch_norm,
            },
        )
    }

    /// Masked ReLU.
    pub fn relu(&mut self, name: &str) -> Result<usize, SpecError> {
        self.push(name, Op::Relu)
    }

    /// Average pooling.
    pub fn avg_pool(
        &mut self,
        name: &str,
        kernel: usize,
        stride: usize,
    ) -> Result<usize, SpecError> {
        self.push(name, Op::AvgPool { kernel, stride })
    }

    /// Global average pooling.
    pub fn global_avg_pool(&mut self, name: &str) -> Result<usize, SpecError> {
        self.push(name, Op::GlobalAvgPool)
    }

    /// Flatten.
    pub fn flatten(&mut self, name: &str) -> Result<usize, SpecError> {
        self.push(name, Op::Flatten)
    }

    /// Fully connected layer.
    pub fn linear(&mut self, name: &str, out_features: usize) -> Result<usize, SpecError> {
        self.push(name, Op::Linear { out_features })
    }

    /// Residual add of tensor `other` to the current tensor.
    pub fn add(&mut self, name: &str, other: usize) -> Result<usize, SpecError> {
        self.push(name, Op::Add { other })
    }

    /// The finished network.
    pub fn finish(self) -> NetSpec {
        self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_relu_sites() {
        let mut b = SpecBuilder::new("t", Chw { c: 1, h: 8, w: 8 });
        b.conv("c1", 4, 3, 1, 1, true).unwrap();
        let r = b.relu("r1").unwrap();
        b.avg_pool("p", 2, 2).unwrap();
        b.flatten("f").unwrap();
        b.linear("fc", 10).unwrap();
        let spec = b.finish();
        assert_eq!(spec.shapes[r], Chw { c: 4, h: 8, w: 8 });
        assert_eq!(spec.output(), Chw { c: 10, h: 1, w: 1 });
        assert_eq!(spec.total_relus(), 256);
        assert_eq!(spec.relu_sites()[0].step, 1);
        assert_eq!(spec.last_uses()[r], Some(2));
    }

    #[test]
    fn bad_graphs_are_errors() {
        let mut b = SpecBuilder::new("t", Chw { c: 1, h: 4, w: 4 });
        assert!(b.linear("fc", 3).is_err());
        assert!(b.conv("c", 2, 7, 1, 0, false).is_err());
        b.conv("c", 2, 3, 1, 1, false).unwrap();
        assert!(b.add("a", 0).is_err());
    }
}
