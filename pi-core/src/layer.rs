//! Validated, borrowed views of a model's layers.

use crate::format::Shape;
use crate::mask::ReluMask;

/// One layer of a parsed model, with the shapes it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer<'a> {
    /// Position in the model (0-based). The layer writes tensor `index + 1`.
    pub index: usize,
    /// Tensor the layer reads: 0 is the model input, `k > 0` is the output of layer `k - 1`.
    pub input: usize,
    /// Shape of the tensor read.
    pub input_shape: Shape,
    /// Shape of the tensor written.
    pub output_shape: Shape,
    /// What the layer computes.
    pub op: Op<'a>,
}

impl Layer<'_> {
    /// Tensor id this layer writes.
    pub fn output(&self) -> usize {
        self.index + 1
    }

    /// Multiply-accumulates the layer performs per inference (0 for non-linear and pooling layers).
    pub fn macs(&self) -> u64 {
        match &self.op {
            Op::Conv2d(c) => {
                self.output_shape.elements() as u64
                    * c.in_channels as u64
                    * c.kernel_h as u64
                    * c.kernel_w as u64
            }
            Op::Linear(l) => l.out_features as u64 * l.in_features as u64,
            _ => 0,
        }
    }

    /// The work of the layer per inference, in ops (the unit is defined in the crate docs,
    /// "Cost and limits"): its [`macs`](Layer::macs) for conv and linear layers, `kernel²` per
    /// output element for an average pool, every input element for a global pool, and one per
    /// output element for masked ReLU, add and flatten. Never less than the output's elements.
    pub fn ops(&self) -> u64 {
        let out = self.output_shape.elements() as u64;
        match &self.op {
            Op::Conv2d(_) | Op::Linear(_) => self.macs(),
            Op::AvgPool2d { kernel, .. } => out.saturating_mul((kernel * kernel) as u64),
            Op::GlobalAvgPool => self.input_shape.elements() as u64,
            Op::MaskedRelu(_) | Op::Add { .. } | Op::Flatten => out,
        }
    }
}

/// The operation of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op<'a> {
    /// 2-D convolution (BatchNorm already folded in).
    Conv2d(Conv2d<'a>),
    /// Fully connected layer on a vector `(n, 1, 1)`.
    Linear(Linear<'a>),
    /// `y = x - m * min(x, 0)` per element: ReLU where the mask keeps it, identity elsewhere.
    MaskedRelu(ReluMask<'a>),
    /// Average pooling without padding.
    AvgPool2d {
        /// Square window size.
        kernel: usize,
        /// Step between windows.
        stride: usize,
    },
    /// Average over each whole channel plane: `(C, H, W) -> (C, 1, 1)`.
    GlobalAvgPool,
    /// Element-wise saturating sum of the input and tensor `other` (a residual connection).
    Add {
        /// The second tensor added.
        other: usize,
    },
    /// `(C, H, W) -> (C*H*W, 1, 1)`; the data does not move.
    Flatten,
}

/// A convolution's geometry and borrowed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d<'a> {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Step in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Weights hold `w * 2^weight_frac_bits`; the output is shifted right by this much.
    pub weight_frac_bits: u8,
    /// Weights in `[out][in][kh][kw]` order.
    pub weights: Weights<'a>,
    /// One bias per output channel at scale `2^(activation + weight frac bits)`, if any.
    pub bias: Option<Bias<'a>>,
}

impl Conv2d<'_> {
    /// Weights per output channel (`in * kh * kw`).
    pub fn fan_in(&self) -> usize {
        self.in_channels * self.kernel_h * self.kernel_w
    }

    /// Weight at `[oc][ic][ky][kx]` (0 outside the kernel).
    pub fn weight(&self, oc: usize, ic: usize, ky: usize, kx: usize) -> i16 {
        let i = ((oc * self.in_channels + ic) * self.kernel_h + ky) * self.kernel_w + kx;
        self.weights.get(i)
    }

    /// Bias of output channel `oc` (0 without bias).
    pub fn bias_at(&self, oc: usize) -> i32 {
        self.bias.map_or(0, |b| b.get(oc))
    }
}

/// A fully connected layer's geometry and borrowed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear<'a> {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Weights hold `w * 2^weight_frac_bits`; the output is shifted right by this much.
    pub weight_frac_bits: u8,
    /// Weights in `[out][in]` order.
    pub weights: Weights<'a>,
    /// One bias per output at scale `2^(activation + weight frac bits)`, if any.
    pub bias: Option<Bias<'a>>,
}

impl Linear<'_> {
    /// Bias of output `o` (0 without bias).
    pub fn bias_at(&self, o: usize) -> i32 {
        self.bias.map_or(0, |b| b.get(o))
    }
}

/// How a layer's weights are stored: `i16` (format v1 and v2) or `i8` (format v2 only). The
/// value and scale rules are the same; `i8` halves the bytes and lets the kernels prove `i32`
/// accumulators for wider layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WeightWidth {
    /// Two bytes per weight, little-endian.
    I16,
    /// One byte per weight.
    I8,
}

impl WeightWidth {
    /// Bytes per weight.
    pub const fn bytes(self) -> usize {
        match self {
            WeightWidth::I16 => 2,
            WeightWidth::I8 => 1,
        }
    }
}

/// Weights borrowed from the model bytes (zero-copy: they stay in flash): little-endian `i16`,
/// or `i8` ([`WeightWidth`]). Every accessor widens to `i16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights<'a> {
    bytes: &'a [u8],
    width: WeightWidth,
}

impl<'a> Weights<'a> {
    /// Little-endian `i16` weights.
    pub(crate) const fn i16(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            width: WeightWidth::I16,
        }
    }

    /// `i8` weights.
    pub(crate) const fn i8(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            width: WeightWidth::I8,
        }
    }

    /// How the weights are stored.
    pub fn width(&self) -> WeightWidth {
        self.width
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.width.bytes()
    }

    /// Whether there are no weights.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Weight `i` (0 past the end).
    #[inline(always)]
    pub fn get(&self, i: usize) -> i16 {
        match self.width {
            WeightWidth::I16 => match self.bytes.get(2 * i..2 * i + 2) {
                Some(b) => i16::from_le_bytes([b[0], b[1]]),
                None => 0,
            },
            WeightWidth::I8 => self.bytes.get(i).map_or(0, |&b| b as i8 as i16),
        }
    }

    /// The raw bytes (little-endian `i16`, or `i8`: see [`Weights::width`]).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Weights `start .. start + len` as a sub-view (empty if out of range).
    #[inline(always)]
    pub fn slice(&self, start: usize, len: usize) -> Weights<'a> {
        let n = self.width.bytes();
        Weights {
            bytes: self.bytes.get(n * start..n * (start + len)).unwrap_or(&[]),
            width: self.width,
        }
    }

    /// Iterates over the weights in order, widened to `i16`.
    #[inline(always)]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        let wide = self.width == WeightWidth::I16;
        self.bytes.chunks_exact(self.width.bytes()).map(move |b| {
            if wide {
                i16::from_le_bytes([b[0], b.get(1).copied().unwrap_or(0)])
            } else {
                b[0] as i8 as i16
            }
        })
    }
}

/// Little-endian `i32` biases borrowed from the model bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bias<'a>(pub(crate) &'a [u8]);

impl<'a> Bias<'a> {
    /// Number of biases.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are no biases.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bias `i` (0 past the end).
    #[inline(always)]
    pub fn get(&self, i: usize) -> i32 {
        match self.0.get(4 * i..4 * i + 4) {
            Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    /// The raw little-endian bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Iterates over the biases in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = i32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
