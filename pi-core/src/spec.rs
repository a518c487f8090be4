//! Owned model descriptions and the model-file writer (host only, feature `std`).
//!
//! The trainer builds a [`ModelSpec`] and calls [`ModelSpec::to_bytes`]; [`Model::to_spec`] turns
//! a parsed file back into one, so `parse(write(m)) == m` can be checked.

extern crate std;

use std::vec::Vec;

use serde::Serialize;

use crate::crc::crc32;
use crate::error::Error;
use crate::format::{
    HeaderV1, HeaderV2, LayerRecord, MAGIC, MaskRecord, NumberFormat, OpRecord, Shape,
};
use crate::layer::{Op, WeightWidth};
use crate::mask::MaskEncoding;
use crate::model::Model;

/// A whole model, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Activations are `i32` at scale `2^activation_frac_bits`.
    pub activation_frac_bits: u8,
    /// Input shape (CHW).
    pub input: Shape,
    /// Layers in order; layer `i` writes tensor `i + 1`.
    pub layers: Vec<LayerSpec>,
}

/// One layer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// Tensor read: `None` for the previous layer's output (or the model input for layer 0).
    pub input: Option<usize>,
    /// What the layer computes.
    pub op: OpSpec,
}

impl LayerSpec {
    /// A layer reading the previous tensor.
    pub fn new(op: OpSpec) -> Self {
        Self { input: None, op }
    }

    /// A layer reading tensor `input`.
    pub fn reading(input: usize, op: OpSpec) -> Self {
        Self {
            input: Some(input),
            op,
        }
    }
}

/// A layer's operation, owned (see [`crate::Op`] for the semantics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpSpec {
    /// 2-D convolution.
    Conv2d {
        /// Output channels.
        out_channels: u16,
        /// Kernel height.
        kernel_h: u8,
        /// Kernel width.
        kernel_w: u8,
        /// Step in both directions.
        stride: u8,
        /// Zero padding on every side (less than the kernel size).
        padding: u8,
        /// Weights hold `w * 2^weight_frac_bits`.
        weight_frac_bits: u8,
        /// `[out][in][kh][kw]`.
        weights: Vec<i16>,
        /// One per output channel at scale `2^(activation + weight frac bits)`.
        bias: Option<Vec<i32>>,
    },
    /// Fully connected layer on a vector.
    Linear {
        /// Output features (at most 65535).
        out_features: u32,
        /// Weights hold `w * 2^weight_frac_bits`.
        weight_frac_bits: u8,
        /// `[out][in]`.
        weights: Vec<i16>,
        /// One per output at scale `2^(activation + weight frac bits)`.
        bias: Option<Vec<i32>>,
    },
    /// Masked ReLU.
    MaskedRelu {
        /// Which elements keep their ReLU.
        mask: MaskSpec,
    },
    /// Average pooling without padding.
    AvgPool2d {
        /// Square window size.
        kernel: u8,
        /// Step between windows.
        stride: u8,
    },
    /// Mean over each channel plane.
    GlobalAvgPool,
    /// Element-wise sum with tensor `other`.
    Add {
        /// Tensor added to the input.
        other: usize,
    },
    /// `(C, H, W) -> (C*H*W, 1, 1)`.
    Flatten,
}

/// Which elements of a masked ReLU keep their ReLU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskSpec {
    /// Every element (a plain ReLU).
    All,
    /// No element (the identity).
    None,
    /// Per element in CHW order; `true` keeps the ReLU. The writer picks the smallest encoding
    /// and normalises all-true / all-false to [`MaskSpec::All`] / [`MaskSpec::None`].
    Elements(Vec<bool>),
}

impl MaskSpec {
    /// Normal form: `Elements` that are all kept or all linearized become `All` / `None`.
    pub fn normalized(&self) -> MaskSpec {
        match self {
            MaskSpec::Elements(e) if e.iter().all(|&k| k) => MaskSpec::All,
            MaskSpec::Elements(e) if e.iter().all(|&k| !k) => MaskSpec::None,
            other => other.clone(),
        }
    }

    /// Kept ReLUs out of `len` elements.
    pub fn kept(&self, len: usize) -> usize {
        match self {
            MaskSpec::All => len,
            MaskSpec::None => 0,
            MaskSpec::Elements(e) => e.iter().filter(|&&k| k).count(),
        }
    }
}

/// A mask in its file encoding, with the bytes it borrows.
enum EncodedMask {
    AllKept,
    NoneKept,
    Bitmap(Vec<u8>),
    Indices(Vec<u8>),
}

impl EncodedMask {
    fn of(mask: &MaskSpec) -> Self {
        match mask.normalized() {
            MaskSpec::All => Self::AllKept,
            MaskSpec::None => Self::NoneKept,
            MaskSpec::Elements(kept) => {
                let count = kept.iter().filter(|&&k| k).count();
                // Whichever is smaller: one bit per element, or four bytes per kept element.
                if count * 4 < kept.len().div_ceil(8) {
                    let indices = kept
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| **k)
                        .flat_map(|(i, _)| (i as u32).to_le_bytes())
                        .collect();
                    Self::Indices(indices)
                } else {
                    let mut bits = std::vec![0u8; kept.len().div_ceil(8)];
                    for (i, _) in kept.iter().enumerate().filter(|(_, k)| **k) {
                        bits[i / 8] |= 1 << (i % 8);
                    }
                    Self::Bitmap(bits)
                }
            }
        }
    }

    fn record(&self) -> MaskRecord<'_> {
        match self {
            Self::AllKept => MaskRecord::AllKept,
            Self::NoneKept => MaskRecord::NoneKept,
            Self::Bitmap(b) => MaskRecord::Bitmap(b),
            Self::Indices(i) => MaskRecord::Indices(i),
        }
    }
}

fn le_i16(values: &[i16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `i8` weights, one byte each; `None` if one does not fit.
fn narrow_i8(values: &[i16]) -> Option<Vec<u8>> {
    values
        .iter()
        .map(|&v| i8::try_from(v).ok().map(|b| b as u8))
        .collect()
}

fn le_i32(values: Option<&Vec<i32>>) -> Vec<u8> {
    values
        .map(|v| v.iter().flat_map(|b| b.to_le_bytes()).collect())
        .unwrap_or_default()
}

fn push<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    let bytes = postcard::to_stdvec(value).map_err(|_| Error::Malformed)?;
    out.extend_from_slice(&bytes);
    Ok(())
}

impl ModelSpec {
    /// The same model in canonical form: a layer reading the previous tensor says `None`, and
    /// masks are [normalized](MaskSpec::normalized). `Model::parse(&m.to_bytes()?)?.to_spec()`
    /// equals `m.canonical()`.
    pub fn canonical(&self) -> ModelSpec {
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let op = match &layer.op {
                    OpSpec::MaskedRelu { mask } => OpSpec::MaskedRelu {
                        mask: mask.normalized(),
                    },
                    op => op.clone(),
                };
                LayerSpec {
                    input: layer.input.filter(|&i| i != index),
                    op,
                }
            })
            .collect();
        ModelSpec {
            layers,
            ..self.clone()
        }
    }

    /// Writes the model file in format v1 (what every version of pi-core reads) and checks it
    /// by parsing it back: a spec that would not parse is reported with the same [`Error`] the
    /// device would give. [`ModelSpec::to_bytes_with`] writes v2.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        self.to_bytes_with(&Encoding::V1)
    }

    /// Writes the model file in the format `encoding` describes and checks it by parsing it
    /// back. A layer listed in [`Encoding::i8_weights`] must be a conv or linear layer whose
    /// every weight fits `i8` ([`Error::BadParameter`] otherwise); v1 allows neither `i8`
    /// weights nor 16-bit activations.
    pub fn to_bytes_with(&self, encoding: &Encoding) -> Result<Vec<u8>, Error> {
        let layer_count = u16::try_from(self.layers.len()).map_err(|_| Error::TooManyLayers {
            found: self.layers.len(),
        })?;
        let v2 = match encoding.version {
            1 if encoding.activation_bits == 32 && !encoding.i8_weights.contains(&true) => false,
            1 => return Err(Error::BadParameter { layer: usize::MAX }),
            2 => true,
            found => return Err(Error::UnsupportedVersion { found }),
        };
        let narrow = |index: usize| encoding.i8_weights.get(index).copied().unwrap_or(false);
        let number_format = NumberFormat {
            activation_frac_bits: self.activation_frac_bits,
        };
        let mut out = Vec::from(MAGIC);
        push(&mut out, &encoding.version)?;
        if v2 {
            let header = HeaderV2 {
                number_format,
                activation_bits: encoding.activation_bits,
                input: self.input,
                layer_count,
            };
            push(&mut out, &header)?;
        } else {
            let header = HeaderV1 {
                number_format,
                input: self.input,
                layer_count,
            };
            push(&mut out, &header)?;
        }
        if let Some(index) = (0..encoding.i8_weights.len()).find(|&i| {
            narrow(i)
                && !matches!(
                    self.layers.get(i).map(|l| &l.op),
                    Some(OpSpec::Conv2d { .. } | OpSpec::Linear { .. })
                )
        }) {
            return Err(Error::BadParameter { layer: index });
        }
        for (index, layer) in self.layers.iter().enumerate() {
            let input = layer.input.unwrap_or(index);
            let input = u16::try_from(input).map_err(|_| Error::BadTensorRef { layer: index })?;
            let tensor_ref =
                |t: usize| u16::try_from(t).map_err(|_| Error::BadTensorRef { layer: index });
            match &layer.op {
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
                    let b = le_i32(bias.as_ref());
                    let w = if narrow(index) {
                        narrow_i8(weights).ok_or(Error::BadParameter { layer: index })?
                    } else {
                        le_i16(weights)
                    };
                    let op = if narrow(index) {
                        OpRecord::Conv2dI8 {
                            out_channels: *out_channels,
                            kernel_h: *kernel_h,
                            kernel_w: *kernel_w,
                            stride: *stride,
                            padding: *padding,
                            weight_frac_bits: *weight_frac_bits,
                            weights: &w,
                            bias: &b,
                        }
                    } else {
                        OpRecord::Conv2d {
                            out_channels: *out_channels,
                            kernel_h: *kernel_h,
                            kernel_w: *kernel_w,
                            stride: *stride,
                            padding: *padding,
                            weight_frac_bits: *weight_frac_bits,
                            weights: &w,
                            bias: &b,
                        }
                    };
                    push(&mut out, &LayerRecord { input, op })?;
                }
                OpSpec::Linear {
                    out_features,
                    weight_frac_bits,
                    weights,
                    bias,
                } => {
                    let out_features = u16::try_from(*out_features)
                        .map_err(|_| Error::BadShape { layer: index })?;
                    let b = le_i32(bias.as_ref());
                    let w = if narrow(index) {
                        narrow_i8(weights).ok_or(Error::BadParameter { layer: index })?
                    } else {
                        le_i16(weights)
                    };
                    let op = if narrow(index) {
                        OpRecord::LinearI8 {
                            out_features,
                            weight_frac_bits: *weight_frac_bits,
                            weights: &w,
                            bias: &b,
                        }
                    } else {
                        OpRecord::Linear {
                            out_features,
                            weight_frac_bits: *weight_frac_bits,
                            weights: &w,
                            bias: &b,
                        }
                    };
                    push(&mut out, &LayerRecord { input, op })?;
                }
                OpSpec::MaskedRelu { mask } => {
                    let encoded = EncodedMask::of(mask);
                    let op = OpRecord::MaskedRelu {
                        mask: encoded.record(),
                    };
                    push(&mut out, &LayerRecord { input, op })?;
                }
                OpSpec::AvgPool2d { kernel, stride } => {
                    let op = OpRecord::AvgPool2d {
                        kernel: *kernel,
                        stride: *stride,
                    };
                    push(&mut out, &LayerRecord { input, op })?;
                }
                OpSpec::GlobalAvgPool => {
                    push(
                        &mut out,
                        &LayerRecord {
                            input,
                            op: OpRecord::GlobalAvgPool,
                        },
                    )?;
                }
                OpSpec::Add { other } => {
                    let op = OpRecord::Add {
                        other: tensor_ref(*other)?,
                    };
                    push(&mut out, &LayerRecord { input, op })?;
                }
                OpSpec::Flatten => {
                    push(
                        &mut out,
                        &LayerRecord {
                            input,
                            op: OpRecord::Flatten,
                        },
                    )?;
                }
            }
        }
        if v2 {
            let crc = crc32(&out);
            out.extend_from_slice(&crc.to_le_bytes());
        }
        Model::parse(&out)?;
        Ok(out)
    }
}

/// How [`ModelSpec::to_bytes_with`] writes a model: the format version and, for v2, the
/// number widths. [`Model::encoding`] reads it back from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// Format version: 1 or 2.
    pub version: u16,
    /// Bits of every activation: 32, or 16 (v2 only, see [`Model::activation_bits`]).
    pub activation_bits: u8,
    /// Per layer: whether its weights are stored as `i8` (v2 only; conv and linear layers
    /// only). Missing entries mean `false`.
    pub i8_weights: Vec<bool>,
}

impl Encoding {
    /// Format v1: 32-bit activations, `i16` weights.
    pub const V1: Encoding = Encoding {
        version: 1,
        activation_bits: 32,
        i8_weights: Vec::new(),
    };

    /// Format v2 with the given activation width and `i8` layers.
    pub fn v2(activation_bits: u8, i8_weights: Vec<bool>) -> Self {
        Self {
            version: 2,
            activation_bits,
            i8_weights,
        }
    }

    /// Canonical form: `i8_weights` lists every layer, no more (what [`Model::encoding`]
    /// returns).
    pub fn canonical(&self, layers: usize) -> Encoding {
        let mut i8_weights = self.i8_weights.clone();
        i8_weights.resize(layers, false);
        Encoding {
            i8_weights,
            ..self.clone()
        }
    }
}

impl Model<'_> {
    /// How the file was written: version, activation width and which layers hold `i8`
    /// weights, in canonical form (one entry per layer).
    pub fn encoding(&self) -> Encoding {
        Encoding {
            version: self.format_version(),
            activation_bits: self.activation_bits(),
            i8_weights: self
                .layers()
                .map(|layer| match layer.op {
                    Op::Conv2d(c) => c.weights.width() == WeightWidth::I8,
                    Op::Linear(l) => l.weights.width() == WeightWidth::I8,
                    _ => false,
                })
                .collect(),
        }
    }

    /// The model as an owned [`ModelSpec`] in canonical form (see [`ModelSpec::canonical`]).
    pub fn to_spec(&self) -> ModelSpec {
        let layers = self
            .layers()
            .map(|layer| {
                let op = match layer.op {
                    Op::Conv2d(c) => OpSpec::Conv2d {
                        out_channels: c.out_channels as u16,
                        kernel_h: c.kernel_h as u8,
                        kernel_w: c.kernel_w as u8,
                        stride: c.stride as u8,
                        padding: c.padding as u8,
                        weight_frac_bits: c.weight_frac_bits,
                        weights: c.weights.iter().collect(),
                        bias: c.bias.map(|b| b.iter().collect()),
                    },
                    Op::Linear(l) => OpSpec::Linear {
                        out_features: l.out_features as u32,
                        weight_frac_bits: l.weight_frac_bits,
                        weights: l.weights.iter().collect(),
                        bias: l.bias.map(|b| b.iter().collect()),
                    },
                    Op::MaskedRelu(mask) => OpSpec::MaskedRelu {
                        mask: match mask.encoding() {
                            MaskEncoding::AllKept => MaskSpec::All,
                            MaskEncoding::NoneKept => MaskSpec::None,
                            _ => MaskSpec::Elements(
                                (0..mask.len()).map(|i| mask.is_kept(i)).collect(),
                            ),
                        },
                    },
                    Op::AvgPool2d { kernel, stride } => OpSpec::AvgPool2d {
                        kernel: kernel as u8,
                        stride: stride as u8,
                    },
                    Op::GlobalAvgPool => OpSpec::GlobalAvgPool,
                    Op::Add { other } => OpSpec::Add { other },
                    Op::Flatten => OpSpec::Flatten,
                };
                if layer.input == layer.index {
                    LayerSpec::new(op)
                } else {
                    LayerSpec::reading(layer.input, op)
                }
            })
            .collect();
        ModelSpec {
            activation_frac_bits: self.activation_frac_bits(),
            input: self.input_shape(),
            layers,
        }
    }
}

impl ModelSpec {
    /// The model with every weight zeroed and every bias removed: what a private-inference
    /// client holds (the architecture, masks and scales, which Delphi-style protocols treat as
    /// public). It has the same [`architecture_digest`](crate::share::session::architecture_digest)
    /// as the full model.
    pub fn architecture_only(&self) -> ModelSpec {
        let mut spec = self.clone();
        for layer in &mut spec.layers {
            if let OpSpec::Conv2d { weights, bias, .. } | OpSpec::Linear { weights, bias, .. } =
                &mut layer.op
            {
                weights.iter_mut().for_each(|w| *w = 0);
                *bias = None;
            }
        }
        spec
    }
}
