//! The one error type of the crate.

use core::fmt;

/// Everything that can go wrong when parsing a model file or running it.
///
/// Parsing checks every field, so after [`Model::parse`](crate::Model::parse) succeeds the only
/// evaluation error left is a caller buffer of the wrong size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The file does not start with the `PIC1` magic bytes.
    BadMagic,
    /// The file's format version is not one this build reads.
    UnsupportedVersion {
        /// Version found in the file.
        found: u16,
    },
    /// The bytes end early or a field does not decode (postcard-level error).
    Malformed,
    /// A v2 file's CRC-32 (its last four bytes) does not match the bytes before it: the file
    /// was damaged. Checked before any other field after the version is read.
    ChecksumMismatch {
        /// CRC-32 stored in the file.
        stored: u32,
        /// CRC-32 of the file's bytes before it.
        computed: u32,
    },
    /// Bytes are left over after the last layer.
    TrailingBytes,
    /// More layers than [`MAX_LAYERS`](crate::MAX_LAYERS).
    TooManyLayers {
        /// Layers in the file.
        found: usize,
    },
    /// The model has no layers.
    NoLayers,
    /// A shape is zero-sized, too large, or does not fit the operation.
    BadShape {
        /// Index of the offending layer (0-based); `usize::MAX` for the model input.
        layer: usize,
    },
    /// A layer reads a tensor that is not produced before it.
    BadTensorRef {
        /// Index of the offending layer (0-based).
        layer: usize,
    },
    /// A weight, bias or mask byte string has the wrong length or an invalid encoding.
    BadLength {
        /// Index of the offending layer (0-based).
        layer: usize,
    },
    /// A numeric parameter is out of its allowed range (shift, frac bits, stride, ...).
    BadParameter {
        /// Index of the offending layer (0-based); `usize::MAX` for the header.
        layer: usize,
    },
    /// Some output of this layer could exceed the 64-bit accumulator for some input.
    AccumulatorOverflow {
        /// Index of the offending layer (0-based).
        layer: usize,
    },
    /// The model's work per inference ([`Model::ops`](crate::Model::ops)) is above the limit
    /// the caller set ([`ParseOptions::max_ops`](crate::ParseOptions::max_ops)).
    TooMuchWork {
        /// Ops one inference of this model takes.
        ops: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// A ReLU mask index list is not strictly increasing or points past the tensor.
    BadMask {
        /// Index of the offending layer (0-based).
        layer: usize,
    },
    /// The input slice does not hold exactly the model's input element count.
    InputLength {
        /// Elements the model needs.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// A caller-provided buffer is too small.
    BufferTooSmall {
        /// Elements (words) needed.
        needed: usize,
        /// Elements given.
        found: usize,
    },
    /// A caller-provided output buffer has the wrong length.
    OutputLength {
        /// Elements needed.
        expected: usize,
        /// Elements given.
        found: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => write!(f, "not a pi-core model file (bad magic)"),
            Error::UnsupportedVersion { found } => {
                write!(f, "unsupported model format version {found}")
            }
            Error::Malformed => write!(f, "model file is truncated or malformed"),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "model file is damaged: CRC-32 {computed:#010x}, file says {stored:#010x}"
            ),
            Error::TrailingBytes => write!(f, "model file has bytes after the last layer"),
            Error::TooManyLayers { found } => write!(
                f,
                "model has {found} layers, more than the supported {}",
                crate::MAX_LAYERS
            ),
            Error::NoLayers => write!(f, "model has no layers"),
            Error::BadShape { layer } => write!(f, "layer {layer}: invalid shape"),
            Error::BadTensorRef { layer } => {
                write!(f, "layer {layer}: refers to a tensor not produced earlier")
            }
            Error::BadLength { layer } => {
                write!(f, "layer {layer}: weight, bias or mask length is wrong")
            }
            Error::BadParameter { layer } => write!(f, "layer {layer}: parameter out of range"),
            Error::AccumulatorOverflow { layer } => {
                write!(f, "layer {layer}: accumulator could overflow 64 bits")
            }
            Error::TooMuchWork { ops, limit } => write!(
                f,
                "model takes {ops} ops per inference, more than the limit of {limit}"
            ),
            Error::BadMask { layer } => write!(f, "layer {layer}: invalid ReLU mask"),
            Error::InputLength { expected, found } => {
                write!(f, "input has {found} elements, model needs {expected}")
            }
            Error::BufferTooSmall { needed, found } => {
                write!(f, "buffer holds {found} words, {needed} needed")
            }
            Error::OutputLength { expected, found } => {
                write!(f, "output buffer has {found} elements, {expected} needed")
            }
        }
    }
}

impl core::error::Error for Error {}
