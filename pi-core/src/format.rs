//! Wire records of model formats v1 and v2, exactly as postcard encodes them.
//!
//! These types are the file format; [`crate::model`] turns them into validated views. The byte
//! layout is documented in the crate docs ("Model format v1" and "Model format v2").

use serde::{Deserialize, Serialize};

/// The four bytes every model file starts with.
pub const MAGIC: [u8; 4] = *b"PIC1";

/// The newest format version this build reads and writes (v2). Files of every version from
/// [`OLDEST_FORMAT_VERSION`] up to this one parse.
pub const FORMAT_VERSION: u16 = 2;

/// The oldest format version this build still reads (v1, parsed byte for byte as before v2).
pub const OLDEST_FORMAT_VERSION: u16 = 1;

/// Bytes of the CRC-32 that ends a v2 file.
pub(crate) const CRC_BYTES: usize = 4;

/// A tensor shape: channels, height, width (CHW order). Vectors are `(n, 1, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Number of channels (or vector length).
    pub channels: u16,
    /// Height in elements.
    pub height: u16,
    /// Width in elements.
    pub width: u16,
}

impl Shape {
    /// A shape from its three dimensions.
    pub const fn new(channels: u16, height: u16, width: u16) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// A vector shape `(n, 1, 1)`.
    pub const fn vector(n: u16) -> Self {
        Self::new(n, 1, 1)
    }

    /// Number of elements (`channels * height * width`).
    pub const fn elements(&self) -> usize {
        self.channels as usize * self.height as usize * self.width as usize
    }

    /// Elements in one channel plane (`height * width`).
    pub const fn plane(&self) -> usize {
        self.height as usize * self.width as usize
    }

    /// Whether this is a vector `(n, 1, 1)`.
    pub const fn is_vector(&self) -> bool {
        self.height == 1 && self.width == 1
    }
}

/// How numbers are represented: one fixed-point scale for every activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NumberFormat {
    /// Activations are `i32` holding `value * 2^activation_frac_bits`.
    pub activation_frac_bits: u8,
}

/// The v1 header: what follows the version varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HeaderV1 {
    pub number_format: NumberFormat,
    pub input: Shape,
    pub layer_count: u16,
}

/// The v2 header: what follows the version varint. `activation_bits` is 16 or 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HeaderV2 {
    pub number_format: NumberFormat,
    pub activation_bits: u8,
    pub input: Shape,
    pub layer_count: u16,
}

/// One layer record: which tensor it reads and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRecord<'a> {
    /// Tensor id read by the layer: 0 is the model input, layer `i` writes tensor `i + 1`.
    pub input: u16,
    #[serde(borrow)]
    pub op: OpRecord<'a>,
}

/// The operation of a layer. Variant order is part of the format: never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum OpRecord<'a> {
    Conv2d {
        out_channels: u16,
        kernel_h: u8,
        kernel_w: u8,
        stride: u8,
        padding: u8,
        weight_frac_bits: u8,
        /// `out * in * kh * kw` little-endian `i16`, order `[out][in][kh][kw]`.
        weights: &'a [u8],
        /// Empty, or `out` little-endian `i32` at scale `2^(act + weight frac bits)`.
        bias: &'a [u8],
    },
    Linear {
        out_features: u16,
        weight_frac_bits: u8,
        /// `out * in` little-endian `i16`, order `[out][in]`.
        weights: &'a [u8],
        /// Empty, or `out` little-endian `i32`.
        bias: &'a [u8],
    },
    MaskedRelu {
        #[serde(borrow)]
        mask: MaskRecord<'a>,
    },
    AvgPool2d {
        kernel: u8,
        stride: u8,
    },
    GlobalAvgPool,
    Add {
        other: u16,
    },
    Flatten,
    /// v2 only: [`OpRecord::Conv2d`] with `i8` weights (one byte each, same order and scale).
    Conv2dI8 {
        out_channels: u16,
        kernel_h: u8,
        kernel_w: u8,
        stride: u8,
        padding: u8,
        weight_frac_bits: u8,
        /// `out * in * kh * kw` `i8`, order `[out][in][kh][kw]`.
        weights: &'a [u8],
        /// Empty, or `out` little-endian `i32`.
        bias: &'a [u8],
    },
    /// v2 only: [`OpRecord::Linear`] with `i8` weights.
    LinearI8 {
        out_features: u16,
        weight_frac_bits: u8,
        /// `out * in` `i8`, order `[out][in]`.
        weights: &'a [u8],
        /// Empty, or `out` little-endian `i32`.
        bias: &'a [u8],
    },
}

/// Which elements of a [`OpRecord::MaskedRelu`] keep their ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MaskRecord<'a> {
    /// Every element keeps its ReLU.
    AllKept,
    /// No element keeps its ReLU: the layer is the identity.
    NoneKept,
    /// One bit per element, LSB first within each byte; unused high bits of the last byte zero.
    Bitmap(&'a [u8]),
    /// Kept element indices, strictly increasing little-endian `u32`.
    Indices(&'a [u8]),
}
