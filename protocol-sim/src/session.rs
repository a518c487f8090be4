//! One connection between a client and the server, from the handshake to the last inference:
//! the same code runs for `protocol-sim serve` / `client` as separate processes, for the
//! in-process `run`, and (the client half, in pi-core) on the Cortex-M4.
//!
//! Per inference the client sends a start frame carrying its seed for the dealer (the
//! simulation's stand-in for HE and OT), the server draws fresh randomness and prepares the
//! material, and the online phase runs with the material stored (sent first) or streamed.

use std::collections::HashSet;
use std::io::{Read, Write};

use pi_core::Model;
use pi_core::cost::Traffic;
use pi_core::share::session::{self, Frame, HELLO_BYTES, SessionId, Status};
use pi_core::share::{
    Client, ClientBuffers, ClientSeed, Delivery, GcMaterial, HandshakeError, Hello, NoProbe,
    ProtocolError, ProtocolName, Streamed,
};

use crate::SimError;
use crate::channel::{Kind, Metered, Stats};
use crate::entropy::Entropy;
use crate::offline::{ClientOffline, Preprocessing};
use crate::server::{self, ServerMaterial, ServerMessage};

/// The only protocol `protocol-sim` runs end to end.
pub const PROTOCOL: ProtocolName = ProtocolName::RING_GC;

/// What the server logged about one inference.
#[derive(Debug, Clone)]
pub struct ServedInference {
    /// Kinds and sizes of the server's online messages, in order.
    pub sent: Vec<(ServerMessage, usize)>,
    /// The online traffic as the server saw it.
    pub stats: Stats,
}

/// What the server logged about one session.
#[derive(Debug, Clone)]
pub struct ServedSession {
    /// The client's session id.
    pub session: SessionId,
    /// How the client's material was delivered.
    pub delivery: Delivery,
    /// Every inference, in order.
    pub inferences: Vec<ServedInference>,
    /// Material bytes sent before online phases (stored delivery), over the session.
    pub material: Traffic,
    /// Handshake and framing bytes over the session.
    pub control: Traffic,
}

/// Serves one session on `io` for the model `model` (with weights). `seen` holds the session
/// ids already served: a repeated id is refused, as its material would be reused. `delivery`
/// restricts the delivery modes offered (`None`: whatever the client asks).
pub fn serve<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    seen: &mut HashSet<SessionId>,
    delivery: Option<Delivery>,
) -> Result<ServedSession, ProtocolError> {
    io.set_kind(Kind::Control);
    let mut bytes = [0u8; HELLO_BYTES];
    io.recv_bytes(&mut bytes)?;
    let theirs = match Hello::decode(&bytes, false) {
        Ok((hello, _)) => hello,
        Err(e) => {
            // Say why before hanging up, in case the peer reads welcomes.
            let ours = Hello::new(
                PROTOCOL,
                model,
                [0; 16],
                delivery.unwrap_or(Delivery::Stored),
            );
            io.send_bytes(&ours.encode(Some(Status::Malformed)))?;
            return Err(e.into());
        }
    };
    let ours = Hello::new(
        PROTOCOL,
        model,
        theirs.session,
        delivery.unwrap_or(theirs.delivery),
    );
    let mut status = ours.status_for(&theirs);
    if status == Status::Ok && !seen.insert(theirs.session) {
        status = Status::SessionReused;
    }
    io.send_bytes(&ours.encode(Some(status)))?;
    if status != Status::Ok {
        return Err(match ours.check(&theirs) {
            Err(e) => e.into(),
            Ok(()) => HandshakeError::SessionReused.into(),
        });
    }
    let mut log = ServedSession {
        session: theirs.session,
        delivery: ours.delivery,
        inferences: Vec::new(),
        material: Traffic::default(),
        control: Traffic::default(),
    };
    loop {
        io.set_kind(Kind::Control);
        match Frame::recv(io)? {
            Frame::End => break,
            Frame::Start { index, dealer_seed } => {
                if index as usize != log.inferences.len() {
                    return Err(HandshakeError::Malformed.into());
                }
                io.meter().reset_online();
                // Fresh server randomness for every inference: labels, Δ, output masks, shares.
                let server_seed = entropy
                    .bytes::<32>()
                    .map_err(|_| ProtocolError::Transport)?;
                let mut pre = Preprocessing::new(model, dealer_seed, server_seed);
                let material = match ours.delivery {
                    Delivery::Stored => {
                        let delta = pre.delta();
                        let (client, layers) = pre.all()?;
                        io.set_kind(Kind::Material);
                        io.send_bytes(&client.to_bytes())?;
                        ServerMaterial::Stored { layers, delta }
                    }
                    Delivery::Streamed => ServerMaterial::Streamed(&mut pre),
                };
                io.set_kind(Kind::Online);
                let sent = server::run(model, material, io)?;
                log.inferences.push(ServedInference {
                    sent,
                    stats: io.meter().snapshot(),
                });
            }
        }
    }
    let stats = io.meter().snapshot();
    log.material = stats.material;
    log.control = stats.control;
    Ok(log)
}

/// One private inference as the client saw it.
#[derive(Debug, Clone)]
pub struct ClientOutcome {
    /// The reconstructed output (fixed point, the model's activation scale).
    pub output: Vec<i64>,
    /// The online traffic of this inference (the client sees both directions).
    pub stats: Stats,
}

/// Runs a session as the client on the architecture `model` (weights are never used): one
/// private inference per input, each with a fresh seed from `entropy`, over `io`.
pub fn client<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    delivery: Delivery,
    inputs: &[Vec<i32>],
) -> Result<Vec<ClientOutcome>, SimError> {
    io.set_kind(Kind::Control);
    let hello = Hello::new(PROTOCOL, model, entropy.bytes::<16>()?, delivery);
    session::client_handshake(io, &hello)?;
    let mut shares = vec![0u64; model.arena_words()];
    let mut material = Box::new(GcMaterial::EMPTY);
    let mut outcomes = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        io.set_kind(Kind::Control);
        let seed = ClientSeed::from_bytes(entropy.bytes::<32>()?);
        Frame::Start {
            index: u32::try_from(index)
                .map_err(|_| SimError::Usage("too many inferences".into()))?,
            dealer_seed: *seed.expose_to_dealer(),
        }
        .send(io)?;
        io.meter().reset_online();
        let mut output = vec![0i64; model.output_shape().elements()];
        let buffers = ClientBuffers {
            shares: &mut shares,
            material: &mut material,
        };
        let client = Client::new(model, seed);
        match delivery {
            Delivery::Stored => {
                io.set_kind(Kind::Material);
                let offline = ClientOffline::read(model, io)?;
                io.set_kind(Kind::Online);
                client.run(input, buffers, offline, io, &mut NoProbe, &mut output)?;
            }
            Delivery::Streamed => {
                io.set_kind(Kind::Online);
                client.run(input, buffers, Streamed, io, &mut NoProbe, &mut output)?;
            }
        }
        outcomes.push(ClientOutcome {
            output,
            stats: io.meter().snapshot(),
        });
    }
    io.set_kind(Kind::Control);
    Frame::End.send(io)?;
    Ok(outcomes)
}
