//! The offline (preprocessing) phase, simulated.
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
//! The two results are separate values: [`ClientOffline`] holds no weight and no server secret
//! but its own labels; [`ServerOffline`] holds no client mask.

use pi_core::share::gc::{self, GcHash, GcMaterial, Label, SHARE_BITS};
use pi_core::share::prg::{Prg, Purpose};
use pi_core::share::{OfflineSource, ProtocolError, linear};
use pi_core::{Layer, MAX_LAYERS, Model, Op};

/// What the server keeps for one kept ReLU.
#[derive(Debug, Clone)]
pub struct ServerRelu {
    /// Zero labels of the wires of its own (online) share.
    pub zero_labels: [Label; SHARE_BITS],
    /// Its output share `r'`.
    pub r: u64,
}

/// The server's offline state.
#[derive(Debug, Clone, Default)]
pub struct ServerOffline {
    /// Per layer: its share `s` of conv/linear outputs (empty for other layers).
    pub linear: Vec<Vec<u64>>,
    /// Per layer: one entry per kept ReLU, in kept order.
    pub relus: Vec<Vec<ServerRelu>>,
    /// The global free-XOR offset Δ.
    pub delta: Label,
}

/// The client's offline state; implements pi-core's [`OfflineSource`].
#[derive(Debug, Clone, Default)]
pub struct ClientOffline {
    /// Per layer: `W·r − s` for conv/linear layers (empty otherwise).
    pub linear: Vec<Vec<u64>>,
    /// Per layer: the garbled material of each kept ReLU, in kept order.
    pub relus: Vec<Vec<GcMaterial>>,
}

impl OfflineSource for ClientOffline {
    fn linear_share(&mut self, layer: usize, out: &mut [u64]) -> Result<(), ProtocolError> {
        match self.linear.get(layer) {
            Some(v) if v.len() == out.len() => {
                out.copy_from_slice(v);
                Ok(())
            }
            _ => Err(ProtocolError::Offline { layer }),
        }
    }

    fn relu_material(
        &mut self,
        layer: usize,
        kept: usize,
        out: &mut GcMaterial,
    ) -> Result<(), ProtocolError> {
        let m = self
            .relus
            .get(layer)
            .and_then(|l| l.get(kept))
            .ok_or(ProtocolError::Offline { layer })?;
        out.clone_from(m);
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

/// Runs the offline phase for one inference. `model` is the server's (with weights);
/// `client_seed` is the client's mask seed (known to the dealer, as HE/OT would let it use
/// those masks without learning them); `server_seed` is the server's randomness.
pub fn prepare(
    model: &Model<'_>,
    client_seed: &[u8; 32],
    server_seed: &[u8; 32],
) -> (ClientOffline, ServerOffline) {
    let layers = model.layer_count();
    let mut client = ClientOffline {
        linear: vec![Vec::new(); layers],
        relus: vec![Vec::new(); layers],
    };
    let mut server = ServerOffline {
        linear: vec![Vec::new(); layers],
        relus: vec![Vec::new(); layers],
        delta: Prg::new(server_seed, MAX_LAYERS, Purpose::Server).next_u128() | 1,
    };
    let hash = GcHash::new();
    let mut gc_index = 0u64;
    for layer in model.layers() {
        let i = layer.index;
        match layer.op {
            Op::Conv2d(_) | Op::Linear(_) => {
                // Dealer: r from the client's seed, s from the server's, W·r from the model.
                let mut r = vec![0u64; layer.input_shape.elements()];
                Prg::new(client_seed, i, Purpose::LinearInput).fill(&mut r);
                let mut s = vec![0u64; layer.output_shape.elements()];
                Prg::new(server_seed, i, Purpose::Dealer).fill(&mut s);
                let wr = ring_product(&layer, &r);
                client.linear[i] = wr.iter().zip(&s).map(|(a, b)| a.wrapping_sub(*b)).collect();
                server.linear[i] = s;
            }
            Op::MaskedRelu(mask) => {
                let mut rng = Prg::new(server_seed, i, Purpose::Server);
                let mut q = Prg::new(client_seed, i, Purpose::ReluInput);
                let delta = server.delta;
                let mut materials = Vec::with_capacity(mask.kept());
                let mut keeps = Vec::with_capacity(mask.kept());
                mask.for_each_kept(|_| {
                    let zs: [Label; SHARE_BITS] = core::array::from_fn(|_| rng.next_u128());
                    let zc: [Label; SHARE_BITS] = core::array::from_fn(|_| rng.next_u128());
                    let zt: [Label; SHARE_BITS] = core::array::from_fn(|_| rng.next_u128());
                    let r = rng.next_u64();
                    let mut m = GcMaterial::EMPTY;
                    m.decode =
                        gc::garble_relu(&hash, delta, gc_index, &zs, &zc, &zt, &mut m.tables);
                    // Garbler's own input t = −r′: its labels travel with the circuit.
                    m.mask_labels = gc::encode(&zt, delta, r.wrapping_neg());
                    // Dealer-simulated OT: the client gets the labels of its own bits only.
                    m.client_labels = gc::encode(&zc, delta, q.next_u64());
                    materials.push(m);
                    keeps.push(ServerRelu { zero_labels: zs, r });
                    gc_index += 1;
                });
                client.relus[i] = materials;
                server.relus[i] = keeps;
            }
            _ => {}
        }
    }
    (client, server)
}
