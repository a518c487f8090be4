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
    Client, ClientBuffers, ClientSeed, Delivery, GcMaterial, HandshakeError, Hello, LOCK_STEP,
    NoProbe, ProtocolError, ProtocolName, ReluKind, ReluParamError, ReluPlan, Streamed,
};

use crate::SimError;
use crate::channel::{Kind, Metered, Stats};
use crate::entropy::Entropy;
use crate::offline::{ClientOffline, Preprocessing, sign_faults};
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
    /// Split-ReLU sign faults (simulation-only audit with the dealer's knowledge), and the
    /// split ReLUs evaluated.
    pub sign_faults: (usize, usize),
}

/// What the server logged about one session.
#[derive(Debug, Clone)]
pub struct ServedSession {
    /// The client's session id.
    pub session: SessionId,
    /// How the client's material was delivered.
    pub delivery: Delivery,
    /// The ReLU protocols agreed.
    pub plan: ReluPlan,
    /// Every inference, in order.
    pub inferences: Vec<ServedInference>,
    /// Material bytes sent before online phases (stored delivery), over the session.
    pub material: Traffic,
    /// Handshake and framing bytes over the session.
    pub control: Traffic,
}

/// What the server offers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Accept only this delivery (`None`: whatever the client asks).
    pub delivery: Option<Delivery>,
    /// The bound on the client's inputs, in LSBs of the model's activation scale: what the
    /// split ReLU's ranges are proven from (without it the server refuses the split ReLU).
    pub input_bound: Option<u64>,
    /// Use this range `h` in every split layer instead of the narrowest the bound allows; it must
    /// still cover the proven bound.
    pub range_bits: Option<u8>,
}

/// The split-ReLU plan for a client's sign width, from the server's proven bounds.
pub fn split_plan(
    model: &Model<'_>,
    sign_bits: u8,
    options: &ServeOptions,
) -> Result<ReluPlan, ReluParamError> {
    let bound = options.input_bound.ok_or(ReluParamError::NoInputBound)?;
    let plan = match options.range_bits {
        Some(h) => ReluPlan::split_with(model, sign_bits, |_| h)?,
        None => ReluPlan::split(model, sign_bits, bound)?,
    };
    plan.check_ranges(model, bound)?;
    Ok(plan)
}

/// The server's side of the handshake: reads the client's hello, answers with `protocol`'s,
/// and returns its own hello and the ReLU plan agreed. With `split` the client may choose the
/// split ReLU (if the server can prove its ranges); without, only the full ReLU is accepted.
pub(crate) fn accept<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    seen: &mut HashSet<SessionId>,
    options: &ServeOptions,
    protocol: ProtocolName,
    split: bool,
) -> Result<(Hello, ReluPlan), ProtocolError> {
    io.set_kind(Kind::Control);
    let mut bytes = [0u8; HELLO_BYTES];
    io.recv_bytes(&mut bytes)?;
    let delivery = options.delivery;
    let theirs = match Hello::decode(&bytes, false) {
        Ok((hello, _)) => hello,
        Err(e) => {
            // Say why before hanging up, in case the peer reads welcomes.
            let ours = Hello::new(
                protocol,
                model,
                [0; 16],
                delivery.unwrap_or(Delivery::Stored),
            );
            io.send_bytes(&ours.encode(Some(Status::Malformed)))?;
            return Err(e.into());
        }
    };
    let mut ours = Hello::new(
        protocol,
        model,
        theirs.session,
        delivery.unwrap_or(theirs.delivery),
    );
    // The ReLU protocol is the client's choice, if the server can prove the split ReLU's ranges.
    let mut plan = Ok(ReluPlan::full());
    if split && theirs.relu == ReluKind::Split {
        plan = split_plan(model, theirs.sign_bits, options);
        ours = ours.with_split_relu(theirs.sign_bits);
    }
    let mut status = ours.status_for(&theirs);
    if status == Status::Ok && plan.is_err() {
        status = Status::Relu;
    }
    if status == Status::Ok && !seen.insert(theirs.session) {
        status = Status::SessionReused;
    }
    io.send_bytes(&ours.encode(Some(status)))?;
    match status {
        Status::Ok => Ok((ours, plan.map_err(HandshakeError::Plan)?)),
        Status::Relu if plan.is_err() => {
            let why = plan
                .err()
                .map_or(HandshakeError::Malformed, HandshakeError::Plan);
            Err(why.into())
        }
        Status::SessionReused => Err(HandshakeError::SessionReused.into()),
        _ => {
            let why = ours
                .check(&theirs)
                .err()
                .unwrap_or(HandshakeError::Malformed);
            Err(why.into())
        }
    }
}

/// Serves one session on `io` for the model `model` (with weights). `seen` holds the session
/// ids already served: a repeated id is refused, as its material would be reused.
pub fn serve<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    seen: &mut HashSet<SessionId>,
    options: &ServeOptions,
) -> Result<ServedSession, ProtocolError> {
    let (ours, plan) = accept(model, io, seen, options, PROTOCOL, true)?;
    session::send_plan(io, model, &plan)?;
    serve_inferences(&ours, plan, io, entropy, |dealer_seed, server_seed, io| {
        let mut pre = Preprocessing::with_plan(model, plan, dealer_seed, server_seed);
        let material = match ours.delivery {
            Delivery::Stored => {
                let delta = pre.delta();
                io.set_kind(Kind::Material);
                let layers = pre.send_all(|bytes| io.send_bytes(bytes))?;
                ServerMaterial::Stored { layers, delta }
            }
            Delivery::Streamed => ServerMaterial::Streamed(&mut pre),
        };
        io.set_kind(Kind::Online);
        let online = server::run(model, &plan, material, io)?;
        Ok((
            online.sent,
            sign_faults(&plan, &online.split_inputs, &dealer_seed),
        ))
    })
}

/// The server's side of a session after the handshake, whatever the protocol: for each start
/// frame fresh server randomness (labels, Δ, output masks, shares) and
/// `infer(dealer_seed, server_seed, io)` (the preprocessing and the online phase, returning the
/// messages sent and the sign-fault audit), logged with its online stats; until the end frame.
pub(crate) fn serve_inferences<S: Read + Write>(
    ours: &Hello,
    plan: ReluPlan,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    mut infer: impl FnMut(
        [u8; 32],
        [u8; 32],
        &mut Metered<S>,
    ) -> Result<(Vec<(ServerMessage, usize)>, (usize, usize)), ProtocolError>,
) -> Result<ServedSession, ProtocolError> {
    let mut log = ServedSession {
        session: ours.session,
        delivery: ours.delivery,
        plan,
        inferences: Vec::new(),
        material: Traffic::default(),
        control: Traffic::default(),
    };
    loop {
        io.set_kind(Kind::Control);
        let Frame::Start { index, dealer_seed } = Frame::recv(io)? else {
            break;
        };
        if index as usize != log.inferences.len() {
            return Err(HandshakeError::Malformed.into());
        }
        io.meter().reset_online();
        let server_seed = entropy
            .bytes::<32>()
            .map_err(|_| ProtocolError::Transport)?;
        let (sent, sign_faults) = infer(dealer_seed, server_seed, io)?;
        log.inferences.push(ServedInference {
            sent,
            stats: io.meter().snapshot(),
            sign_faults,
        });
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
/// `split_sign_bits`: the split ReLU on that many bits in every layer, else the full ReLU.
pub fn client<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    delivery: Delivery,
    split_sign_bits: Option<u8>,
    inputs: &[Vec<i32>],
) -> Result<Vec<ClientOutcome>, SimError> {
    io.set_kind(Kind::Control);
    let mut hello = Hello::new(PROTOCOL, model, entropy.bytes::<16>()?, delivery);
    if let Some(t) = split_sign_bits {
        hello = hello.with_split_relu(t);
    }
    session::client_handshake(io, &hello)?;
    let plan = session::receive_plan(io, model, &hello)?;
    let mut shares = vec![0u64; model.arena_words()];
    let mut material: Vec<GcMaterial> = vec![GcMaterial::EMPTY; LOCK_STEP];
    client_inferences(model, io, entropy, inputs, |input, seed, io, output| {
        let client = Client::with_plan(model, seed, plan);
        let mut colours = vec![0u8; client.colour_bytes()];
        let buffers = ClientBuffers {
            shares: &mut shares,
            material: &mut material,
            colours: &mut colours,
        };
        match delivery {
            Delivery::Stored => {
                io.set_kind(Kind::Material);
                let offline = ClientOffline::read(model, &plan, io)?;
                io.set_kind(Kind::Online);
                client.run(input, buffers, offline, io, &mut NoProbe, output)?;
            }
            Delivery::Streamed => {
                io.set_kind(Kind::Online);
                client.run(input, buffers, Streamed, io, &mut NoProbe, output)?;
            }
        }
        Ok(())
    })
}

/// The client's side of a session after the handshake, whatever the protocol: for each input a
/// fresh seed from `entropy` and its start frame, then `infer(input, seed, io, output)` (the
/// preprocessing and the online phase), then the inference's online stats; at the end the end
/// frame.
pub(crate) fn client_inferences<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    inputs: &[Vec<i32>],
    mut infer: impl FnMut(&[i32], ClientSeed, &mut Metered<S>, &mut [i64]) -> Result<(), SimError>,
) -> Result<Vec<ClientOutcome>, SimError> {
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
        infer(input, seed, io, &mut output)?;
        outcomes.push(ClientOutcome {
            output,
            stats: io.meter().snapshot(),
        });
    }
    io.set_kind(Kind::Control);
    Frame::End.send(io)?;
    Ok(outcomes)
}
