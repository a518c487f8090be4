//! A half-gates garbled ReLU over `Z_2^64` shares (Zahur, Rosulek, Evans, Eurocrypt 2015).
//!
//! The circuit takes the server's share `s`, the client's share `c` and the garbler's output
//! mask `t = -r'` (all 64-bit, LSB first) and outputs `ReLU(s + c) + t = ReLU(x) - r'`:
//!
//! | Step | ANDs | XORs |
//! |---|---|---|
//! | `x = s + c` (ripple carry, no carry out of bit 63) | 63 | 251 |
//! | `y_i = x_i AND NOT x_63` for `i < 63` (`y_63 = 0`) | 63 | 0 (1 free NOT) |
//! | `z = y + t` | 63 | 250 |
//! | **Total** | **189 = 3·64 − 3** | **501** |
//!
//! Free XOR (Kolesnikov–Schneider) with a global offset `Δ` (LSB 1, point and permute); each AND
//! is two 16-byte ciphertexts.
//!
//! # The garbling hash
//!
//! Half-gates needs a *tweakable circular correlation robust* (TCCR) hash (Guo, Katz, Wang, Yu,
//! "Efficient and Secure Multiparty Computation from Fixed-Key Block Ciphers", IEEE S&P 2020,
//! eprint 2019/074; the requirement and the definition are theirs). [`TccrHash`] is their TCCR
//! construction from a fixed-key permutation π (§7.4 of the eprint version):
//!
//! ```text
//! H(x, i) = π(π(x) ⊕ i) ⊕ π(x)
//! ```
//!
//! with π = AES-128 under a fixed public key ([`BlockCipher`]; RustCrypto `aes` by default,
//! [`Aes128Cipher`]). It costs two permutation calls per hash: the evaluator runs 4 AES blocks per
//! AND, the garbler 8. Where one wire enters many gates as the same input (the sign wire of the
//! multiplexer enters all 63 of its ANDs), `π(x)` is computed once and only the tweaked second
//! call is paid per gate ([`Gates::and_shared`]), so one ReLU costs [`EVAL_AES_PER_RELU`] = 694
//! AES blocks to evaluate and [`GARBLE_AES_PER_RELU`] = 1 388 to garble.
//!
//! Every AND gate of an inference gets a unique pair of tweaks (`gc_index · 189 + gate`, times 2,
//! plus 0 or 1 for the two halves), so one `Δ` serves all circuits of an inference; each inference
//! draws a fresh `Δ` and fresh labels.
//!
//! The evaluator (the client) learns `z = ReLU(x) - r'`, uniform because `r'` is; the server
//! keeps `r'` as its share of `ReLU(x)`.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};

/// Width of a share in bits.
pub const SHARE_BITS: usize = 64;
/// AND gates of one garbled ReLU (derived from the circuit; checked by a test).
pub const RELU_AND_GATES: usize = 3 * SHARE_BITS - 3;
/// XOR gates of one garbled ReLU (free with free XOR, but the evaluator still computes them).
pub const RELU_XOR_GATES: usize = 501;
/// ANDs of the multiplexer, whose second input is the one shared sign wire.
pub const RELU_SHARED_ANDS: usize = SHARE_BITS - 1;
/// Bytes of one wire label.
pub const LABEL_BYTES: usize = 16;
/// Labels in the garbled tables of one ReLU (two per AND gate).
pub const TABLE_LABELS: usize = 2 * RELU_AND_GATES;
/// Bytes of the garbled tables of one ReLU.
pub const TABLE_BYTES: usize = TABLE_LABELS * LABEL_BYTES;
/// Bytes of one party's 64 input labels (the server's online message per ReLU).
pub const INPUT_LABEL_BYTES: usize = SHARE_BITS * LABEL_BYTES;
/// Bytes of the output decoding bits of one ReLU (one permute bit per output wire).
pub const DECODE_BYTES: usize = SHARE_BITS / 8;
/// Bytes the client stores per kept ReLU between the phases: tables, its own input labels (from
/// OT), the mask labels and the decoding bits.
pub const MATERIAL_BYTES: usize = TABLE_BYTES + 2 * INPUT_LABEL_BYTES + DECODE_BYTES;
/// AES blocks the evaluator runs per ReLU: 4 per AND (two TCCR hashes of two calls each), less
/// one first call per multiplexer AND after the first (the shared sign wire's `π(x)` is reused).
pub const EVAL_AES_PER_RELU: usize = 4 * RELU_AND_GATES - (RELU_SHARED_ANDS - 1);
/// AES blocks the garbler runs per ReLU: 8 per AND, less two per multiplexer AND after the first.
pub const GARBLE_AES_PER_RELU: usize = 8 * RELU_AND_GATES - 2 * (RELU_SHARED_ANDS - 1);

/// A wire label (the lowest bit is the point-and-permute bit).
pub type Label = u128;

/// The fixed public AES key of the garbling hash (any public constant works).
const FIXED_KEY: [u8; 16] = *b"pi-toolkit-gc-k1";

/// Independent gates hashed together in the multiplexer (lets AES-NI pipeline, and fills both
/// lanes of the 32-bit fixsliced software AES).
const BATCH: usize = 8;

/// Blocks the `aes` crate encrypts in parallel on this target: two for the 32-bit fixsliced
/// software AES, eight for AES-NI (and the 64-bit fixslice, which takes four, does fine).
#[cfg(target_pointer_width = "32")]
const PAR: usize = 2;
#[cfg(not(target_pointer_width = "32"))]
const PAR: usize = 8;

/// A fixed-key 128-bit block cipher: the permutation π of the garbling hash.
///
/// Implement it for a hardware AES peripheral to move the hash there; the circuit code does not
/// change. Implementations must be a permutation that behaves as a random one (the hash's proof
/// is in the random-permutation model) and must not leak the blocks through timing.
pub trait BlockCipher {
    /// Replaces every block by its encryption under the fixed key (blocks little-endian).
    fn encrypt(&self, blocks: &mut [u128]);
}

/// AES-128 from RustCrypto's `aes` crate under the fixed public key: constant-time fixsliced
/// software on Cortex-M (two blocks per pass on 32-bit cores), AES-NI when the CPU has it
/// (detected at run time).
#[derive(Clone)]
pub struct Aes128Cipher(Aes128);

impl Aes128Cipher {
    /// Keys AES-128 with the fixed public key.
    pub fn new() -> Self {
        Self(Aes128::new(&GenericArray::from(FIXED_KEY)))
    }
}

impl Default for Aes128Cipher {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Aes128Cipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Aes128Cipher")
    }
}

impl BlockCipher for Aes128Cipher {
    fn encrypt(&self, blocks: &mut [u128]) {
        let block = |x: u128| GenericArray::from(x.to_le_bytes());
        let value = |b: &aes::Block| {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(b);
            u128::from_le_bytes(bytes)
        };
        let mut chunks = blocks.chunks_exact_mut(PAR);
        for chunk in &mut chunks {
            let mut buf: [aes::Block; PAR] = core::array::from_fn(|k| block(chunk[k]));
            self.0.encrypt_blocks(&mut buf);
            for (x, b) in chunk.iter_mut().zip(&buf) {
                *x = value(b);
            }
        }
        for x in chunks.into_remainder() {
            let mut b = block(*x);
            self.0.encrypt_block(&mut b);
            *x = value(&b);
        }
    }
}

/// The TCCR hash `H(x, i) = π(π(x) ⊕ i) ⊕ π(x)` of Guo, Katz, Wang and Yu (see the
/// [module docs](self)), over any [`BlockCipher`].
#[derive(Debug, Clone, Default)]
pub struct TccrHash<C> {
    cipher: C,
}

/// The garbling hash both parties use by default: TCCR over fixed-key AES-128.
pub type GcHash = TccrHash<Aes128Cipher>;

impl GcHash {
    /// TCCR over AES-128 with the fixed public key.
    pub fn new() -> Self {
        Self::with_cipher(Aes128Cipher::new())
    }
}

impl<C: BlockCipher> TccrHash<C> {
    /// TCCR over `cipher`.
    pub fn with_cipher(cipher: C) -> Self {
        Self { cipher }
    }

    /// The first call `π(x)` for every block, in place (the part a reused wire can share).
    #[inline]
    fn first(&self, x: &mut [u128]) {
        self.cipher.encrypt(x);
    }

    /// Finishes `H(x_k, i_k) = π(y_k ⊕ i_k) ⊕ y_k` from `y_k = π(x_k)`, in place, for
    /// `N` blocks.
    #[inline]
    fn second<const N: usize>(&self, y: &mut [u128; N], tweaks: &[u128; N]) {
        let mut t: [u128; N] = core::array::from_fn(|k| y[k] ^ tweaks[k]);
        self.cipher.encrypt(&mut t);
        for (yk, tk) in y.iter_mut().zip(t) {
            *yk ^= tk;
        }
    }

    /// `H(x_k, i_k)` for `N` blocks at once.
    #[inline]
    fn hash<const N: usize>(&self, mut x: [u128; N], tweaks: [u128; N]) -> [u128; N] {
        self.first(&mut x);
        self.second(&mut x, &tweaks);
        x
    }
}

/// One boolean-circuit backend: plain bits, garbling or evaluation.
pub trait Gates {
    /// What travels on a wire.
    type Wire: Copy;
    /// `a XOR b`.
    fn xor(&mut self, a: Self::Wire, b: Self::Wire) -> Self::Wire;
    /// `a AND b`.
    fn and(&mut self, a: Self::Wire, b: Self::Wire) -> Self::Wire;
    /// `NOT a`.
    fn not(&mut self, a: Self::Wire) -> Self::Wire;
    /// `out[k] = a[k] AND b` for independent gates sharing their second input, in order (a
    /// garbled backend reuses `π(b)` and batches the hashes).
    fn and_shared(&mut self, a: &[Self::Wire], b: Self::Wire, out: &mut [Self::Wire]) {
        for (o, &ak) in out.iter_mut().zip(a) {
            *o = self.and(ak, b);
        }
    }
}

/// Ripple-carry `a + b` over bits `0..n` of which `b` may be absent (zero) at the top bit; the
/// carry out of bit 63 is dropped. `a_top` says whether `a[63]` exists (it does not for `y`).
fn add<G: Gates>(g: &mut G, a: &[G::Wire], b: &[G::Wire; SHARE_BITS]) -> [G::Wire; SHARE_BITS] {
    let mut out = [b[0]; SHARE_BITS];
    out[0] = g.xor(a[0], b[0]);
    let mut carry = g.and(a[0], b[0]);
    for i in 1..SHARE_BITS - 1 {
        // carry' = maj(a, b, carry) = carry ⊕ ((a ⊕ carry) ∧ (b ⊕ carry)): one AND per bit.
        let u = g.xor(a[i], carry);
        let v = g.xor(b[i], carry);
        out[i] = g.xor(u, b[i]);
        let uv = g.and(u, v);
        carry = g.xor(uv, carry);
    }
    let top = SHARE_BITS - 1;
    out[top] = match a.get(top) {
        Some(&a_top) => {
            let ab = g.xor(a_top, b[top]);
            g.xor(ab, carry)
        }
        None => g.xor(b[top], carry),
    };
    out
}

/// The ReLU circuit: `ReLU(s + c) + t` over 64-bit two's complement, LSB first.
pub fn relu_circuit<G: Gates>(
    g: &mut G,
    s: &[G::Wire; SHARE_BITS],
    c: &[G::Wire; SHARE_BITS],
    t: &[G::Wire; SHARE_BITS],
) -> [G::Wire; SHARE_BITS] {
    let x = add(g, s, c);
    let positive = g.not(x[SHARE_BITS - 1]);
    // Bit 63 of ReLU(x) is always 0, so it is no wire at all and costs no gate.
    let mut y = [x[0]; RELU_SHARED_ANDS];
    g.and_shared(&x[..RELU_SHARED_ANDS], positive, &mut y);
    add(g, &y, t)
}

/// Bits of `v`, LSB first.
pub fn bits(v: u64) -> [bool; SHARE_BITS] {
    core::array::from_fn(|i| v >> i & 1 == 1)
}

/// The plaintext backend (for tests and gate counting).
#[derive(Debug, Default)]
pub struct PlainGates {
    /// AND gates seen.
    pub ands: usize,
    /// XOR gates seen.
    pub xors: usize,
}

impl Gates for PlainGates {
    type Wire = bool;
    fn xor(&mut self, a: bool, b: bool) -> bool {
        self.xors += 1;
        a ^ b
    }
    fn and(&mut self, a: bool, b: bool) -> bool {
        self.ands += 1;
        a & b
    }
    fn not(&mut self, a: bool) -> bool {
        !a
    }
}

#[inline(always)]
fn select(bit: u128, v: u128) -> u128 {
    // All ones when the bit is set: a branch-free "bit · v".
    (bit & 1).wrapping_neg() & v
}

/// The two tweaks of AND gate `gate` of circuit `gc_index`: one per half-gate.
#[inline(always)]
fn tweaks(gc_index: u64, gate: usize) -> (u128, u128) {
    let id = (gc_index as u128) * RELU_AND_GATES as u128 + gate as u128;
    (id << 1, (id << 1) | 1)
}

struct Garbler<'a, C> {
    hash: &'a TccrHash<C>,
    delta: Label,
    gc_index: u64,
    tables: &'a mut [Label; TABLE_LABELS],
    gate: usize,
}

impl<C: BlockCipher> Garbler<'_, C> {
    /// Writes gate `self.gate`'s table row from the four hashes and returns its zero label.
    #[inline(always)]
    fn finish(&mut self, a0: Label, b0: Label, [ha0, ha1, hb0, hb1]: [Label; 4]) -> Label {
        let d = self.delta;
        // Generator half-gate (garbler knows b's permute bit) and evaluator half-gate.
        let tg = ha0 ^ ha1 ^ select(b0, d);
        let wg0 = ha0 ^ select(a0, tg);
        let te = hb0 ^ hb1 ^ a0;
        let we0 = hb0 ^ select(b0, te ^ a0);
        if let Some(row) = self.tables.get_mut(2 * self.gate..2 * self.gate + 2) {
            row[0] = tg;
            row[1] = te;
        }
        self.gate += 1;
        wg0 ^ we0
    }
}

impl<C: BlockCipher> Gates for Garbler<'_, C> {
    type Wire = Label;
    fn xor(&mut self, a: Label, b: Label) -> Label {
        a ^ b
    }
    fn and(&mut self, a0: Label, b0: Label) -> Label {
        let d = self.delta;
        let (j0, j1) = tweaks(self.gc_index, self.gate);
        let h = self.hash.hash([a0, a0 ^ d, b0, b0 ^ d], [j0, j0, j1, j1]);
        self.finish(a0, b0, h)
    }
    fn not(&mut self, a0: Label) -> Label {
        a0 ^ self.delta
    }
    fn and_shared(&mut self, a: &[Label], b0: Label, out: &mut [Label]) {
        let d = self.delta;
        let mut pb = [b0, b0 ^ d];
        self.hash.first(&mut pb);
        // Per gate: the two A labels get both calls, the shared B labels only the second.
        let mut pairs = a
            .chunks_exact(BATCH / 2)
            .zip(out.chunks_exact_mut(BATCH / 2));
        for (a_chunk, out_chunk) in &mut pairs {
            let mut first: [u128; BATCH] =
                core::array::from_fn(|k| a_chunk[k / 2] ^ select(k as u128, d));
            self.hash.first(&mut first);
            let mut y: [u128; 2 * BATCH] = core::array::from_fn(|k| {
                if k % 4 < 2 {
                    first[k / 4 * 2 + k % 4]
                } else {
                    pb[k % 2]
                }
            });
            let tw: [u128; 2 * BATCH] = core::array::from_fn(|k| {
                let (j0, j1) = tweaks(self.gc_index, self.gate + k / 4);
                if k % 4 < 2 { j0 } else { j1 }
            });
            self.hash.second(&mut y, &tw);
            for (k, (o, &a0)) in out_chunk.iter_mut().zip(a_chunk).enumerate() {
                *o = self.finish(a0, b0, [y[4 * k], y[4 * k + 1], y[4 * k + 2], y[4 * k + 3]]);
            }
        }
        let rest = a.len() - a.len() % (BATCH / 2);
        for (o, &a0) in out[rest..].iter_mut().zip(&a[rest..]) {
            let (j0, j1) = tweaks(self.gc_index, self.gate);
            let mut ya = [a0, a0 ^ d];
            self.hash.first(&mut ya);
            let mut y = [ya[0], ya[1], pb[0], pb[1]];
            self.hash.second(&mut y, &[j0, j0, j1, j1]);
            *o = self.finish(a0, b0, y);
        }
    }
}

struct Evaluator<'a, C> {
    hash: &'a TccrHash<C>,
    gc_index: u64,
    tables: &'a [Label; TABLE_LABELS],
    gate: usize,
}

impl<C: BlockCipher> Evaluator<'_, C> {
    /// The output label of gate `self.gate` from the two hashes.
    #[inline(always)]
    fn finish(&mut self, a: Label, b: Label, ha: Label, hb: Label) -> Label {
        let (tg, te) = match self.tables.get(2 * self.gate..2 * self.gate + 2) {
            Some(row) => (row[0], row[1]),
            None => (0, 0),
        };
        self.gate += 1;
        (ha ^ select(a, tg)) ^ (hb ^ select(b, te ^ a))
    }
}

impl<C: BlockCipher> Gates for Evaluator<'_, C> {
    type Wire = Label;
    fn xor(&mut self, a: Label, b: Label) -> Label {
        a ^ b
    }
    fn and(&mut self, a: Label, b: Label) -> Label {
        let (j0, j1) = tweaks(self.gc_index, self.gate);
        let [ha, hb] = self.hash.hash([a, b], [j0, j1]);
        self.finish(a, b, ha, hb)
    }
    fn not(&mut self, a: Label) -> Label {
        // The garbler flipped the meaning of the label; the evaluator's label is unchanged.
        a
    }
    fn and_shared(&mut self, a: &[Label], b: Label, out: &mut [Label]) {
        let mut pb = [b];
        self.hash.first(&mut pb);
        let mut chunks = a.chunks_exact(BATCH).zip(out.chunks_exact_mut(BATCH));
        for (a_chunk, out_chunk) in &mut chunks {
            let mut first: [u128; BATCH] = core::array::from_fn(|k| a_chunk[k]);
            self.hash.first(&mut first);
            let mut y: [u128; 2 * BATCH] =
                core::array::from_fn(|k| if k % 2 == 0 { first[k / 2] } else { pb[0] });
            let tw: [u128; 2 * BATCH] = core::array::from_fn(|k| {
                let (j0, j1) = tweaks(self.gc_index, self.gate + k / 2);
                if k % 2 == 0 { j0 } else { j1 }
            });
            self.hash.second(&mut y, &tw);
            for (k, (o, &ak)) in out_chunk.iter_mut().zip(a_chunk).enumerate() {
                *o = self.finish(ak, b, y[2 * k], y[2 * k + 1]);
            }
        }
        let rest = a.len() - a.len() % BATCH;
        for (o, &ak) in out[rest..].iter_mut().zip(&a[rest..]) {
            let (j0, j1) = tweaks(self.gc_index, self.gate);
            let mut ya = [ak];
            self.hash.first(&mut ya);
            let mut y = [ya[0], pb[0]];
            self.hash.second(&mut y, &[j0, j1]);
            *o = self.finish(ak, b, y[0], y[1]);
        }
    }
}

/// The labels of `value`'s bits given the wires' zero labels: `zero_i ⊕ bit_i · Δ`.
pub fn encode(zero: &[Label; SHARE_BITS], delta: Label, value: u64) -> [Label; SHARE_BITS] {
    core::array::from_fn(|i| zero[i] ^ select((value >> i) as u128, delta))
}

/// Garbles ReLU number `gc_index` of an inference: writes its tables and returns the output
/// decoding bits. `delta` must have its lowest bit set.
pub fn garble_relu<C: BlockCipher>(
    hash: &TccrHash<C>,
    delta: Label,
    gc_index: u64,
    server_zero: &[Label; SHARE_BITS],
    client_zero: &[Label; SHARE_BITS],
    mask_zero: &[Label; SHARE_BITS],
    tables: &mut [Label; TABLE_LABELS],
) -> u64 {
    let mut g = Garbler {
        hash,
        delta,
        gc_index,
        tables,
        gate: 0,
    };
    let out = relu_circuit(&mut g, server_zero, client_zero, mask_zero);
    out.iter()
        .enumerate()
        .fold(0u64, |d, (i, &z)| d | ((z & 1) as u64) << i)
}

/// What the client holds for one kept ReLU before the online phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcMaterial {
    /// Garbled tables, two labels per AND gate.
    pub tables: [Label; TABLE_LABELS],
    /// Labels of the client's own input bits (its fresh share `q`), obtained by OT.
    pub client_labels: [Label; SHARE_BITS],
    /// Labels of the garbler's output mask `t = -r'`.
    pub mask_labels: [Label; SHARE_BITS],
    /// Output decoding bits (the permute bit of each output zero label).
    pub decode: u64,
}

impl GcMaterial {
    /// All-zero material (a buffer to fill).
    pub const EMPTY: GcMaterial = GcMaterial {
        tables: [0; TABLE_LABELS],
        client_labels: [0; SHARE_BITS],
        mask_labels: [0; SHARE_BITS],
        decode: 0,
    };

    /// Serializes to exactly [`MATERIAL_BYTES`] bytes (labels little-endian, tables first, then
    /// the client's labels, the mask labels and the decoding bits): the order the evaluator
    /// needs them in, and the byte order of streamed material.
    pub fn write_bytes(&self, out: &mut [u8; MATERIAL_BYTES]) {
        let labels = self
            .tables
            .iter()
            .chain(&self.client_labels)
            .chain(&self.mask_labels);
        for (chunk, l) in out.chunks_exact_mut(LABEL_BYTES).zip(labels) {
            chunk.copy_from_slice(&l.to_le_bytes());
        }
        out[MATERIAL_BYTES - DECODE_BYTES..].copy_from_slice(&self.decode.to_le_bytes());
    }

    /// Reads the bytes of [`GcMaterial::write_bytes`] from `recv`, which fills the buffers it
    /// is given (at most 256 bytes each), so no 8 KiB buffer is needed on the way in.
    pub fn read_from<E>(
        &mut self,
        mut recv: impl FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        const CHUNK: usize = 16;
        let mut buf = [0u8; CHUNK * LABEL_BYTES];
        for labels in [
            &mut self.tables[..],
            &mut self.client_labels,
            &mut self.mask_labels,
        ] {
            for chunk in labels.chunks_mut(CHUNK) {
                let bytes = &mut buf[..chunk.len() * LABEL_BYTES];
                recv(bytes)?;
                for (l, b) in chunk.iter_mut().zip(bytes.chunks_exact(LABEL_BYTES)) {
                    let mut le = [0u8; LABEL_BYTES];
                    le.copy_from_slice(b);
                    *l = u128::from_le_bytes(le);
                }
            }
        }
        let mut d = [0u8; DECODE_BYTES];
        recv(&mut d)?;
        self.decode = u64::from_le_bytes(d);
        Ok(())
    }

    /// Reads what [`GcMaterial::write_bytes`] wrote.
    pub fn read_bytes(&mut self, bytes: &[u8; MATERIAL_BYTES]) {
        let labels = self
            .tables
            .iter_mut()
            .chain(&mut self.client_labels)
            .chain(&mut self.mask_labels);
        for (l, chunk) in labels.zip(bytes.chunks_exact(LABEL_BYTES)) {
            let mut b = [0u8; LABEL_BYTES];
            b.copy_from_slice(chunk);
            *l = u128::from_le_bytes(b);
        }
        let mut d = [0u8; DECODE_BYTES];
        d.copy_from_slice(&bytes[MATERIAL_BYTES - DECODE_BYTES..]);
        self.decode = u64::from_le_bytes(d);
    }
}

/// Evaluates ReLU number `gc_index` with the server's online input labels; returns the decoded
/// output `ReLU(x) - r'`.
pub fn evaluate_relu<C: BlockCipher>(
    hash: &TccrHash<C>,
    gc_index: u64,
    material: &GcMaterial,
    server_labels: &[Label; SHARE_BITS],
) -> u64 {
    let mut e = Evaluator {
        hash,
        gc_index,
        tables: &material.tables,
        gate: 0,
    };
    let out = relu_circuit(
        &mut e,
        server_labels,
        &material.client_labels,
        &material.mask_labels,
    );
    let permute = out
        .iter()
        .enumerate()
        .fold(0u64, |d, (i, &z)| d | ((z & 1) as u64) << i);
    permute ^ material.decode
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    fn plain(s: u64, c: u64, t: u64) -> (u64, PlainGates) {
        let mut g = PlainGates::default();
        let out = relu_circuit(&mut g, &bits(s), &bits(c), &bits(t));
        let v = out
            .iter()
            .enumerate()
            .fold(0u64, |v, (i, &b)| v | (b as u64) << i);
        (v, g)
    }

    #[test]
    fn circuit_computes_masked_relu_with_documented_gate_counts() {
        let cases = [
            (5u64, 7u64, 0u64),
            (u64::MAX, 0, 3),
            (1 << 63, 0, 9),
            ((-100i64) as u64, 30, 12345),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 1 << 40),
        ];
        for (s, c, t) in cases {
            let x = s.wrapping_add(c) as i64;
            let (z, g) = plain(s, c, t);
            assert_eq!(z, (x.max(0) as u64).wrapping_add(t));
            assert_eq!(g.ands, RELU_AND_GATES);
            assert_eq!(g.xors, RELU_XOR_GATES);
        }
        assert_eq!(RELU_AND_GATES, 189);
        assert_eq!(MATERIAL_BYTES, 8104);
    }

    struct Lcg(u128);

    impl Lcg {
        fn next(&mut self) -> u128 {
            self.0 = self
                .0
                .wrapping_mul(0x2545_f491_4f6c_dd1d_2545_f491_4f6c_dd1d)
                ^ (self.0 >> 61);
            self.0
        }
    }

    /// Garbles and evaluates one ReLU of random shares; returns (output, expected).
    fn round_trip<C: BlockCipher>(hash: &TccrHash<C>, rng: &mut Lcg, gc_index: u64) -> (u64, u64) {
        let delta = rng.next() | 1;
        let zs: [Label; 64] = core::array::from_fn(|_| rng.next());
        let zc: [Label; 64] = core::array::from_fn(|_| rng.next());
        let zt: [Label; 64] = core::array::from_fn(|_| rng.next());
        let mut m = GcMaterial::EMPTY;
        m.decode = garble_relu(hash, delta, gc_index, &zs, &zc, &zt, &mut m.tables);
        let (s, c, t) = (rng.next() as u64, rng.next() as u64, rng.next() as u64);
        m.client_labels = encode(&zc, delta, c);
        m.mask_labels = encode(&zt, delta, t);
        let z = evaluate_relu(hash, gc_index, &m, &encode(&zs, delta, s));
        let x = s.wrapping_add(c) as i64;
        (z, (x.max(0) as u64).wrapping_add(t))
    }

    #[test]
    fn garbled_evaluation_matches_plaintext() {
        let hash = GcHash::new();
        let mut rng = Lcg(0x9e37_79b9_7f4a_7c15);
        for gc_index in 0..16u64 {
            let (z, want) = round_trip(&hash, &mut rng, gc_index);
            assert_eq!(z, want, "gc {gc_index}");
        }
    }

    #[test]
    fn material_bytes_round_trip_and_a_wrong_tweak_gives_garbage() {
        let hash = GcHash::new();
        let mut rng = Lcg(17);
        let delta = rng.next() | 1;
        let zs: [Label; 64] = core::array::from_fn(|_| rng.next());
        let zc: [Label; 64] = core::array::from_fn(|_| rng.next());
        let zt: [Label; 64] = core::array::from_fn(|_| rng.next());
        let mut m = GcMaterial::EMPTY;
        m.decode = garble_relu(&hash, delta, 3, &zs, &zc, &zt, &mut m.tables);
        m.client_labels = encode(&zc, delta, 77);
        m.mask_labels = encode(&zt, delta, 5);
        let mut bytes = [0u8; MATERIAL_BYTES];
        m.write_bytes(&mut bytes);
        let mut back = GcMaterial::EMPTY;
        back.read_bytes(&bytes);
        assert_eq!(back, m);
        let mut streamed = GcMaterial::EMPTY;
        let mut at = 0;
        streamed
            .read_from(|buf: &mut [u8]| {
                buf.copy_from_slice(&bytes[at..at + buf.len()]);
                at += buf.len();
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!((streamed, at), (m.clone(), MATERIAL_BYTES));
        let labels = encode(&zs, delta, 23);
        assert_eq!(evaluate_relu(&hash, 3, &back, &labels), 100 + 5);
        // Another circuit's tweaks give garbage.
        assert_ne!(evaluate_relu(&hash, 4, &back, &labels), 105);
    }

    /// Counts the blocks it encrypts (a real permutation underneath, so circuits still work).
    #[derive(Default)]
    struct CountingCipher {
        inner: Aes128Cipher,
        blocks: Cell<usize>,
    }

    impl BlockCipher for CountingCipher {
        fn encrypt(&self, blocks: &mut [u128]) {
            self.blocks.set(self.blocks.get() + blocks.len());
            self.inner.encrypt(blocks);
        }
    }

    #[test]
    fn aes_blocks_per_relu_are_as_documented() {
        let hash = TccrHash::with_cipher(CountingCipher::default());
        let mut rng = Lcg(99);
        let delta = rng.next() | 1;
        let zero: [Label; 64] = core::array::from_fn(|_| rng.next());
        let mut m = GcMaterial::EMPTY;
        garble_relu(&hash, delta, 0, &zero, &zero, &zero, &mut m.tables);
        assert_eq!(hash.cipher.blocks.get(), GARBLE_AES_PER_RELU);
        hash.cipher.blocks.set(0);
        evaluate_relu(&hash, 0, &m, &zero);
        assert_eq!(hash.cipher.blocks.get(), EVAL_AES_PER_RELU);
        assert_eq!((EVAL_AES_PER_RELU, GARBLE_AES_PER_RELU), (694, 1388));
        // And the counting backend still garbles correctly (the cipher is pluggable).
        let (z, want) = round_trip(&hash, &mut rng, 5);
        assert_eq!(z, want);
    }

    /// The previous hash `AES(σ(x) ⊕ i) ⊕ σ(x)` is linear in `(x, i)` before the permutation,
    /// so two queries whose permutation inputs collide have outputs differing by a known value.
    /// The TCCR game (oracle `H(x ⊕ Δ, i) ⊕ b·Δ`, Δ secret) gives the adversary such pairs:
    /// here the distinguisher wins against the old construction and loses against TCCR.
    #[test]
    fn tccr_resists_the_distinguisher_that_broke_the_old_hash() {
        let aes = Aes128Cipher::new();
        let sigma = |x: u128| {
            let (hi, lo) = ((x >> 64) as u64, x as u64);
            (((hi ^ lo) as u128) << 64) | hi as u128
        };
        let old = |x: u128, i: u128| {
            let mut b = [sigma(x) ^ i];
            aes.encrypt(&mut b);
            b[0] ^ sigma(x)
        };
        let tccr = GcHash::new();
        let new = |x: u128, i: u128| tccr.hash([x], [i])[0];
        let mut rng = Lcg(0xdead_beef);
        let (mut old_wins, mut new_wins) = (0, 0);
        for _ in 0..200 {
            let delta = rng.next() | 1;
            // Oracle queries (x, i) and (x', i') with σ(x) ⊕ i = σ(x') ⊕ i': σ is linear.
            let (x, i) = (rng.next(), rng.next());
            let x2 = rng.next();
            let i2 = sigma(x) ^ i ^ sigma(x2);
            // For a random function these two answers are independent; the adversary guesses
            // "real" when they differ by σ(x) ⊕ σ(x') (computable without Δ: σ is linear).
            let guess = |h: &dyn Fn(u128, u128) -> u128| {
                h(x ^ delta, i) ^ h(x2 ^ delta, i2) == sigma(x) ^ sigma(x2)
            };
            old_wins += usize::from(guess(&old));
            new_wins += usize::from(guess(&new));
        }
        assert_eq!(old_wins, 200, "the old hash is distinguishable every time");
        assert_eq!(new_wins, 0, "TCCR shows no such relation");
    }
}
