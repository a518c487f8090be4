//! The error type of the secret-shared protocol.

use core::fmt;

use super::session::HandshakeError;

/// What can stop the client's online phase. Parsing already validated the model, so these are
/// caller buffers of the wrong size, failures of the caller's transport or offline store, a
/// handshake that does not match, and a peer whose messages cannot be right.
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
    /// The transport could not send or receive (an I/O error other than the two below).
    Transport,
    /// The peer sent nothing (or could not take more) within the transport's timeout.
    Timeout,
    /// The peer closed the connection before the protocol was done.
    Closed,
    /// The session handshake failed: the parties disagree on what they are running.
    Handshake(HandshakeError),
    /// A reconstructed output lies outside the range every correct run stays in (`±2^32`):
    /// the server's messages were garbage.
    OutputOutOfRange {
        /// Index of the first output element out of range.
        index: usize,
    },
    /// The offline store has no material for this layer: missing, the wrong size, or already
    /// consumed (material serves one inference only).
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
            ProtocolError::Timeout => write!(f, "peer silent past the timeout"),
            ProtocolError::Closed => write!(f, "peer closed the connection mid-protocol"),
            ProtocolError::Handshake(e) => write!(f, "handshake: {e}"),
            ProtocolError::OutputOutOfRange { index } => write!(
                f,
                "output {index} lies outside the range of any correct result: the peer sent garbage"
            ),
            ProtocolError::Offline { layer } => {
                write!(f, "layer {layer}: offline material missing or malformed")
            }
            ProtocolError::Inconsistent => write!(f, "tensor range outside the share arena"),
        }
    }
}

impl core::error::Error for ProtocolError {}

impl From<HandshakeError> for ProtocolError {
    fn from(e: HandshakeError) -> Self {
        ProtocolError::Handshake(e)
    }
}
