//! Architecture descriptions: a small dataflow graph with the same shape as pi-core's model
//! format, so one interpreter runs every architecture in burn and one exporter writes them all.
//!
//! Tensor ids follow pi-core: 0 is the model input, step `i` (0-based) produces tensor `i + 1`.
//!
//! This is the one place a model is described for the whole crate: the steps (what runs), the
//! shapes (inferred once by [`SpecBuilder`]), the ReLU sites (where masks go, [`NetSpec::relu_sites`])
//! and the grouping the linearization methods need ([`NetSpec::stages`]: stages of the network and the
//! residual blocks inside them). [`crate::model::Net`] runs a spec in burn, [`crate::export`] writes
//! it to pi-core, and an importer only has to build a `NetSpec`.

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
    /// Declared stages, in step order (each runs from its `first_step` to the next stage's).
    /// Empty when the builder declared none: then every ReLU site is a stage of its own.
    #[serde(default)]
    pub stage_marks: Vec<StageMark>,
    /// First step of every residual block, in order (empty: no blocks).
    #[serde(default)]
    pub block_marks: Vec<usize>,
}

/// What a stage is, for the methods that treat stages differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    /// The stem (the layers before the first residual stage). Attention transfer skips it, as
    /// SENet's stage-2 distillation uses the residual stage outputs only.
    Stem,
    /// A body stage (a residual stage, or one ReLU layer of a plain CNN).
    Body,
}

/// The start of a declared stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMark {
    /// Stage name (`stem`, `layer1`, ...).
    pub name: String,
    /// Stem or body.
    pub kind: StageKind,
    /// Index of the stage's first step.
    pub first_step: usize,
}

/// A stage of the network with its ReLU sites: the unit of DeepReDuce's criticality and of
/// SENet's attention transfer (at the stage output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Stage name.
    pub name: String,
    /// Stem or body.
    pub kind: StageKind,
    /// Indices (into [`NetSpec::relu_sites`]) of the stage's ReLU sites, in order.
    pub sites: Vec<usize>,
}

impl Stage {
    /// The site whose output leaves the stage (its last ReLU site).
    pub fn output_site(&self) -> Option<usize> {
        self.sites.last().copied()
    }
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
    /// The residual block the site belongs to (index into the blocks), if any.
    pub block: Option<usize>,
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
                block: self.block_of(i),
            })
            .collect()
    }

    /// The block containing step `step`: the last block that starts at or before it and does
    /// not start before the stage containing `step`.
    fn block_of(&self, step: usize) -> Option<usize> {
        let stage_start = self
            .stage_marks
            .iter()
            .rev()
            .find(|m| m.first_step <= step)
            .map_or(0, |m| m.first_step);
        let b = self.block_marks.iter().rposition(|&f| f <= step)?;
        (self.block_marks[b] >= stage_start).then_some(b)
    }

    /// The stages and their ReLU sites. Without declared stages, every ReLU site is a body stage
    /// of its own (plain CNNs, imported graphs).
    pub fn stages(&self) -> Vec<Stage> {
        let sites = self.relu_sites();
        if self.stage_marks.is_empty() {
            return sites
                .iter()
                .enumerate()
                .map(|(i, s)| Stage {
                    name: s.name.clone(),
                    kind: StageKind::Body,
                    sites: vec![i],
                })
                .collect();
        }
        self.stage_marks
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let end = self
                    .stage_marks
                    .get(k + 1)
                    .map_or(usize::MAX, |n| n.first_step);
                Stage {
                    name: m.name.clone(),
                    kind: m.kind,
                    sites: (0..sites.len())
                        .filter(|&i| (m.first_step..end).contains(&sites[i].step))
                        .collect(),
                }
            })
            .filter(|s| !s.sites.is_empty())
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
                stage_marks: vec![],
                block_marks: vec![],
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

    /// Starts a stage: the next step and all after it, up to the next `stage` call, belong to it.
    pub fn stage(&mut self, name: &str, kind: StageKind) -> &mut Self {
        self.spec.stage_marks.push(StageMark {
            name: name.to_string(),
            kind,
            first_step: self.spec.steps.len(),
        });
        self
    }

    /// Starts a residual block: the next step is its first (DeepReDuce thins ReLUs per block).
    pub fn block(&mut self) -> &mut Self {
        self.spec.block_marks.push(self.spec.steps.len());
        self
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
    fn stages_and_blocks_group_the_relu_sites() {
        let mut b = SpecBuilder::new("t", Chw { c: 1, h: 4, w: 4 });
        b.stage("stem", StageKind::Stem);
        b.conv("c0", 2, 3, 1, 1, true).unwrap();
        b.relu("r0").unwrap();
        b.stage("s1", StageKind::Body);
        let input = b.current();
        b.block();
        b.conv("c1", 2, 3, 1, 1, true).unwrap();
        b.relu("r1").unwrap();
        b.conv("c2", 2, 3, 1, 1, true).unwrap();
        b.add("a", input).unwrap();
        b.relu("r2").unwrap();
        let spec = b.finish();
        let sites = spec.relu_sites();
        assert_eq!(
            sites.iter().map(|s| s.block).collect::<Vec<_>>(),
            vec![None, Some(0), Some(0)]
        );
        let stages = spec.stages();
        assert_eq!(stages.len(), 2);
        assert_eq!(
            (stages[0].kind, stages[0].sites.clone()),
            (StageKind::Stem, vec![0])
        );
        assert_eq!(stages[1].sites, vec![1, 2]);
        assert_eq!(stages[1].output_site(), Some(2));

        // Undeclared: one stage per ReLU site.
        let mut b = SpecBuilder::new("t", Chw { c: 1, h: 4, w: 4 });
        b.conv("c", 2, 3, 1, 1, true).unwrap();
        b.relu("r").unwrap();
        b.flatten("f").unwrap();
        b.linear("l", 3).unwrap();
        b.relu("r2").unwrap();
        let stages = b.finish().stages();
        assert_eq!(stages.len(), 2);
        assert_eq!(
            (stages[1].name.as_str(), stages[1].sites.clone()),
            ("r2", vec![1])
        );
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
