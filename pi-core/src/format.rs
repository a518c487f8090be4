//! Wire records of model format v1, exactly as postcard encodes them.
//!
//! These types are the file format; [`crate::model`] turns them into validated views. The byte
//! layout is documented in the crate docs ("Model format v1").

use serde::{Deserialize, Serialize};

/// The four bytes every model file starts with.
pub const MAGIC: [u8; 4] = *b"PIC1";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

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

/// The header record that follows the magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub version: u16,
    pub number_format: NumberFormat,
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
