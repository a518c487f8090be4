//! The offline (preprocessing) phase, simulated, one layer at a time.
//!
//! * **Linear layers**: a trusted dealer stands in for Delphi's homomorphic encryption. It
//!   regenerates the client's mask `r` from the client's seed (in Delphi the client would send
//!   `Enc(r)`), takes the server's random share `s`, and hands the client `W·r − s`. Its cost is
//!   the cost model's HE estimate.
//! * **Kept ReLUs**: the server really garbles one circuit per kept ReLU (pi-core's half-gates
//!   garbler) and hands the client the tables, the labels of its output mask and the decoding
//!   bits. The client's own input labels would come from OT extension; the dealer plays OT: it
//!   gives the client the labels of the bits of its fresh share `q` (regenerated from the
//!   client's seed) and nothing else. Its cost is the cost model's OT figure.
//!
//! [`Preprocessing`] yields each layer's two halves in model order, so the server can stream the
//! client's half while it runs the online phase, or produce everything first for a client that
//! stores it ([`ClientOffline`]). [`ClientLayer`] holds no weight and no server secret but the
//! client's own labels; [`ServerLayer`] holds no client mask.

use std::io::Read;

use pi_core::share::gc::{self, GcHash, GcMaterial, Label, MATERIAL_BYTES, SHARE_BITS};
use pi_core::share::prg::{Prg, Purpose};
use pi_core::share::{OfflineSource, ProtocolError, Transport, WORD_BYTES, linear};
use pi_core::{Layer, MAX_LAYERS, Model, Op};

use crate::channel::protocol_error;

/// What the server keeps for one kept ReLU.
#[derive(Debug, Clone)]
pub struct ServerRelu {
    /// Zero labels of the wires of its own (online) share.
    pub zero_labels: [Label; SHARE_BITS],
    /// Its output share `r'`.
    pub r: u64,
}

/// The server's half of one layer's preprocessing.
#[derive(Debug, Clone, Default)]
pub enum ServerLayer {
    /// Nothing (pools, adds, flatten, ReLU layers that keep no ReLU).
    #[default]
    None,
    /// Its share `s` of a conv/linear layer's output.
    Linear(Vec<u64>),
    /// One entry per kept ReLU, in kept order.
    Relus(Vec<ServerRelu>),
}

/// The client's half of one layer's preprocessing.
#[derive(Debug, Clone, Default)]
pub enum ClientLayer {
    /// Nothing.
    #[default]
    None,
    /// `W·r − s` for a conv/linear layer.
    Linear(Vec<u64>),
    /// The garbled material of each kept ReLU, in kept order; `None` once consumed.
    Relus(Vec<Option<Box<GcMaterial>>>),
}

impl ClientLayer {
    /// The wire bytes of this layer's material, in the order the client consumes it (what a
    /// streaming server sends at this layer, split as [`ClientLayer::linear_bytes`] and
    /// [`ClientLayer::relu_bytes`]).
    pub fn linear_bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// The wire bytes of one ReLU's material.
    pub fn relu_bytes(material: &GcMaterial) -> Box<[u8; MATERIAL_BYTES]> {
        let mut bytes = Box::new([0u8; MATERIAL_BYTES]);
        material.write_bytes(&mut bytes);
        bytes
    }
}

/// The offline phase of one inference: the dealer (HE and OT stand-in) and the server's garbler,
/// producing each layer's material in model order. Each inference needs a new one: fresh client
/// masks (the client's seed), fresh server randomness, a fresh `Δ`.
pub struct Preprocessing<'m, 'a> {
    model: &'m Model<'a>,
    client_seed: [u8; 32],
    server_seed: [u8; 32],
    hash: GcHash,
    delta: Label,
    gc_index: u64,
    next_layer: usize,
}

impl std::fmt::Debug for Preprocessing<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print seeds or Δ.
        f.debug_struct("Preprocessing")
            .field("next_layer", &self.next_layer)
            .finish_non_exhaustive()
    }
}

impl<'m, 'a> Preprocessing<'m, 'a> {
    /// The offline phase for `model` (the server's, with weights). `client_seed` is the
    /// client's mask seed, known to the dealer as HE and OT would let it use those masks without
    /// learning them; `server_seed` is the server's randomness.
    pub fn new(model: &'m Model<'a>, client_seed: [u8; 32], server_seed: [u8; 32]) -> Self {
        Self {
            model,
            client_seed,
            server_seed,
            hash: GcHash::new(),
            delta: Prg::new(&server_seed, MAX_LAYERS, Purpose::Server).next_u128() | 1,
            gc_index: 0,
            next_layer: 0,
        }
    }

    /// The free-XOR offset `Δ` of this inference (the server's secret).
    pub fn delta(&self) -> Label {
        self.delta
    }

    /// The two halves of `layer`'s material. Layers must come in model order, each once.
    pub fn layer(
        &mut self,
        layer: &Layer<'_>,
    ) -> Result<(ClientLayer, ServerLayer), ProtocolError> {
        let i = layer.index;
        if i != self.next_layer {
            return Err(ProtocolError::Offline { layer: i });
        }
        self.next_layer += 1;
        Ok(match layer.op {
            Op::Conv2d(_) | Op::Linear(_) => {
                // Dealer: r from the client's seed, s from the server's, W·r from the model.
                let mut r = vec![0u64; layer.input_shape.elements()];
                Prg::new(&self.client_seed, i, Purpose::LinearInput).fill(&mut r);
                let mut s = vec![0u64; layer.output_shape.elements()];
                Prg::new(&self.server_seed, i, Purpose::Dealer).fill(&mut s);
                let wr = ring_product(layer, &r);
                let client = wr.iter().zip(&s).map(|(a, b)| a.wrapping_sub(*b)).collect();
                (ClientLayer::Linear(client), ServerLayer::Linear(s))
            }
            Op::MaskedRelu(mask) if mask.kept() > 0 => {
                let mut rng = Prg::new(&self.server_seed, i, Purpose::Server);
                let mut q = Prg::new(&self.client_seed, i, Purpose::ReluInput);
                let delta = self.delta;
                let mut materials = Vec::with_capacity(mask.kept());
                let mut keeps = Vec::with_capacity(mask.kept());
                for _ in 0..mask.kept() {
                    let zs: [Label; SHARE_BITS] = core::array::from_fn(|_| rng.next_u128());
                    let zc: [Label; SHARE_BITS] = core::array::from_fn(|_| rng.next_u128());
                    let zt: [Label; SHARE_BITS] = core::array::from_fn(|_| rng.next_u128());
                    let r = rng.next_u64();
                    let mut m = Box::new(GcMaterial::EMPTY);
                    m.decode = gc::garble_relu(
                        &self.hash,
                        delta,
                        self.gc_index,
                        &zs,
                        &zc,
                        &zt,
                        &mut m.tables,
                    );
                    // Garbler's own input t = −r′: its labels travel with the circuit.
                    m.mask_labels = gc::encode(&zt, delta, r.wrapping_neg());
                    // Dealer-simulated OT: the client gets the labels of its own bits only.
                    m.client_labels = gc::encode(&zc, delta, q.next_u64());
                    materials.push(Some(m));
                    keeps.push(ServerRelu { zero_labels: zs, r });
                    self.gc_index += 1;
                }
                (ClientLayer::Relus(materials), ServerLayer::Relus(keeps))
            }
            _ => (ClientLayer::None, ServerLayer::None),
        })
    }

    /// Every layer's material at once, for a client that stores it.
    pub fn all(mut self) -> Result<(ClientOffline, Vec<ServerLayer>), ProtocolError> {
        let model = self.model;
        let mut client = Vec::with_capacity(model.layer_count());
        let mut server = Vec::with_capacity(model.layer_count());
        for layer in model.layers() {
            let (c, s) = self.layer(&layer)?;
            client.push(c);
            server.push(s);
        }
        Ok((ClientOffline { layers: client }, server))
    }
}

/// The client's stored offline material; implements pi-core's [`OfflineSource`]. Every item can
/// be taken once: material serves one inference only.
#[derive(Debug, Clone, Default)]
pub struct ClientOffline {
    /// Per layer, in model order.
    pub layers: Vec<ClientLayer>,
}

impl ClientOffline {
    /// The bytes a server sends a storing client before the online phase: every layer's
    /// material in consumption order (the same bytes a streaming server sends during it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                ClientLayer::None => {}
                ClientLayer::Linear(words) => out.extend(ClientLayer::linear_bytes(words)),
                ClientLayer::Relus(ms) => {
                    for m in ms.iter().flatten() {
                        out.extend_from_slice(&ClientLayer::relu_bytes(m)[..]);
                    }
                }
            }
        }
        out
    }

    /// Reads what [`ClientOffline::to_bytes`] wrote for `model` (the client's architecture
    /// tells how many bytes each layer has).
    pub fn read<R: Read>(model: &Model<'_>, input: &mut R) -> Result<Self, ProtocolError> {
        let mut layers = Vec::with_capacity(model.layer_count());
        for layer in model.layers() {
            layers.push(match layer.op {
                Op::Conv2d(_) | Op::Linear(_) => {
                    let mut bytes = vec![0u8; layer.output_shape.elements() * WORD_BYTES];
                    input
                        .read_exact(&mut bytes)
                        .map_err(|e| protocol_error(&e))?;
                    ClientLayer::Linear(
                        bytes
                            .chunks_exact(WORD_BYTES)
                            .map(|c| {
                                let mut w = [0u8; WORD_BYTES];
                                w.copy_from_slice(c);
                                u64::from_le_bytes(w)
                            })
                            .collect(),
                    )
                }
                Op::MaskedRelu(mask) if mask.kept() > 0 => {
                    let mut bytes = Box::new([0u8; MATERIAL_BYTES]);
                    let mut ms = Vec::with_capacity(mask.kept());
                    for _ in 0..mask.kept() {
                        input
                            .read_exact(&mut bytes[..])
                            .map_err(|e| protocol_error(&e))?;
                        let mut m = Box::new(GcMaterial::EMPTY);
                        m.read_bytes(&bytes);
                        ms.push(Some(m));
                    }
                    ClientLayer::Relus(ms)
                }
                _ => ClientLayer::None,
            });
        }
        Ok(Self { layers })
    }
}

impl OfflineSource for ClientOffline {
    fn linear_share<T: Transport>(
        &mut self,
        layer: usize,
        out: &mut [u64],
        _io: &mut T,
    ) -> Result<(), ProtocolError> {
        match self.layers.get_mut(layer).map(std::mem::take) {
            Some(ClientLayer::Linear(v)) if v.len() == out.len() => {
                out.copy_from_slice(&v);
                Ok(())
            }
            _ => Err(ProtocolError::Offline { layer }),
        }
    }

    fn relu_material<T: Transport>(
        &mut self,
        layer: usize,
        kept: usize,
        out: &mut GcMaterial,
        _io: &mut T,
    ) -> Result<(), ProtocolError> {
        let m = match self.layers.get_mut(layer) {
            Some(ClientLayer::Relus(ms)) => ms.get_mut(kept).and_then(Option::take),
            _ => None,
        }
        .ok_or(ProtocolError::Offline { layer })?;
        out.clone_from(&m);
        Ok(())
    }
}

/// `W·v` for a conv or linear layer, in the ring (no bias).
pub fn ring_product(layer: &Layer<'_>, v: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; layer.output_shape.elements()];
    match layer.op {
        Op::Conv2d(c) => linear::conv2d(&c, layer.input_shape, layer.output_shape, v, &mut out),
        Op::Linear(l) => linear::linear(&l, v, &mut out),
        _ => {}
    }
    out
}
