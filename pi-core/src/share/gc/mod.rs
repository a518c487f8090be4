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
//!
//! # The sign circuit
//!
//! The split ReLU ([`super::relu`]) garbles only `DReLU` of a `t`-bit sum ([`sign_circuit`]):
//! the carry chain into the top bit, `t − 1` ANDs; the client learns the colour bit of the output
//! wire, an XOR share of `DReLU(x)`, and the multiplication by `x` happens outside the circuit.
//!
//! # Lock-step
//!
//! [`garble_relus`], [`evaluate_relus`], [`garble_signs`] and [`evaluate_signs`] run `B` circuits
//! of one layer gate by gate, so each hash call takes the `B` circuits' blocks together; the tables
//! are the same bytes as `B` calls of one circuit each (tested). The `_relu`/`_sign` functions are
//! the `B = 1` case.
//!
//! Inside: `hash` (TCCR over a [`BlockCipher`]), `circuit` (the circuits over a [`Gates`]
//! backend), `halfgates` (the garbling and evaluation backends).

mod circuit;
mod halfgates;
mod hash;

pub use circuit::{Gates, PlainGates, RELU_SHARED_ANDS, bits, relu_circuit, sign_circuit};
pub use hash::{Aes128Cipher, BlockCipher, GcHash, TccrHash};

use halfgates::{Evaluator, Garbler, select, tweaks};

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
/// AES blocks the evaluator runs per ReLU: 4 per AND (two TCCR hashes of two calls each), less
/// one first call per multiplexer AND after the first (the shared sign wire's `π(x)` is reused).
pub const EVAL_AES_PER_RELU: usize = 4 * RELU_AND_GATES - (RELU_SHARED_ANDS - 1);
/// AES blocks the garbler runs per ReLU: 8 per AND, less two per multiplexer AND after the first.
pub const GARBLE_AES_PER_RELU: usize = 8 * RELU_AND_GATES - 2 * (RELU_SHARED_ANDS - 1);

/// A wire label (the lowest bit is the point-and-permute bit).
pub type Label = u128;

/// Gate ids per circuit in the tweak space: circuit `gc_index` owns ids `gc_index · 189 ..`, one
/// per AND of the full ReLU; the split ReLU's sign circuit uses the first `t − 1` and its
/// multiplexer pad the last ([`MUX_PAD_GATE`]).
pub const TWEAK_STRIDE: usize = RELU_AND_GATES;
/// The gate id, within its circuit's stride, of the split ReLU's multiplexer pad.
pub const MUX_PAD_GATE: usize = TWEAK_STRIDE - 1;
/// Widest sign circuit (a whole share).
pub const SIGN_MAX_BITS: usize = SHARE_BITS;

/// AND gates of the sign circuit on `t` bits.
pub const fn sign_and_gates(t: usize) -> usize {
    t.saturating_sub(1)
}

/// AES blocks the evaluator runs per split ReLU on `t` bits: 4 per AND and 2 for the
/// multiplexer pad.
pub const fn sign_eval_aes(t: usize) -> usize {
    4 * sign_and_gates(t) + 2
}

/// AES blocks the garbler runs per split ReLU on `t` bits: 8 per AND and 4 for the two pads.
pub const fn sign_garble_aes(t: usize) -> usize {
    8 * sign_and_gates(t) + 4
}

/// Transposes per-circuit label arrays into per-wire lanes.
fn lanes<const N: usize, const B: usize>(per_circuit: [&[Label; N]; B]) -> [[Label; B]; N] {
    core::array::from_fn(|w| core::array::from_fn(|i| per_circuit[i][w]))
}

/// Per-circuit permute bits of the 64 output wires.
fn permute_bits<const B: usize>(out: &[[Label; B]; SHARE_BITS]) -> [u64; B] {
    core::array::from_fn(|i| {
        out.iter()
            .enumerate()
            .fold(0u64, |d, (w, z)| d | ((z[i] & 1) as u64) << w)
    })
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
    let [d] = garble_relus(
        hash,
        delta,
        [gc_index],
        [server_zero],
        [client_zero],
        [mask_zero],
        [tables],
    );
    d
}

/// Garbles `B` ReLUs in lock-step (see the [module docs](self)): the same tables as `B` calls of
/// [`garble_relu`].
pub fn garble_relus<C: BlockCipher, const B: usize>(
    hash: &TccrHash<C>,
    delta: Label,
    gc_index: [u64; B],
    server_zero: [&[Label; SHARE_BITS]; B],
    client_zero: [&[Label; SHARE_BITS]; B],
    mask_zero: [&[Label; SHARE_BITS]; B],
    tables: [&mut [Label; TABLE_LABELS]; B],
) -> [u64; B] {
    let mut g = Garbler {
        hash,
        delta,
        gc_index,
        tables: tables.map(|t| &mut t[..]),
        gate: 0,
    };
    let out = relu_circuit(
        &mut g,
        &lanes(server_zero),
        &lanes(client_zero),
        &lanes(mask_zero),
    );
    permute_bits(&out)
}

/// Garbles `B` sign circuits on `t = server_zero[i].len()` bits in lock-step: writes each
/// circuit's `2(t − 1)` table labels and returns the zero label of each `DReLU` output wire.
/// Every circuit of a batch has the same `t` (at least 2, at most [`SIGN_MAX_BITS`]).
pub fn garble_signs<C: BlockCipher, const B: usize>(
    hash: &TccrHash<C>,
    delta: Label,
    gc_index: [u64; B],
    server_zero: [&[Label]; B],
    client_zero: [&[Label]; B],
    tables: [&mut [Label]; B],
) -> [Label; B] {
    let t = server_zero[0].len().min(SIGN_MAX_BITS);
    let wire = |side: &[&[Label]; B], w: usize| -> [Label; B] {
        core::array::from_fn(|i| side[i].get(w).copied().unwrap_or(0))
    };
    let s: [[Label; B]; SIGN_MAX_BITS] = core::array::from_fn(|w| wire(&server_zero, w));
    let c: [[Label; B]; SIGN_MAX_BITS] = core::array::from_fn(|w| wire(&client_zero, w));
    let mut g = Garbler {
        hash,
        delta,
        gc_index,
        tables,
        gate: 0,
    };
    sign_circuit(&mut g, &s[..t], &c[..t])
}

/// The 64-bit pad of a `DReLU` label for the split ReLU's multiplexer: the low half of
/// `H(label, tweak)` with circuit `gc_index`'s pad tweak (both parties compute it).
pub fn mux_pad<C: BlockCipher>(hash: &TccrHash<C>, gc_index: u64, label: Label) -> u64 {
    let (tweak, _) = tweaks(gc_index, MUX_PAD_GATE);
    hash.hash_one(label, tweak) as u64
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

    /// Bytes of one ReLU's material on the wire: [`MATERIAL_BYTES`] for the full circuit
    /// (`sign_bits == None`); for a sign circuit on `t` bits, its `2(t − 1)` table labels and
    /// the client's `t` input labels (no mask labels, no decoding bits).
    pub const fn wire_bytes(sign_bits: Option<usize>) -> usize {
        match sign_bits {
            None => MATERIAL_BYTES,
            Some(t) => (2 * sign_and_gates(t) + t) * LABEL_BYTES,
        }
    }

    /// Lengths of the runs of labels the wire carries, in order: tables, the client's labels,
    /// the mask labels (see [`GcMaterial::wire_bytes`]).
    fn run_lens(sign_bits: Option<usize>) -> [usize; 3] {
        match sign_bits {
            None => [TABLE_LABELS, SHARE_BITS, SHARE_BITS],
            Some(t) => {
                let t = t.min(SIGN_MAX_BITS);
                [2 * sign_and_gates(t), t, 0]
            }
        }
    }

    /// Serializes to [`GcMaterial::wire_bytes`] bytes through `send` (labels little-endian:
    /// tables first, then the client's labels, for the full circuit also the mask labels and the
    /// decoding bits): the order the evaluator needs them in, and the byte order of streamed
    /// material. `send` gets at most 256 bytes at a time.
    pub fn write_to<E>(
        &self,
        sign_bits: Option<usize>,
        mut send: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        const CHUNK: usize = 16;
        let mut buf = [0u8; CHUNK * LABEL_BYTES];
        let [tables, client, mask] = Self::run_lens(sign_bits);
        for labels in [
            &self.tables[..tables],
            &self.client_labels[..client],
            &self.mask_labels[..mask],
        ] {
            for chunk in labels.chunks(CHUNK) {
                let bytes = &mut buf[..chunk.len() * LABEL_BYTES];
                for (b, l) in bytes.chunks_exact_mut(LABEL_BYTES).zip(chunk) {
                    b.copy_from_slice(&l.to_le_bytes());
                }
                send(bytes)?;
            }
        }
        if sign_bits.is_none() {
            send(&self.decode.to_le_bytes())?;
        }
        Ok(())
    }

    /// Reads the bytes of [`GcMaterial::write_to`] from `recv`, which fills the buffers it is
    /// given (at most 256 bytes each), so no 8 KiB buffer is needed on the way in.
    pub fn read_from<E>(
        &mut self,
        sign_bits: Option<usize>,
        mut recv: impl FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        const CHUNK: usize = 16;
        let mut buf = [0u8; CHUNK * LABEL_BYTES];
        let [tables, client, mask] = Self::run_lens(sign_bits);
        for labels in [
            &mut self.tables[..tables],
            &mut self.client_labels[..client],
            &mut self.mask_labels[..mask],
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
        if sign_bits.is_none() {
            let mut d = [0u8; DECODE_BYTES];
            recv(&mut d)?;
            self.decode = u64::from_le_bytes(d);
        }
        Ok(())
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
    let [z] = evaluate_relus(hash, [gc_index], [material], [server_labels]);
    z
}

/// Evaluates `B` ReLUs in lock-step; the same outputs as `B` calls of [`evaluate_relu`].
pub fn evaluate_relus<C: BlockCipher, const B: usize>(
    hash: &TccrHash<C>,
    gc_index: [u64; B],
    material: [&GcMaterial; B],
    server_labels: [&[Label; SHARE_BITS]; B],
) -> [u64; B] {
    let mut e = Evaluator {
        hash,
        gc_index,
        tables: material.map(|m| &m.tables[..]),
        gate: 0,
    };
    let out = relu_circuit(
        &mut e,
        &lanes(server_labels),
        &lanes(material.map(|m| &m.client_labels)),
        &lanes(material.map(|m| &m.mask_labels)),
    );
    let permute = permute_bits(&out);
    core::array::from_fn(|i| permute[i] ^ material[i].decode)
}

/// Evaluates `B` sign circuits on `t = server_labels[i].len()` bits in lock-step; returns each
/// circuit's `DReLU` output label (its lowest bit, the colour, is the client's XOR share of
/// `DReLU`). `material[i]` holds the tables and the client's `t` input labels.
pub fn evaluate_signs<C: BlockCipher, const B: usize>(
    hash: &TccrHash<C>,
    gc_index: [u64; B],
    material: [&GcMaterial; B],
    server_labels: [&[Label]; B],
) -> [Label; B] {
    let t = server_labels[0].len().min(SIGN_MAX_BITS);
    let s: [[Label; B]; SIGN_MAX_BITS] = core::array::from_fn(|w| {
        core::array::from_fn(|i| server_labels[i].get(w).copied().unwrap_or(0))
    });
    let c: [[Label; B]; SIGN_MAX_BITS] =
        core::array::from_fn(|w| core::array::from_fn(|i| material[i].client_labels[w]));
    let mut e = Evaluator {
        hash,
        gc_index,
        tables: material.map(|m| &m.tables[..]),
        gate: 0,
    };
    sign_circuit(&mut e, &s[..t], &c[..t])
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
        let (back, n) = through_the_wire(&m, None);
        assert_eq!((&back, n), (&m, MATERIAL_BYTES));
        let labels = encode(&zs, delta, 23);
        assert_eq!(evaluate_relu(&hash, 3, &back, &labels), 100 + 5);
        // Another circuit's tweaks give garbage.
        assert_ne!(evaluate_relu(&hash, 4, &back, &labels), 105);
    }

    /// Writes `m` as the wire carries it and reads it back; returns the copy and the byte count.
    fn through_the_wire(m: &GcMaterial, sign_bits: Option<usize>) -> (GcMaterial, usize) {
        let mut bytes = [0u8; MATERIAL_BYTES];
        let mut n = 0;
        m.write_to(sign_bits, |b: &[u8]| {
            bytes[n..n + b.len()].copy_from_slice(b);
            n += b.len();
            Ok::<(), ()>(())
        })
        .unwrap();
        let mut back = GcMaterial::EMPTY;
        let mut at = 0;
        back.read_from(sign_bits, |buf: &mut [u8]| {
            buf.copy_from_slice(&bytes[at..at + buf.len()]);
            at += buf.len();
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(at, n);
        assert_eq!(n, GcMaterial::wire_bytes(sign_bits));
        (back, n)
    }

    #[test]
    fn lock_step_gives_the_same_tables_and_outputs_as_one_at_a_time() {
        const B: usize = 4;
        let hash = GcHash::new();
        let mut rng = Lcg(4242);
        let delta = rng.next() | 1;
        let gc: [u64; B] = [7, 8, 9, 30];
        let zero = |rng: &mut Lcg| -> [[Label; 64]; B] {
            core::array::from_fn(|_| core::array::from_fn(|_| rng.next()))
        };
        let (zs, zc, zt) = (zero(&mut rng), zero(&mut rng), zero(&mut rng));
        // Full circuits.
        let mut one: [GcMaterial; B] = core::array::from_fn(|_| GcMaterial::EMPTY);
        for i in 0..B {
            one[i].decode = garble_relu(
                &hash,
                delta,
                gc[i],
                &zs[i],
                &zc[i],
                &zt[i],
                &mut one[i].tables,
            );
        }
        let mut batch: [GcMaterial; B] = core::array::from_fn(|_| GcMaterial::EMPTY);
        let decode = garble_relus(
            &hash,
            delta,
            gc,
            zs.each_ref(),
            zc.each_ref(),
            zt.each_ref(),
            batch.each_mut().map(|m| &mut m.tables),
        );
        for i in 0..B {
            batch[i].decode = decode[i];
            let v = rng.next() as u64;
            for m in [&mut one[i], &mut batch[i]] {
                m.client_labels = encode(&zc[i], delta, v);
                m.mask_labels = encode(&zt[i], delta, 99);
            }
        }
        assert_eq!(one, batch);
        let s: [[Label; 64]; B] = core::array::from_fn(|i| encode(&zs[i], delta, 1000 + i as u64));
        let z = evaluate_relus(&hash, gc, batch.each_ref(), s.each_ref());
        for i in 0..B {
            assert_eq!(z[i], evaluate_relu(&hash, gc[i], &one[i], &s[i]));
        }
        // Sign circuits on 16 bits.
        let t = 16;
        let mut one_t: [[Label; TABLE_LABELS]; B] = [[0; TABLE_LABELS]; B];
        let mut w0 = [0u128; B];
        for i in 0..B {
            [w0[i]] = garble_signs(
                &hash,
                delta,
                [gc[i]],
                [&zs[i][..t]],
                [&zc[i][..t]],
                [&mut one_t[i][..]],
            );
        }
        let mut batch_t: [[Label; TABLE_LABELS]; B] = [[0; TABLE_LABELS]; B];
        let w0_batch = garble_signs(
            &hash,
            delta,
            gc,
            core::array::from_fn(|i| &zs[i][..t]),
            core::array::from_fn(|i| &zc[i][..t]),
            batch_t.each_mut().map(|x| &mut x[..]),
        );
        assert_eq!((one_t, w0), (batch_t, w0_batch));
    }

    #[test]
    fn the_sign_circuit_computes_drelu_of_the_wrapped_sum_with_t_minus_1_ands() {
        let mut rng = Lcg(5);
        let hash = GcHash::new();
        let delta = rng.next() | 1;
        for t in [2usize, 3, 8, 12, 16, 24, 32, 63, 64] {
            for k in 0..40u64 {
                let (a, b) = (rng.next() as u64, rng.next() as u64);
                let (a, b) = if k == 0 {
                    (0, 0)
                } else if k == 1 {
                    (u64::MAX, 1)
                } else {
                    (a, b)
                };
                let mask = if t == 64 { u64::MAX } else { (1u64 << t) - 1 };
                let sum = a.wrapping_add(b) & mask;
                let negative = sum >> (t - 1) & 1 == 1;
                let mut g = PlainGates::default();
                let (ab, bb) = (bits(a), bits(b));
                assert_eq!(sign_circuit(&mut g, &ab[..t], &bb[..t]), !negative, "t {t}");
                assert_eq!(g.ands, sign_and_gates(t));
                // Garbled: the evaluator's label is the zero label, or it ⊕ Δ when DReLU = 1.
                let zs: [Label; 64] = core::array::from_fn(|_| rng.next());
                let zc: [Label; 64] = core::array::from_fn(|_| rng.next());
                let mut m = GcMaterial::EMPTY;
                let [w0] = garble_signs(
                    &hash,
                    delta,
                    [k],
                    [&zs[..t]],
                    [&zc[..t]],
                    [&mut m.tables[..]],
                );
                m.client_labels = encode(&zc, delta, b);
                let (back, _) = through_the_wire(&m, Some(t));
                let server = encode(&zs, delta, a);
                let [w] = evaluate_signs(&hash, [k], [&back], [&server[..t]]);
                assert_eq!(w, w0 ^ select(u128::from(!negative), delta), "t {t}");
            }
        }
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
        // The split ReLU's sign circuit and pads.
        for t in [2usize, 16, 64] {
            let hash = TccrHash::with_cipher(CountingCipher::default());
            let zero = [1u128; 64];
            let mut tables = [0u128; TABLE_LABELS];
            let [w0] = garble_signs(&hash, 3, [0], [&zero[..t]], [&zero[..t]], [&mut tables[..]]);
            mux_pad(&hash, 0, w0);
            mux_pad(&hash, 0, w0 ^ 3);
            assert_eq!(
                hash.cipher().blocks.get(),
                sign_garble_aes(t),
                "garble, t {t}"
            );
            hash.cipher().blocks.set(0);
            let mut m = GcMaterial::EMPTY;
            m.tables = tables;
            let [w] = evaluate_signs(&hash, [0], [&m], [&zero[..t]]);
            mux_pad(&hash, 0, w);
            assert_eq!(
                hash.cipher().blocks.get(),
                sign_eval_aes(t),
                "evaluate, t {t}"
            );
        }
        let hash = TccrHash::with_cipher(CountingCipher::default());
        let mut rng = Lcg(99);
        let delta = rng.next() | 1;
        let zero: [Label; 64] = core::array::from_fn(|_| rng.next());
        let mut m = GcMaterial::EMPTY;
        garble_relu(&hash, delta, 0, &zero, &zero, &zero, &mut m.tables);
        assert_eq!(hash.cipher().blocks.get(), GARBLE_AES_PER_RELU);
        hash.cipher().blocks.set(0);
        evaluate_relu(&hash, 0, &m, &zero);
        assert_eq!(hash.cipher().blocks.get(), EVAL_AES_PER_RELU);
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
        let new = |x: u128, i: u128| tccr.hash_one(x, i);
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
