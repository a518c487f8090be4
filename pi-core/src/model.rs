//! Parsing and validation: every check happens once, in [`Model::parse`].

use crate::crc::crc32;
use crate::error::Error;
use crate::fixed::{MAX_ACTIVATION_FRAC_BITS, MAX_WEIGHT_FRAC_BITS};
use crate::format::{
    CRC_BYTES, HeaderV1, HeaderV2, LayerRecord, MAGIC, NumberFormat, OpRecord, Shape,
};
use crate::layer::{Bias, Conv2d, Layer, Linear, Op, WeightWidth, Weights};
use crate::mask::ReluMask;
use crate::plan::{self, Plan};

/// Most layers a model may have. Parsing keeps a fixed table per tensor, so this bounds the
/// parsed [`Model`]'s size (about 1.6 KiB).
pub const MAX_LAYERS: usize = 128;

/// Most elements one tensor may have (so every offset fits 32 bits on any target).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 24;

/// Every accumulator the engine forms stays below this magnitude, so rounding cannot overflow.
const ACCUMULATOR_LIMIT: u128 = 1 << 62;

/// Largest magnitude of an `i32` activation.
const ACTIVATION_MAGNITUDE: u128 = 1 << 31;

/// Largest magnitude of an activation that fits `i16` (what the dual-MAC kernels multiply).
const NARROW_ACTIVATION_MAGNITUDE: u128 = 1 << 15;

/// An `i32` accumulator, with its rounding offset added, stays below this magnitude.
const NARROW_ACCUMULATOR_LIMIT: u128 = 1 << 31;

/// ReLU accounting: how many ReLUs a private inference pays for, out of how many sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReluCount {
    /// ReLUs kept (evaluated as a garbled circuit or OT comparison in PI).
    pub kept: u64,
    /// ReLU sites (elements of every masked-ReLU layer).
    pub total: u64,
}

impl ReluCount {
    /// Sites turned into the identity.
    pub fn linearized(&self) -> u64 {
        self.total - self.kept
    }

    fn add(&mut self, mask: &ReluMask<'_>) {
        self.kept += mask.kept() as u64;
        self.total += mask.len() as u64;
    }
}

/// Limits a caller puts on the models it accepts, checked once by [`Model::parse_with`].
///
/// The default sets no limit (what [`Model::parse`] uses). More limits may be added later, so
/// build it with [`ParseOptions::new`] (or `default()`) and the `with_` methods:
///
/// ```
/// # fn main() -> Result<(), pi_core::Error> {
/// use pi_core::{Error, Model, ParseOptions};
/// let bytes = pi_core::testing::TINY_MODEL;
/// let model = Model::parse_with(bytes, &ParseOptions::new().with_max_ops(1_000_000))?;
/// assert!(model.ops() <= 1_000_000);
/// let too_small = ParseOptions::new().with_max_ops(100);
/// assert_eq!(
///     Model::parse_with(bytes, &too_small).unwrap_err(),
///     Error::TooMuchWork { ops: model.ops(), limit: 100 }
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ParseOptions {
    /// Most ops ([`Model::ops`]) one inference may take; a model above it is rejected with
    /// [`Error::TooMuchWork`]. `None` (the default): no limit.
    ///
    /// As [`Model::arena_words`] is at most twice [`Model::ops`], this also bounds the memory a
    /// caller must provide.
    pub max_ops: Option<u64>,
}

impl ParseOptions {
    /// No limits: accepts every valid model.
    pub const fn new() -> Self {
        Self { max_ops: None }
    }

    /// These options with [`max_ops`](ParseOptions::max_ops) set to `limit`.
    pub const fn with_max_ops(mut self, limit: u64) -> Self {
        self.max_ops = Some(limit);
        self
    }
}

/// A parsed, fully validated model that borrows its weights from the file bytes.
///
/// Evaluation ([`Model::infer`]) cannot fail except for caller buffers of the wrong size, and
/// its work is known before it starts: [`Model::ops`] (a caller can cap it at parse time with
/// [`Model::parse_with`]).
#[derive(Debug, Clone)]
pub struct Model<'a> {
    layer_bytes: &'a [u8],
    version: u16,
    number_format: NumberFormat,
    activation_bits: u8,
    layer_count: usize,
    plan: Plan,
    relus: ReluCount,
    macs: u64,
    ops: u64,
    weight_bytes: usize,
    /// Bit `i`: layer `i` is a convolution whose every accumulator, rounding offset included,
    /// provably fits `i32` when its inputs fit `i16` (see [`check_accumulators`]).
    narrow_accumulators: u128,
}

impl<'a> Model<'a> {
    /// Parses and validates a model file: magic, version, every shape, length, mask, tensor
    /// reference and accumulator bound; then plans the activation buffer and counts the work of
    /// one inference ([`Model::ops`]). No limit on that work: this is
    /// [`Model::parse_with`] with the default [`ParseOptions`].
    ///
    /// Any byte string returns `Ok` or a typed [`Error`]; this never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_with(bytes, &ParseOptions::new())
    }

    /// [`Model::parse`], then the caller's limits: a valid model whose [`Model::ops`] exceed
    /// `options.max_ops` gives [`Error::TooMuchWork`] with its exact ops. Any other error takes
    /// precedence (the work of an invalid file is not defined).
    ///
    /// Any byte string returns `Ok` or a typed [`Error`]; this never panics.
    pub fn parse_with(bytes: &'a [u8], options: &ParseOptions) -> Result<Self, Error> {
        let after_magic = bytes.strip_prefix(&MAGIC).ok_or(Error::BadMagic)?;
        let (version, rest) =
            postcard::take_from_bytes::<u16>(after_magic).map_err(|_| Error::Malformed)?;
        let (header, mut rest) = match version {
            1 => {
                let (h, rest) =
                    postcard::take_from_bytes::<HeaderV1>(rest).map_err(|_| Error::Malformed)?;
                let header = HeaderV2 {
                    number_format: h.number_format,
                    activation_bits: 32,
                    input: h.input,
                    layer_count: h.layer_count,
                };
                (header, rest)
            }
            2 => {
                // The checksum first: nothing after the version is read before it matches.
                let body = bytes
                    .len()
                    .checked_sub(CRC_BYTES)
                    .and_then(|n| bytes.get(..n))
                    .filter(|body| body.len() > MAGIC.len())
                    .ok_or(Error::Malformed)?;
                let stored = bytes.get(body.len()..).ok_or(Error::Malformed)?;
                let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
                let computed = crc32(body);
                if stored != computed {
                    return Err(Error::ChecksumMismatch { stored, computed });
                }
                // `rest` is the body after the version: the CRC is not part of the records.
                let rest = rest
                    .len()
                    .checked_sub(CRC_BYTES)
                    .and_then(|n| rest.get(..n))
                    .ok_or(Error::Malformed)?;
                let (header, rest) =
                    postcard::take_from_bytes::<HeaderV2>(rest).map_err(|_| Error::Malformed)?;
                if header.activation_bits != 16 && header.activation_bits != 32 {
                    return Err(Error::BadParameter { layer: usize::MAX });
                }
                (header, rest)
            }
            found => return Err(Error::UnsupportedVersion { found }),
        };
        if header.number_format.activation_frac_bits > MAX_ACTIVATION_FRAC_BITS {
            return Err(Error::BadParameter { layer: usize::MAX });
        }
        let layer_count = header.layer_count as usize;
        if layer_count == 0 {
            return Err(Error::NoLayers);
        }
        if layer_count > MAX_LAYERS {
            return Err(Error::TooManyLayers { found: layer_count });
        }
        check_shape(header.input, usize::MAX)?;

        let mut shapes = [Shape::default(); MAX_LAYERS + 1];
        shapes[0] = header.input;
        let mut refs = [plan::LayerRefs::default(); MAX_LAYERS];
        let mut relus = ReluCount::default();
        let mut macs = 0u64;
        // The engine's first step copies the input into the arena.
        let mut ops = header.input.elements() as u64;
        let mut weight_bytes = 0usize;
        let mut scratch_words = 0usize;
        let mut narrow_accumulators = 0u128;
        let layers_start = rest;
        for index in 0..layer_count {
            let (record, after) =
                postcard::take_from_bytes::<LayerRecord<'a>>(rest).map_err(|_| Error::Malformed)?;
            rest = after;
            let layer = build_layer(index, record, &shapes[..=index], version)?;
            if check_accumulators(&layer)? {
                narrow_accumulators |= 1 << index;
            }
            shapes[index + 1] = layer.output_shape;
            refs[index] = plan::LayerRefs::of(&layer);
            macs = macs.saturating_add(layer.macs());
            ops = ops.saturating_add(layer.ops());
            match &layer.op {
                Op::MaskedRelu(mask) => relus.add(mask),
                Op::Conv2d(c) => {
                    weight_bytes += c.weights.as_bytes().len() + c.bias.map_or(0, |b| b.len() * 4);
                    // Two receptive fields of `i16` pairs, each padded to whole words (to
                    // whole groups of four inputs for `i8` weights, see `kernels`).
                    scratch_words = scratch_words.max(crate::kernels::scratch_words(c));
                }
                Op::Linear(l) => {
                    weight_bytes += l.weights.as_bytes().len() + l.bias.map_or(0, |b| b.len() * 4)
                }
                _ => {}
            }
        }
        if !rest.is_empty() {
            return Err(Error::TrailingBytes);
        }
        if let Some(limit) = options.max_ops
            && ops > limit
        {
            return Err(Error::TooMuchWork { ops, limit });
        }
        let layer_bytes = &layers_start[..layers_start.len() - rest.len()];
        let plan = plan::plan(&shapes[..=layer_count], &refs[..layer_count], scratch_words);
        Ok(Self {
            layer_bytes,
            version,
            number_format: header.number_format,
            activation_bits: header.activation_bits,
            layer_count,
            plan,
            relus,
            macs,
            ops,
            weight_bytes,
            narrow_accumulators,
        })
    }

    /// The number format (activation scale).
    pub fn number_format(&self) -> NumberFormat {
        self.number_format
    }

    /// The format version of the file (1 or 2).
    pub fn format_version(&self) -> u16 {
        self.version
    }

    /// Bits of every activation: 32, or 16 for a v2 file that declares it. With 16, every
    /// tensor the engine writes is saturated to the `i16` range (the input when it is copied
    /// in; conv, linear and add outputs when they are rounded), so every convolution runs on
    /// the dual 16-bit MAC kernels. Values stay `i32` in the arena either way.
    pub fn activation_bits(&self) -> u8 {
        self.activation_bits
    }

    /// Fractional bits of every activation.
    pub fn activation_frac_bits(&self) -> u8 {
        self.number_format.activation_frac_bits
    }

    /// Shape of the model input.
    pub fn input_shape(&self) -> Shape {
        self.plan.shape(0)
    }

    /// Shape of the model output (the last layer's tensor).
    pub fn output_shape(&self) -> Shape {
        self.plan.shape(self.layer_count)
    }

    /// Number of layers.
    pub fn layer_count(&self) -> usize {
        self.layer_count
    }

    /// Shape of tensor `id` (0 = input; `k` = output of layer `k - 1`); `None` past the end.
    pub fn tensor_shape(&self, id: usize) -> Option<Shape> {
        (id <= self.layer_count).then(|| self.plan.shape(id))
    }

    /// Words of `i32` the activation arena passed to [`Model::infer`] must hold: the peak of the
    /// buffer plan (tensors that are alive at the same time never share words), plus one
    /// receptive field of the widest convolution as kernel scratch.
    pub fn arena_words(&self) -> usize {
        self.plan.arena_words()
    }

    /// Where tensor `id` lives in the arena (word offset); `None` past the end.
    pub fn tensor_offset(&self, id: usize) -> Option<usize> {
        (id <= self.layer_count).then(|| self.plan.offset(id))
    }

    /// ReLU accounting over the whole model.
    pub fn relu_count(&self) -> ReluCount {
        self.relus
    }

    /// Multiply-accumulates per inference over all conv and linear layers.
    pub fn macs(&self) -> u64 {
        self.macs
    }

    /// The work of one inference, in ops: the input's elements (copied into the arena) plus
    /// every layer's [`Layer::ops`]: multiply-accumulates for conv and linear layers, summed
    /// input elements for pools (`kernel²` per output of an average pool, the whole plane per
    /// channel of a global pool), and one per output element of masked ReLU, add and flatten.
    /// See the crate docs, "Cost and limits".
    ///
    /// Unlike [`Model::macs`] it counts pools, so a model that pools a huge window cannot hide
    /// its cost. It bounds the arena too: [`Model::arena_words`] `<= 2 · ops()`. Saturates at
    /// `u64::MAX` (no valid model comes near: at most about `2^63`).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Bytes of weights and biases (borrowed from the file, never copied).
    pub fn parameter_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// The layers in order, as validated views.
    pub fn layers(&self) -> Layers<'_, 'a> {
        Layers {
            model: self,
            rest: self.layer_bytes,
            index: 0,
        }
    }

    /// Layer `index`, if it exists (walks the layer list: O(index)).
    pub fn layer(&self, index: usize) -> Option<Layer<'a>> {
        self.layers().nth(index)
    }

    /// Whether layer `index` may accumulate in `i32` over `i16` inputs (decided at parse time).
    pub(crate) fn narrow_accumulators(&self, index: usize) -> bool {
        index < MAX_LAYERS && self.narrow_accumulators & (1 << index) != 0
    }

    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Iterator over a model's layers (see [`Model::layers`]).
#[derive(Debug, Clone)]
pub struct Layers<'m, 'a> {
    model: &'m Model<'a>,
    rest: &'a [u8],
    index: usize,
}

impl<'a> Iterator for Layers<'_, 'a> {
    type Item = Layer<'a>;

    fn next(&mut self) -> Option<Layer<'a>> {
        if self.index >= self.model.layer_count {
            return None;
        }
        // Parsing already accepted these exact bytes, so decoding cannot fail here; if it ever
        // did, the iterator ends instead of panicking.
        let (record, after) = postcard::take_from_bytes::<LayerRecord<'a>>(self.rest).ok()?;
        let layer = build_layer(
            self.index,
            record,
            self.model.plan.shapes(),
            self.model.version,
        )
        .ok()?;
        self.rest = after;
        self.index += 1;
        Some(layer)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.model.layer_count - self.index;
        (left, Some(left))
    }
}

fn check_shape(shape: Shape, layer: usize) -> Result<(), Error> {
    let elements = shape.channels as u64 * shape.height as u64 * shape.width as u64;
    if elements == 0 || elements > MAX_TENSOR_ELEMENTS as u64 {
        return Err(Error::BadShape { layer });
    }
    Ok(())
}

fn dim(value: usize, layer: usize) -> Result<u16, Error> {
    u16::try_from(value).map_err(|_| Error::BadShape { layer })
}

fn bias_view(bytes: &[u8], count: usize, layer: usize) -> Result<Option<Bias<'_>>, Error> {
    match bytes.len() {
        0 => Ok(None),
        n if n as u64 == count as u64 * 4 => Ok(Some(Bias(bytes))),
        _ => Err(Error::BadLength { layer }),
    }
}

fn weights_view(bytes: &[u8], width: WeightWidth) -> Weights<'_> {
    match width {
        WeightWidth::I16 => Weights::i16(bytes),
        WeightWidth::I8 => Weights::i8(bytes),
    }
}

/// Checks one record against the shapes of the tensors before it and builds its view. Cheap
/// (no pass over the weights), so the layer iterator can call it again at inference time.
fn build_layer<'a>(
    index: usize,
    record: LayerRecord<'a>,
    shapes: &[Shape],
    version: u16,
) -> Result<Layer<'a>, Error> {
    let input = record.input as usize;
    let input_shape = *shapes
        .get(input)
        .ok_or(Error::BadTensorRef { layer: index })?;
    let bad_param = Error::BadParameter { layer: index };
    let bad_shape = Error::BadShape { layer: index };
    // `i8` weights exist from v2 on; a v1 file naming them is rejected.
    let narrow_weights = |width: WeightWidth| {
        if width == WeightWidth::I8 && version < 2 {
            Err(bad_param)
        } else {
            Ok(width)
        }
    };
    let (op, output_shape) = match record.op {
        OpRecord::Conv2d {
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            padding,
            weight_frac_bits,
            weights,
            bias,
        }
        | OpRecord::Conv2dI8 {
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            padding,
            weight_frac_bits,
            weights,
            bias,
        } => {
            let width = narrow_weights(match record.op {
                OpRecord::Conv2dI8 { .. } => WeightWidth::I8,
                _ => WeightWidth::I16,
            })?;
            if out_channels == 0 || kernel_h == 0 || kernel_w == 0 || stride == 0 {
                return Err(bad_param);
            }
            if weight_frac_bits > MAX_WEIGHT_FRAC_BITS || padding >= kernel_h.min(kernel_w) {
                return Err(bad_param);
            }
            let (kh, kw, s, p) = (
                kernel_h as usize,
                kernel_w as usize,
                stride as usize,
                padding as usize,
            );
            let (h, w) = (input_shape.height as usize, input_shape.width as usize);
            if h + 2 * p < kh || w + 2 * p < kw {
                return Err(bad_shape);
            }
            let out_shape = Shape::new(
                out_channels,
                dim((h + 2 * p - kh) / s + 1, index)?,
                dim((w + 2 * p - kw) / s + 1, index)?,
            );
            let in_channels = input_shape.channels as usize;
            let expected = out_channels as u64
                * in_channels as u64
                * kh as u64
                * kw as u64
                * width.bytes() as u64;
            if weights.len() as u64 != expected {
                return Err(Error::BadLength { layer: index });
            }
            let conv = Conv2d {
                in_channels,
                out_channels: out_channels as usize,
                kernel_h: kh,
                kernel_w: kw,
                stride: s,
                padding: p,
                weight_frac_bits,
                weights: weights_view(weights, width),
                bias: bias_view(bias, out_channels as usize, index)?,
            };
            (Op::Conv2d(conv), out_shape)
        }
        OpRecord::Linear {
            out_features,
            weight_frac_bits,
            weights,
            bias,
        }
        | OpRecord::LinearI8 {
            out_features,
            weight_frac_bits,
            weights,
            bias,
        } => {
            let width = narrow_weights(match record.op {
                OpRecord::LinearI8 { .. } => WeightWidth::I8,
                _ => WeightWidth::I16,
            })?;
            if !input_shape.is_vector() {
                return Err(bad_shape);
            }
            if out_features == 0 || weight_frac_bits > MAX_WEIGHT_FRAC_BITS {
                return Err(bad_param);
            }
            let in_features = input_shape.channels as usize;
            let expected = out_features as u64 * in_features as u64 * width.bytes() as u64;
            if weights.len() as u64 != expected {
                return Err(Error::BadLength { layer: index });
            }
            let linear = Linear {
                in_features,
                out_features: out_features as usize,
                weight_frac_bits,
                weights: weights_view(weights, width),
                bias: bias_view(bias, out_features as usize, index)?,
            };
            (Op::Linear(linear), Shape::vector(out_features))
        }
        OpRecord::MaskedRelu { mask } => {
            let mask = ReluMask::validate(mask, input_shape.elements())
                .ok_or(Error::BadMask { layer: index })?;
            (Op::MaskedRelu(mask), input_shape)
        }
        OpRecord::AvgPool2d { kernel, stride } => {
            if kernel == 0 || stride == 0 {
                return Err(bad_param);
            }
            let (k, s) = (kernel as usize, stride as usize);
            let (h, w) = (input_shape.height as usize, input_shape.width as usize);
            if h < k || w < k {
                return Err(bad_shape);
            }
            let out_shape = Shape::new(
                input_shape.channels,
                dim((h - k) / s + 1, index)?,
                dim((w - k) / s + 1, index)?,
            );
            (
                Op::AvgPool2d {
                    kernel: k,
                    stride: s,
                },
                out_shape,
            )
        }
        // Any plane the format allows (at most MAX_TENSOR_ELEMENTS) is pooled exactly.
        OpRecord::GlobalAvgPool => (Op::GlobalAvgPool, Shape::vector(input_shape.channels)),
        OpRecord::Add { other } => {
            let other = other as usize;
            let other_shape = *shapes
                .get(other)
                .ok_or(Error::BadTensorRef { layer: index })?;
            if other_shape != input_shape {
                return Err(bad_shape);
            }
            (Op::Add { other }, input_shape)
        }
        OpRecord::Flatten => {
            let n = dim(input_shape.elements(), index)?;
            (Op::Flatten, Shape::vector(n))
        }
    };
    check_shape(output_shape, index)?;
    Ok(Layer {
        index,
        input,
        input_shape,
        output_shape,
        op,
    })
}

/// Proves that no accumulator of this layer can reach 2^62 whatever the `i32` inputs: the exact
/// worst case is `|bias| + 2^31 · Σ|w|` per output (one pass over the weights, at parse time only).
///
/// Returns whether, for a convolution, the tighter bound `|bias| + 2^15 · Σ|w| + 2^(s-1) < 2^31`
/// holds for every output channel: then inputs that fit `i16` can be accumulated (and rounded)
/// in `i32` by the dual 16-bit MAC kernels without any possible overflow.
fn check_accumulators(layer: &Layer<'_>) -> Result<bool, Error> {
    let overflow = Error::AccumulatorOverflow { layer: layer.index };
    // The largest worst-case accumulator magnitude over rows, per unit of input magnitude
    // (`Σ|w|`) and with the bias: (max over rows of l1·m + |b|) for the two input magnitudes.
    let worst = |weights: Weights<'_>, bias: Option<Bias<'_>>, rows: usize, fan_in: usize| {
        let mut wide = 0u128;
        let mut narrow = 0u128;
        for row in 0..rows {
            let l1: u128 = weights
                .slice(row * fan_in, fan_in)
                .iter()
                .map(|w| w.unsigned_abs() as u128)
                .sum();
            let b = bias.map_or(0, |b| b.get(row).unsigned_abs() as u128);
            wide = wide.max(l1 * ACTIVATION_MAGNITUDE + b);
            narrow = narrow.max(l1 * NARROW_ACTIVATION_MAGNITUDE + b);
        }
        (wide, narrow)
    };
    // A pool's accumulator is its sum plus the rounding offset `n/2` (`fixed::pool_mean`).
    let pool_fits = |n: usize| n as u128 * ACTIVATION_MAGNITUDE + n as u128 / 2 < ACCUMULATOR_LIMIT;
    let rounding = |s: u8| if s == 0 { 0 } else { 1u128 << (s - 1) };
    let (fits, narrow) = match &layer.op {
        Op::Conv2d(c) => {
            let (wide, narrow) = worst(c.weights, c.bias, c.out_channels, c.fan_in());
            (
                wide < ACCUMULATOR_LIMIT,
                narrow + rounding(c.weight_frac_bits) < NARROW_ACCUMULATOR_LIMIT,
            )
        }
        Op::Linear(l) => {
            let (wide, _) = worst(l.weights, l.bias, l.out_features, l.in_features);
            (wide < ACCUMULATOR_LIMIT, false)
        }
        Op::AvgPool2d { kernel, .. } => (pool_fits(kernel * kernel), false),
        Op::GlobalAvgPool => (pool_fits(layer.input_shape.plane()), false),
        _ => (true, false),
    };
    if fits { Ok(narrow) } else { Err(overflow) }
}
