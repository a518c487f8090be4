//! Private-inference cost model: pure integer arithmetic over a parsed model, a [`Protocol`], a
//! [`DeviceProfile`] and a [`LinkProfile`], with fixed-size results, so it also runs on the
//! device (no heap, no floats).
//!
//! Per layer it gives offline and online bytes each way, one-way message flights, client and
//! server storage between the phases, client compute cycles; over the model, the latency
//! estimate and whether the client's offline material fits its RAM, its flash, or must be
//! streamed. The formulas and their sources are in `docs/PROTOCOL.md`; the `ring-gc` figures
//! are the exact byte counts of [`crate::share`] (`protocol-sim run` checks them).
//!
//! ```
//! use pi_core::cost::{CostModel, Protocol, CORTEX_M4_64, LTE};
//! # fn main() -> Result<(), pi_core::Error> {
//! let model = pi_core::Model::parse(pi_core::testing::TINY_MODEL)?;
//! let report = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE).estimate(&model);
//! let kept = model.relu_count().kept;
//! assert_eq!(report.total.online.down, kept * 1024 + 3 * 8);
//! # Ok(()) }
//! ```

mod profile;
mod protocol;

pub use profile::{
    AesEngine, BLE, CORTEX_M0PLUS_48, CORTEX_M4_64, CORTEX_M4_100, CORTEX_M4_CRYP_168, DEVICES,
    DeviceProfile, LAN, LINKS, LTE, LinkProfile, M4_CHACHA_PER_BYTE, M4_GC_AND_OVERHEAD,
    M4_SOFT_AES_PER_BLOCK, PHONE, WAN,
};
pub use protocol::{
    DELPHI_AND_GATES, DELPHI_CLIENT_STORAGE, DELPHI_ELEMENT_BYTES, DELPHI_EVAL_XORS,
    DELPHI_GC_BYTES, DELPHI_MASK_LABEL_BYTES, DELPHI_ONLINE_LABEL_BYTES, DELPHI_OT_RECEIVER_BYTES,
    DELPHI_OT_SENDER_BYTES, DELPHI_SERVER_STORAGE, FERRET_SETUP_BYTES, HE_CIPHERTEXT_BYTES,
    HE_SLOTS, OT_RECEIVER_BYTES, OT_SENDER_BYTES, OtReluBytes, Protocol, ProtocolParseError,
};

use crate::layer::{Layer, Op};
use crate::model::{MAX_LAYERS, Model};
use crate::share::{Delivery, ReluKind, ReluParams, ReluPlan, WORD_BYTES, gc};

/// Bytes in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Traffic {
    /// Client → server.
    pub up: u64,
    /// Server → client.
    pub down: u64,
}

impl Traffic {
    /// Both directions.
    pub fn total(&self) -> u64 {
        self.up.saturating_add(self.down)
    }

    fn add(&mut self, other: Traffic) {
        self.up = self.up.saturating_add(other.up);
        self.down = self.down.saturating_add(other.down);
    }
}

/// Direction of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Client → server.
    Up,
    /// Server → client.
    Down,
}

/// What kind of layer a cost row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LayerKind {
    /// Convolution.
    Conv,
    /// Fully connected.
    Linear,
    /// Masked ReLU.
    Relu,
    /// Average pool.
    AvgPool,
    /// Global average pool.
    GlobalAvgPool,
    /// Residual add.
    Add,
    /// Flatten.
    Flatten,
}

impl LayerKind {
    /// Short lowercase name.
    pub fn name(&self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Linear => "linear",
            LayerKind::Relu => "relu",
            LayerKind::AvgPool => "avgpool",
            LayerKind::GlobalAvgPool => "gap",
            LayerKind::Add => "add",
            LayerKind::Flatten => "flatten",
        }
    }
}

/// The cost of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerCost {
    /// Layer index in the model.
    pub index: usize,
    /// Layer kind.
    pub kind: LayerKind,
    /// ReLUs kept (paid for).
    pub relus_kept: u64,
    /// ReLU sites.
    pub relus_total: u64,
    /// AND gates garbled for this layer.
    pub and_gates: u64,
    /// Preprocessing bytes (input-independent).
    pub offline: Traffic,
    /// Online bytes.
    pub online: Traffic,
    /// One-way message flights of this layer alone (consecutive layers may merge flights).
    pub flights: u32,
    /// Direction of the layer's first online message.
    pub first: Option<Direction>,
    /// Direction of the layer's last online message.
    pub last: Option<Direction>,
    /// Bytes the client stores between the phases.
    pub client_storage: u64,
    /// Bytes the server stores between the phases.
    pub server_storage: u64,
    /// Client compute in the online phase, in cycles of the device.
    pub client_cycles: u64,
}

impl LayerCost {
    fn empty(index: usize, kind: LayerKind) -> Self {
        Self {
            index,
            kind,
            relus_kept: 0,
            relus_total: 0,
            and_gates: 0,
            offline: Traffic::default(),
            online: Traffic::default(),
            flights: 0,
            first: None,
            last: None,
            client_storage: 0,
            server_storage: 0,
            client_cycles: 0,
        }
    }

    fn message(&mut self, dir: Direction, bytes: u64) {
        match dir {
            Direction::Up => self.online.up = self.online.up.saturating_add(bytes),
            Direction::Down => self.online.down = self.online.down.saturating_add(bytes),
        }
        self.flights_in(dir, 1);
    }

    /// `n` alternating flights starting in direction `dir` (bytes added separately).
    fn flights_in(&mut self, dir: Direction, n: u32) {
        if n == 0 {
            return;
        }
        let mut d = dir;
        for _ in 0..n {
            if self.last != Some(d) {
                self.flights += 1;
            }
            if self.first.is_none() {
                self.first = Some(d);
            }
            self.last = Some(d);
            d = match d {
                Direction::Up => Direction::Down,
                Direction::Down => Direction::Up,
            };
        }
    }
}

/// Where the client's offline material can live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemoryFit {
    /// Fits in RAM.
    Ram,
    /// Too big for RAM, fits in flash.
    Flash,
    /// Fits in neither: must be streamed from the network during the online phase.
    Stream,
}

impl MemoryFit {
    /// Short lowercase name.
    pub fn name(&self) -> &'static str {
        match self {
            MemoryFit::Ram => "ram",
            MemoryFit::Flash => "flash",
            MemoryFit::Stream => "stream",
        }
    }
}

/// Whole-model figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// ReLUs kept.
    pub relus_kept: u64,
    /// ReLU sites.
    pub relus_total: u64,
    /// AND gates garbled.
    pub and_gates: u64,
    /// Preprocessing bytes.
    pub offline: Traffic,
    /// One-time setup bytes (per connection, not per inference).
    pub setup: Traffic,
    /// Online bytes, including the final output share.
    pub online: Traffic,
    /// Online bytes of the final output message (server → client).
    pub output_bytes: u64,
    /// One-way online message flights, consecutive same-direction messages merged.
    pub flights: u32,
    /// Client storage between the phases.
    pub client_storage: u64,
    /// Server storage between the phases.
    pub server_storage: u64,
    /// Client online compute cycles.
    pub client_cycles: u64,
    /// Online latency estimate: `flights · RTT/2 + bytes/bandwidth + client cycles/clock`, µs.
    pub online_latency_us: u64,
    /// Offline transfer time (preprocessing bytes over the link), µs.
    pub offline_latency_us: u64,
    /// Where the client's offline material fits.
    pub fit: MemoryFit,
    /// How the material was priced: stored between the phases, or streamed in the online phase
    /// (then `online.down` includes it and `offline` still counts how it was produced).
    pub delivery: Delivery,
    /// Bytes of client material moved into the online phase by streaming (0 when stored).
    pub streamed: u64,
}

/// Per-layer rows and totals.
#[derive(Debug, Clone)]
pub struct CostReport {
    /// One row per layer, in model order.
    pub layers: heapless::Vec<LayerCost, MAX_LAYERS>,
    /// The whole model.
    pub total: Totals,
}

/// A protocol on a device and link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostModel {
    /// The protocol.
    pub protocol: Protocol,
    /// The client device.
    pub device: DeviceProfile,
    /// The network.
    pub link: LinkProfile,
    /// How the client gets its material; `None`: stored when it fits the device's RAM or flash,
    /// streamed otherwise.
    pub delivery: Option<Delivery>,
    /// The `ring-gc` ReLU protocol of every layer (full by default).
    pub relu: ReluPlan,
}

impl CostModel {
    /// A cost model that streams the client's material only when it fits nowhere on the device.
    pub fn new(protocol: Protocol, device: DeviceProfile, link: LinkProfile) -> Self {
        Self {
            protocol,
            device,
            link,
            delivery: None,
            relu: ReluPlan::full(),
        }
    }

    /// The same model with `ring-gc`'s ReLU layers priced as `plan` says (full or split).
    pub fn with_relu_plan(self, plan: ReluPlan) -> Self {
        Self { relu: plan, ..self }
    }

    /// The same model with the material delivered as `delivery` whatever the device.
    pub fn with_delivery(self, delivery: Delivery) -> Self {
        Self {
            delivery: Some(delivery),
            ..self
        }
    }

    /// Where all of the client's stored material would fit on the device.
    fn fit(&self, client_storage: u64) -> MemoryFit {
        let d = &self.device;
        if client_storage <= d.sram_bytes {
            MemoryFit::Ram
        } else if client_storage <= d.flash_bytes {
            MemoryFit::Flash
        } else {
            MemoryFit::Stream
        }
    }

    /// The delivery this model prices for `model`.
    pub fn delivery_for(&self, model: &Model<'_>) -> Delivery {
        self.delivery.unwrap_or_else(|| {
            let storage = model
                .layers()
                .map(|l| self.layer_as(&l, Delivery::Stored).client_storage)
                .fold(0u64, u64::saturating_add);
            match self.fit(storage) {
                MemoryFit::Stream => Delivery::Streamed,
                MemoryFit::Ram | MemoryFit::Flash => Delivery::Stored,
            }
        })
    }

    fn he_offline(&self, n_in: u64, n_out: u64) -> Traffic {
        // The client sends Enc(r), the server returns Enc(W·r − s) (Delphi §1.2).
        Traffic {
            up: n_in.div_ceil(HE_SLOTS) * HE_CIPHERTEXT_BYTES,
            down: n_out.div_ceil(HE_SLOTS) * HE_CIPHERTEXT_BYTES,
        }
    }

    /// Client cycles to evaluate one full `ring-gc` ReLU (see [`CostModel::relu_cycles`]).
    pub fn ring_gc_relu_cycles(&self) -> u64 {
        self.relu_cycles(ReluParams::FULL)
    }

    /// Client cycles to evaluate one `ring-gc` ReLU of protocol `p`: its AES blocks, the other
    /// work of its ANDs, and its ChaCha20 keystream.
    pub fn relu_cycles(&self, p: ReluParams) -> u64 {
        let d = &self.device;
        p.eval_aes_blocks() as u64 * d.aes_cycles_per_block
            + p.and_gates() as u64 * d.gc_and_cycles
            + p.client_keystream_bytes() as u64 * d.chacha_cycles_per_byte
    }

    /// OT-based interactive work for `n` elements (ReLUs or truncations), `R` flights.
    fn ot_elements(&self, cost: &mut LayerCost, n: u64) {
        let Some(per) = self.protocol.ot_relu_bytes() else {
            return;
        };
        if n == 0 {
            return;
        }
        let up = (n * per.up_deci).div_ceil(10);
        let down = (n * per.down_deci).div_ceil(10);
        cost.online.add(Traffic { up, down });
        cost.flights_in(Direction::Up, self.protocol.ot_relu_flights());
        // One AES-equivalent hash per 16 bytes of OT traffic: a rough lower bound [R].
        cost.client_cycles += (up + down).div_ceil(16) * self.device.aes_cycles_per_block;
    }

    /// The cost of one layer with the client's material stored between the phases.
    pub fn layer(&self, layer: &Layer<'_>) -> LayerCost {
        self.layer_as(layer, Delivery::Stored)
    }

    /// The cost of one layer with the material delivered as `delivery`. Streamed, the client's
    /// material for the layer becomes online S→C bytes: a conv/linear layer's share arrives
    /// before the client sends its masked input, a ReLU's with the server's labels.
    pub fn layer_as(&self, layer: &Layer<'_>, delivery: Delivery) -> LayerCost {
        let streamed = delivery == Delivery::Streamed;
        let d = &self.device;
        let p = self.protocol;
        let n_in = layer.input_shape.elements() as u64;
        let n_out = layer.output_shape.elements() as u64;
        let word = p.element_bytes();
        let linear = |kind: LayerKind, shift: u8| {
            let mut c = LayerCost::empty(layer.index, kind);
            c.client_storage = n_out * word;
            if streamed {
                c.message(Direction::Down, c.client_storage);
            }
            c.message(Direction::Up, n_in * word);
            c.offline = self.he_offline(n_in, n_out);
            c.server_storage = n_out * word;
            // Regenerating the mask r from the seed: 8 keystream bytes per input element.
            c.client_cycles = n_in * WORD_BYTES as u64 * d.chacha_cycles_per_byte;
            if p.interactive_truncation() && shift > 0 {
                self.ot_elements(&mut c, n_out);
            }
            c
        };
        match layer.op {
            Op::Conv2d(conv) => linear(LayerKind::Conv, conv.weight_frac_bits),
            Op::Linear(l) => linear(LayerKind::Linear, l.weight_frac_bits),
            Op::MaskedRelu(mask) => {
                let mut c = LayerCost::empty(layer.index, LayerKind::Relu);
                let k = mask.kept() as u64;
                c.relus_kept = k;
                c.relus_total = mask.len() as u64;
                if k == 0 {
                    return c;
                }
                c.and_gates = match p {
                    Protocol::RingGc => k * self.relu.layer(layer.index).and_gates() as u64,
                    _ => k * p.and_gates_per_relu(),
                };
                match p {
                    Protocol::RingGc => {
                        let p = self.relu.layer(layer.index);
                        // Client input labels obtained by OT: one per bit of the circuit input.
                        let bits = u64::from(p.sign_bits());
                        let material = p.material_bytes() as u64;
                        // Online: re-share onto q (8 B up), then the server's labels (streamed:
                        // after the material), then for the split ReLU the OT corrections.
                        c.message(Direction::Up, k * WORD_BYTES as u64);
                        let streamed_material = if streamed { k * material } else { 0 };
                        c.message(
                            Direction::Down,
                            streamed_material + k * p.label_bytes() as u64,
                        );
                        if p.correction_bytes() > 0 {
                            c.message(Direction::Up, k * p.correction_bytes() as u64);
                        }
                        // Offline: the garbled part of the material (all but the client's OT
                        // outputs), the labels' OT, and the split ReLU's random OT (the server,
                        // as receiver, sends one OT-extension column).
                        let garbled = material - bits * gc::LABEL_BYTES as u64;
                        let rot = match p.kind() {
                            ReluKind::Full => 0,
                            ReluKind::Split => OT_RECEIVER_BYTES,
                        };
                        c.offline = Traffic {
                            up: k * bits * OT_RECEIVER_BYTES,
                            down: k * (garbled + bits * OT_SENDER_BYTES + rot),
                        };
                        c.client_storage = k * material;
                        c.server_storage = k * p.server_storage_bytes() as u64;
                        c.client_cycles = k * self.relu_cycles(p);
                    }
                    Protocol::Delphi => {
                        let material = if streamed {
                            k * DELPHI_CLIENT_STORAGE
                        } else {
                            0
                        };
                        c.message(Direction::Down, material + k * DELPHI_ONLINE_LABEL_BYTES);
                        c.offline = Traffic {
                            up: k * DELPHI_OT_RECEIVER_BYTES,
                            down: k
                                * (DELPHI_GC_BYTES
                                    + DELPHI_MASK_LABEL_BYTES
                                    + DELPHI_OT_SENDER_BYTES),
                        };
                        c.client_storage = k * DELPHI_CLIENT_STORAGE;
                        c.server_storage = k * DELPHI_SERVER_STORAGE;
                        c.client_cycles = k
                            * (DELPHI_AND_GATES * 2 * d.aes_cycles_per_block
                                + DELPHI_EVAL_XORS * d.word_op_cycles);
                    }
                    _ => self.ot_elements(&mut c, k),
                }
                c
            }
            Op::AvgPool2d { .. } | Op::GlobalAvgPool => {
                let kind = if matches!(layer.op, Op::GlobalAvgPool) {
                    LayerKind::GlobalAvgPool
                } else {
                    LayerKind::AvgPool
                };
                let mut c = LayerCost::empty(layer.index, kind);
                if p.interactive_truncation() {
                    self.ot_elements(&mut c, n_out);
                }
                c
            }
            Op::Add { .. } => LayerCost::empty(layer.index, LayerKind::Add),
            Op::Flatten => LayerCost::empty(layer.index, LayerKind::Flatten),
        }
    }

    /// Costs every layer, calling `row` with each (in order), and returns the totals; nothing
    /// is stored, so this suits a device that prints rows as they come.
    pub fn for_each_layer(&self, model: &Model<'_>, mut row: impl FnMut(&LayerCost)) -> Totals {
        let delivery = self.delivery_for(model);
        let mut t = Totals {
            relus_kept: 0,
            relus_total: 0,
            and_gates: 0,
            offline: Traffic::default(),
            setup: Traffic {
                up: self.protocol.setup_bytes(),
                down: self.protocol.setup_bytes(),
            },
            online: Traffic::default(),
            output_bytes: 0,
            flights: 0,
            client_storage: 0,
            server_storage: 0,
            client_cycles: 0,
            online_latency_us: 0,
            offline_latency_us: 0,
            fit: MemoryFit::Ram,
            delivery,
            streamed: 0,
        };
        let mut last: Option<Direction> = None;
        let merge = |c: &LayerCost, last: &mut Option<Direction>| {
            let merged = c.first.is_some() && c.first == *last;
            let flights = c.flights - u32::from(merged);
            if c.last.is_some() {
                *last = c.last;
            }
            flights
        };
        for layer in model.layers() {
            let c = self.layer_as(&layer, delivery);
            t.relus_kept += c.relus_kept;
            t.relus_total += c.relus_total;
            t.and_gates += c.and_gates;
            t.offline.add(c.offline);
            t.online.add(c.online);
            t.flights += merge(&c, &mut last);
            t.client_storage += c.client_storage;
            t.server_storage += c.server_storage;
            t.client_cycles += c.client_cycles;
            row(&c);
        }
        // The server's output share closes the inference.
        t.output_bytes = model.output_shape().elements() as u64 * self.protocol.element_bytes();
        t.online.down += t.output_bytes;
        if last != Some(Direction::Down) {
            t.flights += 1;
        }
        let (link, d) = (&self.link, &self.device);
        // Streamed material is already in `online.down`, so the link time below covers it.
        let compute_us = (t.client_cycles as u128 * 1_000_000).div_ceil(d.clock_hz.max(1) as u128);
        t.online_latency_us = (t.flights as u64 * link.rtt_us / 2)
            .saturating_add(link.transfer_us(t.online.up, t.online.down))
            .saturating_add(u64::try_from(compute_us).unwrap_or(u64::MAX));
        t.offline_latency_us = link.transfer_us(t.offline.up, t.offline.down);
        t.fit = self.fit(t.client_storage);
        if delivery == Delivery::Streamed {
            t.streamed = t.client_storage;
        }
        t
    }

    /// Costs every layer and keeps the rows (at most [`MAX_LAYERS`], which every parsed model
    /// satisfies).
    pub fn estimate(&self, model: &Model<'_>) -> CostReport {
        let mut layers = heapless::Vec::new();
        let total = self.for_each_layer(model, |c| {
            // Cannot overflow: a parsed model has at most MAX_LAYERS layers.
            let _ = layers.push(*c);
        });
        CostReport { layers, total }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
