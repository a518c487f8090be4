//! The client's online phase: pi-core on the device, talking to the server through a
//! caller-supplied [`Transport`] and reading its preprocessed material from an
//! [`OfflineSource`]: RAM or flash ([`OfflineSource`] implementations of the caller's), or the
//! server's stream ([`Streamed`]), in the order it is consumed.
//!
//! Per layer, in model order (messages in brackets, sizes in bytes):
//!
//! | Layer | Client | Messages |
//! |---|---|---|
//! | conv / linear | takes its offline share `W·r − s` (streamed: S→C `8·n_out` first); sends its input share minus the mask `r` (regenerated from the seed); its output share is `W·r − s`, truncated | C→S `8·n_in` |
//! | masked ReLU, `k` kept, full | sends `c − q` for each kept element (`q` its fresh, offline-chosen share); then per kept element takes its garbled material (streamed: S→C 8 104 first), receives the server's 64 input labels and evaluates the garbled ReLU, whose output `ReLU(x) − r'` becomes its share; linearized elements keep their share | C→S `8·k`, then S→C `1024·k` |
//! | masked ReLU, `k` kept, split on `T` bits ([`super::relu`]) | the same re-share; per kept element its sign material (streamed: `16·(3T−2)` first), the server's `T` labels and multiplexer ciphertext; evaluates the sign circuit and keeps its share of `x · DReLU(x)`; then sends its OT corrections | C→S `8·k`, S→C `(16·T + 8)·k`, C→S `8·k` |
//! | avg pool, global pool, add, flatten | local share arithmetic | none |
//! | end | receives the server's output share, reconstructs, checks the range | S→C `8·n_out` |
//!
//! Nothing the client receives depends on the weights except through uniformly masked values:
//! labels are fresh random strings, the output share is masked by the server's randomness.
//!
//! # One use only
//!
//! A [`Client`] owns its [`ClientSeed`] and [`Client::run`] consumes both the client and the
//! offline material: the masks of one inference can never serve a second one (two inferences
//! on the same masks would let the server subtract them and learn `x1 − x2`). Reuse does not
//! compile:
//!
//! ```compile_fail,E0382
//! use pi_core::share::{Client, ClientBuffers, ClientSeed, GcMaterial, NoProbe, Streamed};
//! use pi_core::share::{ProtocolError, Transport};
//!
//! struct Wire;
//! impl Transport for Wire {
//!     fn send(&mut self, _: &[u8]) -> Result<(), ProtocolError> { Ok(()) }
//!     fn recv(&mut self, _: &mut [u8]) -> Result<(), ProtocolError> { Err(ProtocolError::Closed) }
//! }
//!
//! let model = pi_core::Model::parse(pi_core::testing::TINY_MODEL).unwrap();
//! let (input, mut out) = ([0i32; 16], [0i64; 3]);
//! let (mut shares, mut material) = ([0u64; 64], [GcMaterial::EMPTY]);
//! let (mut shares2, mut material2) = ([0u64; 64], [GcMaterial::EMPTY]);
//! let client = Client::new(&model, ClientSeed::from_bytes([1; 32]));
//! let bufs = ClientBuffers { shares: &mut shares, material: &mut material, colours: &mut [] };
//! let _ = client.run(&input, bufs, Streamed, &mut Wire, &mut NoProbe, &mut out);
//! let bufs = ClientBuffers { shares: &mut shares2, material: &mut material2, colours: &mut [] };
//! // error[E0382]: use of moved value: `client` (its seed, hence its masks, are spent)
//! let _ = client.run(&input, bufs, Streamed, &mut Wire, &mut NoProbe, &mut out);
//! ```

use crate::layer::Op;
use crate::model::Model;

use super::error::ProtocolError;
use super::gc::{self, GcHash, GcMaterial, LABEL_BYTES, SHARE_BITS};
use super::linear::finish_client;
use super::local;
use super::prg::{Prg, Purpose};
use super::relu::{ReluKind, ReluParams, ReluPlan, mux};
use super::ring::{self, Party};

/// Bytes of one share word on the wire (little-endian `u64`).
pub const WORD_BYTES: usize = 8;

/// Largest magnitude a reconstructed output may have: pi-core's plaintext outputs are `i32`
/// (every requantization saturates), and a sane model's truncation tolerance is far below
/// `2^31`, so a correct private output lies within `±2^32`. A garbage or malicious peer's
/// output share is uniform over `2^64` and lands outside with probability `1 − 2^−31` per
/// output element.
pub const OUTPUT_BOUND: i64 = 1 << 32;

/// The byte pipe to the server. Message boundaries are implicit: both parties know the model
/// architecture, hence every message's size.
pub trait Transport {
    /// Sends all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> Result<(), ProtocolError>;
    /// Fills all of `bytes`; a peer that stays silent past the transport's timeout gives
    /// [`ProtocolError::Timeout`], one that hangs up [`ProtocolError::Closed`].
    fn recv(&mut self, bytes: &mut [u8]) -> Result<(), ProtocolError>;
    /// Called when the client starts layer `layer` (`layer == layer_count` for the final
    /// output message): lets a transport attribute traffic to layers or report progress.
    fn layer_start(&mut self, _layer: usize) {}
}

/// Where the client's preprocessed (input-independent) material comes from. The transport is
/// passed in so that material can also arrive on it ([`Streamed`]).
pub trait OfflineSource {
    /// Writes the client's share `W·r − s` of conv/linear layer `layer`'s accumulator (before
    /// bias and truncation), one word per output element.
    fn linear_share<T: Transport>(
        &mut self,
        layer: usize,
        out: &mut [u64],
        io: &mut T,
    ) -> Result<(), ProtocolError>;
    /// Fills `out` with the garbled material of the `kept`-th kept ReLU of layer `layer`, whose
    /// protocol is `params` (the full circuit's material, or a sign circuit's).
    fn relu_material<T: Transport>(
        &mut self,
        layer: usize,
        kept: usize,
        params: ReluParams,
        out: &mut GcMaterial,
        io: &mut T,
    ) -> Result<(), ProtocolError>;
}

/// Material the server streams on the transport just before the client consumes it: the client
/// stores nothing between the phases, and its RAM holds one ReLU's material at a time.
///
/// Byte order: per conv/linear layer, `8·n_out` bytes of `W·r − s` (little-endian `u64`) before
/// the client sends that layer's masked input; per kept ReLU, its material as
/// [`GcMaterial::write_to`] writes it ([`ReluParams::material_bytes`]) before the server's labels
/// for it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Streamed;

impl OfflineSource for Streamed {
    fn linear_share<T: Transport>(
        &mut self,
        _layer: usize,
        out: &mut [u64],
        io: &mut T,
    ) -> Result<(), ProtocolError> {
        recv_words(io, out)
    }

    fn relu_material<T: Transport>(
        &mut self,
        _layer: usize,
        _kept: usize,
        params: ReluParams,
        out: &mut GcMaterial,
        io: &mut T,
    ) -> Result<(), ProtocolError> {
        out.read_from(params.sign_width(), |bytes| io.recv(bytes))
    }
}

/// What the client is doing, for a [`Probe`] that attributes time or instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// Local arithmetic on shares: masks, truncation, pools, adds, reconstruction.
    Shares,
    /// Garbled-circuit evaluation.
    Garbled,
    /// Sending, receiving and reading offline material.
    Io,
}

/// Told when the client moves from one [`Phase`] to another (the firmware counts instructions
/// per phase with it). Every call is a transition; the run starts in [`Phase::Shares`].
pub trait Probe {
    /// The client now works in `phase`.
    fn enter(&mut self, phase: Phase);
}

/// A probe that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProbe;

impl Probe for NoProbe {
    #[inline(always)]
    fn enter(&mut self, _phase: Phase) {}
}

/// The client's 32-byte secret seed for one inference: every mask it uses is derived from it.
///
/// Take it from a true random source (an OS or hardware TRNG). It is moved into the [`Client`]
/// and gone after the run; it is neither `Clone` nor printed by `Debug`.
pub struct ClientSeed([u8; 32]);

impl ClientSeed {
    /// Wraps 32 bytes of entropy.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes, for the simulation's dealer, which stands in for HE and OT and so must derive
    /// the same masks (a real deployment never sends them anywhere).
    pub fn expose_to_dealer(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key of the client's mask streams.
    fn key(&self) -> &[u8; 32] {
        &self.0
    }
}

impl core::fmt::Debug for ClientSeed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ClientSeed(..)")
    }
}

/// The client's buffers: the share arena, room for garbled ReLUs, and the colour bits of the
/// split ReLU.
#[derive(Debug)]
pub struct ClientBuffers<'b> {
    /// [`Client::arena_words`] `u64` words.
    pub shares: &'b mut [u64],
    /// Garbled material (8 KiB each), refilled for every kept ReLU. With [`LOCK_STEP`] or more,
    /// that many ReLUs are evaluated in lock-step (faster where AES pipelines); one suffices.
    pub material: &'b mut [GcMaterial],
    /// [`Client::colour_bytes`] bytes (empty when no layer is split).
    pub colours: &'b mut [u8],
}

/// ReLUs evaluated in lock-step when [`ClientBuffers::material`] holds that many.
pub const LOCK_STEP: usize = 8;

/// Buffers share words into chunks before handing them to the transport; the probe sees every
/// send as [`Phase::Io`].
pub(crate) struct WordWriter<'t, T: Transport, P: Probe> {
    io: &'t mut T,
    probe: &'t mut P,
    buf: [u8; 256],
    len: usize,
}

impl<'t, T: Transport, P: Probe> WordWriter<'t, T, P> {
    pub(crate) fn new(io: &'t mut T, probe: &'t mut P) -> Self {
        Self {
            io,
            probe,
            buf: [0; 256],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, w: u64) -> Result<(), ProtocolError> {
        if self.len + WORD_BYTES > self.buf.len() {
            self.flush()?;
        }
        self.buf[self.len..self.len + WORD_BYTES].copy_from_slice(&w.to_le_bytes());
        self.len += WORD_BYTES;
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<(), ProtocolError> {
        if self.len == 0 {
            return Ok(());
        }
        self.probe.enter(Phase::Io);
        let sent = self.io.send(&self.buf[..self.len]);
        self.probe.enter(Phase::Shares);
        self.len = 0;
        sent
    }
}

/// Receives `out.len()` little-endian words.
pub(crate) fn recv_words<T: Transport>(io: &mut T, out: &mut [u64]) -> Result<(), ProtocolError> {
    let mut buf = [0u8; 256];
    for chunk in out.chunks_mut(buf.len() / WORD_BYTES) {
        let bytes = &mut buf[..chunk.len() * WORD_BYTES];
        io.recv(bytes)?;
        for (w, b) in chunk.iter_mut().zip(bytes.chunks_exact(WORD_BYTES)) {
            let mut le = [0u8; WORD_BYTES];
            le.copy_from_slice(b);
            *w = u64::from_le_bytes(le);
        }
    }
    Ok(())
}

/// A read-only range and a writable range of the same arena, which must not overlap.
pub(crate) fn split_rw(
    arena: &mut [u64],
    read: core::ops::Range<usize>,
    write: core::ops::Range<usize>,
) -> Result<(&[u64], &mut [u64]), ProtocolError> {
    let bad = ProtocolError::Inconsistent;
    if read.end <= write.start {
        let (a, b) = arena.split_at_mut_checked(write.start).ok_or(bad)?;
        Ok((
            a.get(read).ok_or(bad)?,
            b.get_mut(..write.len()).ok_or(bad)?,
        ))
    } else if write.end <= read.start {
        let (a, b) = arena.split_at_mut_checked(read.start).ok_or(bad)?;
        Ok((
            b.get(..read.len()).ok_or(bad)?,
            a.get_mut(write).ok_or(bad)?,
        ))
    } else {
        Err(bad)
    }
}

/// The client of the Delphi-style protocol for one parsed model and one inference.
#[derive(Debug)]
pub struct Client<'m, 'a> {
    model: &'m Model<'a>,
    seed: ClientSeed,
    hash: GcHash,
    plan: ReluPlan,
}

/// What [`Client::run`] works with besides the input.
struct Session<'s, 'm, 'a, O, T, P> {
    client: &'s Client<'m, 'a>,
    shares: &'s mut [u64],
    material: &'s mut [GcMaterial],
    colours: &'s mut [u8],
    offline: O,
    io: &'s mut T,
    probe: &'s mut P,
}

impl<'m, 'a> Client<'m, 'a> {
    /// A client for one inference whose masks come from `seed`, every ReLU full. The model is
    /// the architecture (weights may be zero: the client never uses them).
    pub fn new(model: &'m Model<'a>, seed: ClientSeed) -> Self {
        Self::with_plan(model, seed, ReluPlan::full())
    }

    /// A client whose ReLU layers follow `plan` (as agreed in the session).
    pub fn with_plan(model: &'m Model<'a>, seed: ClientSeed, plan: ReluPlan) -> Self {
        Self {
            model,
            seed,
            hash: GcHash::new(),
            plan,
        }
    }

    /// Bytes [`ClientBuffers::colours`] must hold: one bit per kept ReLU of the largest split
    /// layer.
    pub fn colour_bytes(&self) -> usize {
        self.plan
            .relu_layers(self.model)
            .filter(|(_, p)| p.kind() == ReluKind::Split)
            .filter_map(|(i, _)| match self.model.layer(i).map(|l| l.op) {
                Some(Op::MaskedRelu(mask)) => Some(mask.kept().div_ceil(8)),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Words of `u64` the share arena must hold (the same plan as the plaintext engine).
    pub fn arena_words(&self) -> usize {
        self.model.arena_words()
    }

    fn range(&self, id: usize) -> core::ops::Range<usize> {
        tensor_range(self.model, id)
    }

    /// Runs the private inference on the fixed-point `input` and writes the reconstructed
    /// output (same scale as [`Model::infer`]'s result) to `output`. Consumes the client (its
    /// seed) and the offline material.
    ///
    /// Fails on buffers of the wrong size, a transport or offline-source error, and an output
    /// outside `±`[`OUTPUT_BOUND`] (a peer that sent garbage).
    pub fn run<O: OfflineSource, T: Transport, P: Probe>(
        self,
        input: &[i32],
        buffers: ClientBuffers<'_>,
        offline: O,
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
        if buffers.shares.len() < model.arena_words() {
            return Err(ProtocolError::BufferTooSmall {
                needed: model.arena_words(),
                found: buffers.shares.len(),
            });
        }
        if buffers.colours.len() < self.colour_bytes() || buffers.material.is_empty() {
            return Err(ProtocolError::BufferTooSmall {
                needed: self.colour_bytes(),
                found: buffers.colours.len(),
            });
        }
        let n_out = model.output_shape().elements();
        if output.len() != n_out {
            return Err(ProtocolError::OutputLength {
                expected: n_out,
                found: output.len(),
            });
        }
        let mut session = Session {
            client: &self,
            shares: buffers.shares,
            material: buffers.material,
            colours: buffers.colours,
            offline,
            io,
            probe,
        };
        session.probe.enter(Phase::Shares);
        let result = session.run(input, output);
        session.probe.enter(Phase::Shares);
        result
    }
}

/// The words of tensor `id` in the share arena (empty for an unknown id).
pub(crate) fn tensor_range(model: &Model<'_>, id: usize) -> core::ops::Range<usize> {
    let start = model.tensor_offset(id).unwrap_or(0);
    let len = model.tensor_shape(id).map_or(0, |s| s.elements());
    start..start + len
}

/// Where a conv or linear layer reads and writes in the share arena, and its shift.
pub(crate) struct LinearStep {
    /// The input tensor's words.
    pub input: core::ops::Range<usize>,
    /// The output tensor's words.
    pub out: core::ops::Range<usize>,
    /// The layer's index.
    pub layer: usize,
    /// The truncation after the product.
    pub shift: u8,
}

/// The client's conv or linear layer, in both protocols: take the offline share `W·r − s`,
/// send `x − r` (`r` from the seed `key`), truncate the share.
pub(crate) fn linear_step<O: OfflineSource, T: Transport, P: Probe>(
    key: &[u8; 32],
    shares: &mut [u64],
    step: LinearStep,
    offline: &mut O,
    io: &mut T,
    probe: &mut P,
) -> Result<(), ProtocolError> {
    // The plan never places a conv/linear output over its input, so the offline share can land
    // in the output range before the input is sent.
    let (src, dst) = split_rw(shares, step.input, step.out)?;
    probe.enter(Phase::Io);
    let got = offline.linear_share(step.layer, dst, io);
    probe.enter(Phase::Shares);
    got?;
    let mut prg = Prg::new(key, step.layer, Purpose::LinearInput);
    let mut writer = WordWriter::new(io, probe);
    for &x in src.iter() {
        writer.push(x.wrapping_sub(prg.next_u64()))?;
    }
    writer.flush()?;
    for v in dst.iter_mut() {
        *v = finish_client(*v, step.shift);
    }
    Ok(())
}

/// The end of an inference, in both protocols: the server's output share completes the
/// client's (`shares[last]`), and the result must lie within `±`[`OUTPUT_BOUND`].
pub(crate) fn finish_output<T: Transport, P: Probe>(
    model: &Model<'_>,
    shares: &[u64],
    last: core::ops::Range<usize>,
    io: &mut T,
    probe: &mut P,
    output: &mut [i64],
) -> Result<(), ProtocolError> {
    io.layer_start(model.layer_count());
    let last = shares.get(last).ok_or(ProtocolError::Inconsistent)?;
    let mut server = [0u64; 32];
    for (outs, mine) in output
        .chunks_mut(server.len())
        .zip(last.chunks(server.len()))
    {
        let theirs = &mut server[..outs.len()];
        probe.enter(Phase::Io);
        let received = recv_words(io, theirs);
        probe.enter(Phase::Shares);
        received?;
        for ((o, &c), &s) in outs.iter_mut().zip(mine).zip(theirs.iter()) {
            *o = ring::reconstruct(c, s);
        }
    }
    match output
        .iter()
        .position(|v| v.unsigned_abs() > OUTPUT_BOUND as u64)
    {
        Some(index) => Err(ProtocolError::OutputOutOfRange { index }),
        None => Ok(()),
    }
}

impl<O: OfflineSource, T: Transport, P: Probe> Session<'_, '_, '_, O, T, P> {
    fn run(&mut self, input: &[i32], output: &mut [i64]) -> Result<(), ProtocolError> {
        let client = self.client;
        let model = client.model;
        // The client's share of its own input is the input itself (the server's is 0).
        let first = self
            .shares
            .get_mut(client.range(0))
            .ok_or(ProtocolError::Inconsistent)?;
        for (s, &x) in first.iter_mut().zip(input) {
            *s = x as i64 as u64;
        }
        let mut gc_index = 0u64;
        for layer in model.layers() {
            self.io.layer_start(layer.index);
            let (inp, out) = (client.range(layer.input), client.range(layer.output()));
            match layer.op {
                Op::Conv2d(c) => self.linear(inp, out, layer.index, c.weight_frac_bits)?,
                Op::Linear(l) => self.linear(inp, out, layer.index, l.weight_frac_bits)?,
                Op::MaskedRelu(mask) => {
                    if inp != out {
                        let (src, dst) = split_rw(self.shares, inp, out.clone())?;
                        dst.copy_from_slice(src);
                    }
                    self.relu(out, &mask, layer.index, &mut gc_index)?;
                }
                Op::AvgPool2d { .. } | Op::GlobalAvgPool | Op::Add { .. } | Op::Flatten => {
                    local::run_layer(self.shares, &layer, |id| client.range(id), Party::Client)?;
                }
            }
        }
        self.finish(output)
    }

    /// The server's output share completes the result, which must lie in the proven range.
    fn finish(&mut self, output: &mut [i64]) -> Result<(), ProtocolError> {
        let range = self.client.range(self.client.model.layer_count());
        finish_output(
            self.client.model,
            self.shares,
            range,
            self.io,
            self.probe,
            output,
        )
    }

    /// A conv or linear layer: take the offline share, send `x − r`, truncate the share.
    fn linear(
        &mut self,
        input: core::ops::Range<usize>,
        out: core::ops::Range<usize>,
        layer: usize,
        shift: u8,
    ) -> Result<(), ProtocolError> {
        let seed = self.client.seed.key();
        let step = LinearStep {
            input,
            out,
            layer,
            shift,
        };
        linear_step(
            seed,
            self.shares,
            step,
            &mut self.offline,
            self.io,
            self.probe,
        )
    }

    fn relu(
        &mut self,
        values: core::ops::Range<usize>,
        mask: &crate::ReluMask<'_>,
        layer: usize,
        gc_index: &mut u64,
    ) -> Result<(), ProtocolError> {
        if mask.kept() == 0 {
            return Ok(());
        }
        let client = self.client;
        let params = client.plan.layer(layer);
        let values = self
            .shares
            .get_mut(values)
            .ok_or(ProtocolError::Inconsistent)?;
        // 1. Re-share every kept element onto the fresh share q chosen offline, so the client's
        //    circuit inputs (and their OT) never depend on the online phase.
        let mut result = Ok(());
        {
            let mut prg = Prg::new(client.seed.key(), layer, Purpose::ReluInput);
            let mut writer = WordWriter::new(&mut *self.io, &mut *self.probe);
            mask.for_each_kept(|j| {
                let q = prg.next_u64();
                if result.is_ok() {
                    result = match values.get(j) {
                        Some(&c) => writer.push(c.wrapping_sub(q)),
                        None => Err(ProtocolError::Inconsistent),
                    };
                }
            });
            result?;
            writer.flush()?;
        }
        // 2. The garbled circuits, fed by the server's online labels, LOCK_STEP at a time when
        //    there is room, then one at a time.
        let mut evaluator = LayerEvaluator {
            client,
            layer,
            params,
            gc_index: *gc_index,
            received: 0,
            evaluated: 0,
            q: Prg::new(client.seed.key(), layer, Purpose::ReluInput),
            ot: Prg::new(client.seed.key(), layer, Purpose::MuxOt),
            colours: &mut *self.colours,
        };
        let (offline, io, probe) = (&mut self.offline, &mut *self.io, &mut *self.probe);
        let mut pending = [0usize; LOCK_STEP];
        let mut n = 0;
        let wide = self.material.len() >= LOCK_STEP;
        mask.for_each_kept(|j| {
            if result.is_err() {
                return;
            }
            pending[n] = j;
            n += 1;
            if n == LOCK_STEP || !wide {
                result = match self.material.first_chunk_mut::<LOCK_STEP>() {
                    Some(m) if wide => evaluator.batch(&pending, m, values, offline, io, probe),
                    _ => evaluator.one(pending[0], self.material, values, offline, io, probe),
                };
                n = 0;
            }
        });
        for &j in &pending[..n] {
            result =
                result.and_then(|()| evaluator.one(j, self.material, values, offline, io, probe));
        }
        result?;
        *gc_index = evaluator.gc_index;
        // 3. Split ReLU: the multiplexer's OT corrections, one word per kept ReLU.
        if params.kind() == ReluKind::Split {
            let mut q = Prg::new(client.seed.key(), layer, Purpose::ReluInput);
            let mut ot = Prg::new(client.seed.key(), layer, Purpose::MuxOt);
            let mut writer = WordWriter::new(&mut *self.io, &mut *self.probe);
            for k in 0..mask.kept() {
                let colour = self
                    .colours
                    .get(k / 8)
                    .is_some_and(|b| b >> (k % 8) & 1 == 1);
                let m = [ot.next_u64(), ot.next_u64()];
                writer.push(mux::correction(colour, q.next_u64(), m))?;
            }
            writer.flush()?;
        }
        Ok(())
    }
}

/// Evaluates one layer's kept ReLUs, in kept order: receives each one's material and labels,
/// evaluates, and writes the client's share of the output.
struct LayerEvaluator<'e, 'c, 'm, 'a> {
    client: &'c Client<'m, 'a>,
    layer: usize,
    params: ReluParams,
    gc_index: u64,
    received: usize,
    evaluated: usize,
    /// The re-share masks `q`, regenerated in kept order (the multiplexer needs them).
    q: Prg,
    /// The multiplexer's OT messages, in kept order.
    ot: Prg,
    colours: &'e mut [u8],
}

/// What the server sends per kept ReLU besides material: the labels of its input bits and, for
/// the split ReLU, the multiplexer ciphertext.
struct Labels {
    labels: [gc::Label; SHARE_BITS],
    mux: u64,
}

impl Labels {
    const EMPTY: Labels = Labels {
        labels: [0; SHARE_BITS],
        mux: 0,
    };
}

impl LayerEvaluator<'_, '_, '_, '_> {
    /// Receives the next kept ReLU's material and labels.
    fn receive<O: OfflineSource, T: Transport>(
        &mut self,
        material: &mut GcMaterial,
        out: &mut Labels,
        offline: &mut O,
        io: &mut T,
    ) -> Result<(), ProtocolError> {
        offline.relu_material(self.layer, self.received, self.params, material, io)?;
        self.received += 1;
        let t = usize::from(self.params.sign_bits());
        let mut bytes = [0u8; 16 * LABEL_BYTES];
        for chunk in out.labels[..t].chunks_mut(16) {
            let buf = &mut bytes[..chunk.len() * LABEL_BYTES];
            io.recv(buf)?;
            for (l, b) in chunk.iter_mut().zip(buf.chunks_exact(LABEL_BYTES)) {
                let mut le = [0u8; LABEL_BYTES];
                le.copy_from_slice(b);
                *l = u128::from_le_bytes(le);
            }
        }
        if self.params.kind() == ReluKind::Split {
            let mut word = [0u8; WORD_BYTES];
            io.recv(&mut word)?;
            out.mux = u64::from_le_bytes(word);
        }
        Ok(())
    }

    /// The split ReLU's output share from the sign circuit's output label; records the colour.
    fn multiplex(&mut self, label: gc::Label, mux_ciphertext: u64, gc_index: u64) -> u64 {
        let colour = label & 1 == 1;
        let k = self.evaluated;
        if let Some(b) = self.colours.get_mut(k / 8) {
            *b = (*b & !(1 << (k % 8))) | (u8::from(colour) << (k % 8));
        }
        let pad = gc::mux_pad(&self.client.hash, gc_index, label);
        let m = [self.ot.next_u64(), self.ot.next_u64()];
        mux::client_product(colour, mux_ciphertext, pad, self.q.next_u64(), m).0
    }

    /// Receives and evaluates the kept ReLUs at `js` in lock-step. Never inlined: the frame of
    /// the eight-wide instance is large, and a device that only runs the one-wide one must not
    /// pay for it in stack.
    #[inline(never)]
    fn batch<O: OfflineSource, T: Transport, P: Probe, const B: usize>(
        &mut self,
        js: &[usize; B],
        material: &mut [GcMaterial; B],
        values: &mut [u64],
        offline: &mut O,
        io: &mut T,
        probe: &mut P,
    ) -> Result<(), ProtocolError> {
        let mut labels: [Labels; B] = core::array::from_fn(|_| Labels::EMPTY);
        probe.enter(Phase::Io);
        for (m, l) in material.iter_mut().zip(labels.iter_mut()) {
            self.receive(m, l, offline, io)?;
        }
        probe.enter(Phase::Garbled);
        let gcs: [u64; B] = core::array::from_fn(|i| self.gc_index + i as u64);
        let hash = &self.client.hash;
        let out: [u64; B] = match self.params.kind() {
            ReluKind::Full => gc::evaluate_relus(
                hash,
                gcs,
                material.each_ref(),
                labels.each_ref().map(|l| &l.labels),
            ),
            ReluKind::Split => {
                let t = usize::from(self.params.sign_bits());
                let w = gc::evaluate_signs(
                    hash,
                    gcs,
                    material.each_ref(),
                    labels.each_ref().map(|l| &l.labels[..t]),
                );
                core::array::from_fn(|i| {
                    let share = self.multiplex(w[i], labels[i].mux, gcs[i]);
                    self.evaluated += 1;
                    share
                })
            }
        };
        if self.params.kind() == ReluKind::Full {
            self.evaluated += B;
        }
        self.gc_index += B as u64;
        probe.enter(Phase::Shares);
        for (&j, z) in js.iter().zip(out) {
            *values.get_mut(j).ok_or(ProtocolError::Inconsistent)? = z;
        }
        Ok(())
    }

    /// Receives and evaluates the kept ReLU at `j` alone.
    fn one<O: OfflineSource, T: Transport, P: Probe>(
        &mut self,
        j: usize,
        material: &mut [GcMaterial],
        values: &mut [u64],
        offline: &mut O,
        io: &mut T,
        probe: &mut P,
    ) -> Result<(), ProtocolError> {
        let m = material
            .first_chunk_mut::<1>()
            .ok_or(ProtocolError::Inconsistent)?;
        self.batch(&[j], m, values, offline, io, probe)
    }
}
