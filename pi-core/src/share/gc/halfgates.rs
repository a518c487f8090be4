//! Half-gates garbling and evaluation (Zahur, Rosulek, Evans, Eurocrypt 2015) of `B` circuits in
//! lock-step: a wire carries one label per circuit, and every AND hashes the `B` circuits' labels
//! in one call, so the block cipher sees independent blocks together (AES-NI pipelines them; a
//! peripheral can queue them). With `B = 1` this is plain one-circuit garbling. The tables, and
//! so the bytes, are the same whatever `B`: each circuit keeps its own tweaks.

use super::circuit::Gates;
use super::hash::{BlockCipher, TccrHash};
use super::{Label, TWEAK_STRIDE};

/// Gates of a shared-input run hashed together (their first calls fill the cipher's lanes).
const RUN: usize = 8;

/// All ones when the lowest bit of `bit` is set: a branch-free `bit · v`.
#[inline(always)]
pub(super) fn select(bit: u128, v: u128) -> u128 {
    (bit & 1).wrapping_neg() & v
}

/// The two tweaks of AND gate `gate` of circuit `gc_index`: one per half-gate. Gate ids are
/// `gc_index · TWEAK_STRIDE + gate`, unique over an inference.
#[inline(always)]
pub(super) fn tweaks(gc_index: u64, gate: usize) -> (u128, u128) {
    let id = (gc_index as u128) * TWEAK_STRIDE as u128 + gate as u128;
    (id << 1, (id << 1) | 1)
}

/// Per-lane tweaks of gate `gate`.
#[inline(always)]
fn lane_tweaks<const B: usize>(gc_index: &[u64; B], gate: usize) -> ([u128; B], [u128; B]) {
    let pairs: [(u128, u128); B] = core::array::from_fn(|i| tweaks(gc_index[i], gate));
    (pairs.map(|p| p.0), pairs.map(|p| p.1))
}

#[inline(always)]
fn xor<const B: usize>(a: [Label; B], b: [Label; B]) -> [Label; B] {
    core::array::from_fn(|i| a[i] ^ b[i])
}

/// The garbler: writes each circuit's tables and tracks zero labels.
pub(super) struct Garbler<'a, C, const B: usize> {
    pub hash: &'a TccrHash<C>,
    pub delta: Label,
    pub gc_index: [u64; B],
    pub tables: [&'a mut [Label]; B],
    pub gate: usize,
}

impl<C: BlockCipher, const B: usize> Garbler<'_, C, B> {
    /// Writes gate `self.gate`'s rows from the four hashes `H(A0), H(A1), H(B0), H(B1)` and
    /// returns its output zero labels.
    #[inline(always)]
    fn finish(&mut self, a0: [Label; B], b0: [Label; B], h: [[Label; B]; 4]) -> [Label; B] {
        let d = self.delta;
        let gate = self.gate;
        self.gate += 1;
        core::array::from_fn(|i| {
            // Generator half-gate (garbler knows b's permute bit) and evaluator half-gate.
            let tg = h[0][i] ^ h[1][i] ^ select(b0[i], d);
            let wg0 = h[0][i] ^ select(a0[i], tg);
            let te = h[2][i] ^ h[3][i] ^ a0[i];
            let we0 = h[2][i] ^ select(b0[i], te ^ a0[i]);
            if let Some(row) = self.tables[i].get_mut(2 * gate..2 * gate + 2) {
                row[0] = tg;
                row[1] = te;
            }
            wg0 ^ we0
        })
    }
}

impl<C: BlockCipher, const B: usize> Gates for Garbler<'_, C, B> {
    type Wire = [Label; B];

    fn xor(&mut self, a: [Label; B], b: [Label; B]) -> [Label; B] {
        xor(a, b)
    }

    fn and(&mut self, a0: [Label; B], b0: [Label; B]) -> [Label; B] {
        let d = [self.delta; B];
        let (j0, j1) = lane_tweaks(&self.gc_index, self.gate);
        let h = self
            .hash
            .hash([a0, xor(a0, d), b0, xor(b0, d)], &[j0, j0, j1, j1]);
        self.finish(a0, b0, h)
    }

    fn not(&mut self, a0: [Label; B]) -> [Label; B] {
        xor(a0, [self.delta; B])
    }

    fn and_shared(&mut self, a: &[[Label; B]], b0: [Label; B], out: &mut [[Label; B]]) {
        let d = [self.delta; B];
        let mut pb = [b0, xor(b0, d)];
        self.hash.first(pb.as_flattened_mut());
        // Per gate: the two A labels get both calls, the shared B labels only the second.
        let mut runs = a.chunks_exact(RUN / 2).zip(out.chunks_exact_mut(RUN / 2));
        for (a_run, out_run) in &mut runs {
            let mut first: [[Label; B]; RUN] = core::array::from_fn(|k| {
                if k % 2 == 0 {
                    a_run[k / 2]
                } else {
                    xor(a_run[k / 2], d)
                }
            });
            self.hash.first(first.as_flattened_mut());
            let mut y: [[Label; B]; 2 * RUN] = core::array::from_fn(|k| {
                if k % 4 < 2 {
                    first[k / 4 * 2 + k % 4]
                } else {
                    pb[k % 2]
                }
            });
            let tw: [[u128; B]; 2 * RUN] = core::array::from_fn(|k| {
                let (j0, j1) = lane_tweaks(&self.gc_index, self.gate + k / 4);
                if k % 4 < 2 { j0 } else { j1 }
            });
            self.hash.second(&mut y, &tw);
            for (k, (o, &a0)) in out_run.iter_mut().zip(a_run).enumerate() {
                *o = self.finish(a0, b0, [y[4 * k], y[4 * k + 1], y[4 * k + 2], y[4 * k + 3]]);
            }
        }
        let done = a.len() - a.len() % (RUN / 2);
        for (o, &a0) in out[done..].iter_mut().zip(&a[done..]) {
            let (j0, j1) = lane_tweaks(&self.gc_index, self.gate);
            let mut ya = [a0, xor(a0, d)];
            self.hash.first(ya.as_flattened_mut());
            let mut y = [ya[0], ya[1], pb[0], pb[1]];
            self.hash.second(&mut y, &[j0, j0, j1, j1]);
            *o = self.finish(a0, b0, y);
        }
    }
}

/// The evaluator: reads each circuit's tables, holds one label per wire and circuit.
pub(super) struct Evaluator<'a, C, const B: usize> {
    pub hash: &'a TccrHash<C>,
    pub gc_index: [u64; B],
    pub tables: [&'a [Label]; B],
    pub gate: usize,
}

impl<C: BlockCipher, const B: usize> Evaluator<'_, C, B> {
    /// The output labels of gate `self.gate` from the two hashes.
    #[inline(always)]
    fn finish(&mut self, a: [Label; B], b: [Label; B], h: [[Label; B]; 2]) -> [Label; B] {
        let gate = self.gate;
        self.gate += 1;
        core::array::from_fn(|i| {
            let (tg, te) = match self.tables[i].get(2 * gate..2 * gate + 2) {
                Some(row) => (row[0], row[1]),
                None => (0, 0),
            };
            (h[0][i] ^ select(a[i], tg)) ^ (h[1][i] ^ select(b[i], te ^ a[i]))
        })
    }
}

impl<C: BlockCipher, const B: usize> Gates for Evaluator<'_, C, B> {
    type Wire = [Label; B];

    fn xor(&mut self, a: [Label; B], b: [Label; B]) -> [Label; B] {
        xor(a, b)
    }

    fn and(&mut self, a: [Label; B], b: [Label; B]) -> [Label; B] {
        let (j0, j1) = lane_tweaks(&self.gc_index, self.gate);
        let h = self.hash.hash([a, b], &[j0, j1]);
        self.finish(a, b, h)
    }

    fn not(&mut self, a: [Label; B]) -> [Label; B] {
        // The garbler flipped the meaning of the label; the evaluator's label is unchanged.
        a
    }

    fn and_shared(&mut self, a: &[[Label; B]], b: [Label; B], out: &mut [[Label; B]]) {
        let mut pb = [b];
        self.hash.first(pb.as_flattened_mut());
        let mut runs = a.chunks_exact(RUN).zip(out.chunks_exact_mut(RUN));
        for (a_run, out_run) in &mut runs {
            let mut first: [[Label; B]; RUN] = core::array::from_fn(|k| a_run[k]);
            self.hash.first(first.as_flattened_mut());
            let mut y: [[Label; B]; 2 * RUN] =
                core::array::from_fn(|k| if k % 2 == 0 { first[k / 2] } else { pb[0] });
            let tw: [[u128; B]; 2 * RUN] = core::array::from_fn(|k| {
                let (j0, j1) = lane_tweaks(&self.gc_index, self.gate + k / 2);
                if k % 2 == 0 { j0 } else { j1 }
            });
            self.hash.second(&mut y, &tw);
            for (k, (o, &ak)) in out_run.iter_mut().zip(a_run).enumerate() {
                *o = self.finish(ak, b, [y[2 * k], y[2 * k + 1]]);
            }
        }
        let done = a.len() - a.len() % RUN;
        for (o, &ak) in out[done..].iter_mut().zip(&a[done..]) {
            let (j0, j1) = lane_tweaks(&self.gc_index, self.gate);
            let mut ya = [ak];
            self.hash.first(ya.as_flattened_mut());
            let mut y = [ya[0], pb[0]];
            self.hash.second(&mut y, &[j0, j1]);
            *o = self.finish(ak, b, y);
        }
    }
}
