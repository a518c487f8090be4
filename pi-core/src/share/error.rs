//! The error type of the secret-shared protocol.

use core::fmt;

/// What can stop the client's online phase. Parsing already validated the model, so these are
/// caller buffers of the wrong size and failures of the caller's transport or offline store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// The input slice does not hold exactly the model's input element count.
    InputLength {
        /// Elements the model needs.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// The share arena is smaller than [`Model::arena_words`](crate::Model::arena_words).
    BufferTooSmall {
        /// Words needed.
        needed: usize,
        /// Words given.
        found: usize,
    },
    /// The output slice does not hold exactly the model's output element count.
    OutputLength {
        /// Elements needed.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// The transport could not send or receive (closed, timed out, short read).
    Transport,
    /// The offline store has no material for this layer (or it is the wrong size).
    Offline {
        /// Layer whose material is missing.
        layer: usize,
    },
    /// A tensor range does not fit the arena (the model and the arena disagree).
    Inconsistent,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtocolError::InputLength { expected, found } => {
                write!(f, "input has {found} elements, model needs {expected}")
            }
            ProtocolError::BufferTooSmall { needed, found } => {
                write!(f, "share arena holds {found} words, {needed} needed")
            }
            ProtocolError::OutputLength { expected, found } => {
                write!(f, "output buffer has {found} elements, {expected} needed")
            }
            ProtocolError::Transport => write!(f, "transport failed to send or receive"),
            ProtocolError::Offline { layer } => {
                write!(f, "layer {layer}: offline material missing or malformed")
            }
            ProtocolError::Inconsistent => write!(f, "tensor range outside the share arena"),
        }
    }
}

impl core::error::Error for ProtocolError {}
