//! The server: holds the weights, evaluates linear layers on masked data, garbles ReLUs and
//! sends the labels of its shares. Its only inputs from the client are the masked vectors.

use std::io::{Read, Write};

use pi_core::share::gc::{self, LABEL_BYTES};
use pi_core::share::{Party, linear, local};
use pi_core::{Model, Op};

use crate::SimError;
use crate::channel::Metered;
use crate::offline::{ServerOffline, ring_product};

/// What kind of message the server sends. The client receives nothing else; in particular no
/// message kind carries weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMessage {
    /// The labels of the server's shares for the kept ReLUs of a layer (1 KiB per ReLU).
    ReluLabels,
    /// The server's share of the model output.
    OutputShare,
}

/// Runs the server's online phase. Returns the kinds of the messages it sent, in order, with
/// their sizes.
pub fn run<S: Read + Write>(
    model: &Model<'_>,
    offline: &ServerOffline,
    io: &mut Metered<S>,
) -> Result<Vec<(ServerMessage, usize)>, SimError> {
    let mut sent = Vec::new();
    let mut tensors: Vec<Vec<u64>> = Vec::with_capacity(model.layer_count() + 1);
    // The server's share of the client's input is zero.
    tensors.push(vec![0u64; model.input_shape().elements()]);
    for layer in model.layers() {
        io.set_layer(layer.index);
        let input = &tensors[layer.input];
        let out = match layer.op {
            Op::Conv2d(_) | Op::Linear(_) => {
                let masked = io.recv_words(input.len())?;
                let x: Vec<u64> = input
                    .iter()
                    .zip(&masked)
                    .map(|(s, m)| s.wrapping_add(*m))
                    .collect();
                let product = ring_product(&layer, &x);
                let s = offline
                    .linear
                    .get(layer.index)
                    .ok_or(SimError::Protocol("missing linear share"))?;
                let plane = layer.output_shape.plane();
                product
                    .iter()
                    .zip(s)
                    .enumerate()
                    .map(|(j, (p, s))| match layer.op {
                        Op::Conv2d(c) => {
                            linear::finish_server(*p, c.bias_at(j / plane), *s, c.weight_frac_bits)
                        }
                        Op::Linear(l) => {
                            linear::finish_server(*p, l.bias_at(j), *s, l.weight_frac_bits)
                        }
                        _ => 0,
                    })
                    .collect()
            }
            Op::MaskedRelu(mask) => {
                let mut out = input.clone();
                if mask.kept() > 0 {
                    let masked = io.recv_words(mask.kept())?;
                    let relus = offline
                        .relus
                        .get(layer.index)
                        .ok_or(SimError::Protocol("missing garbled ReLUs"))?;
                    let mut labels = Vec::with_capacity(mask.kept() * gc::INPUT_LABEL_BYTES);
                    let mut k = 0;
                    mask.for_each_kept(|j| {
                        if let (Some(rel), Some(m)) = (relus.get(k), masked.get(k)) {
                            let share = out[j].wrapping_add(*m);
                            for l in gc::encode(&rel.zero_labels, offline.delta, share) {
                                labels.extend_from_slice(&l.to_le_bytes()[..LABEL_BYTES]);
                            }
                            out[j] = rel.r;
                        }
                        k += 1;
                    });
                    if k != relus.len() {
                        return Err(SimError::Protocol("garbled ReLU count mismatch"));
                    }
                    io.send_bytes(&labels)?;
                    sent.push((ServerMessage::ReluLabels, labels.len()));
                }
                out
            }
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
                let mut out = input.clone();
                local::add_into(&mut out, &tensors[other]);
                out
            }
            Op::Flatten => input.clone(),
            _ => return Err(SimError::Protocol("unsupported layer")),
        };
        tensors.push(out);
    }
    io.set_layer(model.layer_count());
    let last = tensors.last().map(Vec::as_slice).unwrap_or(&[]);
    io.send_words(last)?;
    sent.push((ServerMessage::OutputShare, last.len() * 8));
    Ok(sent)
}
