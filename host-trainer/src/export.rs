//! Export to the pi-core fixed-point model format (`.pic`).
//!
//! 1. **Fold BatchNorm** into the preceding conv: `w' = w·γ/√(σ²+ε)`,
//!    `b' = β + (b − μ)·γ/√(σ²+ε)` (running statistics, i.e. evaluation mode).
//! 2. **Calibrate** on training images: the largest |activation| over every tensor of the float
//!    model picks the activation scale `2^act_frac` (one scale for all activations).
//! 3. **Quantize**: per layer, weights to i16 at the largest `2^s` (s ≤ 15) with
//!    `max|w|·2^s ≤ 32767`, lowered if the bias (i32 at `2^(act_frac+s)`) would overflow;
//!    masks must be binary (every `m` 0 or 1) and become kept/identity bits.
//! 4. **Choose widths** (pi-core format v2): the narrowest that keep the fixed-point model
//!    within the parity rule (accuracy at most [`PARITY_POINTS`] points below
//!    the float model, argmax agreement at least [`PARITY_AGREEMENT`]): first 16-bit
//!    activations (at the largest scale whose calibration maximum stays below `2^14`, half the
//!    `i16` range), then, layer by layer, `i8` weights (largest `2^s` with `max|w|·2^s <= 127`).
//!    The rule is checked on the validation split and the calibration images
//!    ([`parity_set`]), not on the test set that `eval` reports on. A choice that breaks the
//!    rule is undone and reported. [`ExportOptions::wide`] skips this
//!    and writes format v1 (32-bit activations, `i16` weights) as before.
//!
//! The float model computes exactly what pi-core computes, up to rounding: average pools are
//! plain means without padding, `Add` is a plain sum, and masked ReLUs are `max(x,0)` or `x`.

use anyhow::{Context, Result, bail, ensure};
use pi_core::spec::{Encoding, LayerSpec, MaskSpec, ModelSpec, OpSpec};
use serde::{Deserialize, Serialize};

use crate::model::spec::Op;
use crate::model::{Net, to_f32_vec};

/// Export settings.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Force this activation scale instead of calibrating one.
    pub act_frac: Option<u8>,
    /// Write format v1 (32-bit activations, `i16` weights) instead of choosing the narrowest
    /// widths that keep parity.
    pub wide: bool,
}

/// Most accuracy points the fixed-point model may lose against the float model.
pub const PARITY_POINTS: f64 = 0.5;

/// Least share of test images on which the fixed-point and float models must agree.
pub const PARITY_AGREEMENT: f64 = 0.99;

/// Number widths of an export: activation bits (16 or 32) and, per conv/linear layer in step
/// order, whether its weights are `i8`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Widths {
    /// 16 or 32.
    pub activation_bits: u8,
    /// One entry per conv/linear layer, in order: `true` for `i8` weights.
    pub i8_weights: Vec<bool>,
}

/// What the exporter chose, per layer and overall (written next to the `.pic` as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// Activation fractional bits (inputs must be quantized at this scale).
    pub act_frac: u8,
    /// Largest |activation| seen in calibration.
    pub max_abs_activation: f32,
    /// Weight fractional bits of each conv/linear layer, in order.
    pub weight_frac_bits: Vec<(String, u8)>,
    /// ReLUs kept / total.
    pub relus_kept: u64,
    /// ReLUs of the unlinearized network.
    pub relus_total: u64,
    /// Format version written (1 or 2), and the widths chosen.
    #[serde(default)]
    pub format_version: u16,
    /// Widths chosen (see [`Widths`]); absent in sidecars written before format v2.
    #[serde(default)]
    pub widths: Widths,
    /// Why each wider choice was needed (empty when the narrowest passed).
    #[serde(default)]
    pub width_notes: Vec<String>,
}

/// A conv or linear layer in float, after BatchNorm folding: weights `[out][in...]`, bias.
#[derive(Debug, Clone)]
pub struct FoldedLayer {
    /// Weights, output-major (`[out][in][kh][kw]` or `[out][in]`).
    pub weights: Vec<f32>,
    /// One bias per output.
    pub bias: Vec<f32>,
}

/// Conv (+BN) and linear layers of `net`, folded, in step order.
pub fn fold(net: &Net) -> Vec<FoldedLayer> {
    let (mut ci, mut li) = (0, 0);
    let mut out = vec![];
    for step in &net.spec.steps {
        match step.op {
            Op::Conv { out_channels, .. } => {
                let l = &net.convs[ci];
                ci += 1;
                let mut w = to_f32_vec(l.conv.weight.val());
                let mut b = match &l.conv.bias {
                    Some(b) => to_f32_vec(b.val()),
                    None => vec![0.0; out_channels],
                };
                if let Some(bn) = &l.bn {
                    let gamma = to_f32_vec(bn.gamma.val());
                    let beta = to_f32_vec(bn.beta.val());
                    let mean = to_f32_vec(bn.running_mean.value());
                    let var = to_f32_vec(bn.running_var.value());
                    let per_out = w.len() / out_channels;
                    for o in 0..out_channels {
                        // f64 here: the fold should not add error of its own.
                        let scale = gamma[o] as f64 / (var[o] as f64 + bn.epsilon).sqrt();
                        for v in &mut w[o * per_out..(o + 1) * per_out] {
                            *v = (*v as f64 * scale) as f32;
                        }
                        b[o] = (beta[o] as f64 + (b[o] as f64 - mean[o] as f64) * scale) as f32;
                    }
                }
                out.push(FoldedLayer {
                    weights: w,
                    bias: b,
                });
            }
            Op::Linear { out_features } => {
                let l = &net.linears[li];
                li += 1;
                // burn stores Linear weights as [in, out]; pi-core wants [out][in].
                let w = to_f32_vec(l.weight.val());
                let inputs = w.len() / out_features;
                let mut t = vec![0.0; w.len()];
                for i in 0..inputs {
                    for o in 0..out_features {
                        t[o * inputs + i] = w[i * out_features + o];
                    }
                }
                let bias = match &l.bias {
                    Some(b) => to_f32_vec(b.val()),
                    None => vec![0.0; out_features],
                };
                out.push(FoldedLayer { weights: t, bias });
            }
            _ => {}
        }
    }
    out
}

/// Largest `s <= 15` with `max_abs * 2^s <= 32767` (15 for an all-zero layer).
pub fn weight_frac_bits(max_abs: f32) -> u8 {
    frac_bits_within(max_abs, 32767.0)
}

/// Largest `s <= 15` with `max_abs * 2^s <= limit`.
fn frac_bits_within(max_abs: f32, limit: f64) -> u8 {
    (0..=15u8)
        .rev()
        .find(|&s| max_abs as f64 * f64::from(1u32 << s) <= limit)
        .unwrap_or(0)
}

/// Weight bits of a layer at activation scale `act_frac`: the weight rule, lowered until the
/// bias fits an i32 at `2^(act_frac + s)`. `None` if even `s = 0` overflows.
fn layer_frac_bits(layer: &FoldedLayer, act_frac: u8) -> Option<u8> {
    layer_frac_bits_within(layer, act_frac, 32767.0)
}

/// [`layer_frac_bits`] for weights up to `limit` (32767 for `i16`, 127 for `i8`).
fn layer_frac_bits_within(layer: &FoldedLayer, act_frac: u8, limit: f64) -> Option<u8> {
    let max_w = layer.weights.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max_b = layer.bias.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    let s_w = frac_bits_within(max_w, limit);
    (0..=s_w)
        .rev()
        .find(|&s| max_b * 2f64.powi(i32::from(act_frac + s)) < 2_147_483_000.0)
}

/// Picks the activation scale: the largest `a` in 12 down to 6 such that the largest
/// calibration activation stays below 2^31 / 256 (headroom for inputs unlike the calibration
/// set) and every layer keeps at least `min(its weight bits, 8)` weight bits.
pub fn choose_act_frac(layers: &[FoldedLayer], max_abs_activation: f32) -> Result<u8> {
    for a in (6..=12u8).rev() {
        let fits_acts = max_abs_activation as f64 * 2f64.powi(i32::from(a)) < 2f64.powi(23);
        let fits_layers = layers.iter().all(|l| {
            let s_w = weight_frac_bits(l.weights.iter().fold(0.0f32, |m, v| m.max(v.abs())));
            layer_frac_bits(l, a).is_some_and(|s| s >= s_w.min(8))
        });
        if fits_acts && fits_layers {
            return Ok(a);
        }
    }
    bail!(
        "no activation scale in 2^6..2^12 fits: activations up to {max_abs_activation} or biases \
         too large for 32-bit fixed point"
    )
}

/// Largest |value| over every tensor of the float model on `calibration` (NCHW, normalised).
pub fn calibrate(net: &Net, calibration: burn::tensor::Tensor<4>) -> f32 {
    net.forward_all(calibration, true)
        .into_iter()
        .map(|t| to_f32_vec(t.abs().max()).first().copied().unwrap_or(0.0))
        .fold(0.0, f32::max)
}

/// Activation scale for 16-bit activations: the largest `a <= a32` (the 32-bit choice) whose
/// calibration maximum stays below `2^14` (twice the headroom of the calibration set; larger
/// values saturate at the `i16` limit rather than wrap). `None` if even `a = 4` does not fit.
pub fn act_frac_16(a32: u8, max_abs_activation: f32) -> Option<u8> {
    (4..=a32)
        .rev()
        .find(|&a| max_abs_activation as f64 * 2f64.powi(i32::from(a)) < 16384.0)
}

/// Builds the pi-core model of `net` (evaluation mode) with activation scale from
/// `max_abs_activation` (see [`calibrate`]) unless `opts.act_frac` forces one: 32-bit
/// activations and `i16` weights (format v1's widths).
pub fn to_model_spec(
    net: &Net,
    max_abs_activation: f32,
    opts: &ExportOptions,
) -> Result<(ModelSpec, ExportInfo)> {
    to_model_spec_with(net, max_abs_activation, opts, &Widths::default())
}

/// [`to_model_spec`] at the given widths: with 16-bit activations the scale is
/// [`act_frac_16`] of the 32-bit choice; a layer marked `i8` gets at most 127 in magnitude.
pub fn to_model_spec_with(
    net: &Net,
    max_abs_activation: f32,
    opts: &ExportOptions,
    widths: &Widths,
) -> Result<(ModelSpec, ExportInfo)> {
    let spec = &net.spec;
    let folded = fold(net);
    let act_frac = match opts.act_frac {
        Some(a) => a,
        None => choose_act_frac(&folded, max_abs_activation)?,
    };
    let act_frac = if widths.activation_bits == 16 && opts.act_frac.is_none() {
        act_frac_16(act_frac, max_abs_activation)
            .with_context(|| format!("activations up to {max_abs_activation} do not fit 16 bits"))?
    } else {
        act_frac
    };
    let u8_of = |v: usize, what: &str| {
        u8::try_from(v).with_context(|| format!("{what} {v} does not fit the format"))
    };
    let u16_of = |v: usize, what: &str| {
        u16::try_from(v).with_context(|| format!("{what} {v} does not fit the format"))
    };
    let mut layers = Vec::with_capacity(spec.steps.len());
    let mut weight_bits = vec![];
    let (mut fi, mut ri) = (0, 0);
    let (mut kept, mut total) = (0u64, 0u64);
    for (i, step) in spec.steps.iter().enumerate() {
        let quantized = |fi: usize| -> Result<(u8, Vec<i16>, Vec<i32>)> {
            let l = &folded[fi];
            let narrow = widths.i8_weights.get(fi).copied().unwrap_or(false);
            let limit = if narrow { 127 } else { 32767 };
            let s = layer_frac_bits_within(l, act_frac, f64::from(limit)).with_context(|| {
                format!("{}: bias too large for act_frac {act_frac}", step.name)
            })?;
            let w = l
                .weights
                .iter()
                .map(|&v| pi_core::fixed::quantize(v, s).clamp(-limit, limit) as i16)
                .collect();
            let b = l
                .bias
                .iter()
                .map(|&v| pi_core::fixed::quantize(v, act_frac + s))
                .collect();
            Ok((s, w, b))
        };
        let op = match step.op {
            Op::Conv {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (s, weights, bias) = quantized(fi)?;
                fi += 1;
                weight_bits.push((step.name.clone(), s));
                OpSpec::Conv2d {
                    out_channels: u16_of(out_channels, "channels")?,
                    kernel_h: u8_of(kernel, "kernel")?,
                    kernel_w: u8_of(kernel, "kernel")?,
                    stride: u8_of(stride, "stride")?,
                    padding: u8_of(padding, "padding")?,
                    weight_frac_bits: s,
                    weights,
                    bias: Some(bias),
                }
            }
            Op::Linear { out_features } => {
                let (s, weights, bias) = quantized(fi)?;
                fi += 1;
                weight_bits.push((step.name.clone(), s));
                OpSpec::Linear {
                    out_features: u32::try_from(out_features)?,
                    weight_frac_bits: s,
                    weights,
                    bias: Some(bias),
                }
            }
            Op::Relu => {
                let m = net.relus[ri].mask_values();
                ri += 1;
                ensure!(
                    m.iter().all(|&v| v == 0.0 || v == 1.0),
                    "{}: mask is not binary; binarize it (linearization) before export",
                    step.name
                );
                let k = m.iter().filter(|&&v| v == 1.0).count();
                kept += k as u64;
                total += m.len() as u64;
                let mask = if k == m.len() {
                    MaskSpec::All
                } else if k == 0 {
                    MaskSpec::None
                } else {
                    MaskSpec::Elements(m.iter().map(|&v| v == 1.0).collect())
                };
                OpSpec::MaskedRelu { mask }
            }
            Op::AvgPool { kernel, stride } => OpSpec::AvgPool2d {
                kernel: u8_of(kernel, "pool kernel")?,
                stride: u8_of(stride, "pool stride")?,
            },
            Op::GlobalAvgPool => OpSpec::GlobalAvgPool,
            Op::Flatten => OpSpec::Flatten,
            Op::Add { other } => OpSpec::Add { other },
        };
        // Step i reads tensor i by default (pi-core: None = previous tensor).
        let input = (step.input != i).then_some(step.input);
        layers.push(LayerSpec { input, op });
    }
    let input = pi_core::Shape {
        channels: u16_of(spec.input.c, "input channels")?,
        height: u16_of(spec.input.h, "input height")?,
        width: u16_of(spec.input.w, "input width")?,
    };
    let info = ExportInfo {
        act_frac,
        max_abs_activation,
        weight_frac_bits: weight_bits,
        relus_kept: kept,
        relus_total: total,
        format_version: 1,
        widths: Widths {
            activation_bits: 32,
            i8_weights: vec![false; folded.len()],
        },
        width_notes: vec![],
    };
    Ok((
        ModelSpec {
            activation_frac_bits: act_frac,
            input,
            layers,
        },
        info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_bits_rule() {
        assert_eq!(weight_frac_bits(0.0), 15);
        assert_eq!(weight_frac_bits(0.99), 15);
        assert_eq!(weight_frac_bits(1.0), 14);
        assert_eq!(weight_frac_bits(1.5), 14);
        assert_eq!(weight_frac_bits(3.0), 13);
        assert_eq!(weight_frac_bits(40000.0), 0);
    }

    #[test]
    fn parity_rule() {
        // 0.5 points below float is within; more is not; agreement below 99% fails.
        assert!(meets_parity(0.990, 0.995, 0.995));
        assert!(!meets_parity(0.989, 0.995, 0.995));
        assert!(!meets_parity(0.995, 0.989, 0.995));
        assert!(meets_parity(0.995, 0.990, 0.995));
    }

    #[test]
    fn sixteen_bit_activation_scale_keeps_half_the_range() {
        // 13.01 * 2^10 = 13,322 < 2^14; at 2^11 it would be 26,644.
        assert_eq!(act_frac_16(12, 13.01), Some(10));
        assert_eq!(act_frac_16(9, 13.01), Some(9));
        assert_eq!(act_frac_16(12, 5000.0), None);
    }

    #[test]
    fn i8_weight_bits_fit_127() {
        let l = FoldedLayer {
            weights: vec![0.9, -1.5],
            bias: vec![0.0],
        };
        // 1.5 * 2^6 = 96 <= 127 < 1.5 * 2^7; for i16, 1.5 * 2^14 = 24,576.
        assert_eq!(layer_frac_bits_within(&l, 10, 127.0), Some(6));
        assert_eq!(layer_frac_bits(&l, 10), Some(14));
    }

    #[test]
    fn large_bias_lowers_weight_bits() {
        let l = FoldedLayer {
            weights: vec![0.5],
            bias: vec![100.0],
        };
        // 100 * 2^(12+s) < 2^31 needs s <= 12.
        assert_eq!(layer_frac_bits(&l, 12), Some(12));
        assert_eq!(choose_act_frac(&[l], 10.0).expect("fits"), 12);
    }
}

/// Written next to the model file as `<model>.json`: how to feed the model and where it came
/// from (pi-core files carry no normalisation; eval reads this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportSidecar {
    /// Quantization choices.
    pub info: ExportInfo,
    /// Dataset the model was trained on.
    pub dataset: crate::data::DatasetKind,
    /// Input normalisation (before quantization at `2^act_frac`).
    pub normalization: crate::data::Normalization,
    /// The run folder.
    pub run: std::path::PathBuf,
    /// Architecture description.
    pub arch: String,
}

/// Per-layer `i8` flags of the file encoding from [`Widths`] (one per conv/linear layer).
pub fn encoding_of(spec: &ModelSpec, widths: &Widths) -> Encoding {
    let mut conv_or_linear = 0;
    let i8_weights = spec
        .layers
        .iter()
        .map(|l| match l.op {
            OpSpec::Conv2d { .. } | OpSpec::Linear { .. } => {
                let narrow = widths
                    .i8_weights
                    .get(conv_or_linear)
                    .copied()
                    .unwrap_or(false);
                conv_or_linear += 1;
                narrow
            }
            _ => false,
        })
        .collect();
    Encoding::v2(widths.activation_bits, i8_weights)
}

/// Whether accuracy `acc` and agreement `agree` meet the parity rule against `float_acc`.
pub fn meets_parity(acc: f64, agree: f64, float_acc: f64) -> bool {
    // A tiny tolerance so that exactly 0.5 points (e.g. 2 of 400 images) counts as within.
    acc >= float_acc - PARITY_POINTS / 100.0 - 1e-9 && agree >= PARITY_AGREEMENT
}

/// Picks the narrowest widths that meet the parity rule: 16-bit activations first, then `i8`
/// weights layer by layer, each kept only if the model with every choice so far still meets
/// it (`check(bytes, act_frac)` gives accuracy and agreement on the evaluation set). Returns the
/// chosen model's info (with the reasons for every wider choice) and bytes, in format v2.
pub fn choose_widths(
    net: &Net,
    max_abs: f32,
    opts: &ExportOptions,
    layers: usize,
    float_acc: f64,
    check: impl Fn(&[u8], u8) -> Result<(f64, f64)>,
) -> Result<(ExportInfo, Vec<u8>)> {
    let build = |widths: &Widths| -> Result<(ExportInfo, Vec<u8>, f64, f64)> {
        let (spec, mut info) = to_model_spec_with(net, max_abs, opts, widths)?;
        let bytes = spec
            .to_bytes_with(&encoding_of(&spec, widths))
            .map_err(|e| anyhow::anyhow!("pi-core could not encode the model: {e}"))?;
        let (acc, agree) = check(&bytes, info.act_frac)?;
        info.format_version = 2;
        info.widths = widths.clone();
        Ok((info, bytes, acc, agree))
    };
    let mut widths = Widths {
        activation_bits: 32,
        i8_weights: vec![false; layers],
    };
    let (mut info, mut bytes, acc, agree) = build(&widths)?;
    let mut notes = vec![];
    if !meets_parity(acc, agree, float_acc) {
        notes.push(format!(
            "even 32-bit activations and i16 weights miss parity: {:.2}% vs float {:.2}%, \
             agreement {:.2}%",
            100.0 * acc,
            100.0 * float_acc,
            100.0 * agree
        ));
    }
    // Narrowest first: activations, then each layer's weights, keeping what passes.
    for step in 0..=layers {
        let mut candidate = widths.clone();
        let what = if step == 0 {
            candidate.activation_bits = 16;
            "16-bit activations".to_string()
        } else {
            candidate.i8_weights[step - 1] = true;
            format!("i8 weights in layer {}", step - 1)
        };
        match build(&candidate) {
            Ok((i, b, acc, agree)) if meets_parity(acc, agree, float_acc) => {
                (widths, info, bytes) = (candidate, i, b);
            }
            Ok((_, _, acc, agree)) => notes.push(format!(
                "{what} would give {:.2}% (float {:.2}%), agreement {:.2}%",
                100.0 * acc,
                100.0 * float_acc,
                100.0 * agree
            )),
            Err(e) => notes.push(format!("{what}: {e:#}")),
        }
    }
    info.width_notes = notes;
    Ok((info, bytes))
}

/// Most images the width choice evaluates the fixed-point model on (each candidate runs them
/// all through pi-core).
pub const PARITY_IMAGES: usize = 2000;

/// The images the parity rule is checked on: the validation split first, then calibration
/// images, [`PARITY_IMAGES`] at most; never the test set, whose reports would otherwise be
/// chosen on.
pub fn parity_set(
    val: &crate::data::ImageSet,
    calibration: &crate::data::ImageSet,
) -> crate::data::ImageSet {
    let mut set = val.clone();
    set.pixels.extend_from_slice(&calibration.pixels);
    set.labels.extend_from_slice(&calibration.labels);
    set.truncate(PARITY_IMAGES)
}

/// Path of the sidecar of `model`: `model.pic` → `model.pic.json`.
pub fn sidecar_path(model: &std::path::Path) -> std::path::PathBuf {
    let mut s = model.as_os_str().to_owned();
    s.push(".json");
    s.into()
}

/// Images used for calibration (the first of the training split).
pub const CALIBRATION_IMAGES: usize = 512;

/// Exports the model of run folder `run_dir` to `out` (and `out.json`); checks that pi-core
/// parses the result.
pub fn export_run(
    run_dir: &std::path::Path,
    out: &std::path::Path,
    opts: &ExportOptions,
) -> Result<ExportSidecar> {
    use crate::train::run_dir::{RunDir, load_trained};
    let run = RunDir::new(run_dir);
    let cfg = run.read_config()?;
    let device = cfg.backend.device()?;
    let (cfg, net) = load_trained(&run, &device)?;
    // Calibrate on training images only (the test set is for final reports).
    let tt = crate::data::load(cfg.dataset, &cfg.data_paths())?;
    let (train, val) = crate::data::split::train_val(&tt.train, cfg.val_fraction, cfg.seed);
    let idx: Vec<usize> = (0..train.len().min(CALIBRATION_IMAGES)).collect();
    let s = train.shape;
    let x = crate::data::batch::floats(&train, &idx, &cfg.normalization, None);
    let x = burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(x, [idx.len(), s.channels, s.height, s.width]),
        &device,
    );
    let max_abs = calibrate(&net, x);
    let (model_spec, info) = to_model_spec(&net, max_abs, opts)?;
    let (info, bytes) = if opts.wide {
        let bytes = model_spec
            .to_bytes()
            .map_err(|e| anyhow::anyhow!("pi-core could not encode the model: {e}"))?;
        (info, bytes)
    } else {
        // The widths are a choice made on the model, so the parity rule is checked on images
        // the test set's reports do not depend on: the validation split, then the calibration
        // images, at most PARITY_IMAGES of them.
        let set = parity_set(&val, &train.select(&idx));
        let classes = net.spec.output().len();
        let logits = crate::train::evaluate::logits(&net, &set, &cfg.normalization, &device, 256);
        let float = crate::train::evaluate::argmax_rows(&logits, classes);
        let float_acc = crate::eval::accuracy(&float, &set.labels);
        let check = |bytes: &[u8], act_frac: u8| -> Result<(f64, f64)> {
            let (fixed, _, _) =
                crate::eval::fixed_predictions(bytes, act_frac, &set, &cfg.normalization)?;
            Ok((
                crate::eval::accuracy(&fixed, &set.labels),
                crate::eval::agreement(&float, &fixed),
            ))
        };
        choose_widths(
            &net,
            max_abs,
            opts,
            info.weight_frac_bits.len(),
            float_acc,
            check,
        )?
    };
    pi_core::Model::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("pi-core rejects the exported model: {e}"))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::train::checkpoint::write_atomic(out, &bytes)
        .with_context(|| format!("writing {}", out.display()))?;
    let sidecar = ExportSidecar {
        info,
        dataset: cfg.dataset,
        normalization: cfg.normalization.clone(),
        run: run_dir.to_path_buf(),
        arch: net.spec.arch.clone(),
    };
    crate::train::checkpoint::write_atomic(
        &sidecar_path(out),
        serde_json::to_string_pretty(&sidecar)?.as_bytes(),
    )?;
    Ok(sidecar)
}
