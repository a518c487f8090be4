//! # protocol-sim
//!
//! A two-party simulation of private inference over pi-core: the client is pi-core's
//! [`Client`](pi_core::share::Client) (no_std code, run here on the host), the server holds the
//! weights, and they talk only through a [`channel`] that counts every byte and flight. The
//! offline phase is simulated by a trusted dealer standing in for HE and OT, while garbled
//! circuits are real ([`offline`]). `run` checks the reconstructed output against pi-core's
//! plaintext engine; `cost` evaluates pi-core's [cost model](pi_core::cost) for exported models
//! and for standard architectures ([`arch`]).
//!
//! ```no_run
//! # fn main() -> Result<(), protocol_sim::SimError> {
//! let model = std::fs::read("model.pic")?;
//! let parsed = pi_core::Model::parse(&model)?;
//! let input = vec![0i32; parsed.input_shape().elements()];
//! let result = protocol_sim::run::infer(&model, &input, 1, protocol_sim::run::Mode::Channel, false)?;
//! assert!(result.argmax_agrees());
//! # Ok(()) }
//! ```

use std::fmt;

pub mod arch;
pub mod channel;
pub mod dataset;
pub mod offline;
pub mod report;
pub mod run;
pub mod server;

/// Everything that can go wrong in the simulator.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// The model file does not parse (or a generated model is invalid).
    Model(pi_core::Error),
    /// The client's protocol run failed.
    Protocol(&'static str),
    /// The client returned an error.
    Client(pi_core::share::ProtocolError),
    /// I/O: reading files, or the transport.
    Io(std::io::Error),
    /// A party's thread panicked.
    Panic(&'static str),
    /// A bad command-line argument or dataset.
    Usage(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Model(e) => write!(f, "model: {e}"),
            SimError::Protocol(what) => write!(f, "protocol: {what}"),
            SimError::Client(e) => write!(f, "client: {e}"),
            SimError::Io(e) => write!(f, "i/o: {e}"),
            SimError::Panic(who) => write!(f, "the {who} thread panicked"),
            SimError::Usage(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for SimError {}

impl From<pi_core::Error> for SimError {
    fn from(e: pi_core::Error) -> Self {
        SimError::Model(e)
    }
}

impl From<pi_core::share::ProtocolError> for SimError {
    fn from(e: pi_core::share::ProtocolError) -> Self {
        SimError::Client(e)
    }
}

impl From<std::io::Error> for SimError {
    fn from(e: std::io::Error) -> Self {
        SimError::Io(e)
    }
}
