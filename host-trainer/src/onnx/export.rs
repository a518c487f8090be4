//! `host-trainer export --onnx OUT.onnx --profile generic|crypten|ezpc`: a trained or linearized
//! run as ONNX (opset 17, one input `input`, one output `logits`, BatchNorm folded, weights as
//! initializers), in the form each private-inference framework can load.
//!
//! - `generic`: the masked ReLU in functional form `x + Mul(Sub(Relu(x), x), M)`, `M` a Constant:
//!   any ONNX runtime evaluates it (and `import` reads it back as a mask site).
//! - `crypten`: `crypten.nn.from_onnx` loads it. Partly kept layers use the cost-cutting form
//!   (Flatten, Gather the kept elements, Relu only those, Concat with the rest, Gather back into
//!   order, Reshape), so removed ReLUs cost nothing; masks and indices are Constants (public,
//!   never encrypted) and the encrypted operand comes first.
//! - `ezpc`: EzPC (OnnxBridge, LLAMA backend) has no Mul, Gather or Constant, so only
//!   channel-wise masks are expressible: the producing Conv (or Gemm) is split into runs of kept
//!   and linear output channels, the kept runs go through Relu, and a Concat restores the order.
//!   Where there is no producer to split (after a residual Add), 1x1 convolutions with 0/1
//!   weights pick the runs instead. A per-pixel mask is refused, naming the layer.
//!
//! Before writing, every node is checked against the target's op list; a side JSON
//! (`OUT.onnx.json`) gives the kept ReLUs per layer and the number the target evaluates.

use std::path::{Path, PathBuf};

use anyhow::Context;
use onnx_ir::{Message, ModelProto, NodeProto, TensorProto};
use serde::{Deserialize, Serialize};

use super::proto::{
    float_tensor, int_tensor, make_attr_float, make_attr_int, make_attr_ints, make_attr_tensor,
    make_node,
};
use crate::export::fold;
use crate::model::Net;
use crate::model::spec::Op;
use crate::train::checkpoint::write_atomic;
use crate::train::run_dir::{RunDir, load_trained};

/// The ONNX opset written.
pub const OPSET: i64 = 17;

/// Which framework the file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Any ONNX runtime (functional masked ReLU).
    Generic,
    /// CrypTen's `crypten.nn.from_onnx` (removed ReLUs are not evaluated).
    Crypten,
    /// EzPC OnnxBridge, LLAMA backend (channel-wise masks only).
    Ezpc,
}

impl Profile {
    /// The operators the target accepts (the file is checked against it before writing).
    pub fn ops(self) -> &'static [&'static str] {
        match self {
            // Standard opset-17 operators every ONNX runtime implements.
            Self::Generic => &[
                "Conv",
                "Relu",
                "Sub",
                "Mul",
                "Add",
                "AveragePool",
                "GlobalAveragePool",
                "Flatten",
                "Gemm",
                "Constant",
            ],
            // crypten/nn/onnx_converter.py + crypten.nn.module (users-and-onnx.md §2.2).
            Self::Crypten => &[
                "Add",
                "Sub",
                "Mul",
                "Div",
                "Pow",
                "Sqrt",
                "Exp",
                "Erf",
                "ReduceMean",
                "ReduceSum",
                "Transpose",
                "Squeeze",
                "Unsqueeze",
                "Slice",
                "Expand",
                "Cast",
                "Range",
                "Equal",
                "Where",
                "Flatten",
                "Shape",
                "Concat",
                "Reshape",
                "Dropout",
                "Gather",
                "Pad",
                "Gemm",
                "MatMul",
                "Conv",
                "Relu",
                "Clip",
                "Sigmoid",
                "Softmax",
                "LogSoftmax",
                "AveragePool",
                "MaxPool",
                "GlobalAveragePool",
                "BatchNormalization",
                "Constant",
                "ConstantOfShape",
            ],
            // OnnxBridge backend.py::is_compatible, LLAMA (users-and-onnx.md §2.3).
            Self::Ezpc => &[
                "Relu",
                "LeakyRelu",
                "Softmax",
                "Conv",
                "MaxPool",
                "AveragePool",
                "Flatten",
                "Gemm",
                "BatchNormalization",
                "Concat",
                "GlobalAveragePool",
                "Add",
                "ConvTranspose",
                "Transpose",
            ],
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Crypten => "crypten",
            Self::Ezpc => "ezpc",
        }
    }
}

/// ReLUs of one layer in the exported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRelus {
    /// Layer name.
    pub name: String,
    /// ReLUs of the layer (mask elements).
    pub total: usize,
    /// Kept by the mask.
    pub kept: usize,
    /// ReLUs the target evaluates for this layer (the functional form evaluates all of them).
    pub evaluated: usize,
}

/// The side JSON written next to the ONNX file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnnxSidecar {
    /// Profile.
    pub profile: Profile,
    /// Opset.
    pub opset: i64,
    /// The run exported.
    pub run: PathBuf,
    /// Per ReLU layer.
    pub layers: Vec<LayerRelus>,
    /// Kept ReLUs per image.
    pub relus_kept: usize,
    /// ReLUs the target evaluates per image.
    pub relus_evaluated: usize,
    /// All ReLUs of the network.
    pub relus_total: usize,
}

/// Why a run cannot be exported in a profile.
#[derive(Debug, thiserror::Error)]
pub enum OnnxExportError {
    /// A mask the profile cannot express.
    #[error("{profile} profile: layer `{layer}`: {why}")]
    Layer {
        /// Profile name.
        profile: &'static str,
        /// The layer.
        layer: String,
        /// Why.
        why: String,
    },
    /// The graph uses operators the target lacks (a bug in the writer, caught before writing).
    #[error("{profile} profile: the target has no {ops:?}; nothing written")]
    Ops {
        /// Profile name.
        profile: &'static str,
        /// The offending operators.
        ops: Vec<String>,
    },
}

/// The side JSON's path: `OUT.onnx.json`.
pub fn sidecar_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Builds the ONNX graph of a run's model.
struct Writer {
    profile: Profile,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    fresh: usize,
}

impl Writer {
    fn name(&mut self, base: &str) -> String {
        self.fresh += 1;
        format!("{base}_{}", self.fresh)
    }

    fn node(
        &mut self,
        op: &str,
        name: &str,
        ins: &[&str],
        attrs: Vec<onnx_ir::AttributeProto>,
    ) -> String {
        let out = self.name(name);
        let ins: Vec<String> = ins.iter().map(|s| s.to_string()).collect();
        self.nodes
            .push(make_node(op, &out, &ins, std::slice::from_ref(&out), attrs));
        out
    }

    fn init(&mut self, name: &str, t: impl FnOnce(&str) -> TensorProto) -> String {
        let n = self.name(name);
        self.inits.push(t(&n));
        n
    }

    /// A Constant node (public in CrypTen: never encrypted).
    fn constant(&mut self, name: &str, t: impl FnOnce(&str) -> TensorProto) -> String {
        let n = self.name(name);
        let tensor = t(&n);
        self.nodes.push(make_node(
            "Constant",
            &n,
            &[],
            std::slice::from_ref(&n),
            vec![make_attr_tensor("value", tensor)],
        ));
        n
    }
}

impl Writer {
    /// A Conv with every attribute written out, defaults included: CrypTen's converter asserts
    /// that strides, pads and dilations are present.
    fn conv(&mut self, name: &str, ins: &[&str], kernel: i64, stride: i64, pad: i64) -> String {
        let attrs = vec![
            make_attr_ints("kernel_shape", &[kernel, kernel]),
            make_attr_ints("strides", &[stride, stride]),
            make_attr_ints("pads", &[pad, pad, pad, pad]),
            make_attr_ints("dilations", &[1, 1]),
            make_attr_int("group", 1),
        ];
        self.node("Conv", name, ins, attrs)
    }

    /// `x W^T + b` as Gemm, alpha and beta written out (CrypTen asserts them).
    fn gemm(&mut self, name: &str, ins: &[&str]) -> String {
        let attrs = vec![
            make_attr_float("alpha", 1.0),
            make_attr_float("beta", 1.0),
            make_attr_int("transB", 1),
        ];
        self.node("Gemm", name, ins, attrs)
    }

    /// The output channels of each run of `kept` (made by `part(writer, lo, hi)` for channels
    /// `[lo, hi)`), the kept runs through Relu, concatenated back in channel order.
    fn channel_runs(
        &mut self,
        name: &str,
        kept: &[bool],
        mut part: impl FnMut(&mut Writer, usize, usize) -> String,
    ) -> String {
        let parts: Vec<String> = runs(kept)
            .into_iter()
            .map(|(lo, hi, keep)| {
                let y = part(self, lo, hi);
                if keep {
                    self.node("Relu", name, &[&y], vec![])
                } else {
                    y
                }
            })
            .collect();
        match parts.as_slice() {
            [one] => one.clone(),
            _ => {
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.node("Concat", name, &refs, vec![make_attr_int("axis", 1)])
            }
        }
    }

    /// The channel-masked ReLU of `x` without Mul, Slice or Gather (EzPC has none): each run of
    /// kept or removed channels is picked by a 1x1 convolution (a Gemm on features) with 0/1
    /// weights, which every fixed-point backend computes exactly.
    fn select_relu(&mut self, name: &str, x: &str, kept: &[bool], rank2: bool) -> String {
        let c = kept.len();
        self.channel_runs(name, kept, |w, lo, hi| {
            let n = hi - lo;
            let mut sel = vec![0.0f32; n * c];
            for j in 0..n {
                sel[j * c + lo + j] = 1.0;
            }
            let dims = if rank2 { vec![n, c] } else { vec![n, c, 1, 1] };
            let wt = w.init(&format!("{name}.select"), |t| float_tensor(t, &dims, &sel));
            let b = w.init(&format!("{name}.select_bias"), |t| {
                float_tensor(t, &[n], &vec![0.0; n])
            });
            if rank2 {
                w.gemm(name, &[x, &wt, &b])
            } else {
                w.conv(name, &[x, &wt, &b], 1, 1, 0)
            }
        })
    }
}

/// `[start, end)` runs of equal values.
fn runs(kept: &[bool]) -> Vec<(usize, usize, bool)> {
    let mut out: Vec<(usize, usize, bool)> = vec![];
    for (i, &k) in kept.iter().enumerate() {
        match out.last_mut() {
            Some(r) if r.2 == k => r.1 = i + 1,
            _ => out.push((i, i + 1, k)),
        }
    }
    out
}

/// The ONNX model of `net` (evaluation mode) in `profile`, and its ReLU counts.
pub fn model_proto(
    net: &Net,
    profile: Profile,
) -> Result<(ModelProto, Vec<LayerRelus>), OnnxExportError> {
    let spec = &net.spec;
    let folded = fold(net);
    let mut readers = vec![0usize; spec.steps.len() + 1];
    for s in &spec.steps {
        readers[s.input] += 1;
        if let Op::Add { other } = s.op {
            readers[other] += 1;
        }
    }
    let mut w = Writer {
        profile,
        nodes: vec![],
        inits: vec![],
        fresh: 0,
    };
    let perr = |layer: &str, why: String| OnnxExportError::Layer {
        profile: profile.name(),
        layer: layer.to_string(),
        why,
    };
    // Masks of every ReLU step, by step index.
    let mut masks = vec![None; spec.steps.len()];
    for (site, relu) in spec.relu_sites().iter().zip(&net.relus) {
        masks[site.step] = Some(relu.mask_values());
    }
    let binary = |m: &[f32]| m.iter().all(|&v| v == 0.0 || v == 1.0);

    // EzPC: every partly kept ReLU layer must be channel-wise and read the only output of a
    // Conv/Linear, which is then split; those layers are known before writing anything.
    let mut split_of = vec![None; spec.steps.len()]; // producer step -> kept per channel
    let mut skip_relu = vec![false; spec.steps.len()]; // ReLU steps applied by the split
    let mut select_at = vec![None; spec.steps.len()]; // ReLU step -> kept per channel
    if profile == Profile::Ezpc {
        for (i, step) in spec.steps.iter().enumerate() {
            let Some(m) = &masks[i] else { continue };
            // All kept: a plain Relu; none kept: the identity. Neither needs a split.
            if m.iter().all(|&v| v == 1.0) || m.iter().all(|&v| v == 0.0) {
                continue;
            }
            if !binary(m) {
                return Err(perr(
                    &step.name,
                    "mask is not 0/1 (linearize the run first)".into(),
                ));
            }
            let shape = spec.shapes[i + 1];
            let plane = shape.h * shape.w;
            let per_channel: Vec<bool> = m.chunks(plane).map(|c| c[0] == 1.0).collect();
            if m.chunks(plane).any(|c| c.iter().any(|&v| v != c[0])) {
                return Err(perr(
                    &step.name,
                    "per-pixel mask: EzPC has no Mul/Gather, only channel-wise masks can be written \
                     (linearize with --granularity channel)"
                        .into(),
                ));
            }
            let producer = step.input.checked_sub(1);
            match producer.map(|p| (&spec.steps[p].op, readers[step.input])) {
                Some((Op::Conv { .. } | Op::Linear { .. }, 1)) => {
                    split_of[step.input - 1] = Some(per_channel);
                    skip_relu[i] = true;
                }
                // After a residual Add (or a Conv whose output is read twice) there is no
                // producer to split: 1x1 selection convolutions pick the channel runs.
                _ => select_at[i] = Some(per_channel),
            }
        }
    }

    let mut names = vec!["input".to_string()];
    let mut rank2 = vec![false];
    let mut layers = vec![];
    let mut fi = 0usize;
    for (i, step) in spec.steps.iter().enumerate() {
        let x = names[step.input].clone();
        let x_rank2 = rank2[step.input];
        let out_shape = spec.shapes[i + 1];
        let (y, y_rank2) = match &step.op {
            Op::Conv {
                kernel,
                stride,
                padding,
                out_channels,
                ..
            } => {
                let f = &folded[fi];
                fi += 1;
                let cin = spec.shapes[step.input].c;
                let (k, s, p) = (*kernel as i64, *stride as i64, *padding as i64);
                let per_out = cin * kernel * kernel;
                let conv = |w: &mut Writer, lo: usize, hi: usize| {
                    let wt = w.init(&format!("{}.weight", step.name), |n| {
                        float_tensor(
                            n,
                            &[hi - lo, cin, *kernel, *kernel],
                            &f.weights[lo * per_out..hi * per_out],
                        )
                    });
                    let b = w.init(&format!("{}.bias", step.name), |n| {
                        float_tensor(n, &[hi - lo], &f.bias[lo..hi])
                    });
                    w.conv(&step.name, &[&x, &wt, &b], k, s, p)
                };
                let y = match &split_of[i] {
                    None => conv(&mut w, 0, *out_channels),
                    Some(kept) => w.channel_runs(&step.name, kept, conv),
                };
                (y, false)
            }
            Op::Linear { out_features } => {
                let f = &folded[fi];
                fi += 1;
                let xin = if x_rank2 {
                    x.clone()
                } else {
                    w.node("Flatten", "flatten", &[&x], vec![make_attr_int("axis", 1)])
                };
                let n_in = spec.shapes[step.input].len();
                let gemm = |w: &mut Writer, lo: usize, hi: usize| {
                    let wt = w.init(&format!("{}.weight", step.name), |n| {
                        float_tensor(n, &[hi - lo, n_in], &f.weights[lo * n_in..hi * n_in])
                    });
                    let b = w.init(&format!("{}.bias", step.name), |n| {
                        float_tensor(n, &[hi - lo], &f.bias[lo..hi])
                    });
                    w.gemm(&step.name, &[&xin, &wt, &b])
                };
                let y = match &split_of[i] {
                    None => gemm(&mut w, 0, *out_features),
                    Some(kept) => w.channel_runs(&step.name, kept, gemm),
                };
                (y, true)
            }
            Op::Relu => {
                let m = masks[i].clone().unwrap_or_default();
                let total = m.len();
                let kept_idx: Vec<usize> = (0..total).filter(|&k| m[k] != 0.0).collect();
                let all = kept_idx.len() == total && m.iter().all(|&v| v == 1.0);
                let evaluated = match profile {
                    Profile::Generic => total,
                    _ => kept_idx.len(),
                };
                layers.push(LayerRelus {
                    name: step.name.clone(),
                    total,
                    kept: kept_idx.len(),
                    evaluated,
                });
                if skip_relu[i] {
                    // EzPC: the split producer already applied it.
                    (x.clone(), x_rank2)
                } else if all {
                    (w.node("Relu", &step.name, &[&x], vec![]), x_rank2)
                } else if let Some(kept) = &select_at[i] {
                    (w.select_relu(&step.name, &x, kept, x_rank2), x_rank2)
                } else if profile == Profile::Ezpc {
                    // Every partly kept layer was handled above; an all-zero one is the identity.
                    (x.clone(), x_rank2)
                } else if profile == Profile::Generic || !binary(&m) {
                    if profile == Profile::Crypten {
                        return Err(perr(
                            &step.name,
                            "mask is not 0/1 (linearize the run first)".into(),
                        ));
                    }
                    let dims: Vec<usize> = if x_rank2 {
                        vec![1, total]
                    } else {
                        vec![1, out_shape.c, out_shape.h, out_shape.w]
                    };
                    let mm = w.constant(&format!("{}.mask", step.name), |n| {
                        float_tensor(n, &dims, &m)
                    });
                    let r = w.node("Relu", &step.name, &[&x], vec![]);
                    let d = w.node("Sub", &step.name, &[&r, &x], vec![]);
                    let e = w.node("Mul", &step.name, &[&d, &mm], vec![]);
                    (w.node("Add", &step.name, &[&x, &e], vec![]), x_rank2)
                } else if kept_idx.is_empty() {
                    // Nothing kept: the layer is the identity (CrypTen has no Identity op).
                    (x.clone(), x_rank2)
                } else {
                    // CrypTen's cost-cutting form: only the kept elements go through Relu.
                    let removed: Vec<usize> = (0..total).filter(|&k| m[k] == 0.0).collect();
                    let order: Vec<usize> = kept_idx.iter().chain(&removed).copied().collect();
                    let mut inverse = vec![0i64; total];
                    for (pos, &k) in order.iter().enumerate() {
                        inverse[k] = pos as i64;
                    }
                    let as_i64 = |v: &[usize]| v.iter().map(|&k| k as i64).collect::<Vec<_>>();
                    let f = if x_rank2 {
                        x.clone()
                    } else {
                        w.node("Flatten", "flatten", &[&x], vec![make_attr_int("axis", 1)])
                    };
                    let kc = w.constant(&format!("{}.kept", step.name), |n| {
                        int_tensor(n, &[kept_idx.len()], &as_i64(&kept_idx))
                    });
                    let gk = w.node(
                        "Gather",
                        &step.name,
                        &[&f, &kc],
                        vec![make_attr_int("axis", 1)],
                    );
                    let a = w.node("Relu", &step.name, &[&gk], vec![]);
                    let c = if removed.is_empty() {
                        a
                    } else {
                        let lc = w.constant(&format!("{}.linear", step.name), |n| {
                            int_tensor(n, &[removed.len()], &as_i64(&removed))
                        });
                        let b = w.node(
                            "Gather",
                            &step.name,
                            &[&f, &lc],
                            vec![make_attr_int("axis", 1)],
                        );
                        w.node(
                            "Concat",
                            &step.name,
                            &[&a, &b],
                            vec![make_attr_int("axis", 1)],
                        )
                    };
                    let pc = w.constant(&format!("{}.restore", step.name), |n| {
                        int_tensor(n, &[total], &inverse)
                    });
                    let g = w.node(
                        "Gather",
                        &step.name,
                        &[&c, &pc],
                        vec![make_attr_int("axis", 1)],
                    );
                    if x_rank2 {
                        (g, true)
                    } else {
                        let sc = w.constant(&format!("{}.shape", step.name), |n| {
                            int_tensor(
                                n,
                                &[4],
                                &[
                                    -1,
                                    out_shape.c as i64,
                                    out_shape.h as i64,
                                    out_shape.w as i64,
                                ],
                            )
                        });
                        (w.node("Reshape", &step.name, &[&g, &sc], vec![]), false)
                    }
                }
            }
            Op::AvgPool { kernel, stride } => (
                w.node(
                    "AveragePool",
                    &step.name,
                    &[&x],
                    vec![
                        make_attr_ints("kernel_shape", &[*kernel as i64; 2]),
                        make_attr_ints("strides", &[*stride as i64; 2]),
                    ],
                ),
                false,
            ),
            Op::GlobalAvgPool => (
                w.node("GlobalAveragePool", &step.name, &[&x], vec![]),
                false,
            ),
            Op::Flatten => (
                w.node("Flatten", &step.name, &[&x], vec![make_attr_int("axis", 1)]),
                true,
            ),
            Op::Add { other } => {
                let o = names[*other].clone();
                if rank2[*other] != x_rank2 {
                    return Err(perr(&step.name, "adds tensors of different ranks".into()));
                }
                (w.node("Add", &step.name, &[&x, &o], vec![]), x_rank2)
            }
        };
        names.push(y);
        rank2.push(y_rank2);
    }
    let mut last = names.last().cloned().unwrap_or_default();
    if !rank2.last().copied().unwrap_or(true) {
        last = w.node(
            "Flatten",
            "flatten",
            &[&last],
            vec![make_attr_int("axis", 1)],
        );
    }
    if last == "input" {
        return Err(perr("output", "the model has no layer".into()));
    }
    // The output is named `logits`: rename the value everywhere (no Identity node: CrypTen
    // has none).
    for n in &mut w.nodes {
        for v in n.input.iter_mut().chain(n.output.iter_mut()) {
            if *v == last {
                *v = "logits".into();
            }
        }
    }

    let bad: Vec<String> = {
        let mut b: Vec<String> = w
            .nodes
            .iter()
            .map(|n| n.op_type.clone())
            .filter(|op| !w.profile.ops().contains(&op.as_str()))
            .collect();
        b.sort();
        b.dedup();
        b
    };
    if !bad.is_empty() {
        return Err(OnnxExportError::Ops {
            profile: profile.name(),
            ops: bad,
        });
    }

    let mut m = ModelProto::new();
    m.ir_version = 8; // the IR version of opset 17
    m.producer_name = "host-trainer".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    m.opset_import.push(Default::default());
    m.opset_import[0].version = OPSET;
    let g = m.graph.mut_or_insert_default();
    g.name = spec.arch.clone();
    g.node = w.nodes;
    g.initializer = w.inits;
    let i = spec.input;
    g.input.push(super::proto::value_info(
        "input",
        &[None, Some(i.c), Some(i.h), Some(i.w)],
    ));
    g.output.push(super::proto::value_info(
        "logits",
        &[None, Some(spec.output().len())],
    ));
    Ok((m, layers))
}

/// Exports the run in `run` to `out` in `profile`, with the side JSON `OUT.onnx.json`.
pub fn export_onnx(run: &Path, out: &Path, profile: Profile) -> anyhow::Result<OnnxSidecar> {
    let device = crate::backend::Backend::default().device()?;
    let (_, net) = load_trained(&RunDir::new(run), &device)?;
    let (model, layers) = model_proto(&net, profile)?;
    let side = OnnxSidecar {
        profile,
        opset: OPSET,
        run: run.to_path_buf(),
        relus_kept: layers.iter().map(|l| l.kept).sum(),
        relus_evaluated: layers.iter().map(|l| l.evaluated).sum(),
        relus_total: layers.iter().map(|l| l.total).sum(),
        layers,
    };
    let bytes = model.write_to_bytes().context("encoding the ONNX model")?;
    write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    write_atomic(
        &sidecar_path(out),
        serde_json::to_string_pretty(&side)?.as_bytes(),
    )
    .with_context(|| format!("writing {}", sidecar_path(out).display()))?;
    Ok(side)
}
