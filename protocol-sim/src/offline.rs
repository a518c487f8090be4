//! The offline (preprocessing) phase, simulated, one layer at a time.
//!
//! * **Linear layers**: a trusted dealer stands in for Delphi's homomorphic encryption. It
//!   regenerates the client's mask `r` from the client's seed (in Delphi the client would send
//!   `Enc(r)`), takes the server's random share `s`, and hands the client `W·r − s`. Its cost is
//!   the cost model's HE estimate.
//! * **Kept ReLUs**: the server really garbles one circuit per kept ReLU (pi-core's half-gates
//!   garbler, [`LOCK_STEP`] circuits at a time): the full ReLU, or the split ReLU's sign circuit
//!   with its multiplexer pads. It hands the client the tables (and for the full ReLU the labels
//!   of its output mask and the decoding bits). The client's own input labels would come from OT
//!   extension; the dealer plays OT: it gives the client the labels of the bits of its fresh share
//!   `q` (reduced to the sign width for the split ReLU), regenerated from the client's seed, and
//!   nothing else. For the split ReLU's multiplexer it also deals one random OT: the client's
//!   `(m0, m1)` come from its seed, the server gets `m_λ`. Its cost is the cost model's OT figure.
//!
//! [`Preprocessing`] yields each layer's two halves in model order, so the server can stream the
//! client's half while it runs the online phase, or produce everything first for a client that
//! stores it ([`ClientOffline`]). [`ClientLayer`] holds no weight and no server secret but the
//! client's own labels; [`ServerLayer`] holds no client mask.

use std::io::Read;

use pi_core::share::LOCK_STEP;
use pi_core::share::gc::{self, GcHash, GcMaterial, Label, SHARE_BITS};
use pi_core::share::prg::{Prg, Purpose};
use pi_core::share::{
    OfflineSource, ProtocolError, ReluKind, ReluParams, ReluPlan, Transport, WORD_BYTES, linear,
};
use pi_core::{Layer, MAX_LAYERS, Model, Op};

use crate::channel::protocol_error;

/// What the server keeps for one kept ReLU.
#[derive(Debug, Clone)]
pub enum ServerRelu {
    /// The full garbled ReLU.
    Full {
        /// Zero labels of the wires of its own (online) share.
        zero_labels: [Label; SHARE_BITS],
        /// Its output share `r'`.
        r: u64,
    },
    /// The split ReLU.
    Split {
        /// Zero labels of the sign circuit's wires for its reduced share (the first `t`).
        zero_labels: [Label; SHARE_BITS],
        /// Its XOR share of `DReLU`: the permute bit of the output wire's zero label.
        lambda: bool,
        /// The multiplexer pads of the output wire's two labels.
        pads: [u64; 2],
        /// Its random-OT output `m_λ`.
        m_lambda: u64,
    },
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
    /// The garbled material of each kept ReLU, in kept order, with the layer's parameters;
    /// `None` once consumed.
    Relus(ReluParams, Vec<Option<Box<GcMaterial>>>),
}

/// The wire bytes of a conv/linear layer's client share (little-endian words).
pub fn linear_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The wire bytes of one ReLU's client material.
pub fn relu_bytes(params: ReluParams, material: &GcMaterial) -> Vec<u8> {
    let mut out = Vec::with_capacity(params.material_bytes());
    let _ = material.write_to(params.sign_width(), |b: &[u8]| {
        out.extend_from_slice(b);
        Ok::<(), ()>(())
    });
    out
}

/// The offline phase of one inference: the dealer (HE and OT stand-in) and the server's garbler,
/// producing each layer's material in model order. Each inference needs a new one: fresh client
/// masks (the client's seed), fresh server randomness, a fresh `Δ`.
pub struct Preprocessing<'m, 'a> {
    model: &'m Model<'a>,
    plan: ReluPlan,
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

/// A ReLU layer being garbled (see [`Preprocessing::begin_relus`]): the layer's parameters, how
/// many ReLUs are left, and the random streams they are drawn from in kept order.
pub struct ReluGarbling {
    params: ReluParams,
    left: usize,
    rng: Prg,
    q: Prg,
    ot: Prg,
}

impl std::fmt::Debug for ReluGarbling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReluGarbling")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl ReluGarbling {
    /// ReLUs not garbled yet.
    pub fn left(&self) -> usize {
        self.left
    }

    fn draw(&mut self) -> Draw {
        Draw {
            zs: core::array::from_fn(|_| self.rng.next_u128()),
            zc: core::array::from_fn(|_| self.rng.next_u128()),
            zt: core::array::from_fn(|_| self.rng.next_u128()),
            r: self.rng.next_u64(),
            q: self.q.next_u64(),
            ot: [self.ot.next_u64(), self.ot.next_u64()],
        }
    }
}

/// One kept ReLU's randomness, drawn in kept order (so lock-step does not change it).
struct Draw {
    zs: [Label; SHARE_BITS],
    zc: [Label; SHARE_BITS],
    zt: [Label; SHARE_BITS],
    r: u64,
    q: u64,
    ot: [u64; 2],
}

impl<'m, 'a> Preprocessing<'m, 'a> {
    /// The offline phase for `model` (the server's, with weights), every ReLU full.
    /// `client_seed` is the client's mask seed, known to the dealer as HE and OT would let it use
    /// those masks without learning them; `server_seed` is the server's randomness.
    pub fn new(model: &'m Model<'a>, client_seed: [u8; 32], server_seed: [u8; 32]) -> Self {
        Self::with_plan(model, ReluPlan::full(), client_seed, server_seed)
    }

    /// The offline phase with the ReLU protocols of `plan`.
    pub fn with_plan(
        model: &'m Model<'a>,
        plan: ReluPlan,
        client_seed: [u8; 32],
        server_seed: [u8; 32],
    ) -> Self {
        Self {
            model,
            plan,
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

    /// The ReLU protocols.
    pub fn plan(&self) -> &ReluPlan {
        &self.plan
    }

    /// The two halves of `layer`'s material. Layers must come in model order, each once.
    pub fn layer(
        &mut self,
        layer: &Layer<'_>,
    ) -> Result<(ClientLayer, ServerLayer), ProtocolError> {
        if let Op::MaskedRelu(mask) = layer.op
            && mask.kept() > 0
        {
            let mut g = self.begin_relus(layer)?;
            let mut all = Vec::with_capacity(mask.kept());
            while g.left > 0 {
                self.next_relus(&mut g, &mut all);
            }
            let (keeps, materials) = all.into_iter().map(|(s, m)| (s, Some(m))).unzip();
            return Ok((
                ClientLayer::Relus(g.params, materials),
                ServerLayer::Relus(keeps),
            ));
        }
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
            _ => (ClientLayer::None, ServerLayer::None),
        })
    }

    /// Starts garbling ReLU layer `layer` (it must be the next layer, and keep ReLUs): the
    /// ReLUs then come from [`Preprocessing::next_relus`], so a streaming server holds one chunk
    /// of client material at a time.
    pub fn begin_relus(&mut self, layer: &Layer<'_>) -> Result<ReluGarbling, ProtocolError> {
        let i = layer.index;
        let kept = match layer.op {
            Op::MaskedRelu(mask) if mask.kept() > 0 && i == self.next_layer => mask.kept(),
            _ => return Err(ProtocolError::Offline { layer: i }),
        };
        self.next_layer += 1;
        Ok(ReluGarbling {
            params: self.plan.layer(i),
            left: kept,
            rng: Prg::new(&self.server_seed, i, Purpose::Server),
            q: Prg::new(&self.client_seed, i, Purpose::ReluInput),
            ot: Prg::new(&self.client_seed, i, Purpose::MuxOt),
        })
    }

    /// Garbles the next [`LOCK_STEP`] ReLUs of `g` in lock-step (one at a time at the end of the
    /// layer) and appends each one's server half and client material to `out`; nothing when the
    /// layer is done.
    pub fn next_relus(
        &mut self,
        g: &mut ReluGarbling,
        out: &mut Vec<(ServerRelu, Box<GcMaterial>)>,
    ) {
        if g.left >= LOCK_STEP {
            let draws: [Draw; LOCK_STEP] = core::array::from_fn(|_| g.draw());
            self.garble(g.params, &draws, out);
            g.left -= LOCK_STEP;
        } else if g.left > 0 {
            let draws = [g.draw()];
            self.garble(g.params, &draws, out);
            g.left -= 1;
        }
    }

    /// Garbles `B` ReLUs in lock-step and deals their OT material.
    fn garble<const B: usize>(
        &mut self,
        params: ReluParams,
        draws: &[Draw; B],
        out: &mut Vec<(ServerRelu, Box<GcMaterial>)>,
    ) {
        let delta = self.delta;
        let gcs: [u64; B] = core::array::from_fn(|i| self.gc_index + i as u64);
        let mut ms: [Box<GcMaterial>; B] = core::array::from_fn(|_| Box::new(GcMaterial::EMPTY));
        match params.kind() {
            ReluKind::Full => {
                let decode = gc::garble_relus(
                    &self.hash,
                    delta,
                    gcs,
                    draws.each_ref().map(|d| &d.zs),
                    draws.each_ref().map(|d| &d.zc),
                    draws.each_ref().map(|d| &d.zt),
                    ms.each_mut().map(|m| &mut m.tables),
                );
                for ((mut m, d), dec) in ms.into_iter().zip(draws).zip(decode) {
                    m.decode = dec;
                    // Garbler's own input t = −r′: its labels travel with the circuit.
                    m.mask_labels = gc::encode(&d.zt, delta, d.r.wrapping_neg());
                    // Dealer-simulated OT: the client gets the labels of its own bits only.
                    m.client_labels = gc::encode(&d.zc, delta, d.q);
                    let server = ServerRelu::Full {
                        zero_labels: d.zs,
                        r: d.r,
                    };
                    out.push((server, m));
                }
            }
            ReluKind::Split => {
                let t = usize::from(params.sign_bits());
                let w0 = gc::garble_signs(
                    &self.hash,
                    delta,
                    gcs,
                    draws.each_ref().map(|d| &d.zs[..t]),
                    draws.each_ref().map(|d| &d.zc[..t]),
                    ms.each_mut().map(|m| &mut m.tables[..]),
                );
                for (((mut m, d), w), gc_index) in ms.into_iter().zip(draws).zip(w0).zip(gcs) {
                    m.client_labels = gc::encode(&d.zc, delta, params.reduce(d.q));
                    let lambda = w & 1 == 1;
                    let server = ServerRelu::Split {
                        zero_labels: d.zs,
                        lambda,
                        pads: [
                            gc::mux_pad(&self.hash, gc_index, w),
                            gc::mux_pad(&self.hash, gc_index, w ^ delta),
                        ],
                        // Dealer-simulated random OT: the server's choice bit is λ.
                        m_lambda: d.ot[usize::from(lambda)],
                    };
                    out.push((server, m));
                }
            }
        }
        self.gc_index += B as u64;
    }

    /// Produces every layer's material for a client that stores it and sends the client's half
    /// through `send` as it is produced (one chunk of ReLUs in memory at a time); returns the
    /// server's halves. The bytes are [`ClientOffline::send`]'s.
    pub fn send_all(
        mut self,
        mut send: impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<Vec<ServerLayer>, ProtocolError> {
        let model = self.model;
        let mut server = Vec::with_capacity(model.layer_count());
        for layer in model.layers() {
            if let Op::MaskedRelu(mask) = layer.op
                && mask.kept() > 0
            {
                let mut g = self.begin_relus(&layer)?;
                let mut keeps = Vec::with_capacity(mask.kept());
                let mut chunk = Vec::new();
                while g.left > 0 {
                    self.next_relus(&mut g, &mut chunk);
                    for (s, m) in chunk.drain(..) {
                        m.write_to(g.params.sign_width(), &mut send)?;
                        keeps.push(s);
                    }
                }
                server.push(ServerLayer::Relus(keeps));
            } else {
                let (client, s) = self.layer(&layer)?;
                ClientOffline {
                    layers: vec![client],
                }
                .send(&mut send)?;
                server.push(s);
            }
        }
        Ok(server)
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
    /// Sends a storing client its material before the online phase: every layer's material in
    /// consumption order (the same bytes a streaming server sends during it), piece by piece
    /// through `send`, consuming the store.
    pub fn send<E>(self, mut send: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        for layer in self.layers {
            match layer {
                ClientLayer::None => {}
                ClientLayer::Linear(words) => send(&linear_bytes(&words))?,
                ClientLayer::Relus(params, ms) => {
                    for m in ms.iter().flatten() {
                        m.write_to(params.sign_width(), &mut send)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads what [`ClientOffline::send`] sent for `model` under `plan` (the client's
    /// architecture and the agreed ReLU protocols tell how many bytes each layer has).
    pub fn read<R: Read>(
        model: &Model<'_>,
        plan: &ReluPlan,
        input: &mut R,
    ) -> Result<Self, ProtocolError> {
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
                    let params = plan.layer(layer.index);
                    let mut ms = Vec::with_capacity(mask.kept());
                    for _ in 0..mask.kept() {
                        let mut m = Box::new(GcMaterial::EMPTY);
                        m.read_from(params.sign_width(), |buf| input.read_exact(buf))
                            .map_err(|e| protocol_error(&e))?;
                        ms.push(Some(m));
                    }
                    ClientLayer::Relus(params, ms)
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
        params: ReluParams,
        out: &mut GcMaterial,
        _io: &mut T,
    ) -> Result<(), ProtocolError> {
        let m = match self.layers.get_mut(layer) {
            Some(ClientLayer::Relus(p, ms)) if *p == params => {
                ms.get_mut(kept).and_then(Option::take)
            }
            _ => None,
        }
        .ok_or(ProtocolError::Offline { layer })?;
        out.clone_from(&m);
        Ok(())
    }
}

/// Sign faults of the split ReLU in one inference: kept ReLUs whose truncated sign differs from
/// the sign of the value. It combines the server's shares `x1` ([`crate::server::Online`]) with
/// the client's masks `q`, which only the dealer knows (from `client_seed`): simulation-only
/// instrumentation, never part of the protocol. Returns `(faults, split ReLUs)`.
pub fn sign_faults(
    plan: &ReluPlan,
    split_inputs: &[(usize, u64)],
    client_seed: &[u8; 32],
) -> (usize, usize) {
    let mut faults = 0;
    let mut current: Option<(usize, Prg)> = None;
    for &(layer, x1) in split_inputs {
        if current.as_ref().is_none_or(|(l, _)| *l != layer) {
            current = Some((layer, Prg::new(client_seed, layer, Purpose::ReluInput)));
        }
        let Some((_, q)) = current.as_mut() else {
            continue;
        };
        let q = q.next_u64();
        let p = plan.layer(layer);
        let t = u32::from(p.sign_bits());
        let sum = p.reduce(q).wrapping_add(p.reduce(x1));
        let negative = sum >> (t - 1) & 1 == 1;
        let truly_negative = (q.wrapping_add(x1) as i64) < 0;
        faults += usize::from(negative != truly_negative);
    }
    (faults, split_inputs.len())
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
