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
//! is two 16-byte ciphertexts. The hash is `H(x, j) = AES_k(σ(x) ⊕ j) ⊕ σ(x)` with a fixed public
//! key `k` and the orthomorphism `σ(hi ‖ lo) = (hi ⊕ lo) ‖ hi` (the tweakable fixed-key hash of
//! Guo, Katz, Wang, Yu, S&P 2020): the evaluator runs 2 AES blocks per AND, the garbler 4.
//! Every AND gate of an inference gets a unique tweak (`gc_index · 189 + gate`), so one `Δ`
//! serves all circuits.
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
/// AES-128 block encryptions the evaluator runs per AND gate.
pub const EVAL_AES_PER_AND: usize = 2;
/// 128-bit XOR/AND word operations the evaluator runs per AND gate in [`evaluate_relu`]: per
/// hash σ, tweak and feed-forward (3 each), then two select masks, `te ⊕ a`, two XORs of the
/// selected rows and the final XOR (6 more).
pub const EVAL_WORD_OPS_PER_AND: usize = 12;

/// A wire label (the lowest bit is the point-and-permute bit).
pub type Label = u128;

/// The fixed public AES key of the garbling hash (any public constant works).
const FIXED_KEY: [u8; 16] = *b"pi-toolkit-gc-k1";

/// The tweakable fixed-key hash shared by garbler and evaluator.
#[derive(Clone)]
pub struct GcHash(Aes128);

impl core::fmt::Debug for GcHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GcHash")
    }
}

impl Default for GcHash {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn sigma(x: u128) -> u128 {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    (((hi ^ lo) as u128) << 64) | hi as u128
}

impl GcHash {
    /// Keys AES-128 with the fixed public key.
    pub fn new() -> Self {
        Self(Aes128::new(&GenericArray::from(FIXED_KEY)))
    }

    /// `H(x_i, tweak_i)` for `N` inputs at once (lets AES-NI pipeline the blocks).
    #[inline]
    fn hash<const N: usize>(&self, x: [u128; N], tweak: [u128; N]) -> [u128; N] {
        let pre: [u128; N] = core::array::from_fn(|i| sigma(x[i]));
        let mut blocks: [aes::Block; N] =
            core::array::from_fn(|i| GenericArray::from((pre[i] ^ tweak[i]).to_le_bytes()));
        self.0.encrypt_blocks(&mut blocks);
        core::array::from_fn(|i| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&blocks[i]);
            u128::from_le_bytes(b) ^ pre[i]
        })
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
    let mut y = [x[0]; SHARE_BITS - 1];
    for (yi, &xi) in y.iter_mut().zip(&x) {
        *yi = g.and(xi, positive);
    }
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

#[inline(always)]
fn tweaks(gc_index: u64, gate: usize) -> (u128, u128) {
    let id = (gc_index as u128) * RELU_AND_GATES as u128 + gate as u128;
    (id << 1, (id << 1) | 1)
}

struct Garbler<'a> {
    hash: &'a GcHash,
    delta: Label,
    gc_index: u64,
    tables: &'a mut [Label; TABLE_LABELS],
    gate: usize,
}

impl Gates for Garbler<'_> {
    type Wire = Label;
    fn xor(&mut self, a: Label, b: Label) -> Label {
        a ^ b
    }
    fn and(&mut self, a0: Label, b0: Label) -> Label {
        let d = self.delta;
        let (j0, j1) = tweaks(self.gc_index, self.gate);
        let [ha0, ha1, hb0, hb1] = self.hash.hash([a0, a0 ^ d, b0, b0 ^ d], [j0, j0, j1, j1]);
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
    fn not(&mut self, a0: Label) -> Label {
        a0 ^ self.delta
    }
}

struct Evaluator<'a> {
    hash: &'a GcHash,
    gc_index: u64,
    tables: &'a [Label; TABLE_LABELS],
    gate: usize,
}

impl Gates for Evaluator<'_> {
    type Wire = Label;
    fn xor(&mut self, a: Label, b: Label) -> Label {
        a ^ b
    }
    fn and(&mut self, a: Label, b: Label) -> Label {
        let (j0, j1) = tweaks(self.gc_index, self.gate);
        let (tg, te) = match self.tables.get(2 * self.gate..2 * self.gate + 2) {
            Some(row) => (row[0], row[1]),
            None => (0, 0),
        };
        let [ha, hb] = self.hash.hash([a, b], [j0, j1]);
        self.gate += 1;
        (ha ^ select(a, tg)) ^ (hb ^ select(b, te ^ a))
    }
    fn not(&mut self, a: Label) -> Label {
        // The garbler flipped the meaning of the label; the evaluator's label is unchanged.
        a
    }
}

/// The labels of `value`'s bits given the wires' zero labels: `zero_i ⊕ bit_i · Δ`.
pub fn encode(zero: &[Label; SHARE_BITS], delta: Label, value: u64) -> [Label; SHARE_BITS] {
    core::array::from_fn(|i| zero[i] ^ select((value >> i) as u128, delta))
}

/// Garbles ReLU number `gc_index` of an inference: writes its tables and returns the output
/// decoding bits. `delta` must have its lowest bit set.
pub fn garble_relu(
    hash: &GcHash,
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

    /// Serializes to exactly [`MATERIAL_BYTES`] bytes (labels little-endian), for storage or
    /// streaming from flash.
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
pub fn evaluate_relu(
    hash: &GcHash,
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

    #[test]
    fn garbled_evaluation_matches_plaintext() {
        let hash = GcHash::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u128;
        let mut next = || {
            x = x.wrapping_mul(0x2545_f491_4f6c_dd1d_2545_f491_4f6c_dd1d) ^ (x >> 61);
            x
        };
        let delta = next() | 1;
        for gc_index in 0..8u64 {
            let zs: [Label; 64] = core::array::from_fn(|_| next());
            let zc: [Label; 64] = core::array::from_fn(|_| next());
            let zt: [Label; 64] = core::array::from_fn(|_| next());
            let mut m = GcMaterial::EMPTY;
            m.decode = garble_relu(&hash, delta, gc_index, &zs, &zc, &zt, &mut m.tables);
            let (s, c, t) = (
                next() as u64,
                next() as u64 >> (gc_index * 8),
                next() as u64,
            );
            m.client_labels = encode(&zc, delta, c);
            m.mask_labels = encode(&zt, delta, t);
            let mut bytes = [0u8; MATERIAL_BYTES];
            m.write_bytes(&mut bytes);
            let mut back = GcMaterial::EMPTY;
            back.read_bytes(&bytes);
            assert_eq!(back, m);
            let z = evaluate_relu(&hash, gc_index, &back, &encode(&zs, delta, s));
            let x = s.wrapping_add(c) as i64;
            assert_eq!(z, (x.max(0) as u64).wrapping_add(t), "gc {gc_index}");
            // A wrong tweak (another circuit's index) gives garbage.
            assert_ne!(
                evaluate_relu(&hash, gc_index + 1, &m, &encode(&zs, delta, s)),
                z
            );
        }
    }
}
