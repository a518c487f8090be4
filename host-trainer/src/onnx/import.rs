//! `host-trainer import --onnx model.onnx --out runs/NAME`: an ONNX CNN becomes a run folder.
//!
//! The graph is mapped onto the crate's one model description ([`NetSpec`]) with its weights, so
//! the imported run is trained, linearized, exported and evaluated by the same code as a built-in
//! architecture. Every `Relu` becomes a mask site. `MaxPool` is not PI-friendly (a comparison tree
//! per window): it becomes an average pool of the same window, as DeepReDuce does, and the
//! accuracy before and after the swap is reported so the user knows what fine-tuning has to win
//! back.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::{Module, Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};
use onnx_ir::{Message, ModelProto, NodeProto};
use serde::{Deserialize, Serialize};

use super::proto::{Const, attr_float, attr_int, attr_ints, attr_str, read_tensor};
use crate::data::{DataPaths, DatasetKind};
use crate::model::spec::SpecBuilder;
use crate::model::{Arch, Chw, Net, NetSpec};
use crate::train::evaluate::score;
use crate::train::{RunDir, TrainConfig, checkpoint};

/// The operators the importer maps (everything else is reported as unsupported).
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "Relu",
    "AveragePool",
    "GlobalAveragePool",
    "MaxPool",
    "Add",
    "Flatten",
    "Reshape",
    "Identity",
    "Dropout",
    "Constant",
];

/// burn's BatchNorm epsilon (the trainer's models are built with it); another epsilon is folded
/// into the running variance, since BatchNorm only ever uses `var + eps`.
const BURN_BN_EPSILON: f64 = 1e-5;

/// One reason the model cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The node's name (or the graph input/output's name).
    pub node: String,
    /// Its operator (`input` / `output` for the graph's interface).
    pub op: String,
    /// Why it is refused.
    pub why: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  {} ({}): {}", self.node, self.op, self.why)
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not an ONNX model.
    #[error("{path} is not an ONNX model: {reason}")]
    NotOnnx {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// Nodes, shapes or attributes the importer does not support: all of them, in graph order.
    #[error(
        "{} cannot be imported; nothing was written. {} problem(s):\n{}",
        path.display(),
        issues.len(),
        issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        issues: Vec<Issue>,
    },
    /// The output folder is already there.
    #[error("{0} already exists: choose another --out (import never overwrites)")]
    OutExists(PathBuf),
}

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dataset (default: the one whose image shape the model's input has).
    pub dataset: Option<DatasetKind>,
    /// Input shape (C, H, W) when the model does not fix it (default: the dataset's).
    pub input: Option<Chw>,
    /// Where MNIST / CIFAR-10 are read from (default search otherwise).
    pub data: Option<DataPaths>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The ONNX file.
    pub onnx: PathBuf,
    /// The run folder written.
    pub run: PathBuf,
    /// Dataset the accuracies are measured on (its test split).
    pub dataset: DatasetKind,
    /// Input shape.
    pub input: Chw,
    /// Steps of the mapped graph.
    pub steps: usize,
    /// ReLU sites (one per ONNX `Relu`) and their total ReLU count.
    pub relu_sites: usize,
    /// ReLUs per image.
    pub relus: usize,
    /// The MaxPool nodes replaced by average pooling.
    pub max_pools_replaced: Vec<String>,
    /// Test accuracy of the model as given (with its MaxPools), when it had any.
    pub acc_before: Option<f64>,
    /// Test accuracy of the imported model (average pools).
    pub acc_after: f64,
    /// Test images.
    pub test_images: usize,
}

/// Weights of one convolution (+ BatchNorm), in burn's layouts.
#[derive(Debug, Clone)]
struct ConvWeights {
    /// `[out, in, k, k]`.
    weight: Vec<f32>,
    /// Bias of a convolution without BatchNorm (zeros when the ONNX Conv has none).
    bias: Vec<f32>,
    /// gamma, beta, running mean, running variance (conv bias and epsilon folded in).
    bn: Option<[Vec<f32>; 4]>,
}

/// Weights of one fully connected layer: `[in, out]` (burn's layout) and the bias.
#[derive(Debug, Clone)]
struct LinearWeights {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// An ONNX graph mapped onto the model description, with its weights.
#[derive(Debug, Clone)]
pub struct MappedModel {
    /// The graph.
    pub spec: NetSpec,
    convs: Vec<ConvWeights>,
    linears: Vec<LinearWeights>,
    /// Steps that were `MaxPool` nodes (now average pools), with the node names.
    pub max_pools: Vec<(usize, String)>,
    /// Per ReLU site, the mask read back from a masked-ReLU pattern (`None`: all kept).
    pub masks: Vec<Option<Vec<f32>>>,
}

impl MappedModel {
    /// The burn model with the imported weights, on `device`.
    pub fn net(&self, device: &Device) -> Net {
        fn param<const D: usize>(v: &[f32], shape: [usize; D], dev: &Device) -> Tensor<D> {
            Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
        }
        let mut net = Net::new(&self.spec, device);
        for (l, w) in net.convs.iter_mut().zip(&self.convs) {
            let [o, i, k, _] = l.conv.weight.val().dims();
            l.conv.weight = Param::from_tensor(param(&w.weight, [o, i, k, k], device));
            if l.conv.bias.is_some() {
                l.conv.bias = Some(Param::from_tensor(param(&w.bias, [o], device)));
            }
            if let (Some(bn), Some([g, b, m, v])) = (&mut l.bn, &w.bn) {
                bn.gamma = Param::from_tensor(param(g, [o], device));
                bn.beta = Param::from_tensor(param(b, [o], device));
                bn.running_mean = RunningState::new(param(m, [o], device));
                bn.running_var = RunningState::new(param(v, [o], device));
            }
        }
        for (l, m) in net.relus.iter_mut().zip(&self.masks) {
            if let Some(m) = m {
                let [c, h, w] = l.mask.val().dims();
                l.mask = Param::from_tensor(param(m, [c, h, w], device)).set_require_grad(false);
            }
        }
        for (l, w) in net.linears.iter_mut().zip(&self.linears) {
            let [i, o] = l.weight.val().dims();
            l.weight = Param::from_tensor(param(&w.weight, [i, o], device));
            l.bias = Some(Param::from_tensor(param(&w.bias, [o], device)));
        }
        net
    }
}

/// A value of the graph during mapping: a tensor of the spec, or a constant.
#[derive(Debug, Clone)]
enum Val {
    Tensor(usize),
    Const(Const),
}

/// Maps the ONNX model in `bytes` onto a [`NetSpec`] with weights. `input` gives the image shape
/// when the model leaves it open. Every problem is collected; the error lists them all.
pub fn map_model(
    bytes: &[u8],
    input: Option<Chw>,
    path: &Path,
) -> Result<MappedModel, ImportError> {
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::NotOnnx {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let arch = path.file_stem().map_or_else(
        || "imported".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Mapper::new(&arch)
        .run(&model, input)
        .map_err(|issues| ImportError::Unsupported {
            path: path.to_path_buf(),
            issues,
        })
}

struct Mapper {
    vals: HashMap<String, Val>,
    issues: Vec<Issue>,
    builder: Option<SpecBuilder>,
    arch: String,
    convs: Vec<ConvWeights>,
    linears: Vec<LinearWeights>,
    max_pools: Vec<(usize, String)>,
    masks: Vec<Option<Vec<f32>>>,
}

/// The functional masked ReLU that `export --onnx --profile generic` writes,
/// `y = Add(x, Mul(Sub(Relu(x), x), M))`, starting at the Relu node `i`: the mask's name, the
/// output's name and the three nodes after the Relu. Each intermediate value must have only the
/// next node as reader.
fn masked_relu_pattern(
    nodes: &[NodeProto],
    i: usize,
    sole_reader: &dyn Fn(&str, &str) -> Option<usize>,
) -> Option<(String, String, [usize; 3])> {
    let x = nodes[i].input.first()?;
    let r = nodes[i].output.first()?;
    let sub = sole_reader(r, "Sub")?;
    if nodes[sub].input != [r.clone(), x.clone()] {
        return None;
    }
    let mul = sole_reader(nodes[sub].output.first()?, "Mul")?;
    let (d, m) = (nodes[mul].input.first()?, nodes[mul].input.get(1)?);
    if d != &nodes[sub].output[0] {
        return None;
    }
    let add = sole_reader(nodes[mul].output.first()?, "Add")?;
    if nodes[add].input != [x.clone(), nodes[mul].output[0].clone()] {
        return None;
    }
    Some((
        m.clone(),
        nodes[add].output.first()?.clone(),
        [sub, mul, add],
    ))
}

fn f32s(c: &Const) -> Vec<f32> {
    c.values.iter().map(|&v| v as f32).collect()
}

/// `[k, k]` and equal strides and zero/symmetric pads of a 2-D window op, or why not.
fn window(node: &NodeProto, default_stride: i64) -> Result<(usize, usize, usize), String> {
    let mut why = vec![];
    let ks = attr_ints(node, "kernel_shape");
    let mut strides = attr_ints(node, "strides");
    if strides.is_empty() {
        strides = vec![default_stride; 2];
    }
    let pads = attr_ints(node, "pads");
    let dil = attr_ints(node, "dilations");
    let auto_pad = attr_str(node, "auto_pad");
    if !(auto_pad.is_empty() || auto_pad == "NOTSET") {
        why.push(format!("auto_pad={auto_pad} (give explicit pads)"));
    }
    if dil.iter().any(|&d| d != 1) {
        why.push(format!("dilations {dil:?} (only 1)"));
    }
    if attr_int(node, "ceil_mode", 0) != 0 {
        why.push("ceil_mode=1 (only floor)".into());
    }
    let k = match ks.as_slice() {
        [a, b] if a == b && *a > 0 => *a as usize,
        [] => 0, // Conv may leave it to the weight's shape.
        _ => {
            why.push(format!("kernel {ks:?} (only square 2-D kernels)"));
            0
        }
    };
    let s = match strides.as_slice() {
        [a, b] if a == b && *a > 0 => *a as usize,
        _ => {
            why.push(format!("strides {strides:?} (only equal strides)"));
            1
        }
    };
    let p = match pads.as_slice() {
        [] => 0,
        [a, rest @ ..] if rest.iter().all(|v| v == a) && *a >= 0 => *a as usize,
        _ => {
            why.push(format!(
                "pads {pads:?} (only the same padding on every side)"
            ));
            0
        }
    };
    if why.is_empty() {
        Ok((k, s, p))
    } else {
        Err(why.join("; "))
    }
}

/// The attribute values of `node` the mapping cannot represent, whatever its inputs.
fn attribute_problems(node: &NodeProto) -> Result<(), String> {
    let op = node.op_type.as_str();
    let second_output_used = node.output.len() > 1 && !node.output[1].is_empty();
    match op {
        "Conv" => {
            let group = attr_int(node, "group", 1);
            let w = window(node, 1);
            match (group, w) {
                (1, Ok(_)) => Ok(()),
                (1, Err(e)) => Err(e),
                (g, Ok(_)) => Err(format!("group={g} (only 1)")),
                (g, Err(e)) => Err(format!("group={g} (only 1); {e}")),
            }
        }
        "AveragePool" | "MaxPool" => {
            let (k, _, p) = window(node, 1)?;
            if p != 0 {
                Err(format!("padding {p} (pools without padding only)"))
            } else if k == 0 {
                Err("no kernel_shape".into())
            } else if op == "MaxPool" && second_output_used {
                Err("the Indices output is used".into())
            } else {
                Ok(())
            }
        }
        "Flatten" if attr_int(node, "axis", 1) != 1 => {
            Err(format!("axis={} (only 1)", attr_int(node, "axis", 1)))
        }
        "Gemm" if attr_int(node, "transA", 0) != 0 => Err("transA=1".into()),
        "Gemm" if attr_float(node, "alpha", 1.0) != 1.0 || attr_float(node, "beta", 1.0) != 1.0 => {
            Err("alpha/beta other than 1".into())
        }
        "BatchNormalization" if attr_int(node, "training_mode", 0) != 0 => {
            Err("training_mode=1 (export the model in eval mode)".into())
        }
        "Dropout" if second_output_used => Err("the mask output is used".into()),
        _ => Ok(()),
    }
}

impl Mapper {
    fn new(arch: &str) -> Self {
        Self {
            vals: HashMap::new(),
            issues: vec![],
            builder: None,
            arch: arch.to_string(),
            convs: vec![],
            linears: vec![],
            max_pools: vec![],
            masks: vec![],
        }
    }

    fn issue(&mut self, node: &str, op: &str, why: impl Into<String>) {
        self.issues.push(Issue {
            node: node.to_string(),
            op: op.to_string(),
            why: why.into(),
        });
    }

    fn run(mut self, model: &ModelProto, input: Option<Chw>) -> Result<MappedModel, Vec<Issue>> {
        let graph = &model.graph;
        for t in &graph.initializer {
            match read_tensor(t) {
                Ok(c) => {
                    self.vals.insert(t.name.clone(), Val::Const(c));
                }
                Err(e) => self.issue(&t.name, "initializer", e),
            }
        }
        // The image input: the graph inputs that are not initializers (older exporters list
        // the weights among the inputs too).
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !self.vals.contains_key(&i.name))
            .collect();
        match inputs.as_slice() {
            [x] => {
                let dims: Vec<Option<usize>> = x
                    .type_
                    .tensor_type()
                    .shape
                    .dim
                    .iter()
                    .map(|d| {
                        (d.has_dim_value() && d.dim_value() > 0).then(|| d.dim_value() as usize)
                    })
                    .collect();
                let declared = match dims.as_slice() {
                    [_, Some(c), Some(h), Some(w)] => Some(Chw {
                        c: *c,
                        h: *h,
                        w: *w,
                    }),
                    [_, _, _, _] | [] => None,
                    _ => {
                        self.issue(
                            &x.name,
                            "input",
                            format!("rank {} (only N x C x H x W images)", dims.len()),
                        );
                        None
                    }
                };
                let shape = match (declared, input) {
                    (Some(d), Some(i)) if d != i => {
                        self.issue(
                            &x.name,
                            "input",
                            format!("the model takes {d} images, not {i}"),
                        );
                        None
                    }
                    (Some(d), _) => Some(d),
                    (None, Some(i)) => Some(i),
                    (None, None) => {
                        self.issue(
                            &x.name,
                            "input",
                            "image shape unknown: pass --input-shape C,H,W or --dataset",
                        );
                        None
                    }
                };
                if let Some(s) = shape {
                    self.builder = Some(SpecBuilder::new(self.arch.clone(), s));
                    self.vals.insert(x.name.clone(), Val::Tensor(0));
                }
            }
            _ => self.issue(
                "graph",
                "input",
                format!(
                    "{} inputs (exactly one image input is supported)",
                    inputs.len()
                ),
            ),
        }

        // Consumers of every value, to fuse Conv+BatchNormalization and MatMul+Add only when
        // nothing else reads the intermediate value.
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for x in &n.input {
                readers.entry(x.as_str()).or_default().push(i);
            }
        }
        for o in &graph.output {
            readers.entry(o.name.as_str()).or_default().push(usize::MAX);
        }
        let sole_reader = |name: &str, op: &str| -> Option<usize> {
            match readers.get(name).map(Vec::as_slice) {
                Some([j]) if *j != usize::MAX && graph.node[*j].op_type == op => Some(*j),
                _ => None,
            }
        };

        let mut absorbed = HashSet::new();
        for (i, node) in graph.node.iter().enumerate() {
            if absorbed.contains(&i) {
                continue;
            }
            let name = if node.name.is_empty() {
                format!("{}_{i}", node.op_type)
            } else {
                node.name.clone()
            };
            let op = node.op_type.as_str();
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                self.issue(&name, op, format!("custom domain `{}`", node.domain));
                continue;
            }
            if !SUPPORTED_OPS.contains(&op) {
                self.issue(
                    &name,
                    op,
                    format!(
                        "operator not supported (supported: {})",
                        SUPPORTED_OPS.join(", ")
                    ),
                );
                continue;
            }
            // Attributes are checked on every node, even one downstream of a refused node, so
            // the one error lists them all.
            if let Err(why) = attribute_problems(node) {
                self.issue(&name, op, why);
                continue;
            }
            // A node reading a value that an unsupported node should have made is skipped: its
            // cause is already listed.
            if op != "Constant"
                && node
                    .input
                    .iter()
                    .any(|x| !x.is_empty() && !self.vals.contains_key(x))
            {
                continue;
            }
            if op == "Relu" {
                let pattern = masked_relu_pattern(graph.node.as_slice(), i, &sole_reader);
                if let Some((mask_name, out, nodes)) = pattern {
                    let x = self.tensor(&node.input[0]).unwrap_or(0);
                    let len = self.shape(x).map_or(0, |s| s.len());
                    match self.constant(&mask_name).map(f32s) {
                        Some(m) if m.len() == len => {
                            if self.push(&name, op, x, &out, |b, n| b.relu(n)).is_some() {
                                self.masks.push(Some(m));
                            }
                        }
                        _ => self.issue(
                            &name,
                            op,
                            format!("mask `{mask_name}` is not a constant of {len} values"),
                        ),
                    }
                    absorbed.extend(nodes);
                    continue;
                }
            }
            let fused = match op {
                "Conv" => self.conv(
                    graph.node.as_slice(),
                    node,
                    &name,
                    sole_reader(&node.output[0], "BatchNormalization"),
                ),
                "MatMul" | "Gemm" => {
                    let add = (op == "MatMul")
                        .then(|| sole_reader(&node.output[0], "Add"))
                        .flatten();
                    self.linear(graph.node.as_slice(), node, &name, add)
                }
                _ => {
                    self.simple(node, &name);
                    None
                }
            };
            if let Some(j) = fused {
                absorbed.insert(j);
            }
        }

        let out_ok = match graph.output.as_slice() {
            [o] => match (self.vals.get(&o.name), &self.builder) {
                (Some(Val::Tensor(id)), Some(b)) if *id == b.current() && *id > 0 => true,
                (Some(_), _) => {
                    self.issue(
                        &o.name,
                        "output",
                        "the output must be the last computed tensor",
                    );
                    false
                }
                _ => false,
            },
            outs => {
                self.issue(
                    "graph",
                    "output",
                    format!("{} outputs (exactly one is supported)", outs.len()),
                );
                false
            }
        };
        match self.builder {
            Some(b) if self.issues.is_empty() && out_ok => Ok(MappedModel {
                spec: b.finish(),
                convs: self.convs,
                linears: self.linears,
                max_pools: self.max_pools,
                masks: self.masks,
            }),
            _ => Err(self.issues),
        }
    }

    fn tensor(&self, name: &str) -> Option<usize> {
        match self.vals.get(name) {
            Some(Val::Tensor(id)) => Some(*id),
            _ => None,
        }
    }

    fn constant(&self, name: &str) -> Option<&Const> {
        match self.vals.get(name) {
            Some(Val::Const(c)) => Some(c),
            _ => None,
        }
    }

    /// Pushes a step reading `input`; records its output under `out`.
    fn push(
        &mut self,
        name: &str,
        op: &str,
        input: usize,
        out: &str,
        f: impl FnOnce(&mut SpecBuilder, &str) -> Result<usize, crate::model::SpecError>,
    ) -> Option<usize> {
        let b = self.builder.as_mut()?;
        b.from(input);
        match f(b, name) {
            Ok(id) => {
                self.vals.insert(out.to_string(), Val::Tensor(id));
                Some(id)
            }
            Err(e) => {
                self.issue(name, op, e.to_string());
                None
            }
        }
    }

    fn shape(&self, id: usize) -> Option<Chw> {
        self.builder.as_ref().map(|b| b.shape(id))
    }

    /// Conv, with the BatchNormalization node `bn` (its sole reader) fused when there is one.
    fn conv(
        &mut self,
        nodes: &[NodeProto],
        node: &NodeProto,
        name: &str,
        bn: Option<usize>,
    ) -> Option<usize> {
        let mut why = vec![];
        let x = self.tensor(&node.input[0]);
        let w = node.input.get(1).and_then(|n| self.constant(n)).cloned();
        let b = node
            .input
            .get(2)
            .filter(|n| !n.is_empty())
            .map(|n| self.constant(n).cloned());
        if x.is_none() {
            why.push("input is a constant".to_string());
        }
        // Checked by `attribute_problems` already.
        let (mut k, s, p) = window(node, 1).unwrap_or((0, 1, 0));
        let (x, w) = match (x, w) {
            (Some(x), Some(w)) => (x, w),
            (_, None) => {
                why.push("weight is not a constant".into());
                self.issue(name, "Conv", why.join("; "));
                return None;
            }
            _ => {
                self.issue(name, "Conv", why.join("; "));
                return None;
            }
        };
        let xc = self.shape(x).map_or(0, |s| s.c);
        let o = w.dims.first().copied().unwrap_or(0);
        match w.dims.as_slice() {
            [_, c, kh, kw] if *c == xc && kh == kw && (k == 0 || k == *kh) => k = *kh,
            d => why.push(format!(
                "weight shape {d:?} does not fit {xc} input channels and a square kernel"
            )),
        }
        let mut bias = vec![0.0f32; o];
        match b {
            Some(Some(c)) if c.values.len() == o => bias = f32s(&c),
            Some(_) => why.push("bias is not a constant of the output channels".into()),
            None => {}
        }
        let bn_w = match bn {
            Some(j) => match self.batch_norm(&nodes[j], o, &bias) {
                Ok(v) => Some(v),
                Err(e) => {
                    let n = &nodes[j];
                    self.issue(&n.name, "BatchNormalization", e);
                    None
                }
            },
            None => None,
        };
        if !why.is_empty() {
            self.issue(name, "Conv", why.join("; "));
            return None;
        }
        let out = match bn {
            Some(j) => nodes[j].output[0].clone(),
            None => node.output[0].clone(),
        };
        let with_bn = bn_w.is_some();
        self.push(name, "Conv", x, &out, |b, n| b.conv(n, o, k, s, p, with_bn))?;
        self.convs.push(ConvWeights {
            weight: f32s(&w),
            bias,
            bn: bn_w,
        });
        bn
    }

    /// The parameters of a BatchNormalization after a conv with `bias`: the conv bias moves
    /// into the running mean (`bn(conv + b)` = `bn'(conv)` with `mean' = mean - b`), and the
    /// epsilon into the variance.
    fn batch_norm(
        &self,
        node: &NodeProto,
        channels: usize,
        bias: &[f32],
    ) -> Result<[Vec<f32>; 4], String> {
        let eps = attr_float(node, "epsilon", 1e-5) as f64;
        let mut vs = vec![];
        for (k, what) in ["scale", "B", "mean", "var"].iter().enumerate() {
            match node.input.get(k + 1).and_then(|n| self.constant(n)) {
                Some(c) if c.values.len() == channels => vs.push(f32s(c)),
                _ => return Err(format!("{what} is not a constant of {channels} values")),
            }
        }
        let [g, beta, mut m, mut v]: [Vec<f32>; 4] =
            vs.try_into().map_err(|_| "four inputs".to_string())?;
        for c in 0..channels {
            m[c] -= bias[c];
            v[c] = (v[c] as f64 + eps - BURN_BN_EPSILON) as f32;
        }
        Ok([g, beta, m, v])
    }

    /// Gemm, or MatMul with the Add node `add` (its sole reader) as bias when there is one.
    fn linear(
        &mut self,
        nodes: &[NodeProto],
        node: &NodeProto,
        name: &str,
        add: Option<usize>,
    ) -> Option<usize> {
        let op = node.op_type.as_str();
        let mut why = vec![];
        let Some(x) = self.tensor(&node.input[0]) else {
            self.issue(name, op, "first input is not the activation tensor");
            return None;
        };
        let Some(w) = node.input.get(1).and_then(|n| self.constant(n)).cloned() else {
            self.issue(name, op, "weight is not a constant");
            return None;
        };
        let n_in = self.shape(x).map_or(0, |s| s.len());
        let trans_b = op == "Gemm" && attr_int(node, "transB", 0) != 0;
        let (wi, wo) = match (w.dims.as_slice(), trans_b) {
            ([o, i], true) => (*i, *o),
            ([i, o], false) => (*i, *o),
            (d, _) => {
                why.push(format!("weight shape {d:?} (only 2-D)"));
                (0, 0)
            }
        };
        if wi != n_in {
            why.push(format!("weight takes {wi} features, the input has {n_in}"));
        }
        // burn's Linear weight is [in, out]: Gemm's transB=1 weight [out, in] is transposed.
        let mut weight = f32s(&w);
        if trans_b {
            weight = (0..wi * wo)
                .map(|k| weight[(k % wo) * wi + k / wo])
                .collect();
        }
        let bias_name = match (op, add) {
            ("Gemm", _) => node.input.get(2).filter(|n| !n.is_empty()).cloned(),
            (_, Some(j)) => nodes[j]
                .input
                .iter()
                .find(|n| **n != node.output[0])
                .cloned(),
            _ => None,
        };
        let bias = match bias_name {
            None => vec![0.0; wo],
            Some(b) => match self.constant(&b) {
                Some(c) if c.values.len() == wo => f32s(c),
                _ => {
                    why.push(format!("bias `{b}` is not a constant of {wo} values"));
                    vec![]
                }
            },
        };
        if !why.is_empty() {
            self.issue(name, op, why.join("; "));
            return None;
        }
        let out = match add {
            Some(j) => nodes[j].output[0].clone(),
            None => node.output[0].clone(),
        };
        self.push(name, op, x, &out, |b, n| b.linear(n, wo))?;
        self.linears.push(LinearWeights { weight, bias });
        add
    }

    /// The ops without weights.
    fn simple(&mut self, node: &NodeProto, name: &str) {
        let op = node.op_type.as_str();
        let out = node.output.first().cloned().unwrap_or_default();
        let x = node.input.first().and_then(|n| self.tensor(n));
        match op {
            "Constant" => match super::proto::attr(node, "value").map(|a| read_tensor(&a.t)) {
                Some(Ok(c)) => {
                    self.vals.insert(out, Val::Const(c));
                }
                Some(Err(e)) => self.issue(name, op, e),
                None => self.issue(name, op, "only the `value` attribute is supported"),
            },
            _ if x.is_none() => self.issue(name, op, "input is a constant, not an activation"),
            "Identity" | "Dropout" => {
                // Inference: Dropout is the identity (its mask output is checked unused).
                if let Some(x) = x {
                    self.vals.insert(out, Val::Tensor(x));
                }
            }
            "Relu" => {
                if self
                    .push(name, op, x.unwrap_or(0), &out, |b, n| b.relu(n))
                    .is_some()
                {
                    self.masks.push(None);
                }
            }
            "GlobalAveragePool" => {
                self.push(name, op, x.unwrap_or(0), &out, |b, n| b.global_avg_pool(n));
            }
            "AveragePool" | "MaxPool" => {
                // Attributes checked by `attribute_problems`: square, unpadded, floor.
                let (k, s, _) = window(node, 1).unwrap_or((1, 1, 0));
                let id = self.push(name, op, x.unwrap_or(0), &out, |b, n| b.avg_pool(n, k, s));
                if let (Some(id), "MaxPool") = (id, op) {
                    self.max_pools.push((id - 1, name.to_string()));
                }
            }
            "Flatten" => {
                self.push(name, op, x.unwrap_or(0), &out, |b, n| b.flatten(n));
            }
            "Reshape" => {
                let len = x.and_then(|x| self.shape(x)).map_or(0, |s| s.len()) as f64;
                let shape = node
                    .input
                    .get(1)
                    .and_then(|n| self.constant(n))
                    .map(|c| c.values.clone());
                // Only the flattening reshapes ([N, C*H*W], as `x.view(x.size(0), -1)` with a
                // constant shape): the batch stays first, everything else is one feature axis.
                match shape.as_deref() {
                    Some([n, f])
                        if (*n == 0.0 || *n == -1.0)
                            && (*f == len || (*f == -1.0 && *n == 0.0)) =>
                    {
                        self.push(name, op, x.unwrap_or(0), &out, |b, n| b.flatten(n));
                    }
                    Some(s) => self.issue(
                        name,
                        op,
                        format!("shape {s:?} (only [N, C*H*W] flattening)"),
                    ),
                    None => self.issue(name, op, "shape is not a constant"),
                }
            }
            "Add" => {
                let y = node.input.get(1).and_then(|n| self.tensor(n));
                match (x, y) {
                    (Some(a), Some(b)) => {
                        self.push(name, op, a, &out, |bl, n| bl.add(n, b));
                    }
                    _ => self.issue(name, op, "adds a constant (only residual adds of two activations, or a MatMul's bias)"),
                }
            }
            "BatchNormalization" => self.issue(
                name,
                op,
                "only directly after a Conv whose only reader it is (it is folded into it)",
            ),
            _ => self.issue(name, op, "MatMul/Gemm/Conv handled elsewhere"),
        }
    }
}

/// Imports `onnx` into a new run folder `out`: maps the graph, measures its test accuracy (with
/// its MaxPools, then with the average pools that replace them), and writes `config.json`,
/// `model.bpk`, `report.json` and `report.md`. Nothing is written unless all of it succeeds
/// (the folder is assembled under a temporary name and renamed).
pub fn import_onnx(onnx: &Path, out: &Path, opts: &ImportOptions) -> anyhow::Result<ImportReport> {
    if out.exists() {
        return Err(ImportError::OutExists(out.to_path_buf()).into());
    }
    let bytes = std::fs::read(onnx).map_err(|source| ImportError::Read {
        path: onnx.to_path_buf(),
        source,
    })?;
    let hint = opts.input.or_else(|| opts.dataset.map(dataset_chw));
    let mapped = map_model(&bytes, hint, onnx)?;
    let spec = &mapped.spec;
    let dataset = match opts.dataset {
        Some(d) => d,
        None => [
            DatasetKind::Digits,
            DatasetKind::Mnist,
            DatasetKind::Cifar10,
        ]
        .into_iter()
        .find(|d| dataset_chw(*d) == spec.input)
        .with_context(|| format!("no dataset has {} images: pass --dataset", spec.input))?,
    };
    if dataset_chw(dataset) != spec.input || spec.output().len() != dataset.classes() {
        anyhow::bail!(
            "the model maps {} images to {} outputs; {} has {} images in {} classes",
            spec.input,
            spec.output().len(),
            dataset.name(),
            dataset_chw(dataset),
            dataset.classes()
        );
    }
    let mut cfg = TrainConfig::defaults(dataset, Arch::Imported);
    cfg.spec = Some(spec.clone());
    if let Some(p) = &opts.data {
        cfg.data_dir = Some(p.data_dir.clone());
        cfg.cifar_archive = Some(p.cifar_archive.clone());
    }

    let device = cfg.backend.device()?;
    let mut net = mapped.net(&device).valid();
    let test = crate::data::load(dataset, &cfg.data_paths())?.test;
    let norm = dataset.normalization();
    let acc_before = (!mapped.max_pools.is_empty()).then(|| {
        net.max_pool_steps = mapped.max_pools.iter().map(|(s, _)| *s).collect();
        let a = score(&net, &test, &norm, &device, 256).acc;
        net.max_pool_steps.clear();
        a
    });
    let acc_after = score(&net, &test, &norm, &device, 256).acc;
    let report = ImportReport {
        onnx: onnx.to_path_buf(),
        run: out.to_path_buf(),
        dataset,
        input: spec.input,
        steps: spec.steps.len(),
        relu_sites: spec.relu_sites().len(),
        relus: spec.total_relus(),
        max_pools_replaced: mapped.max_pools.iter().map(|(_, n)| n.clone()).collect(),
        acc_before,
        acc_after,
        test_images: test.len(),
    };

    // Assemble the run beside its final place, then rename: an error or a crash leaves no
    // half-written run under the user's name.
    let name = out
        .file_name()
        .with_context(|| format!("--out {} has no folder name", out.display()))?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.import-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(&tmp)?;
        let run = RunDir::new(&tmp);
        checkpoint::write_atomic(
            &run.config(),
            serde_json::to_string_pretty(&cfg)?.as_bytes(),
        )?;
        let model = crate::train::run_dir::model_bytes(&net)?;
        checkpoint::write_atomic(&run.model(), &model)?;
        checkpoint::write_atomic(
            &run.report_json(),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        checkpoint::write_atomic(&run.report_md(), report_text(&report, spec).as_bytes())?;
        std::fs::rename(&tmp, out)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context(format!("writing {}", out.display())));
    }
    Ok(report)
}

/// The image shape of a dataset.
fn dataset_chw(d: DatasetKind) -> Chw {
    let s = d.shape();
    Chw {
        c: s.channels,
        h: s.height,
        w: s.width,
    }
}

/// The human-readable import report (also printed by the CLI).
pub fn report_text(r: &ImportReport, spec: &NetSpec) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "imported {} -> {}: {} steps, input {}, {} ReLU sites ({} ReLUs), dataset {}",
        r.onnx.display(),
        r.run.display(),
        r.steps,
        r.input,
        r.relu_sites,
        r.relus,
        r.dataset.name()
    );
    if let Some(b) = r.acc_before {
        let _ = writeln!(
            s,
            "MaxPool is not PI-friendly: {} node(s) replaced by average pooling of the same window ({})",
            r.max_pools_replaced.len(),
            r.max_pools_replaced.join(", ")
        );
        let _ = writeln!(
            s,
            "test accuracy ({} images): {:.2}% with MaxPool, {:.2}% with average pooling (fine-tune with `train --from {}`)",
            r.test_images,
            100.0 * b,
            100.0 * r.acc_after,
            r.run.display()
        );
    } else {
        let _ = writeln!(
            s,
            "test accuracy ({} images): {:.2}%",
            r.test_images,
            100.0 * r.acc_after
        );
    }
    s.push_str(&crate::model::relu_table(spec, &[]));
    s
}
