//! Private-inference cost model: pure integer arithmetic over a parsed model, a [`Protocol`], a
//! [`DeviceProfile`] and a [`LinkProfile`], with fixed-size results, so it also runs on the
//! device (no heap; floats only in [`parse_latency`]).
//!
//! Per layer it gives offline and online bytes each way, one-way message flights, client and
//! server storage between the phases, client compute cycles online and offline; over the model,
//! the latencies, the one-time setup, each party's memory (stored material and working sets)
//! with the device [`Verdict`], and the ReLU [`Budget`] that meets a latency target. A protocol
//! is its ReLU row ([`ReluPrice`], [`relu`]), its linear-layer phase over an HE parameter set
//! ([`LinearPhase`], [`he`]) and its setup. The formulas and their sources are in
//! `docs/PROTOCOL.md`; the `ring-gc` and `client-garbler` figures are the exact byte counts of
//! [`crate::share`] (`protocol-sim run` checks them).
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

mod budget;
pub mod he;
pub mod memory;
mod profile;
mod protocol;
pub mod relu;

pub use budget::{Budget, BudgetError, LatencyTarget, parse_latency};
pub use memory::{ClientMemory, PartyMemory, Verdict, WorkingItem, WorkingSet};
pub use profile::{
    AesEngine, BLE, CORTEX_M0PLUS_48, CORTEX_M4_64, CORTEX_M4_100, CORTEX_M4_CRYP_168, DEVICES,
    DeviceProfile, LAN, LINKS, LTE, LinkProfile, M4_CHACHA_PER_BYTE, M4_GC_AND_OVERHEAD,
    M4_GC_GARBLE_AND_OVERHEAD, M4_SOFT_AES_PER_BLOCK, PHONE, STM32H7_CRYP_600, STM32U5_AES_160,
    WAN,
};
pub use protocol::{
    BASE_OT_BYTES, FERRET_BUFFER_BYTES, FERRET_SETUP_BYTES, LinearPhase, Protocol,
    ProtocolParseError,
};
pub use relu::{
    DELPHI_AND_GATES, DELPHI_CLIENT_STORAGE, DELPHI_ELEMENT_BYTES, DELPHI_EVAL_XORS,
    DELPHI_GC_BYTES, DELPHI_MASK_LABEL_BYTES, DELPHI_ONLINE_LABEL_BYTES, DELPHI_OT_RECEIVER_BYTES,
    DELPHI_OT_SENDER_BYTES, DELPHI_SERVER_STORAGE, OT_RECEIVER_BYTES, OT_SENDER_BYTES, OtReluBytes,
    ReluPrice, Work,
};

use crate::layer::{Layer, Op};
use crate::model::{MAX_LAYERS, Model};
use crate::share::{Delivery, ReluParams, ReluPlan, WORD_BYTES};

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
    /// Client compute in the preprocessing phase (garbling), in cycles of the device.
    pub client_offline_cycles: u64,
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
            client_offline_cycles: 0,
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
    /// Preprocessing bytes (per inference).
    pub offline: Traffic,
    /// One-time setup bytes (per client and server pair, not per inference): HE keys, base OTs,
    /// silent-OT bootstrap.
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
    /// Client preprocessing compute cycles (garbling for a client garbler; HE not modelled).
    pub client_offline_cycles: u64,
    /// Online latency estimate: `flights · RTT/2 + bytes/bandwidth + client cycles/clock`, µs.
    pub online_latency_us: u64,
    /// Preprocessing latency: its bytes over the link plus the client's preprocessing compute,
    /// µs.
    pub offline_latency_us: u64,
    /// One-time setup: its bytes over the link, µs.
    pub setup_latency_us: u64,
    /// Where the client's stored material fits.
    pub fit: MemoryFit,
    /// The client's memory (stored material and working sets) and the device verdict.
    pub client_memory: ClientMemory,
    /// The server's memory.
    pub server_memory: PartyMemory,
    /// How the material was priced: stored between the phases, or streamed in the online phase
    /// (then `online.down` includes it and `offline` still counts how it was produced).
    pub delivery: Delivery,
    /// Bytes of client material moved into the online phase by streaming (0 when stored).
    pub streamed: u64,
}

impl Totals {
    /// End-to-end latency of one inference: online, plus preprocessing when `with_offline`.
    pub fn latency_us(&self, with_offline: bool) -> u64 {
        if with_offline {
            self.online_latency_us
                .saturating_add(self.offline_latency_us)
        } else {
            self.online_latency_us
        }
    }
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

/// The HE view of a conv or linear layer.
fn linear_shape(layer: &Layer<'_>) -> he::LinearShape {
    let i = layer.input_shape;
    match layer.op {
        Op::Conv2d(c) => {
            let pad = |d: u16| d as u64 + 2 * c.padding as u64;
            he::LinearShape {
                in_channels: i.channels as u64,
                in_plane: i.height as u64 * i.width as u64,
                padded_plane: pad(i.height) * pad(i.width),
                kernel: (c.kernel_h * c.kernel_w) as u64,
                out_channels: c.out_channels as u64,
                out_plane: layer.output_shape.plane() as u64,
            }
        }
        _ => he::LinearShape {
            in_channels: 1,
            in_plane: i.elements() as u64,
            padded_plane: i.elements() as u64,
            kernel: 0,
            out_channels: layer.output_shape.elements() as u64,
            out_plane: 1,
        },
    }
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
        self.delivery_with(model, &|l: &Layer<'_>, _| kept_of(l))
    }

    fn delivery_with(&self, model: &Model<'_>, kept: &dyn Fn(&Layer<'_>, u64) -> u64) -> Delivery {
        self.delivery.unwrap_or_else(|| {
            let storage = model
                .layers()
                .map(|l| {
                    let k = kept(&l, relus_of(&l));
                    self.layer_with(&l, k, Delivery::Stored).client_storage
                })
                .fold(0u64, u64::saturating_add);
            match self.fit(storage) {
                MemoryFit::Stream => Delivery::Streamed,
                MemoryFit::Ram | MemoryFit::Flash => Delivery::Stored,
            }
        })
    }

    /// Client cycles to evaluate one full `ring-gc` ReLU (see [`CostModel::relu_cycles`]).
    pub fn ring_gc_relu_cycles(&self) -> u64 {
        self.relu_cycles(ReluParams::FULL)
    }

    /// Client cycles to evaluate one `ring-gc` ReLU of protocol `p`: its AES blocks, the other
    /// work of its ANDs, and its ChaCha20 keystream.
    pub fn relu_cycles(&self, p: ReluParams) -> u64 {
        ReluPrice::ring_gc(p).online_work.cycles(&self.device)
    }

    /// What one kept ReLU of layer `index` costs: `ring-gc` as the ReLU plan says for that
    /// layer, any other protocol its one row.
    pub fn relu_price(&self, index: usize) -> ReluPrice {
        match self.protocol {
            Protocol::RingGc => ReluPrice::ring_gc(self.relu.layer(index)),
            p => p.relu_price(),
        }
    }

    /// OT-based interactive work for `n` elements (ReLUs or truncations).
    fn ot_elements(&self, cost: &mut LayerCost, n: u64) {
        let price = self.protocol.relu_price();
        if n == 0 || !price.hash_per_16_bytes {
            return;
        }
        let (up, down) = price.online_bytes(n);
        cost.online.add(Traffic { up, down });
        cost.flights_in(price.first, price.flights);
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
        self.layer_with(layer, kept_of(layer), delivery)
    }

    /// [`CostModel::layer_as`] with `kept` ReLUs kept if `layer` is a ReLU layer (whatever its
    /// mask says): every kept ReLU costs the same, so only the count matters.
    pub fn layer_with(&self, layer: &Layer<'_>, kept: u64, delivery: Delivery) -> LayerCost {
        let streamed = delivery == Delivery::Streamed;
        let d = &self.device;
        let p = self.protocol;
        let n_in = layer.input_shape.elements() as u64;
        let n_out = layer.output_shape.elements() as u64;
        let word = p.element_bytes();
        let linear = |kind: LayerKind, shift: u8| {
            let mut c = LayerCost::empty(layer.index, kind);
            match p.linear() {
                LinearPhase::OfflineHe(params) => {
                    c.client_storage = n_out * word;
                    if streamed {
                        c.message(Direction::Down, c.client_storage);
                    }
                    c.message(Direction::Up, n_in * word);
                    let (up, down) = he::linear_bytes(&params, &linear_shape(layer));
                    c.offline = Traffic { up, down };
                    c.server_storage = n_out * word;
                    // Regenerating the mask r from the seed: 8 keystream bytes per input.
                    c.client_cycles = n_in * WORD_BYTES as u64 * d.chacha_cycles_per_byte;
                }
                LinearPhase::OnlineHe(params) => {
                    let (up, down) = he::linear_bytes(&params, &linear_shape(layer));
                    c.message(Direction::Up, up);
                    c.message(Direction::Down, down);
                }
            }
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
                let total = mask.len() as u64;
                let k = kept.min(total);
                c.relus_kept = k;
                c.relus_total = total;
                if k == 0 {
                    return c;
                }
                let price = self.relu_price(layer.index);
                c.and_gates = k * price.and_gates;
                if price.hash_per_16_bytes {
                    self.ot_elements(&mut c, k);
                    return c;
                }
                let (up, mut down) = price.online_bytes(k);
                if streamed {
                    // The material of each ReLU arrives with the server's messages for it.
                    down += k * price.client_storage;
                }
                c.online.add(Traffic { up, down });
                c.flights_in(price.first, price.flights);
                c.offline = Traffic {
                    up: k * price.offline_up,
                    down: k * price.offline_down,
                };
                c.client_storage = k * price.client_storage;
                c.server_storage = k * price.server_storage;
                c.client_cycles = k * price.online_work.cycles(d);
                c.client_offline_cycles = k * price.offline_work.cycles(d);
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
    pub fn for_each_layer(&self, model: &Model<'_>, row: impl FnMut(&LayerCost)) -> Totals {
        self.for_each_layer_with(model, &|l: &Layer<'_>, _| kept_of(l), row)
    }

    /// [`CostModel::for_each_layer`] with `kept(layer, relus)` ReLUs kept in each ReLU layer
    /// (`relus` its size) instead of what the masks say.
    pub fn for_each_layer_with(
        &self,
        model: &Model<'_>,
        kept: &dyn Fn(&Layer<'_>, u64) -> u64,
        mut row: impl FnMut(&LayerCost),
    ) -> Totals {
        let delivery = self.delivery_with(model, kept);
        let p = self.protocol;
        let mut t = Totals {
            relus_kept: 0,
            relus_total: 0,
            and_gates: 0,
            offline: Traffic::default(),
            setup: p.setup(),
            online: Traffic::default(),
            output_bytes: 0,
            flights: 0,
            client_storage: 0,
            server_storage: 0,
            client_cycles: 0,
            client_offline_cycles: 0,
            online_latency_us: 0,
            offline_latency_us: 0,
            setup_latency_us: 0,
            fit: MemoryFit::Ram,
            client_memory: ClientMemory::judge(
                PartyMemory {
                    stored: 0,
                    offline: WorkingSet::EMPTY,
                    online: WorkingSet::EMPTY,
                },
                0,
                0,
            ),
            server_memory: PartyMemory {
                stored: 0,
                offline: WorkingSet::EMPTY,
                online: WorkingSet::EMPTY,
            },
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
        let (mut linear_layers, mut largest_he) = (0u64, 0u64);
        let mut relu_buffers = (0u64, 0u64);
        for layer in model.layers() {
            let k = kept(&layer, relus_of(&layer));
            let c = self.layer_with(&layer, k, delivery);
            if c.relus_kept > 0 {
                let price = self.relu_price(layer.index);
                relu_buffers.0 = relu_buffers.0.max(price.client_buffer);
                relu_buffers.1 = relu_buffers.1.max(price.garble_buffer);
            }
            t.relus_kept += c.relus_kept;
            t.relus_total += c.relus_total;
            t.and_gates += c.and_gates;
            t.offline.add(c.offline);
            t.online.add(c.online);
            t.flights += merge(&c, &mut last);
            t.client_storage += c.client_storage;
            t.server_storage += c.server_storage;
            t.client_cycles += c.client_cycles;
            t.client_offline_cycles += c.client_offline_cycles;
            if matches!(c.kind, LayerKind::Conv | LayerKind::Linear) {
                linear_layers += 1;
                let (up, down) = he::linear_bytes(p.linear().he(), &linear_shape(&layer));
                largest_he = largest_he.max(up).max(down);
            }
            row(&c);
        }
        // The server's output share closes the inference.
        t.output_bytes = model.output_shape().elements() as u64 * p.element_bytes();
        t.online.down += t.output_bytes;
        if last != Some(Direction::Down) {
            t.flights += 1;
        }
        let (link, d) = (&self.link, &self.device);
        let cycles_us = |cycles: u64| {
            let us = (cycles as u128 * 1_000_000).div_ceil(d.clock_hz.max(1) as u128);
            u64::try_from(us).unwrap_or(u64::MAX)
        };
        // Streamed material is already in `online.down`, so the link time below covers it.
        t.online_latency_us = (t.flights as u64 * link.rtt_us / 2)
            .saturating_add(link.transfer_us(t.online.up, t.online.down))
            .saturating_add(cycles_us(t.client_cycles));
        t.offline_latency_us = link
            .transfer_us(t.offline.up, t.offline.down)
            .saturating_add(cycles_us(t.client_offline_cycles));
        t.setup_latency_us = link.transfer_us(t.setup.up, t.setup.down);
        t.fit = self.fit(t.client_storage);
        if delivery == Delivery::Streamed {
            t.streamed = t.client_storage;
        }
        let arena = model.arena_words() as u64 * WORD_BYTES as u64;
        let (client, server) = self.memory(arena, linear_layers > 0, largest_he, relu_buffers, &t);
        t.client_memory = ClientMemory::judge(client, d.sram_bytes, d.flash_bytes);
        t.server_memory = server;
        t
    }

    /// Both parties' memory: the client's working sets per phase (the arena, a ReLU's material
    /// or garbling buffers, HE ciphertext and key, OT buffers) and stored material; the server's
    /// stored material, its copy of the client's keys and the largest layer of HE traffic.
    /// `relu_buffers`: the largest online and offline per-ReLU buffers over the kept layers.
    fn memory(
        &self,
        arena: u64,
        has_linear: bool,
        largest_he: u64,
        relu_buffers: (u64, u64),
        t: &Totals,
    ) -> (PartyMemory, PartyMemory) {
        let p = self.protocol;
        let (client_buffer, garble_buffer) = relu_buffers;
        let relus = t.relus_kept > 0;
        let he_client = if has_linear {
            he::client_working_set(p.linear().he())
        } else {
            0
        };
        let mut online = WorkingSet::EMPTY.with(WorkingItem::Arena, arena);
        let mut offline = WorkingSet::EMPTY;
        if relus {
            online = online.with(WorkingItem::Garbled, client_buffer);
            offline = offline.with(WorkingItem::Garbled, garble_buffer);
        }
        if relus || p.interactive_truncation() {
            online = online.with(WorkingItem::OtBuffer, p.ot_buffer());
        }
        match p.linear() {
            LinearPhase::OfflineHe(_) => {
                offline = offline.with(WorkingItem::HeCiphertext, he_client)
            }
            LinearPhase::OnlineHe(_) => online = online.with(WorkingItem::HeCiphertext, he_client),
        }
        let client = PartyMemory {
            stored: t.client_storage,
            offline,
            online,
        };
        let keys = if has_linear { t.setup.up } else { 0 };
        let server_he =
            WorkingSet::EMPTY.with(WorkingItem::HeCiphertext, keys.saturating_add(largest_he));
        let server_online = WorkingSet::EMPTY
            .with(WorkingItem::Arena, arena)
            .with(WorkingItem::OtBuffer, if relus { p.ot_buffer() } else { 0 });
        let server = match p.linear() {
            LinearPhase::OfflineHe(_) => PartyMemory {
                stored: t.server_storage,
                offline: server_he,
                online: server_online,
            },
            LinearPhase::OnlineHe(_) => PartyMemory {
                stored: t.server_storage,
                offline: WorkingSet::EMPTY,
                online: server_online
                    .with(WorkingItem::HeCiphertext, keys.saturating_add(largest_he)),
            },
        };
        (client, server)
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

/// ReLU sites of a layer (0 for other layers).
fn relus_of(layer: &Layer<'_>) -> u64 {
    match layer.op {
        Op::MaskedRelu(mask) => mask.len() as u64,
        _ => 0,
    }
}

/// ReLUs a layer's mask keeps (0 for other layers).
fn kept_of(layer: &Layer<'_>) -> u64 {
    match layer.op {
        Op::MaskedRelu(mask) => mask.kept() as u64,
        _ => 0,
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
