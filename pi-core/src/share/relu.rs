//! How a layer's kept ReLUs are evaluated: a protocol choice, not a circuit.
//!
//! * [`ReluKind::Full`]: the 189-AND garbled circuit of [`super::gc`], `ReLU(s + c) − r'`
//!   computed inside the circuit.
//! * [`ReluKind::Split`]: `ReLU(x) = x · DReLU(x)` (the reformulation of Circa, Ghodsi, Jha,
//!   Reagen, Garg, NeurIPS 2021). Only `DReLU` is garbled: each party reduces its share to `h` bits
//!   and drops the `k` lowest (Circa's truncated sign), and the sign circuit runs on
//!   `t = h − k` bits with `t − 1` ANDs ([`super::gc::sign_circuit`]). The
//!   client learns the colour bit of the output wire: an XOR share of `DReLU(x)`. The product with
//!   the 64-bit shares happens outside the circuit with the two standard gadgets of a multiplexer
//!   (as CrypTFlow2's `F_MUX`, here with a garbled bit): one garbled-bit-times-value ciphertext for
//!   the server's share, and one random OT for the client's share ([`mux`] has the
//!   algebra). In this simulation the random OT comes from the dealer, as the other OT material.
//!
//! With `h = 64, k = 0` the split ReLU is exact (bit-exact with the full circuit, tested). Reduced
//! widths change correctness, not privacy: the sign is only wrong where `0 <= x < 2^k` (the
//! dropped carry), so the output is 0 instead of `x < 2^k`; the reduced shares never wrap, because
//! `h` covers the model's proven activation bound ([`super::bounds`]).

use core::fmt;

use super::WORD_BYTES;
use super::bounds::{activation_bounds, range_bits};
use super::gc::{self, GcMaterial, LABEL_BYTES, SHARE_BITS};
use crate::layer::Op;
use crate::model::{MAX_LAYERS, Model};

/// Which ReLU protocol a layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReluKind {
    /// The full garbled ReLU (189 ANDs).
    Full,
    /// Garbled sign on `t` bits plus multiplexer.
    Split,
}

impl ReluKind {
    /// Short lowercase name (`full`, `split`).
    pub fn name(&self) -> &'static str {
        match self {
            ReluKind::Full => "full",
            ReluKind::Split => "split",
        }
    }
}

/// Why ReLU parameters are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReluParamError {
    /// The sign width is not in `2..=64`.
    SignBits {
        /// The width asked for.
        bits: u8,
    },
    /// The range `h` is narrower than the layer's proven activation bound needs: reduced shares
    /// would wrap and signs would be wrong far from zero.
    RangeTooNarrow {
        /// The layer.
        layer: usize,
        /// The range asked for.
        range_bits: u8,
        /// The range the proven bound needs.
        needed: u8,
    },
    /// No bound on the inputs is known, so no range can be proven.
    NoInputBound,
    /// The range `h` is below the sign width `t` or above 64.
    Range {
        /// The layer.
        layer: usize,
        /// The range given.
        range_bits: u8,
        /// The sign width.
        sign_bits: u8,
    },
}

impl fmt::Display for ReluParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReluParamError::SignBits { bits } => {
                write!(f, "sign width {bits} bits: it must be 2 to 64")
            }
            ReluParamError::RangeTooNarrow {
                layer,
                range_bits,
                needed,
            } => write!(
                f,
                "layer {layer}: a {range_bits}-bit range is narrower than the {needed} bits the layer's proven activation bound needs"
            ),
            ReluParamError::NoInputBound => write!(
                f,
                "no bound on the inputs is known, so the split ReLU's ranges cannot be proven"
            ),
            ReluParamError::Range {
                layer,
                range_bits,
                sign_bits,
            } => write!(
                f,
                "layer {layer}: range {range_bits} bits must be at least the sign width {sign_bits} and at most 64"
            ),
        }
    }
}

impl core::error::Error for ReluParamError {}

/// One layer's ReLU protocol and widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReluParams {
    kind: ReluKind,
    sign_bits: u8,
    range_bits: u8,
}

impl ReluParams {
    /// The full garbled ReLU.
    pub const FULL: ReluParams = ReluParams {
        kind: ReluKind::Full,
        sign_bits: SHARE_BITS as u8,
        range_bits: SHARE_BITS as u8,
    };

    /// The split ReLU with a sign circuit on `sign_bits = t` bits of an `range_bits = h`-bit
    /// range (`2 <= t <= h <= 64`; `k = h − t` low bits dropped). `layer` names it in errors.
    pub fn split(layer: usize, sign_bits: u8, range_bits: u8) -> Result<Self, ReluParamError> {
        if !(2..=SHARE_BITS as u8).contains(&sign_bits) {
            return Err(ReluParamError::SignBits { bits: sign_bits });
        }
        if range_bits < sign_bits || range_bits > SHARE_BITS as u8 {
            return Err(ReluParamError::Range {
                layer,
                range_bits,
                sign_bits,
            });
        }
        Ok(Self {
            kind: ReluKind::Split,
            sign_bits,
            range_bits,
        })
    }

    /// The protocol.
    pub const fn kind(&self) -> ReluKind {
        self.kind
    }

    /// Width `t` of the sign circuit's inputs (64 for the full ReLU).
    pub const fn sign_bits(&self) -> u8 {
        self.sign_bits
    }

    /// Range `h` the shares are reduced to.
    pub const fn range_bits(&self) -> u8 {
        self.range_bits
    }

    /// Low bits `k = h − t` each party drops.
    pub const fn dropped_bits(&self) -> u8 {
        self.range_bits - self.sign_bits
    }

    /// `Some(t)` for the split ReLU (its material layout), `None` for the full one.
    pub const fn sign_width(&self) -> Option<usize> {
        match self.kind {
            ReluKind::Full => None,
            ReluKind::Split => Some(self.sign_bits as usize),
        }
    }

    /// One party's share reduced locally for the sign circuit: `(share mod 2^h) >> k`.
    pub const fn reduce(&self, share: u64) -> u64 {
        let h = self.range_bits as u32;
        let low = if h >= 64 {
            share
        } else {
            share & ((1u64 << h) - 1)
        };
        low >> self.dropped_bits()
    }

    /// AND gates garbled per ReLU.
    pub const fn and_gates(&self) -> usize {
        match self.kind {
            ReluKind::Full => gc::RELU_AND_GATES,
            ReluKind::Split => gc::sign_and_gates(self.sign_bits as usize),
        }
    }

    /// AES blocks the client runs to evaluate one ReLU.
    pub const fn eval_aes_blocks(&self) -> usize {
        match self.kind {
            ReluKind::Full => gc::EVAL_AES_PER_RELU,
            ReluKind::Split => gc::sign_eval_aes(self.sign_bits as usize),
        }
    }

    /// AES blocks the garbler runs per ReLU.
    pub const fn garble_aes_blocks(&self) -> usize {
        match self.kind {
            ReluKind::Full => gc::GARBLE_AES_PER_RELU,
            ReluKind::Split => gc::sign_garble_aes(self.sign_bits as usize),
        }
    }

    /// Bytes of the client's material per ReLU (stored, or streamed before its labels).
    pub const fn material_bytes(&self) -> usize {
        GcMaterial::wire_bytes(self.sign_width())
    }

    /// Bytes the server sends online per ReLU: the labels of its input bits, and for the split
    /// ReLU the multiplexer ciphertext.
    pub const fn label_bytes(&self) -> usize {
        match self.kind {
            ReluKind::Full => gc::INPUT_LABEL_BYTES,
            ReluKind::Split => self.sign_bits as usize * LABEL_BYTES + WORD_BYTES,
        }
    }

    /// Bytes the client sends after evaluating, per ReLU (the split ReLU's OT correction).
    pub const fn correction_bytes(&self) -> usize {
        match self.kind {
            ReluKind::Full => 0,
            ReluKind::Split => WORD_BYTES,
        }
    }

    /// Bytes of ChaCha20 keystream the client draws per ReLU: the re-share mask, and for the
    /// split ReLU the mask again and the OT pair twice (evaluation, then the correction).
    pub const fn client_keystream_bytes(&self) -> usize {
        match self.kind {
            ReluKind::Full => WORD_BYTES,
            ReluKind::Split => 3 * WORD_BYTES + 2 * 2 * WORD_BYTES,
        }
    }

    /// Bytes the server keeps per ReLU between the phases: its input zero labels and its
    /// output share (full), or its input zero labels, the two pads, the permute bit and its OT
    /// output (split).
    pub const fn server_storage_bytes(&self) -> usize {
        match self.kind {
            ReluKind::Full => gc::INPUT_LABEL_BYTES + WORD_BYTES,
            ReluKind::Split => self.sign_bits as usize * LABEL_BYTES + 3 * WORD_BYTES + 1,
        }
    }
}

/// The ReLU parameters of every layer of a model (layers without kept ReLUs: full, unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReluPlan {
    layers: [ReluParams; MAX_LAYERS],
}

impl Default for ReluPlan {
    fn default() -> Self {
        Self::full()
    }
}

impl ReluPlan {
    /// Every layer full.
    pub fn full() -> Self {
        Self {
            layers: [ReluParams::FULL; MAX_LAYERS],
        }
    }

    /// The parameters of layer `layer`.
    pub fn layer(&self, layer: usize) -> ReluParams {
        self.layers.get(layer).copied().unwrap_or(ReluParams::FULL)
    }

    /// The sign width of the narrowest split layer, `None` when every layer is full.
    pub fn narrowest_split(&self) -> Option<u8> {
        self.layers
            .iter()
            .filter(|p| p.kind == ReluKind::Split)
            .map(|p| p.sign_bits)
            .min()
    }

    /// Sets layer `layer`'s parameters.
    pub fn set(&mut self, layer: usize, params: ReluParams) {
        if let Some(slot) = self.layers.get_mut(layer) {
            *slot = params;
        }
    }

    /// The split ReLU on `sign_bits` bits in every layer with kept ReLUs, each layer's range the
    /// narrowest its proven activation bound allows for inputs `|x| <= input_bound` (at least
    /// `sign_bits`; the server computes this, it needs the weights).
    pub fn split(
        model: &Model<'_>,
        sign_bits: u8,
        input_bound: u64,
    ) -> Result<Self, ReluParamError> {
        let bounds = activation_bounds(model, input_bound);
        Self::split_with(model, sign_bits, |layer| {
            range_bits(bounds.get(layer.input).copied().unwrap_or(u128::MAX))
        })
    }

    /// As [`ReluPlan::split`] with each layer's range given by `range(layer)` (at least
    /// `sign_bits` is used).
    pub fn split_with(
        model: &Model<'_>,
        sign_bits: u8,
        mut range: impl FnMut(&crate::Layer<'_>) -> u8,
    ) -> Result<Self, ReluParamError> {
        let mut plan = Self::full();
        for layer in model.layers() {
            if let Op::MaskedRelu(mask) = layer.op
                && mask.kept() > 0
            {
                let h = range(&layer).max(sign_bits);
                plan.set(layer.index, ReluParams::split(layer.index, sign_bits, h)?);
            }
        }
        Ok(plan)
    }

    /// Checks that every split layer's range covers its proven bound for inputs
    /// `|x| <= input_bound`.
    pub fn check_ranges(&self, model: &Model<'_>, input_bound: u64) -> Result<(), ReluParamError> {
        let bounds = activation_bounds(model, input_bound);
        for layer in model.layers() {
            let p = self.layer(layer.index);
            if p.kind() != ReluKind::Split {
                continue;
            }
            let needed = range_bits(bounds.get(layer.input).copied().unwrap_or(u128::MAX));
            if p.range_bits() < needed {
                return Err(ReluParamError::RangeTooNarrow {
                    layer: layer.index,
                    range_bits: p.range_bits(),
                    needed,
                });
            }
        }
        Ok(())
    }

    /// The ReLU layers (with kept ReLUs) of `model`, in order, with their parameters.
    pub fn relu_layers<'p>(
        &'p self,
        model: &'p Model<'_>,
    ) -> impl Iterator<Item = (usize, ReluParams)> + 'p {
        model.layers().filter_map(move |l| match l.op {
            Op::MaskedRelu(mask) if mask.kept() > 0 => Some((l.index, self.layer(l.index))),
            _ => None,
        })
    }
}

pub mod mux {
    //! The multiplexer of the split ReLU: turning an XOR-shared bit `b = c ⊕ λ` (the client holds
    //! the colour `c` of the `DReLU` label `W_b`, the server its permute bit `λ`) and the additive
    //! shares `x = q + x1` (client `q`, server `x1`) into additive shares of `b · x`.
    //!
    //! * `b · x1`, with `x1` the server's: a garbled-bit-times-value ciphertext. With the pads
    //!   `H_j = mux_pad(W_0 ⊕ j·Δ)` the server sends `T = H_(1−λ) − H_λ + (1 − 2λ)·x1` and keeps
    //!   `r = H_λ + λ·x1`; the client computes `c·T − mux_pad(W_b)`. (The ciphertext for colour 0
    //!   is zero by the choice of `r`: garbled row reduction.)
    //! * `b · q`, with `q` the client's: `b·q = c·q + λ·(1 − 2c)·q`. For the cross term the parties
    //!   hold one random OT, the client `(m0, m1)`, the server `m_λ` (its choice bit is `λ`). The
    //!   client sends `d = m0 − m1 + (1 − 2c)·q`, keeps `c·q − m0`; the server takes `m_λ + λ·d`.
    //!   `d` is uniform to the server, which knows only `m_λ`. Each OT serves one ReLU once.
    //!
    //! The sums are exact in `Z_2^64`: `(c·T − pad) + r + (c·q − m0) + (m_λ + λ·d) = b·x`.

    /// The server's multiplexer ciphertext `T` and its share `r` of `b · x1`.
    pub fn server_product(lambda: bool, pads: [u64; 2], x1: u64) -> (u64, u64) {
        let l = u64::from(lambda);
        let (h_l, h_nl) = if lambda {
            (pads[1], pads[0])
        } else {
            (pads[0], pads[1])
        };
        let one_minus_2l = 1u64.wrapping_sub(l.wrapping_mul(2));
        let t = h_nl
            .wrapping_sub(h_l)
            .wrapping_add(one_minus_2l.wrapping_mul(x1));
        (t, h_l.wrapping_add(l.wrapping_mul(x1)))
    }

    /// The client's share of `b · x` and its OT correction `d`, from its colour bit, the
    /// ciphertext `t`, the pad of its label, its share `q` and its OT messages `(m0, m1)`.
    pub fn client_product(colour: bool, t: u64, pad: u64, q: u64, m: [u64; 2]) -> (u64, u64) {
        let c = u64::from(colour);
        let share = c
            .wrapping_mul(t)
            .wrapping_sub(pad)
            .wrapping_add(c.wrapping_mul(q))
            .wrapping_sub(m[0]);
        (share, correction(colour, q, m))
    }

    /// The client's OT correction `d = m0 − m1 + (1 − 2c)·q`.
    pub fn correction(colour: bool, q: u64, m: [u64; 2]) -> u64 {
        let one_minus_2c = 1u64.wrapping_sub(u64::from(colour).wrapping_mul(2));
        m[0].wrapping_sub(m[1])
            .wrapping_add(one_minus_2c.wrapping_mul(q))
    }

    /// The server's share of `b · x`: `r + m_λ + λ·d`.
    pub fn server_share(lambda: bool, r: u64, m_lambda: u64, d: u64) -> u64 {
        r.wrapping_add(m_lambda)
            .wrapping_add(u64::from(lambda).wrapping_mul(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::gc::{
        GcHash, Label, encode, evaluate_relu, evaluate_signs, garble_relu, garble_signs, mux_pad,
    };

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn label(&mut self) -> Label {
            (u128::from(self.next()) << 64) | u128::from(self.next())
        }
    }

    /// One split ReLU end to end, garbled: returns the reconstructed `b · x` and the client's
    /// colour. `q` is the client's share, `x1` the server's.
    fn split_relu(
        hash: &GcHash,
        rng: &mut Rng,
        p: ReluParams,
        gc_index: u64,
        q: u64,
        x1: u64,
    ) -> u64 {
        let t = usize::from(p.sign_bits());
        let delta = rng.label() | 1;
        let zs: [Label; 64] = core::array::from_fn(|_| rng.label());
        let zc: [Label; 64] = core::array::from_fn(|_| rng.label());
        let mut m = GcMaterial::EMPTY;
        let [w0] = garble_signs(
            hash,
            delta,
            [gc_index],
            [&zs[..t]],
            [&zc[..t]],
            [&mut m.tables[..]],
        );
        m.client_labels = encode(&zc, delta, p.reduce(q));
        let lambda = w0 & 1 == 1;
        let pads = [
            mux_pad(hash, gc_index, w0),
            mux_pad(hash, gc_index, w0 ^ delta),
        ];
        let ot = [rng.next(), rng.next()];
        // Online.
        let (ct, r) = mux::server_product(lambda, pads, x1);
        let server_labels = encode(&zs, delta, p.reduce(x1));
        let [w] = evaluate_signs(hash, [gc_index], [&m], [&server_labels[..t]]);
        let colour = w & 1 == 1;
        let (client_share, d) = mux::client_product(colour, ct, mux_pad(hash, gc_index, w), q, ot);
        let server_share = mux::server_share(lambda, r, ot[usize::from(lambda)], d);
        client_share.wrapping_add(server_share)
    }

    /// The full circuit's reconstruction of the same shares.
    fn full_relu(hash: &GcHash, rng: &mut Rng, gc_index: u64, q: u64, x1: u64) -> u64 {
        let delta = rng.label() | 1;
        let z: [[Label; 64]; 3] = core::array::from_fn(|_| core::array::from_fn(|_| rng.label()));
        let mut m = GcMaterial::EMPTY;
        m.decode = garble_relu(hash, delta, gc_index, &z[0], &z[1], &z[2], &mut m.tables);
        let r = rng.next();
        m.client_labels = encode(&z[1], delta, q);
        m.mask_labels = encode(&z[2], delta, r.wrapping_neg());
        evaluate_relu(hash, gc_index, &m, &encode(&z[0], delta, x1)).wrapping_add(r)
    }

    #[test]
    fn the_exact_split_relu_is_bit_exact_with_the_full_circuit() {
        let hash = GcHash::new();
        let exact = ReluParams::split(0, 64, 64).unwrap();
        let mut rng = Rng(0x5eed_1234);
        let edges = [
            0i64,
            1,
            -1,
            2,
            -2,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX - 1,
        ];
        let mut n = 0u64;
        for &x in &edges {
            for _ in 0..8 {
                let q = rng.next();
                let x1 = (x as u64).wrapping_sub(q);
                let want = x.max(0) as u64;
                assert_eq!(
                    split_relu(&hash, &mut rng, exact, n, q, x1),
                    want,
                    "x = {x}"
                );
                assert_eq!(full_relu(&hash, &mut rng, n, q, x1), want, "x = {x}");
                n += 1;
            }
        }
        // 100,000 random share pairs: the split and the full circuits agree on every one.
        for _ in 0..100_000 {
            let (q, x1) = (rng.next(), rng.next());
            let split = split_relu(&hash, &mut rng, exact, n, q, x1);
            let full = full_relu(&hash, &mut rng, n, q, x1);
            assert_eq!(split, full, "q {q:#x} x1 {x1:#x}");
            n += 1;
        }
    }

    #[test]
    fn a_reduced_sign_is_wrong_only_just_above_zero() {
        let hash = GcHash::new();
        let mut rng = Rng(77);
        // h = 24 covers |x| < 2^23; k = 8 dropped bits: faults only for 0 <= x < 256.
        let p = ReluParams::split(0, 16, 24).unwrap();
        let mut faults = 0;
        for i in 0..4_000u64 {
            let x = (rng.next() % (1 << 23)) as i64 * if i % 2 == 0 { 1 } else { -1 }
                / if i % 3 == 0 { 1 << 14 } else { 1 };
            let q = rng.next();
            let x1 = (x as u64).wrapping_sub(q);
            let got = split_relu(&hash, &mut rng, p, i, q, x1) as i64;
            let want = x.max(0);
            if got != want {
                faults += 1;
                assert!((0..256).contains(&x) && got == 0, "x {x}: got {got}");
            }
        }
        assert!(faults > 0, "the sample reaches the fault region");
    }

    #[test]
    fn parameters_are_validated_and_plans_cover_the_proven_bound() {
        assert_eq!(
            ReluParams::split(3, 1, 8),
            Err(ReluParamError::SignBits { bits: 1 })
        );
        assert!(matches!(
            ReluParams::split(3, 16, 12),
            Err(ReluParamError::Range { .. })
        ));
        assert!(matches!(
            ReluParams::split(3, 16, 65),
            Err(ReluParamError::Range { .. })
        ));
        let p = ReluParams::split(0, 16, 24).unwrap();
        assert_eq!(
            (p.dropped_bits(), p.and_gates(), p.material_bytes()),
            (8, 15, (30 + 16) * 16)
        );
        assert_eq!(p.reduce(0xffff_ffff_ff12_3456), 0x1234);
        let model = Model::parse(crate::testing::TINY_MODEL).unwrap();
        let bound = 1u64 << model.activation_frac_bits();
        let plan = ReluPlan::split(&model, 4, bound).unwrap();
        assert!(plan.check_ranges(&model, bound).is_ok());
        assert!(
            plan.relu_layers(&model)
                .all(|(_, p)| p.kind() == ReluKind::Split)
        );
        // A range narrower than the proven bound is refused.
        let narrow = ReluPlan::split_with(&model, 4, |_| 4).unwrap();
        let wide_input = bound << 8;
        assert!(matches!(
            narrow.check_ranges(&model, wide_input),
            Err(ReluParamError::RangeTooNarrow { .. })
        ));
    }
}
