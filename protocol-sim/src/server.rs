//! The server's online phase: holds the weights, evaluates linear layers on masked data, sends
//! the labels of its shares for the garbled ReLUs and, when the client streams its material,
//! the client's preprocessed material just before the client needs it. Its only inputs from the
//! client are the masked vectors.

use std::io::{Read, Write};

use pi_core::share::gc::{self, LABEL_BYTES};
use pi_core::share::relu::mux;
use pi_core::share::{Party, ProtocolError, ReluPlan, linear, local};
use pi_core::{Layer, Model, Op};

use crate::channel::Metered;
use crate::offline::{
    ClientLayer, Preprocessing, ServerLayer, ServerRelu, linear_bytes, relu_bytes, ring_product,
};

/// What kind of message the server sends in the online phase. The client receives nothing
/// else; in particular no message kind carries weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMessage {
    /// Streamed delivery only: the client's offline share `W·r − s` of a conv/linear layer.
    LinearShare,
    /// Streamed delivery only: one kept ReLU's garbled material (tables, the client's labels
    /// from the dealer's OT, mask labels, decoding bits).
    ReluMaterial,
    /// The labels of the server's shares for the kept ReLUs of a layer (1 KiB per full ReLU;
    /// `16·t + 8` bytes per split ReLU, the multiplexer ciphertext included).
    ReluLabels,
    /// The server's share of the model output.
    OutputShare,
    /// Client-garbler protocol: the server's re-share `s_j − p_j` of each kept ReLU of a layer
    /// (8 B per ReLU), before the client sends its labels.
    ReluReshare,
}

/// The server's preprocessed state for one inference.
#[derive(Debug)]
pub enum ServerMaterial<'p, 'm, 'a> {
    /// Everything was prepared, and the client's half sent, before the online phase.
    Stored {
        /// Per layer, in model order.
        layers: Vec<ServerLayer>,
        /// The free-XOR offset.
        delta: gc::Label,
    },
    /// Prepared layer by layer; the client's half goes out on the connection as the online
    /// phase reaches it.
    Streamed(&'p mut Preprocessing<'m, 'a>),
}

/// What the server's online phase leaves behind besides its output share.
#[derive(Debug, Clone, Default)]
pub struct Online {
    /// The kinds and sizes of the messages it sent, in order.
    pub sent: Vec<(ServerMessage, usize)>,
    /// `(layer, x1)` for every split-ReLU input: the server's own share of it, which the
    /// simulation's sign-fault audit combines with the dealer's knowledge.
    pub split_inputs: Vec<(usize, u64)>,
}

/// Runs the server's online phase for one inference with the ReLU protocols of `plan`.
pub fn run<S: Read + Write>(
    model: &Model<'_>,
    plan: &ReluPlan,
    mut material: ServerMaterial<'_, '_, '_>,
    io: &mut Metered<S>,
) -> Result<Online, ProtocolError> {
    let mut sent = Vec::new();
    let mut relu_inputs = Vec::new();
    let mut send = |io: &mut Metered<S>, kind: ServerMessage, bytes: &[u8]| {
        sent.push((kind, bytes.len()));
        io.send_bytes(bytes)
    };
    let mut tensors: Vec<Vec<u64>> = Vec::with_capacity(model.layer_count() + 1);
    // The server's share of the client's input is zero.
    tensors.push(vec![0u64; model.input_shape().elements()]);
    for layer in model.layers() {
        io.set_layer(layer.index);
        let streaming_relus = matches!(layer.op, Op::MaskedRelu(m) if m.kept() > 0);
        let (client_half, mine, delta, mut garbling) = match &mut material {
            ServerMaterial::Stored { layers, delta } => (
                ClientLayer::None,
                layers
                    .get_mut(layer.index)
                    .map(std::mem::take)
                    .unwrap_or_default(),
                *delta,
                None,
            ),
            // A streamed ReLU layer is garbled a chunk at a time as the client consumes it.
            ServerMaterial::Streamed(pre) if streaming_relus => (
                ClientLayer::None,
                ServerLayer::None,
                pre.delta(),
                Some(pre.begin_relus(&layer)?),
            ),
            ServerMaterial::Streamed(pre) => {
                let delta = pre.delta();
                let (c, s) = pre.layer(&layer)?;
                (c, s, delta, None)
            }
        };
        let input = &tensors[layer.input];
        let out = match (layer.op, mine) {
            (Op::Conv2d(_) | Op::Linear(_), ServerLayer::Linear(s)) => {
                if let ClientLayer::Linear(words) = &client_half {
                    send(io, ServerMessage::LinearShare, &linear_bytes(words))?;
                }
                let masked = io.recv_words(input.len())?;
                linear_output(&layer, input, &masked, &s)
            }
            (Op::MaskedRelu(mask), mine) if mask.kept() > 0 => {
                let p = plan.layer(layer.index);
                let mut stored = match mine {
                    ServerLayer::Relus(relus) if relus.len() == mask.kept() => relus.into_iter(),
                    _ if garbling.is_some() => Vec::new().into_iter(),
                    _ => return Err(ProtocolError::Offline { layer: layer.index }),
                };
                let masked = io.recv_words(mask.kept())?;
                let mut kept = Vec::with_capacity(mask.kept());
                mask.for_each_kept(|j| kept.push(j));
                let mut out = input.clone();
                let mut split = Vec::new();
                let mut chunk = Vec::new();
                // Stored delivery: one message with every label of the layer. Streamed: each
                // ReLU's material, then its labels, as the client consumes them.
                let mut labels = Vec::new();
                for (k, &j) in kept.iter().enumerate() {
                    let (rel, streamed) = match garbling.as_mut() {
                        Some(g) => {
                            if chunk.is_empty()
                                && let ServerMaterial::Streamed(pre) = &mut material
                            {
                                pre.next_relus(g, &mut chunk);
                                chunk.reverse();
                            }
                            let (rel, m) = chunk
                                .pop()
                                .ok_or(ProtocolError::Offline { layer: layer.index })?;
                            (rel, Some(m))
                        }
                        None => (
                            stored
                                .next()
                                .ok_or(ProtocolError::Offline { layer: layer.index })?,
                            None,
                        ),
                    };
                    let x1 = out[j].wrapping_add(masked[k]);
                    match &rel {
                        ServerRelu::Full { zero_labels, r } => {
                            for l in gc::encode(zero_labels, delta, x1) {
                                labels.extend_from_slice(&l.to_le_bytes()[..LABEL_BYTES]);
                            }
                            out[j] = *r;
                        }
                        ServerRelu::Split {
                            zero_labels,
                            lambda,
                            pads,
                            m_lambda,
                        } => {
                            let t = usize::from(p.sign_bits());
                            for l in &gc::encode(zero_labels, delta, p.reduce(x1))[..t] {
                                labels.extend_from_slice(&l.to_le_bytes()[..LABEL_BYTES]);
                            }
                            let (ciphertext, r) = mux::server_product(*lambda, *pads, x1);
                            labels.extend_from_slice(&ciphertext.to_le_bytes());
                            out[j] = r;
                            split.push((j, x1, *lambda, *m_lambda));
                        }
                    }
                    if let Some(m) = streamed {
                        send(io, ServerMessage::ReluMaterial, &relu_bytes(p, &m))?;
                        send(io, ServerMessage::ReluLabels, &labels)?;
                        labels.clear();
                    }
                }
                if !labels.is_empty() {
                    send(io, ServerMessage::ReluLabels, &labels)?;
                }
                if !split.is_empty() {
                    // The split ReLU's multiplexer: the client's OT corrections complete the
                    // server's share.
                    let corrections = io.recv_words(split.len())?;
                    for (&(j, x1, lambda, m_lambda), d) in split.iter().zip(corrections) {
                        out[j] = mux::server_share(lambda, out[j], m_lambda, d);
                        relu_inputs.push((layer.index, x1));
                    }
                }
                out
            }
            (Op::MaskedRelu(_), _) => input.clone(),
            (op, _) if let Some(out) = local_layer(&layer, op, input, &tensors) => out,
            _ => return Err(ProtocolError::Offline { layer: layer.index }),
        };
        tensors.push(out);
    }
    io.set_layer(model.layer_count());
    let last = tensors.last().map(Vec::as_slice).unwrap_or(&[]);
    let bytes: Vec<u8> = last.iter().flat_map(|w| w.to_le_bytes()).collect();
    send(io, ServerMessage::OutputShare, &bytes)?;
    Ok(Online {
        sent,
        split_inputs: relu_inputs,
    })
}

/// The server's output share of a conv or linear layer from its input share and the client's
/// masked input `x − r`: `W·x + b − s`, truncated (both protocols).
pub(crate) fn linear_output(
    layer: &Layer<'_>,
    input: &[u64],
    masked: &[u64],
    s: &[u64],
) -> Vec<u64> {
    let x: Vec<u64> = input
        .iter()
        .zip(masked)
        .map(|(a, b)| a.wrapping_add(*b))
        .collect();
    let plane = layer.output_shape.plane();
    ring_product(layer, &x)
        .iter()
        .zip(s)
        .enumerate()
        .map(|(j, (p, s))| match layer.op {
            Op::Conv2d(c) => {
                linear::finish_server(*p, c.bias_at(j / plane), *s, c.weight_frac_bits)
            }
            Op::Linear(l) => linear::finish_server(*p, l.bias_at(j), *s, l.weight_frac_bits),
            _ => 0,
        })
        .collect()
}

/// The server's share after a messageless layer (pools, add, flatten), `None` for the others.
pub(crate) fn local_layer(
    layer: &Layer<'_>,
    op: Op<'_>,
    input: &[u64],
    tensors: &[Vec<u64>],
) -> Option<Vec<u64>> {
    Some(match op {
        Op::AvgPool2d { kernel, stride } => {
            let mut out = vec![0u64; layer.output_shape.elements()];
            local::avg_pool(
                kernel,
                stride,
                layer.input_shape,
                layer.output_shape,
                input,
                &mut out,
                Party::Server,
            );
            out
        }
        Op::GlobalAvgPool => {
            let mut out = vec![0u64; layer.output_shape.elements()];
            local::global_avg_pool(layer.input_shape, input, &mut out, Party::Server);
            out
        }
        Op::Add { other } => {
            let mut out = input.to_vec();
            local::add_into(&mut out, tensors.get(other)?);
            out
        }
        Op::Flatten => input.to_vec(),
        _ => return None,
    })
}
