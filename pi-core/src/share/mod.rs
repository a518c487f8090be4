//! Secret-shared evaluation: additive shares over `Z_2^64`, a half-gates garbled ReLU, and the
//! client's side of a Delphi-style online phase with its session handshake. `no_std`, no heap,
//! caller buffers.
//!
//! # Protocol (summary; `docs/PROTOCOL.md` has the full description)
//!
//! The server holds the weights, the client the input. Every activation is held as two shares,
//! `x = c + s mod 2^64`, at the model's fixed-point scale.
//!
//! * **Conv / linear** (Delphi): the client sends its share minus a mask `r` (uniform, from
//!   its seed); the server evaluates `W·(x − r) + b + s` on that masked vector; the client's
//!   share is `W·r − s`, produced offline (with HE in Delphi; by a trusted dealer in the
//!   simulator). Both truncate locally.
//! * **Kept ReLU**: the client re-shares the element onto a fresh share `q` chosen offline
//!   (8 bytes up), the server sends the 64 labels of its share (1 KiB down), the client
//!   evaluates the garbled circuit ([`gc`], half-gates with the TCCR hash of Guo, Katz, Wang
//!   and Yu) and gets `ReLU(x) − r'`; the server keeps `r'`.
//! * **Linearized ReLU, pools, adds, flatten**: local arithmetic on shares, no message.
//! * **Client garbler** ([`client_garbler`]): the same circuit garbled by the client from its
//!   seed and evaluated by the server; the client stores nothing per ReLU.
//! * **Offline material** is stored by the client or streamed to it just before use
//!   ([`Streamed`]); [`session`] frames the connection (handshake, one start frame per
//!   inference). Every inference needs a fresh [`ClientSeed`] and fresh material; the API
//!   consumes both.
//!
//! # Fixed point and truncation error
//!
//! Shares use exactly pi-core's scales ([`crate::fixed`]): a conv output is
//! `requantize(acc, k)`, computed as the server adding bias, its offline share and the
//! rounding offset `2^(k−1)`, then each party truncating its own share ([`ring::truncate`]:
//! server floors, client ceils). Pools divide their sum by the public pool size `n` the same
//! way ([`ring::pool_mean`]: the server adds `floor(n/2)`, floors `s / n`, the client ceils
//! `c / n`), matching pi-core's exactly rounded [`pool_mean`].
//!
//! * **±1 LSB**: if the shares do not wrap, each truncation or pool division returns pi-core's
//!   value or one more (never less): `floor(a) + ceil(b) ∈ {floor(a+b), floor(a+b)+1}`. Later
//!   layers scale that error; [`tolerance::output_tolerance`] gives a sound bound for a whole model.
//! * **Wrap**: the shares `c, s` of a value with `|x| < 2^ℓx`, read as signed 64-bit numbers,
//!   sum to `x` without overflow except with probability `|x| / 2^64 ≤ 2^(ℓx − 64)` over the
//!   uniform client share (SecureML, Thm. 1, states the looser `2^(ℓx + 1 − ℓ)`). A wrap makes
//!   that element wrong by about `2^(64 − k)`. For an accumulator below `2^40` (8 frac bits
//!   of activation, 12 of weights, 2^20 of headroom) this is `2^−24` per truncation.
//! * **Saturation**: pi-core's plaintext engine saturates every requantized value and every
//!   residual sum to `i32`; the ring does not. Private equals plaintext (within the tolerance)
//!   when no activation saturates, which holds for any sane model (activations far from
//!   `2^31` LSBs).
//! * **ReLU** is exact: the garbled circuit computes `max(x, 0)` of the 64-bit value.
//!
//! [`pool_mean`]: crate::fixed::pool_mean

pub mod bounds;
mod client;
pub mod client_garbler;
mod error;
pub mod gc;
pub mod linear;
pub mod local;
pub mod prg;
pub mod relu;
pub mod ring;
pub mod session;
pub mod tolerance;

pub use client::{
    Client, ClientBuffers, ClientSeed, LOCK_STEP, NoProbe, OUTPUT_BOUND, OfflineSource, Phase,
    Probe, Streamed, Transport, WORD_BYTES,
};
pub use error::ProtocolError;
pub use gc::GcMaterial;
pub use relu::{ReluKind, ReluParamError, ReluParams, ReluPlan};
pub use ring::Party;
pub use session::{Delivery, HandshakeError, Hello, ProtocolName};
