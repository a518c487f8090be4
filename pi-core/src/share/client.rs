//! The client's online phase: pi-core on the device, talking to the server through a
//! caller-supplied [`Transport`] and reading its preprocessed material from an
//! [`OfflineSource`] (RAM, flash or a stream).
//!
//! Per layer, in model order (messages in brackets, sizes in bytes):
//!
//! | Layer | Client | Messages |
//! |---|---|---|
//! | conv / linear | sends its input share minus the mask `r` (regenerated from the seed); its output share is the offline `W·r − s`, truncated | C→S `8·n_in` |
//! | masked ReLU, `k` kept | sends `c − q` for each kept element (`q` its fresh, offline-chosen share); then per kept element receives the server's 64 input labels and evaluates the garbled ReLU, whose output `ReLU(x) − r'` becomes its share; linearized elements keep their share | C→S `8·k`, then S→C `1024·k` |
//! | avg pool, global pool, add, flatten | local share arithmetic | none |
//! | end | receives the server's output share and reconstructs | S→C `8·n_out` |
//!
//! Nothing the client receives depends on the weights except through uniformly masked values:
//! labels are fresh random strings, the output share is masked by the server's randomness.

use crate::layer::Op;
use crate::model::Model;

use super::error::ProtocolError;
use super::gc::{self, GcHash, GcMaterial, INPUT_LABEL_BYTES, LABEL_BYTES, SHARE_BITS};
use super::linear::finish_client;
use super::local;
use super::prg::{Prg, Purpose};
use super::ring::{self, Party};

/// Bytes of one share word on the wire (little-endian `u64`).
pub const WORD_BYTES: usize = 8;

/// The byte pipe to the server. Message boundaries are implicit: both parties know the model
/// architecture, hence every message's size.
pub trait Transport {
    /// Sends all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> Result<(), ProtocolError>;
    /// Fills all of `bytes`.
    fn recv(&mut self, bytes: &mut [u8]) -> Result<(), ProtocolError>;
    /// Called when the client starts layer `layer` (`layer == layer_count` for the final
    /// output message): lets a transport attribute traffic to layers or report progress.
    fn layer_start(&mut self, _layer: usize) {}
}

/// Where the client's preprocessed (input-independent) material comes from.
pub trait OfflineSource {
    /// Writes the client's share `W·r − s` of conv/linear layer `layer`'s accumulator (before
    /// bias and truncation), one word per output element.
    fn linear_share(&mut self, layer: usize, out: &mut [u64]) -> Result<(), ProtocolError>;
    /// Fills `out` with the garbled material of the `kept`-th kept ReLU of layer `layer`.
    fn relu_material(
        &mut self,
        layer: usize,
        kept: usize,
        out: &mut GcMaterial,
    ) -> Result<(), ProtocolError>;
}

/// Buffers share words into chunks before handing them to the transport.
struct WordWriter<'t, T: Transport> {
    io: &'t mut T,
    buf: [u8; 256],
    len: usize,
}

impl<'t, T: Transport> WordWriter<'t, T> {
    fn new(io: &'t mut T) -> Self {
        Self {
            io,
            buf: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, w: u64) -> Result<(), ProtocolError> {
        if self.len + WORD_BYTES > self.buf.len() {
            self.flush()?;
        }
        self.buf[self.len..self.len + WORD_BYTES].copy_from_slice(&w.to_le_bytes());
        self.len += WORD_BYTES;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ProtocolError> {
        if self.len > 0 {
            self.io.send(&self.buf[..self.len])?;
            self.len = 0;
        }
        Ok(())
    }
}

/// A read-only range and a writable range of the same arena, which must not overlap.
fn split_rw(
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

/// The client of the Delphi-style protocol for one parsed model.
#[derive(Debug, Clone)]
pub struct Client<'m, 'a> {
    model: &'m Model<'a>,
    seed: [u8; 32],
    hash: GcHash,
}

impl<'m, 'a> Client<'m, 'a> {
    /// A client whose masks come from `seed` (32 bytes from a true random source; never reuse
    /// a seed across inferences: the offline material is tied to it).
    pub fn new(model: &'m Model<'a>, seed: [u8; 32]) -> Self {
        Self {
            model,
            seed,
            hash: GcHash::new(),
        }
    }

    /// Words of `u64` the share arena must hold (the same plan as the plaintext engine).
    pub fn arena_words(&self) -> usize {
        self.model.arena_words()
    }

    fn range(&self, id: usize) -> core::ops::Range<usize> {
        let start = self.model.tensor_offset(id).unwrap_or(0);
        let len = self.model.tensor_shape(id).map_or(0, |s| s.elements());
        start..start + len
    }

    /// Runs one private inference on the fixed-point `input` and writes the reconstructed
    /// output (same scale as [`Model::infer`]'s result) to `output`.
    ///
    /// `shares` is the share arena ([`Client::arena_words`] words); `material` is scratch for
    /// one garbled ReLU (8 KiB), refilled from `offline` for every kept ReLU.
    pub fn run(
        &self,
        input: &[i32],
        shares: &mut [u64],
        material: &mut GcMaterial,
        offline: &mut impl OfflineSource,
        io: &mut impl Transport,
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
        // The client's share of its own input is the input itself (the server's is 0).
        let first = shares
            .get_mut(self.range(0))
            .ok_or(ProtocolError::Inconsistent)?;
        for (s, &x) in first.iter_mut().zip(input) {
            *s = x as i64 as u64;
        }
        let mut gc_index = 0u64;
        for layer in model.layers() {
            io.layer_start(layer.index);
            let (inp, out) = (self.range(layer.input), self.range(layer.output()));
            match layer.op {
                Op::Conv2d(c) => {
                    self.send_masked(shares, inp, layer.index, io)?;
                    self.linear_output(shares, out, layer.index, c.weight_frac_bits, offline)?;
                }
                Op::Linear(l) => {
                    self.send_masked(shares, inp, layer.index, io)?;
                    self.linear_output(shares, out, layer.index, l.weight_frac_bits, offline)?;
                }
                Op::MaskedRelu(mask) => {
                    if inp != out {
                        let (src, dst) = split_rw(shares, inp, out.clone())?;
                        dst.copy_from_slice(src);
                    }
                    let values = shares.get_mut(out).ok_or(ProtocolError::Inconsistent)?;
                    self.relu(
                        values,
                        &mask,
                        layer.index,
                        &mut gc_index,
                        material,
                        offline,
                        io,
                    )?;
                }
                Op::AvgPool2d { kernel, stride } => {
                    let (src, dst) = split_rw(shares, inp, out)?;
                    local::avg_pool(
                        kernel,
                        stride,
                        layer.input_shape,
                        layer.output_shape,
                        src,
                        dst,
                        Party::Client,
                    );
                }
                Op::GlobalAvgPool => {
                    let (src, dst) = split_rw(shares, inp, out)?;
                    local::global_avg_pool(layer.input_shape, src, dst, Party::Client);
                }
                Op::Add { other } => {
                    let other = self.range(other);
                    if inp == out && other == out {
                        local::double(shares.get_mut(out).ok_or(ProtocolError::Inconsistent)?);
                    } else {
                        if inp != out {
                            let (src, dst) = split_rw(shares, inp, out.clone())?;
                            dst.copy_from_slice(src);
                        }
                        let (src, dst) = split_rw(shares, other, out)?;
                        local::add_into(dst, src);
                    }
                }
                Op::Flatten => {
                    if inp != out {
                        let (src, dst) = split_rw(shares, inp, out)?;
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
        // The server's output share completes the result.
        io.layer_start(model.layer_count());
        let last = shares
            .get(self.range(model.layer_count()))
            .ok_or(ProtocolError::Inconsistent)?;
        let mut buf = [0u8; 256];
        for (outs, mine) in output
            .chunks_mut(buf.len() / WORD_BYTES)
            .zip(last.chunks(buf.len() / WORD_BYTES))
        {
            let bytes = &mut buf[..outs.len() * WORD_BYTES];
            io.recv(bytes)?;
            for ((o, &c), w) in outs
                .iter_mut()
                .zip(mine)
                .zip(bytes.chunks_exact(WORD_BYTES))
            {
                let mut b = [0u8; WORD_BYTES];
                b.copy_from_slice(w);
                *o = ring::reconstruct(c, u64::from_le_bytes(b));
            }
        }
        Ok(())
    }

    /// Sends `x − r` for the layer input, `r` from the layer's mask stream.
    fn send_masked(
        &self,
        shares: &[u64],
        input: core::ops::Range<usize>,
        layer: usize,
        io: &mut impl Transport,
    ) -> Result<(), ProtocolError> {
        let mut prg = Prg::new(&self.seed, layer, Purpose::LinearInput);
        let mut writer = WordWriter::new(io);
        for &x in shares.get(input).ok_or(ProtocolError::Inconsistent)? {
            writer.push(x.wrapping_sub(prg.next_u64()))?;
        }
        writer.flush()
    }

    /// The client's output share of a conv/linear layer: the offline `W·r − s`, truncated.
    fn linear_output(
        &self,
        shares: &mut [u64],
        out: core::ops::Range<usize>,
        layer: usize,
        shift: u8,
        offline: &mut impl OfflineSource,
    ) -> Result<(), ProtocolError> {
        let dst = shares.get_mut(out).ok_or(ProtocolError::Inconsistent)?;
        offline.linear_share(layer, dst)?;
        for v in dst.iter_mut() {
            *v = finish_client(*v, shift);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn relu(
        &self,
        values: &mut [u64],
        mask: &crate::ReluMask<'_>,
        layer: usize,
        gc_index: &mut u64,
        material: &mut GcMaterial,
        offline: &mut impl OfflineSource,
        io: &mut impl Transport,
    ) -> Result<(), ProtocolError> {
        if mask.kept() == 0 {
            return Ok(());
        }
        // 1. Re-share every kept element onto the fresh share q chosen offline, so the client's
        //    circuit inputs (and their OT) never depend on the online phase.
        let mut result = Ok(());
        {
            let mut prg = Prg::new(&self.seed, layer, Purpose::ReluInput);
            let mut writer = WordWriter::new(io);
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
        // 2. One garbled ReLU per kept element, fed by the server's online labels.
        let mut kept = 0;
        mask.for_each_kept(|j| {
            if result.is_err() {
                return;
            }
            result = (|| {
                offline.relu_material(layer, kept, material)?;
                let mut bytes = [0u8; INPUT_LABEL_BYTES];
                io.recv(&mut bytes)?;
                let labels: [gc::Label; SHARE_BITS] = core::array::from_fn(|i| {
                    let mut b = [0u8; LABEL_BYTES];
                    b.copy_from_slice(&bytes[i * LABEL_BYTES..(i + 1) * LABEL_BYTES]);
                    u128::from_le_bytes(b)
                });
                let z = gc::evaluate_relu(&self.hash, *gc_index, material, &labels);
                *values.get_mut(j).ok_or(ProtocolError::Inconsistent)? = z;
                Ok(())
            })();
            kept += 1;
            *gc_index += 1;
        });
        result
    }
}
