//! Where each party's randomness comes from: the operating system by default, or a public seed
//! for reproducible runs (tests, benchmarks), which is insecure and says so.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::SimError;

/// A party's source of seeds, session ids and masks.
#[derive(Debug)]
pub enum Entropy {
    /// The operating system's CSPRNG (`getrandom`): fresh and secret on every call.
    Os,
    /// ChaCha20 keyed by a public number: every run repeats the same randomness. For tests and
    /// benchmarks only; anyone who knows the number knows every mask.
    Reproducible(Box<ChaCha20Rng>),
}

/// The warning printed whenever a run uses [`Entropy::Reproducible`].
pub const INSECURE_SEED_WARNING: &str = "WARNING: --seed makes every party's randomness \
reproducible from a public number: masks, labels and Δ are predictable. Insecure; for tests and \
benchmarks only.";

impl Entropy {
    /// The operating system's generator.
    pub fn os() -> Self {
        Entropy::Os
    }

    /// Reproducible randomness for party `stream` (0, 1, ...) of a run seeded with `seed`: the
    /// parties' streams never overlap.
    pub fn reproducible(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Entropy::Reproducible(Box::new(rng))
    }

    /// Whether this source is the insecure reproducible one.
    pub fn is_reproducible(&self) -> bool {
        matches!(self, Entropy::Reproducible(_))
    }

    /// Fills `out`.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), SimError> {
        match self {
            Entropy::Os => getrandom::fill(out)
                .map_err(|e| SimError::Usage(format!("no randomness from the OS: {e}"))),
            Entropy::Reproducible(rng) => {
                rng.fill_bytes(out);
                Ok(())
            }
        }
    }

    /// `N` fresh bytes.
    pub fn bytes<const N: usize>(&mut self) -> Result<[u8; N], SimError> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_entropy_never_repeats_and_reproducible_streams_do_only_within_a_stream() {
        let mut os = Entropy::os();
        let (a, b) = (os.bytes::<32>().unwrap(), os.bytes::<32>().unwrap());
        assert_ne!(a, b);
        let mut os2 = Entropy::os();
        assert_ne!(a, os2.bytes::<32>().unwrap(), "two OS sources agree");
        let r = |s| Entropy::reproducible(5, s).bytes::<32>().unwrap();
        assert_eq!(r(0), r(0));
        assert_ne!(r(0), r(1));
        assert!(!os.is_reproducible() && Entropy::reproducible(5, 0).is_reproducible());
    }
}
