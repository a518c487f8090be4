//! The boolean circuits, written once over a [`Gates`] backend: plain bits (tests, counting),
//! garbling, or evaluation, one ReLU or several in lock-step.

use super::SHARE_BITS;

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

/// ANDs of the multiplexer of [`relu_circuit`], whose second input is the one shared sign wire.
pub const RELU_SHARED_ANDS: usize = SHARE_BITS - 1;

/// Ripple-carry `a + b` over bits `0..n` of which `a` may lack the top bit (it is zero); the
/// carry out of bit 63 is dropped.
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

/// The full ReLU circuit: `ReLU(s + c) + t` over 64-bit two's complement, LSB first.
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

/// The sign circuit of the split ReLU: `DReLU(a + b) = 1` iff the `t`-bit two's-complement sum
/// `a + b mod 2^t` is not negative (`t = a.len() = b.len() ≥ 2`, LSB first). Only the carry into
/// the top bit is computed: `t − 1` ANDs.
pub fn sign_circuit<G: Gates>(g: &mut G, a: &[G::Wire], b: &[G::Wire]) -> G::Wire {
    let t = a.len().min(b.len());
    let mut carry = g.and(a[0], b[0]);
    for i in 1..t - 1 {
        let u = g.xor(a[i], carry);
        let v = g.xor(b[i], carry);
        let uv = g.and(u, v);
        carry = g.xor(uv, carry);
    }
    let ab = g.xor(a[t - 1], b[t - 1]);
    let negative = g.xor(ab, carry);
    g.not(negative)
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
