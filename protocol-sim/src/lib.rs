//! # protocol-sim
//!
//! A two-party simulation of private inference over pi-core: the client is pi-core's
//! [`Client`](pi_core::share::Client) (no_std code, run here on the host or on the Cortex-M4),
//! the server holds the weights, and they talk only through a [`channel`] that counts every
//! byte and flight, with timeouts. A [`session`] opens with a handshake (protocol version, model
//! digest, protocol name, session id) and runs any number of inferences, each with fresh
//! randomness ([`entropy`]: the OS by default). The offline phase is simulated by a trusted
//! dealer standing in for HE and OT, while garbled circuits are real ([`offline`]); the client's
//! material is stored or streamed to it as it is consumed. `run` checks the reconstructed output
//! against pi-core's plaintext engine; `serve` and `client` run the parties as separate
//! processes; `cost` evaluates pi-core's [cost model](pi_core::cost) for exported models and for
//! standard architectures ([`arch`]).
//!
//! ```no_run
//! # fn main() -> Result<(), protocol_sim::SimError> {
//! let model = std::fs::read("model.pic")?;
//! let parsed = pi_core::Model::parse(&model)?;
//! let input = vec![0i32; parsed.input_shape().elements()];
//! let options = protocol_sim::run::Options::default(); // OS randomness, stored material
//! let (results, _) = protocol_sim::run::run_session(&model, &[input], &options)?;
//! assert!(results[0].argmax_agrees());
//! # Ok(()) }
//! ```

use std::fmt;

pub mod arch;
pub mod channel;
pub mod client_garbler;
pub mod dataset;
pub mod entropy;
pub mod offline;
pub mod report;
pub mod run;
pub mod server;
pub mod session;

/// Everything that can go wrong in the simulator.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// The model file does not parse (or a generated model is invalid).
    Model(pi_core::Error),
    /// A party's protocol run failed: timeout, closed or garbage peer, handshake mismatch,
    /// missing material.
    Protocol(pi_core::share::ProtocolError),
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
            SimError::Protocol(e) => write!(f, "protocol: {e}"),
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
        SimError::Protocol(e)
    }
}

impl From<std::io::Error> for SimError {
    fn from(e: std::io::Error) -> Self {
        SimError::Io(e)
    }
}
