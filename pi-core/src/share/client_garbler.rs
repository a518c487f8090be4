//! The client of the *client-garbler* protocol (Garimella et al., "Characterizing and
//! Optimizing End-to-End Systems for Private Inference", ASPLOS'23): the client garbles the ReLU
//! circuits from its seed and the server evaluates them, so the client stores nothing per ReLU
//! and evaluates nothing online.
//!
//! The circuit is [`gc::relu_circuit`], garbled with the same half-gates and TCCR hash as the
//! server-garbler protocol; its inputs are the client's online share `γ` (garbler input, labels
//! sent online), the server's fresh share `p` (evaluator input, labels by OT offline) and the
//! garbler's mask `t = −r'` (labels sent with the circuit). The server learns
//! `z = ReLU(x) − r'` and keeps it as its share; the client's share is `r'`.
//!
//! | Phase | Layer | Client | Messages |
//! |---|---|---|---|
//! | offline | each kept ReLU | garbles it from its seed and uploads the circuit | C→S [`CIRCUIT_BYTES`] (tables, mask labels, decoding bits) |
//! | offline | conv / linear | receives `W·r − s` (HE in a deployment; the dealer here) | S→C `8·n_out` (stored or streamed) |
//! | online | conv / linear | as server-garbler: sends `c − r` | C→S `8·n_in` |
//! | online | masked ReLU, `k` kept | receives `s_j − p_j` for each kept `j`; sends the 64 labels of `γ_j = c_j + s_j − p_j`; its share becomes `r'_j` | S→C `8·k`, then C→S `1024·k` |
//! | online | end | receives the server's output share, reconstructs | S→C `8·n_out` |
//!
//! Everything the client garbled is regenerated from its seed ([`GarblerSeed`]): Δ, the zero
//! labels of every wire, `r'`. Only the linear layers' shares, which come from the server's HE,
//! are stored. Both phases consume the client: [`GarblerClient::garble`] turns it into a
//! [`Garbled`] client whose [`Garbled::run`] can run once.

use crate::layer::{Conv2d, Linear, Op};
use crate::model::{MAX_LAYERS, Model};

use super::client::{
    ClientSeed, LinearStep, OfflineSource, Phase, Probe, Transport, WORD_BYTES, finish_output,
    linear_step, recv_words, split_rw, tensor_range,
};
use super::error::ProtocolError;
use super::gc::{
    self, DECODE_BYTES, GcHash, INPUT_LABEL_BYTES, LABEL_BYTES, Label, SHARE_BITS, TABLE_BYTES,
    TABLE_LABELS,
};
use super::local;
use super::prg::{GarblerStream, Prg};
use super::ring::Party;

/// Bytes of one garbled ReLU as the client uploads it: the tables, the labels of its mask
/// `t = −r'` and the output decoding bits, in that order (labels little-endian).
pub const CIRCUIT_BYTES: usize = TABLE_BYTES + INPUT_LABEL_BYTES + DECODE_BYTES;

/// Everything a client garbler derives from its seed: Δ and, per ReLU layer, the zero labels of
/// each kept ReLU's wires and its output share `r'`. The simulation's dealer derives the same to
/// play OT for the server.
#[derive(Debug)]
pub struct GarblerSeed<'s> {
    seed: &'s [u8; 32],
}

/// The labels of one kept ReLU that the online phase needs.
#[derive(Debug, Clone)]
pub struct OnlineLabels {
    /// Zero labels of the client's input wires `γ`.
    pub input: [Label; SHARE_BITS],
    /// The client's output share `r'` (the mask is `t = −r'`).
    pub r: u64,
}

/// The labels of one kept ReLU that only the preprocessing needs.
#[derive(Debug, Clone)]
pub struct OfflineLabels {
    /// Zero labels of the server's input wires `p` (sent by OT).
    pub server: [Label; SHARE_BITS],
    /// Zero labels of the mask wires `t`.
    pub mask: [Label; SHARE_BITS],
}

/// The per-ReLU streams of one layer, in kept order.
#[derive(Debug)]
pub struct LayerStreams {
    online: Prg,
    offline: Prg,
}

impl LayerStreams {
    /// The next kept ReLU's online labels and `r'`.
    pub fn online(&mut self) -> OnlineLabels {
        OnlineLabels {
            input: core::array::from_fn(|_| self.online.next_u128()),
            r: self.online.next_u64(),
        }
    }

    /// The next kept ReLU's offline labels.
    pub fn offline(&mut self) -> OfflineLabels {
        OfflineLabels {
            server: core::array::from_fn(|_| self.offline.next_u128()),
            mask: core::array::from_fn(|_| self.offline.next_u128()),
        }
    }
}

impl<'s> GarblerSeed<'s> {
    /// The streams of `seed` (the client's, or the dealer's copy).
    pub fn new(seed: &'s [u8; 32]) -> Self {
        Self { seed }
    }

    /// The free-XOR offset of the inference (lowest bit set).
    pub fn delta(&self) -> Label {
        Prg::garbler(self.seed, MAX_LAYERS, GarblerStream::Offline).next_u128() | 1
    }

    /// The streams of ReLU layer `layer`.
    pub fn layer(&self, layer: usize) -> LayerStreams {
        LayerStreams {
            online: Prg::garbler(self.seed, layer, GarblerStream::Online),
            offline: Prg::garbler(self.seed, layer, GarblerStream::Offline),
        }
    }
}

/// One uploaded circuit, as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circuit {
    /// Garbled tables, two labels per AND gate.
    pub tables: [Label; TABLE_LABELS],
    /// Labels of the mask `t = −r'`.
    pub mask_labels: [Label; SHARE_BITS],
    /// Output decoding bits.
    pub decode: u64,
}

impl Circuit {
    /// An all-zero circuit (a buffer to fill).
    pub const EMPTY: Circuit = Circuit {
        tables: [0; TABLE_LABELS],
        mask_labels: [0; SHARE_BITS],
        decode: 0,
    };

    /// The wire bytes ([`CIRCUIT_BYTES`]).
    pub fn write_bytes(&self, out: &mut [u8; CIRCUIT_BYTES]) {
        for (chunk, l) in out
            .chunks_exact_mut(LABEL_BYTES)
            .zip(self.tables.iter().chain(&self.mask_labels))
        {
            chunk.copy_from_slice(&l.to_le_bytes());
        }
        out[CIRCUIT_BYTES - DECODE_BYTES..].copy_from_slice(&self.decode.to_le_bytes());
    }

    /// Reads what [`Circuit::write_bytes`] wrote.
    pub fn read_bytes(&mut self, bytes: &[u8; CIRCUIT_BYTES]) {
        for (l, chunk) in self
            .tables
            .iter_mut()
            .chain(&mut self.mask_labels)
            .zip(bytes.chunks_exact(LABEL_BYTES))
        {
            let mut b = [0u8; LABEL_BYTES];
            b.copy_from_slice(chunk);
            *l = u128::from_le_bytes(b);
        }
        let mut d = [0u8; DECODE_BYTES];
        d.copy_from_slice(&bytes[CIRCUIT_BYTES - DECODE_BYTES..]);
        self.decode = u64::from_le_bytes(d);
    }
}

/// The client garbler for one parsed model and one inference, before its preprocessing.
#[derive(Debug)]
pub struct GarblerClient<'m, 'a> {
    model: &'m Model<'a>,
    seed: ClientSeed,
}

/// The client garbler after its preprocessing: ready for one online phase.
#[derive(Debug)]
pub struct Garbled<'m, 'a> {
    model: &'m Model<'a>,
    seed: ClientSeed,
}

impl<'m, 'a> GarblerClient<'m, 'a> {
    /// A client for one inference whose circuits and masks all come from `seed`.
    pub fn new(model: &'m Model<'a>, seed: ClientSeed) -> Self {
        Self { model, seed }
    }

    /// Preprocessing: garbles every kept ReLU in model order and sends each circuit
    /// ([`CIRCUIT_BYTES`]) on `io` as soon as it is garbled, so only one circuit is ever in RAM.
    pub fn garble<T: Transport>(self, io: &mut T) -> Result<Garbled<'m, 'a>, ProtocolError> {
        let hash = GcHash::new();
        let seeds = GarblerSeed::new(self.seed.expose_to_dealer());
        let delta = seeds.delta();
        let mut circuit = Circuit::EMPTY;
        let mut bytes = [0u8; CIRCUIT_BYTES];
        let mut gc_index = 0u64;
        for layer in self.model.layers() {
            let Op::MaskedRelu(mask) = layer.op else {
                continue;
            };
            io.layer_start(layer.index);
            let mut streams = seeds.layer(layer.index);
            for _ in 0..mask.kept() {
                let on = streams.online();
                let off = streams.offline();
                circuit.decode = gc::garble_relu(
                    &hash,
                    delta,
                    gc_index,
                    &on.input,
                    &off.server,
                    &off.mask,
                    &mut circuit.tables,
                );
                circuit.mask_labels = gc::encode(&off.mask, delta, on.r.wrapping_neg());
                circuit.write_bytes(&mut bytes);
                io.send(&bytes)?;
                gc_index += 1;
            }
        }
        Ok(Garbled {
            model: self.model,
            seed: self.seed,
        })
    }
}

impl Garbled<'_, '_> {
    fn range(&self, id: usize) -> core::ops::Range<usize> {
        tensor_range(self.model, id)
    }

    /// The online phase on the fixed-point `input`: writes the reconstructed output to `output`.
    /// `shares` must hold [`Model::arena_words`] words; `offline` gives the linear layers'
    /// shares (its ReLU material is never asked for). Consumes the client.
    pub fn run<O: OfflineSource, T: Transport, P: Probe>(
        self,
        input: &[i32],
        shares: &mut [u64],
        mut offline: O,
        io: &mut T,
        probe: &mut P,
        output: &mut [i64],
    ) -> Result<(), ProtocolError> {
        let model = self.model;
        let expected = model.input_shape().elements();
        if input.len() != expected {
            return Err(ProtocolError::InputLength {
                expected,
                found: input.len(),
            });
        }
        if shares.len() < model.arena_words() {
            return Err(ProtocolError::BufferTooSmall {
                needed: model.arena_words(),
                found: shares.len(),
            });
        }
        let n_out = model.output_shape().elements();
        if output.len() != n_out {
            return Err(ProtocolError::OutputLength {
                expected: n_out,
                found: output.len(),
            });
        }
        probe.enter(Phase::Shares);
        let first = shares
            .get_mut(self.range(0))
            .ok_or(ProtocolError::Inconsistent)?;
        for (s, &x) in first.iter_mut().zip(input) {
            *s = x as i64 as u64;
        }
        let seeds = GarblerSeed::new(self.seed.expose_to_dealer());
        let delta = seeds.delta();
        for layer in model.layers() {
            io.layer_start(layer.index);
            let (inp, out) = (self.range(layer.input), self.range(layer.output()));
            match layer.op {
                Op::Conv2d(Conv2d {
                    weight_frac_bits: shift,
                    ..
                })
                | Op::Linear(Linear {
                    weight_frac_bits: shift,
                    ..
                }) => {
                    let step = LinearStep {
                        input: inp,
                        out,
                        layer: layer.index,
                        shift,
                    };
                    let key = self.seed.expose_to_dealer();
                    linear_step(key, shares, step, &mut offline, io, probe)?;
                }
                Op::MaskedRelu(mask) => {
                    if inp != out {
                        let (src, dst) = split_rw(shares, inp, out.clone())?;
                        dst.copy_from_slice(src);
                    }
                    if mask.kept() == 0 {
                        continue;
                    }
                    let values = shares.get_mut(out).ok_or(ProtocolError::Inconsistent)?;
                    relu_layer(values, &mask, &seeds, delta, layer.index, io, probe)?;
                }
                _ => {
                    local::run_layer(shares, &layer, |id| self.range(id), Party::Client)?;
                }
            }
        }
        let last = self.range(model.layer_count());
        finish_output(model, shares, last, io, probe, output)
    }
}

/// A masked ReLU layer with kept elements. First every re-share `s_j − p_j` arrives (one
/// flight) and turns the client's share into `γ_j` in place; then the client sends the labels of
/// each `γ_j` (one flight) and keeps `r'_j`.
fn relu_layer<T: Transport, P: Probe>(
    values: &mut [u64],
    mask: &crate::ReluMask<'_>,
    seeds: &GarblerSeed<'_>,
    delta: Label,
    layer: usize,
    io: &mut T,
    probe: &mut P,
) -> Result<(), ProtocolError> {
    let mut result = Ok(());
    let mut buf = [0u64; 32];
    let (mut kept, mut filled) = (0usize, 0usize);
    mask.for_each_kept(|j| {
        if result.is_err() {
            return;
        }
        if kept == filled {
            let n = (mask.kept() - kept).min(buf.len());
            probe.enter(Phase::Io);
            result = recv_words(io, &mut buf[..n]);
            probe.enter(Phase::Shares);
            filled += n;
        }
        if result.is_ok() {
            result = match values.get_mut(j) {
                Some(c) => {
                    *c = c.wrapping_add(buf[kept % buf.len()]);
                    Ok(())
                }
                None => Err(ProtocolError::Inconsistent),
            };
        }
        kept += 1;
    });
    result?;
    let mut streams = seeds.layer(layer);
    let mut labels = [0u8; INPUT_LABEL_BYTES];
    mask.for_each_kept(|j| {
        if result.is_err() {
            return;
        }
        let Some(c) = values.get_mut(j) else {
            result = Err(ProtocolError::Inconsistent);
            return;
        };
        let on = streams.online();
        probe.enter(Phase::Garbled);
        for (chunk, l) in labels
            .chunks_exact_mut(LABEL_BYTES)
            .zip(gc::encode(&on.input, delta, *c))
        {
            chunk.copy_from_slice(&l.to_le_bytes());
        }
        *c = on.r;
        probe.enter(Phase::Io);
        result = io.send(&labels);
        probe.enter(Phase::Shares);
    });
    result
}

/// Bytes the client sends per kept ReLU online (its input labels), for callers that size
/// buffers.
pub const ONLINE_LABEL_BYTES: usize = INPUT_LABEL_BYTES;

/// Bytes of one re-share word the server sends per kept ReLU.
pub const RESHARE_BYTES: usize = WORD_BYTES;
