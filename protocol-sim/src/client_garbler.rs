//! The client-garbler protocol end to end (`protocol-sim run --protocol client-garbler`): the
//! client ([`pi_core::share::client_garbler`]) garbles every kept ReLU from its seed and uploads
//! the circuits; the server evaluates them online. The dealer stands in for HE (the client's
//! linear shares, as in the server-garbler protocol) and for OT (the labels of the server's
//! input `p`, which a deployment obtains by OT with the client as sender).
//!
//! Per inference: start frame, then the preprocessing (circuits up, counted as material; the
//! client's linear shares down when stored), then the online phase, whose every byte the
//! channel meters and the cost model prices.

use std::collections::HashSet;
use std::io::{Read, Write};

use pi_core::share::client_garbler::{CIRCUIT_BYTES, Circuit, GarblerClient, GarblerSeed};
use pi_core::share::gc::{self, GcHash, GcMaterial, LABEL_BYTES, Label, SHARE_BITS};
use pi_core::share::prg::{Prg, Purpose};
use pi_core::share::session;
use pi_core::share::{Delivery, Hello, NoProbe, ProtocolError, ProtocolName, Streamed};
use pi_core::{Model, Op};

use crate::SimError;
use crate::channel::{Kind, Metered};
use crate::entropy::Entropy;
use crate::offline::{ClientLayer, ClientOffline, linear_bytes, ring_product};
use crate::server::{ServerMessage, linear_output, local_layer};
use crate::session::{
    ClientOutcome, ServeOptions, ServedSession, accept, client_inferences, serve_inferences,
};

/// The protocol's name in the handshake.
pub fn protocol_name() -> ProtocolName {
    // A constant ASCII name of 14 bytes: always valid.
    ProtocolName::new("client-garbler").unwrap_or(ProtocolName::RING_GC)
}

/// The dealer's linear-layer shares: `W·r − s` for the client (`r` from its seed) and `s` for
/// the server, per layer (empty for other layers).
fn linear_shares(
    model: &Model<'_>,
    client_seed: &[u8; 32],
    server_seed: &[u8; 32],
) -> (Vec<Option<Vec<u64>>>, Vec<Vec<u64>>) {
    let mut client = Vec::with_capacity(model.layer_count());
    let mut server = Vec::with_capacity(model.layer_count());
    for layer in model.layers() {
        if matches!(layer.op, Op::Conv2d(_) | Op::Linear(_)) {
            let mut r = vec![0u64; layer.input_shape.elements()];
            Prg::new(client_seed, layer.index, Purpose::LinearInput).fill(&mut r);
            let mut s = vec![0u64; layer.output_shape.elements()];
            Prg::new(server_seed, layer.index, Purpose::Dealer).fill(&mut s);
            let wr = ring_product(&layer, &r);
            client.push(Some(
                wr.iter().zip(&s).map(|(a, b)| a.wrapping_sub(*b)).collect(),
            ));
            server.push(s);
        } else {
            client.push(None);
            server.push(Vec::new());
        }
    }
    (client, server)
}

/// What the server holds for one kept ReLU after the preprocessing.
struct EvalRelu {
    material: Box<GcMaterial>,
    /// Its fresh share `p`, whose labels it got by OT.
    p: u64,
}

/// Reads every uploaded circuit and plays OT for the server's input labels.
fn receive_circuits<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    dealer_seed: &[u8; 32],
    server_seed: &[u8; 32],
) -> Result<Vec<Vec<EvalRelu>>, ProtocolError> {
    let seeds = GarblerSeed::new(dealer_seed);
    let delta = seeds.delta();
    let mut bytes = Box::new([0u8; CIRCUIT_BYTES]);
    let mut circuit = Box::new(Circuit::EMPTY);
    let mut layers = Vec::with_capacity(model.layer_count());
    for layer in model.layers() {
        let mut relus = Vec::new();
        if let Op::MaskedRelu(mask) = layer.op {
            let mut streams = seeds.layer(layer.index);
            let mut p = Prg::new(server_seed, layer.index, Purpose::Server);
            for _ in 0..mask.kept() {
                io.recv_bytes(&mut bytes[..])?;
                circuit.read_bytes(&bytes);
                let p = p.next_u64();
                // The dealer's OT: the labels of p's bits, and nothing about the other labels.
                let _ = streams.online();
                let server_zero = streams.offline().server;
                relus.push(EvalRelu {
                    material: Box::new(GcMaterial {
                        tables: circuit.tables,
                        client_labels: gc::encode(&server_zero, delta, p),
                        mask_labels: circuit.mask_labels,
                        decode: circuit.decode,
                    }),
                    p,
                });
            }
        }
        layers.push(relus);
    }
    Ok(layers)
}

/// The server's online phase: evaluates every circuit with the client's online labels.
fn serve_online<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    relus: &[Vec<EvalRelu>],
    mut shares_s: Vec<Vec<u64>>,
    mut streamed: Option<Vec<Option<Vec<u64>>>>,
) -> Result<Vec<(ServerMessage, usize)>, ProtocolError> {
    let hash = GcHash::new();
    let mut sent = Vec::new();
    let mut send = |io: &mut Metered<S>, kind: ServerMessage, bytes: &[u8]| {
        sent.push((kind, bytes.len()));
        io.send_bytes(bytes)
    };
    let mut tensors: Vec<Vec<u64>> = vec![vec![0u64; model.input_shape().elements()]];
    let mut gc_index = 0u64;
    for layer in model.layers() {
        io.set_layer(layer.index);
        let input = &tensors[layer.input];
        let out = match layer.op {
            Op::Conv2d(_) | Op::Linear(_) => {
                if let Some(Some(words)) = streamed
                    .as_mut()
                    .and_then(|c| c.get_mut(layer.index))
                    .map(Option::take)
                {
                    send(io, ServerMessage::LinearShare, &linear_bytes(&words))?;
                }
                let masked = io.recv_words(input.len())?;
                let s = std::mem::take(&mut shares_s[layer.index]);
                linear_output(&layer, input, &masked, &s)
            }
            Op::MaskedRelu(mask) if mask.kept() > 0 => {
                let mine = relus
                    .get(layer.index)
                    .filter(|r| r.len() == mask.kept())
                    .ok_or(ProtocolError::Offline { layer: layer.index })?;
                let mut kept = Vec::with_capacity(mask.kept());
                mask.for_each_kept(|j| kept.push(j));
                let mut out = input.clone();
                let reshare: Vec<u8> = kept
                    .iter()
                    .zip(mine)
                    .flat_map(|(&j, r)| out[j].wrapping_sub(r.p).to_le_bytes())
                    .collect();
                send(io, ServerMessage::ReluReshare, &reshare)?;
                let mut bytes = [0u8; SHARE_BITS * LABEL_BYTES];
                for (&j, r) in kept.iter().zip(mine) {
                    io.recv_bytes(&mut bytes)?;
                    let labels: [Label; SHARE_BITS] = std::array::from_fn(|i| {
                        let mut b = [0u8; LABEL_BYTES];
                        b.copy_from_slice(&bytes[i * LABEL_BYTES..(i + 1) * LABEL_BYTES]);
                        u128::from_le_bytes(b)
                    });
                    out[j] = gc::evaluate_relu(&hash, gc_index, &r.material, &labels);
                    gc_index += 1;
                }
                out
            }
            Op::MaskedRelu(_) => input.clone(),
            op if let Some(out) = local_layer(&layer, op, input, &tensors) => out,
            _ => return Err(ProtocolError::Offline { layer: layer.index }),
        };
        tensors.push(out);
    }
    io.set_layer(model.layer_count());
    let last = tensors.last().map(Vec::as_slice).unwrap_or(&[]);
    let bytes: Vec<u8> = last.iter().flat_map(|w| w.to_le_bytes()).collect();
    send(io, ServerMessage::OutputShare, &bytes)?;
    Ok(sent)
}

/// Serves one client-garbler session on `io` (see [`crate::session::serve`] for the
/// arguments).
pub fn serve<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    seen: &mut HashSet<[u8; 16]>,
    options: &ServeOptions,
) -> Result<ServedSession, ProtocolError> {
    // Only the full ReLU: the split ReLU's multiplexer is a server-garbler construction here.
    let (ours, plan) = accept(model, io, seen, options, protocol_name(), false)?;
    serve_inferences(&ours, plan, io, entropy, |dealer_seed, server_seed, io| {
        io.set_kind(Kind::Material);
        let relus = receive_circuits(model, io, &dealer_seed, &server_seed)?;
        let (client, server) = linear_shares(model, &dealer_seed, &server_seed);
        let streamed = match ours.delivery {
            Delivery::Stored => {
                let bytes: Vec<u8> = client
                    .iter()
                    .flatten()
                    .flat_map(|w| linear_bytes(w))
                    .collect();
                io.send_bytes(&bytes)?;
                None
            }
            Delivery::Streamed => Some(client),
        };
        io.set_kind(Kind::Online);
        let sent = serve_online(model, io, &relus, server, streamed)?;
        Ok((sent, (0, 0)))
    })
}

/// Runs a client-garbler session as the client (see [`crate::session::client`]).
pub fn client<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
    entropy: &mut Entropy,
    delivery: Delivery,
    split_sign_bits: Option<u8>,
    inputs: &[Vec<i32>],
) -> Result<Vec<ClientOutcome>, SimError> {
    if split_sign_bits.is_some() {
        return Err(SimError::Usage(
            "the split ReLU runs with ring-gc only, not client-garbler".into(),
        ));
    }
    io.set_kind(Kind::Control);
    let hello = Hello::new(protocol_name(), model, entropy.bytes::<16>()?, delivery);
    session::client_handshake(io, &hello)?;
    let mut shares = vec![0u64; model.arena_words()];
    client_inferences(model, io, entropy, inputs, |input, seed, io, output| {
        io.set_kind(Kind::Material);
        let garbled = GarblerClient::new(model, seed).garble(io)?;
        match delivery {
            Delivery::Stored => {
                let offline = read_linear_shares(model, io)?;
                io.set_kind(Kind::Online);
                garbled.run(input, &mut shares, offline, io, &mut NoProbe, output)?;
            }
            Delivery::Streamed => {
                io.set_kind(Kind::Online);
                garbled.run(input, &mut shares, Streamed, io, &mut NoProbe, output)?;
            }
        }
        Ok(())
    })
}

/// The client's stored material: the linear layers' shares only (nothing per ReLU).
fn read_linear_shares<S: Read + Write>(
    model: &Model<'_>,
    io: &mut Metered<S>,
) -> Result<ClientOffline, ProtocolError> {
    let mut layers = Vec::with_capacity(model.layer_count());
    for layer in model.layers() {
        layers.push(match layer.op {
            Op::Conv2d(_) | Op::Linear(_) => {
                ClientLayer::Linear(io.recv_words(layer.output_shape.elements())?)
            }
            _ => ClientLayer::None,
        });
    }
    Ok(ClientOffline { layers })
}
