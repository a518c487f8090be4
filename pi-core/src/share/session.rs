//! The session layer around the online phase: a handshake that makes both parties agree on what
//! they run, and the frames that start each inference.
//!
//! # Wire format (all integers little-endian)
//!
//! A session is one connection. The client opens it with a [`Hello`]; the server answers with
//! its own [`Hello`] under the welcome magic, echoing the session id and carrying a status byte.
//! Both compare every field and stop with a typed [`HandshakeError`] on the first mismatch, so
//! each side says what differs. Then, per inference, the client sends a [`Frame::Start`] and the
//! online phase follows ([`Client::run`](super::Client::run)); a [`Frame::End`] closes the
//! session.
//!
//! | Bytes | Hello / welcome field |
//! |---|---|
//! | 0..4 | magic: `PIH1` (hello) or `PIW1` (welcome) |
//! | 4..6 | protocol version ([`PROTOCOL_VERSION`]) |
//! | 6..22 | protocol name, ASCII, zero-padded (`ring-gc`) |
//! | 22..54 | model digest ([`architecture_digest`]) |
//! | 54..70 | session id (16 random bytes chosen by the client; echoed) |
//! | 70 | material delivery: 0 stored, 1 streamed ([`Delivery`]) |
//! | 71 | ReLU protocol: 0 full, 1 split ([`ReluKind`]) |
//! | 72 | sign width `t` of the split ReLU (64 for full) |
//! | 73 | status: 0 in a hello and an accepting welcome, else a [`Status`] code |
//!
//! With the split ReLU, an accepting welcome is followed by the server's ReLU plan: one byte per
//! masked-ReLU layer that keeps ReLUs, in model order, the range `h` of that layer (computed from
//! the weights, [`ReluPlan::split`]). The client checks `t <= h <= 64`.
//!
//! | Frame | Bytes |
//! |---|---|
//! | start | `01`, inference index `u32`, 32-byte dealer seed |
//! | end | `02` |
//!
//! The dealer seed is the simulation's stand-in for HE and OT (see `docs/PROTOCOL.md`): the
//! trusted dealer derives the client's masks from it. A deployment replaces the dealer and
//! sends no seed.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::layer::Op;
use crate::model::Model;

use super::client::Transport;
use super::error::ProtocolError;
use super::relu::{ReluKind, ReluParamError, ReluParams, ReluPlan};

/// Version of this wire format.
pub const PROTOCOL_VERSION: u16 = 2;
/// Bytes of a hello or welcome message.
pub const HELLO_BYTES: usize = 74;
/// Bytes of a start frame (tag, index, dealer seed).
pub const START_BYTES: usize = 1 + 4 + 32;

const MAGIC_HELLO: [u8; 4] = *b"PIH1";
const MAGIC_WELCOME: [u8; 4] = *b"PIW1";
const NAME_BYTES: usize = 16;
const TAG_START: u8 = 1;
const TAG_END: u8 = 2;

/// A session id: 16 random bytes the client draws per session.
pub type SessionId = [u8; 16];

/// How the client's offline material reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Delivery {
    /// Sent before the online phase and stored by the client.
    Stored,
    /// Streamed on the connection just before the client consumes it
    /// ([`Streamed`](super::Streamed)).
    Streamed,
}

impl Delivery {
    /// Short lowercase name.
    pub fn name(&self) -> &'static str {
        match self {
            Delivery::Stored => "stored",
            Delivery::Streamed => "streamed",
        }
    }
}

/// Why a server turned a client away (the welcome's status byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Status {
    /// Accepted.
    Ok = 0,
    /// Different protocol version.
    Version = 1,
    /// Different protocol name.
    Protocol = 2,
    /// Different model.
    Model = 3,
    /// Delivery mode not offered.
    Delivery = 4,
    /// The session id was used before: its material would be reused.
    SessionReused = 5,
    /// The hello was malformed.
    Malformed = 6,
    /// The server cannot run the ReLU protocol asked for (a different one, or it lacks what
    /// the split ReLU's ranges need).
    Relu = 7,
}

impl Status {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::Version,
            2 => Status::Protocol,
            3 => Status::Model,
            4 => Status::Delivery,
            5 => Status::SessionReused,
            6 => Status::Malformed,
            7 => Status::Relu,
            _ => return None,
        })
    }
}

/// What went wrong in a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer does not speak this protocol (wrong magic).
    BadMagic,
    /// A field holds an impossible value (non-ASCII name, unknown delivery or status).
    Malformed,
    /// Protocol versions differ.
    Version {
        /// This side's version.
        ours: u16,
        /// The peer's version.
        theirs: u16,
    },
    /// Protocol names differ.
    Protocol {
        /// This side's protocol.
        ours: ProtocolName,
        /// The peer's protocol.
        theirs: ProtocolName,
    },
    /// The parties hold different models (their architecture digests differ; first 4 bytes).
    ModelDigest {
        /// This side's digest prefix.
        ours: [u8; 4],
        /// The peer's digest prefix.
        theirs: [u8; 4],
    },
    /// The ReLU protocols (or sign widths) differ.
    Relu {
        /// This side's protocol and sign width.
        ours: (ReluKind, u8),
        /// The peer's.
        theirs: (ReluKind, u8),
    },
    /// The server's ReLU plan is unusable.
    Plan(ReluParamError),
    /// Delivery modes differ.
    Delivery {
        /// This side's mode.
        ours: Delivery,
        /// The peer's mode.
        theirs: Delivery,
    },
    /// The welcome does not echo this session's id.
    Session,
    /// The server refused a session id it has seen before.
    SessionReused,
    /// The server refused for a reason not covered above.
    Rejected(Status),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadMagic => write!(f, "the peer does not speak this protocol"),
            HandshakeError::Malformed => write!(f, "malformed hello"),
            HandshakeError::Version { ours, theirs } => {
                write!(f, "protocol version {theirs} on the peer, {ours} here")
            }
            HandshakeError::Protocol { ours, theirs } => {
                write!(f, "protocol {theirs} on the peer, {ours} here")
            }
            HandshakeError::ModelDigest { ours, theirs } => write!(
                f,
                "different models: architecture digest {} on the peer, {} here",
                Hex(theirs),
                Hex(ours)
            ),
            HandshakeError::Delivery { ours, theirs } => write!(
                f,
                "material delivery {} on the peer, {} here",
                theirs.name(),
                ours.name()
            ),
            HandshakeError::Relu { ours, theirs } => write!(
                f,
                "ReLU protocol {} on {} bits on the peer, {} on {} bits here",
                theirs.0.name(),
                theirs.1,
                ours.0.name(),
                ours.1
            ),
            HandshakeError::Plan(e) => write!(f, "the server's ReLU plan: {e}"),
            HandshakeError::Session => write!(f, "the peer did not echo this session's id"),
            HandshakeError::SessionReused => {
                write!(f, "session id already used: its material would be reused")
            }
            HandshakeError::Rejected(status) => write!(f, "rejected ({status:?})"),
        }
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A protocol name: up to 16 ASCII bytes, zero-padded.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProtocolName([u8; NAME_BYTES]);

impl ProtocolName {
    /// `ring-gc`, this toolkit's garbled-ReLU protocol.
    pub const RING_GC: ProtocolName = ProtocolName(*b"ring-gc\0\0\0\0\0\0\0\0\0");

    /// The name `name` (at most 16 printable ASCII bytes); `None` otherwise.
    pub fn new(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        if b.len() > NAME_BYTES || !b.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut out = [0u8; NAME_BYTES];
        out[..b.len()].copy_from_slice(b);
        Some(Self(out))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&c| c == 0).unwrap_or(NAME_BYTES);
        core::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }

    fn from_bytes(b: [u8; NAME_BYTES]) -> Option<Self> {
        let len = b.iter().position(|&c| c == 0).unwrap_or(NAME_BYTES);
        let valid =
            b[..len].iter().all(|c| c.is_ascii_graphic()) && b[len..].iter().all(|&c| c == 0);
        valid.then_some(Self(b))
    }
}

impl fmt::Display for ProtocolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ProtocolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// One side's view of the session: what it runs and on which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version ([`PROTOCOL_VERSION`] for this build).
    pub version: u16,
    /// Protocol name.
    pub protocol: ProtocolName,
    /// [`architecture_digest`] of the model.
    pub digest: [u8; 32],
    /// Session id.
    pub session: SessionId,
    /// How offline material is delivered.
    pub delivery: Delivery,
    /// The ReLU protocol of every layer.
    pub relu: ReluKind,
    /// The split ReLU's sign width `t` (64 for the full ReLU).
    pub sign_bits: u8,
}

impl Hello {
    /// This build's hello for `protocol` on `model`, every ReLU full.
    pub fn new(
        protocol: ProtocolName,
        model: &Model<'_>,
        session: SessionId,
        delivery: Delivery,
    ) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            protocol,
            digest: architecture_digest(model),
            session,
            delivery,
            relu: ReluKind::Full,
            sign_bits: ReluParams::FULL.sign_bits(),
        }
    }

    /// The same hello with the split ReLU on `sign_bits` bits.
    pub fn with_split_relu(self, sign_bits: u8) -> Self {
        Self {
            relu: ReluKind::Split,
            sign_bits,
            ..self
        }
    }

    /// The wire bytes, as a hello (`welcome = None`) or as a welcome with `status`.
    pub fn encode(&self, welcome: Option<Status>) -> [u8; HELLO_BYTES] {
        let mut out = [0u8; HELLO_BYTES];
        out[0..4].copy_from_slice(match welcome {
            None => &MAGIC_HELLO,
            Some(_) => &MAGIC_WELCOME,
        });
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[6..22].copy_from_slice(&self.protocol.0);
        out[22..54].copy_from_slice(&self.digest);
        out[54..70].copy_from_slice(&self.session);
        out[70] = match self.delivery {
            Delivery::Stored => 0,
            Delivery::Streamed => 1,
        };
        out[71] = match self.relu {
            ReluKind::Full => 0,
            ReluKind::Split => 1,
        };
        out[72] = self.sign_bits;
        out[73] = welcome.map_or(0, |s| s as u8);
        out
    }

    /// Reads a hello (`welcome == false`) or a welcome and its status.
    pub fn decode(
        bytes: &[u8; HELLO_BYTES],
        welcome: bool,
    ) -> Result<(Self, Status), HandshakeError> {
        let magic = if welcome { MAGIC_WELCOME } else { MAGIC_HELLO };
        if bytes[0..4] != magic {
            return Err(HandshakeError::BadMagic);
        }
        let mut name = [0u8; NAME_BYTES];
        name.copy_from_slice(&bytes[6..22]);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes[22..54]);
        let mut session = [0u8; 16];
        session.copy_from_slice(&bytes[54..70]);
        let delivery = match bytes[70] {
            0 => Delivery::Stored,
            1 => Delivery::Streamed,
            _ => return Err(HandshakeError::Malformed),
        };
        let relu = match bytes[71] {
            0 => ReluKind::Full,
            1 => ReluKind::Split,
            _ => return Err(HandshakeError::Malformed),
        };
        let status = Status::from_byte(bytes[73]).ok_or(HandshakeError::Malformed)?;
        if !welcome && status != Status::Ok {
            return Err(HandshakeError::Malformed);
        }
        let hello = Hello {
            version: u16::from_le_bytes([bytes[4], bytes[5]]),
            protocol: ProtocolName::from_bytes(name).ok_or(HandshakeError::Malformed)?,
            digest,
            session,
            delivery,
            relu,
            sign_bits: bytes[72],
        };
        Ok((hello, status))
    }

    /// The first field where the peer's hello differs from ours (the session id excepted: the
    /// server does not know it in advance).
    pub fn check(&self, theirs: &Hello) -> Result<(), HandshakeError> {
        if theirs.version != self.version {
            return Err(HandshakeError::Version {
                ours: self.version,
                theirs: theirs.version,
            });
        }
        if theirs.protocol != self.protocol {
            return Err(HandshakeError::Protocol {
                ours: self.protocol,
                theirs: theirs.protocol,
            });
        }
        if theirs.digest != self.digest {
            let prefix = |d: &[u8; 32]| [d[0], d[1], d[2], d[3]];
            return Err(HandshakeError::ModelDigest {
                ours: prefix(&self.digest),
                theirs: prefix(&theirs.digest),
            });
        }
        if theirs.delivery != self.delivery {
            return Err(HandshakeError::Delivery {
                ours: self.delivery,
                theirs: theirs.delivery,
            });
        }
        if (theirs.relu, theirs.sign_bits) != (self.relu, self.sign_bits) {
            return Err(HandshakeError::Relu {
                ours: (self.relu, self.sign_bits),
                theirs: (theirs.relu, theirs.sign_bits),
            });
        }
        Ok(())
    }

    /// The status a server answers a client's hello `theirs` with.
    pub fn status_for(&self, theirs: &Hello) -> Status {
        match self.check(theirs) {
            Ok(()) => Status::Ok,
            Err(HandshakeError::Version { .. }) => Status::Version,
            Err(HandshakeError::Protocol { .. }) => Status::Protocol,
            Err(HandshakeError::ModelDigest { .. }) => Status::Model,
            Err(HandshakeError::Delivery { .. }) => Status::Delivery,
            Err(HandshakeError::Relu { .. }) => Status::Relu,
            Err(_) => Status::Malformed,
        }
    }
}

/// The client's side of the handshake: sends `hello`, reads the welcome, and checks every field
/// and the echoed session id.
pub fn client_handshake<T: Transport>(io: &mut T, hello: &Hello) -> Result<(), ProtocolError> {
    io.send(&hello.encode(None))?;
    let mut bytes = [0u8; HELLO_BYTES];
    io.recv(&mut bytes)?;
    let (theirs, status) = Hello::decode(&bytes, true)?;
    hello.check(&theirs)?;
    if theirs.session != hello.session {
        return Err(HandshakeError::Session.into());
    }
    match status {
        Status::Ok => Ok(()),
        Status::SessionReused => Err(HandshakeError::SessionReused.into()),
        other => Err(HandshakeError::Rejected(other).into()),
    }
}

/// The server's side of the plan exchange: after an accepting welcome, sends each split layer's
/// range (nothing when every ReLU is full).
pub fn send_plan<T: Transport>(
    io: &mut T,
    model: &Model<'_>,
    plan: &ReluPlan,
) -> Result<(), ProtocolError> {
    for (_, params) in plan.relu_layers(model) {
        if params.kind() == ReluKind::Split {
            io.send(&[params.range_bits()])?;
        }
    }
    Ok(())
}

/// The client's side: the plan for `hello` (all full, or the split ReLU with the server's
/// ranges, each checked).
pub fn receive_plan<T: Transport>(
    io: &mut T,
    model: &Model<'_>,
    hello: &Hello,
) -> Result<ReluPlan, ProtocolError> {
    let mut plan = ReluPlan::full();
    if hello.relu == ReluKind::Split {
        for layer in model.layers() {
            if let Op::MaskedRelu(mask) = layer.op
                && mask.kept() > 0
            {
                let mut h = [0u8];
                io.recv(&mut h)?;
                let params = ReluParams::split(layer.index, hello.sign_bits, h[0])
                    .map_err(HandshakeError::Plan)?;
                plan.set(layer.index, params);
            }
        }
    }
    Ok(plan)
}

/// A client's frame between inferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Inference `index` begins; `dealer_seed` is what the simulation's dealer derives the
    /// client's masks from.
    Start {
        /// Inference number within the session, from 0.
        index: u32,
        /// The client's seed as the dealer needs it.
        dealer_seed: [u8; 32],
    },
    /// The session is over.
    End,
}

impl Frame {
    /// Sends the frame.
    pub fn send<T: Transport>(&self, io: &mut T) -> Result<(), ProtocolError> {
        match self {
            Frame::Start { index, dealer_seed } => {
                let mut out = [0u8; START_BYTES];
                out[0] = TAG_START;
                out[1..5].copy_from_slice(&index.to_le_bytes());
                out[5..].copy_from_slice(dealer_seed);
                io.send(&out)
            }
            Frame::End => io.send(&[TAG_END]),
        }
    }

    /// Receives a frame; an unknown tag is [`HandshakeError::Malformed`].
    pub fn recv<T: Transport>(io: &mut T) -> Result<Self, ProtocolError> {
        let mut tag = [0u8; 1];
        io.recv(&mut tag)?;
        match tag[0] {
            TAG_START => {
                let mut rest = [0u8; START_BYTES - 1];
                io.recv(&mut rest)?;
                let mut dealer_seed = [0u8; 32];
                dealer_seed.copy_from_slice(&rest[4..]);
                Ok(Frame::Start {
                    index: u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]),
                    dealer_seed,
                })
            }
            TAG_END => Ok(Frame::End),
            _ => Err(HandshakeError::Malformed.into()),
        }
    }
}

/// SHA-256 of the model's public architecture: input shape, activation scale, and per layer its
/// input, operation, geometry, weight scale and ReLU mask; weights and biases are left out, so
/// the server's full model and the client's weight-free copy hash alike.
///
/// Encoding hashed (little-endian): `"pi-core architecture v1\0"`, activation frac bits `u8`,
/// input C, H, W `u16`, layer count `u16`; per layer its input id `u16`, an op tag `u8` and
/// conv: out channels `u16`, kh, kw, stride, padding, weight frac bits (`u8` each); linear:
/// out features `u16`, weight frac bits `u8`; masked ReLU: length `u32`, kept `u32`, every kept
/// index `u32`; avg pool: kernel, stride `u8`; add: other `u16`; global pool and flatten:
/// nothing.
pub fn architecture_digest(model: &Model<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    let u16le = |v: usize| (v as u16).to_le_bytes();
    h.update(b"pi-core architecture v1\0");
    h.update([model.activation_frac_bits()]);
    let s = model.input_shape();
    h.update(s.channels.to_le_bytes());
    h.update(s.height.to_le_bytes());
    h.update(s.width.to_le_bytes());
    h.update(u16le(model.layer_count()));
    for layer in model.layers() {
        h.update(u16le(layer.input));
        match layer.op {
            Op::Conv2d(c) => {
                h.update([0]);
                h.update(u16le(c.out_channels));
                h.update([
                    c.kernel_h as u8,
                    c.kernel_w as u8,
                    c.stride as u8,
                    c.padding as u8,
                    c.weight_frac_bits,
                ]);
            }
            Op::Linear(l) => {
                h.update([1]);
                h.update(u16le(l.out_features));
                h.update([l.weight_frac_bits]);
            }
            Op::MaskedRelu(mask) => {
                h.update([2]);
                h.update((mask.len() as u32).to_le_bytes());
                h.update((mask.kept() as u32).to_le_bytes());
                mask.for_each_kept(|i| h.update((i as u32).to_le_bytes()));
            }
            Op::AvgPool2d { kernel, stride } => {
                h.update([3, kernel as u8, stride as u8]);
            }
            Op::GlobalAvgPool => h.update([4]),
            Op::Add { other } => {
                h.update([5]);
                h.update(u16le(other));
            }
            Op::Flatten => h.update([6]),
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(delivery: Delivery) -> Hello {
        let model = Model::parse(crate::testing::TINY_MODEL).unwrap();
        Hello::new(
            ProtocolName::new("ring-gc").unwrap(),
            &model,
            [7; 16],
            delivery,
        )
    }

    #[test]
    fn the_ring_gc_constant_is_its_name() {
        assert_eq!(ProtocolName::new("ring-gc"), Some(ProtocolName::RING_GC));
        assert_eq!(ProtocolName::RING_GC.as_str(), "ring-gc");
        assert_eq!(
            ProtocolName::new("sixteen-bytes-!!"),
            ProtocolName::new("sixteen-bytes-!!")
        );
        assert!(ProtocolName::new("seventeen-bytes-!").is_none());
        assert!(ProtocolName::new("tab\there").is_none());
    }

    #[test]
    fn hello_round_trips_and_every_field_is_checked() {
        let ours = hello(Delivery::Streamed);
        let (back, status) = Hello::decode(&ours.encode(None), false).unwrap();
        assert_eq!((back, status), (ours, Status::Ok));
        let (back, status) = Hello::decode(&ours.encode(Some(Status::Model)), true).unwrap();
        assert_eq!((back, status), (ours, Status::Model));
        assert_eq!(
            Hello::decode(&ours.encode(None), true),
            Err(HandshakeError::BadMagic)
        );

        let mut v = ours;
        v.version += 1;
        assert!(matches!(
            ours.check(&v),
            Err(HandshakeError::Version { .. })
        ));
        let mut p = ours;
        p.protocol = ProtocolName::new("delphi").unwrap();
        assert!(matches!(
            ours.check(&p),
            Err(HandshakeError::Protocol { .. })
        ));
        let mut d = ours;
        d.digest[31] ^= 1;
        assert!(matches!(
            ours.check(&d),
            Err(HandshakeError::ModelDigest { .. })
        ));
        assert!(matches!(
            ours.check(&hello(Delivery::Stored)),
            Err(HandshakeError::Delivery { .. })
        ));
        let split = ours.with_split_relu(16);
        let (back, _) = Hello::decode(&split.encode(None), false).unwrap();
        assert_eq!(back, split);
        assert!(matches!(
            ours.check(&split),
            Err(HandshakeError::Relu { .. })
        ));
        assert!(matches!(
            split.check(&ours.with_split_relu(12)),
            Err(HandshakeError::Relu { .. })
        ));
        let mut bad = ours.encode(None);
        bad[70] = 9;
        assert_eq!(Hello::decode(&bad, false), Err(HandshakeError::Malformed));
        let mut bad = ours.encode(None);
        bad[8] = 0xff;
        assert_eq!(Hello::decode(&bad, false), Err(HandshakeError::Malformed));
    }

    #[test]
    fn the_digest_ignores_weights_but_not_the_architecture() {
        let model = Model::parse(crate::testing::TINY_MODEL).unwrap();
        let mut spec = model.to_spec();
        for layer in &mut spec.layers {
            if let crate::spec::OpSpec::Conv2d { weights, bias, .. }
            | crate::spec::OpSpec::Linear { weights, bias, .. } = &mut layer.op
            {
                weights.iter_mut().for_each(|w| *w = w.wrapping_add(3));
                *bias = None;
            }
        }
        let other_weights = spec.to_bytes().unwrap();
        let d = architecture_digest(&model);
        assert_eq!(
            d,
            architecture_digest(&Model::parse(&other_weights).unwrap())
        );
        spec.activation_frac_bits += 1;
        let other_scale = spec.to_bytes().unwrap();
        assert_ne!(d, architecture_digest(&Model::parse(&other_scale).unwrap()));
    }
}
