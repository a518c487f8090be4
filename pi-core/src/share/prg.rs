//! Mask generation: ChaCha20 keyed by a caller seed, one independent stream per use.
//!
//! The client keeps only its 32-byte seed: every input mask is regenerated from it when needed,
//! so masks cost no storage on the device. Streams never overlap: each (layer, purpose) pair has
//! its own ChaCha20 stream id (a 64-bit nonce), so no keystream word is used twice.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// What a stream of masks is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u64)]
pub enum Purpose {
    /// The mask `r` of a conv or linear layer's input (the client sends `x - r`).
    LinearInput = 0,
    /// The fresh client share `q` of each kept ReLU (the client's garbled-circuit input).
    ReluInput = 1,
    /// Server-side randomness (garbled-circuit labels, output masks) in the simulator.
    Server = 2,
    /// Dealer-side randomness (the server's linear-layer shares `s`) in the simulator.
    Dealer = 3,
    /// The client's random-OT messages `(m0, m1)` of the split ReLU's multiplexer, one pair per
    /// kept ReLU (dealt by the simulation's dealer, which gives the server `m_λ`).
    MuxOt = 4,
}

/// The two streams of a client garbler per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u64)]
pub enum GarblerStream {
    /// What the online phase regenerates per kept ReLU: the zero labels of the client's input
    /// wires and its output share `r'`.
    Online = 0,
    /// What only the preprocessing needs: the zero labels of the server's input and of the mask
    /// wires (and, at layer `MAX_LAYERS`, Δ).
    Offline = 1,
}

/// A ChaCha20 stream of 64-bit masks.
pub struct Prg(ChaCha20Rng);

impl Prg {
    /// The stream for `purpose` at layer `layer` under `seed`.
    pub fn new(seed: &[u8; 32], layer: usize, purpose: Purpose) -> Self {
        let mut rng = ChaCha20Rng::from_seed(*seed);
        rng.set_stream(((layer as u64) << 3) | purpose as u64);
        Self(rng)
    }

    /// A client garbler's stream for `stream` at layer `layer` under `seed` (wire labels, Δ and
    /// output masks of the circuits it garbles). These streams lie in the upper half of the
    /// stream ids, disjoint from every [`Purpose`] stream.
    pub fn garbler(seed: &[u8; 32], layer: usize, stream: GarblerStream) -> Self {
        let mut rng = ChaCha20Rng::from_seed(*seed);
        rng.set_stream((1 << 63) | ((layer as u64) << 1) | stream as u64);
        Self(rng)
    }

    /// The next uniform 64-bit word.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// The next uniform 128-bit word (a garbled-circuit label).
    #[inline]
    pub fn next_u128(&mut self) -> u128 {
        let lo = self.0.next_u64() as u128;
        let hi = self.0.next_u64() as u128;
        lo | (hi << 64)
    }

    /// Fills `out` with uniform words.
    pub fn fill(&mut self, out: &mut [u64]) {
        for w in out {
            *w = self.0.next_u64();
        }
    }
}

impl core::fmt::Debug for Prg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.write_str("Prg { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let seed = [7u8; 32];
        let a: [u64; 4] = core::array::from_fn({
            let mut p = Prg::new(&seed, 3, Purpose::LinearInput);
            move |_| p.next_u64()
        });
        let mut again = Prg::new(&seed, 3, Purpose::LinearInput);
        assert!(a.iter().all(|&w| w == again.next_u64()));
        let mut other = Prg::new(&seed, 3, Purpose::ReluInput);
        assert_ne!(a[0], other.next_u64());
        let mut next_layer = Prg::new(&seed, 4, Purpose::LinearInput);
        assert_ne!(a[0], next_layer.next_u64());
    }
}
