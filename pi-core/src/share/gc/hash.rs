//! The garbling hash: GKWY's TCCR construction over a pluggable fixed-key block cipher.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};

/// The fixed public AES key of the garbling hash (any public constant works).
const FIXED_KEY: [u8; 16] = *b"pi-toolkit-gc-k1";

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
/// is in the random-permutation model) and must not leak the blocks through timing. Callers pass
/// independent blocks together (up to 16), so an engine with a queue or DMA can overlap them.
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
/// [module docs](super)), over any [`BlockCipher`].
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

    /// The block cipher underneath.
    pub fn cipher(&self) -> &C {
        &self.cipher
    }

    /// The first call `π(x)` for every block, in place (the part a reused wire can share).
    #[inline]
    pub(super) fn first(&self, x: &mut [u128]) {
        self.cipher.encrypt(x);
    }

    /// Finishes `H(x, i) = π(y ⊕ i) ⊕ y` from `y = π(x)`, in place, for `N × B` blocks.
    #[inline]
    pub(super) fn second<const N: usize, const B: usize>(
        &self,
        y: &mut [[u128; B]; N],
        tweaks: &[[u128; B]; N],
    ) {
        let mut t: [[u128; B]; N] =
            core::array::from_fn(|n| core::array::from_fn(|b| y[n][b] ^ tweaks[n][b]));
        self.cipher.encrypt(t.as_flattened_mut());
        for (yn, tn) in y.iter_mut().zip(t) {
            for (yb, tb) in yn.iter_mut().zip(tn) {
                *yb ^= tb;
            }
        }
    }

    /// `H(x, i)` for `N × B` blocks at once.
    #[inline]
    pub(super) fn hash<const N: usize, const B: usize>(
        &self,
        mut x: [[u128; B]; N],
        tweaks: &[[u128; B]; N],
    ) -> [[u128; B]; N] {
        self.first(x.as_flattened_mut());
        self.second(&mut x, tweaks);
        x
    }

    /// `H(x, i)` of one block (a 64-bit multiplexer pad takes its low half).
    pub fn hash_one(&self, x: u128, tweak: u128) -> u128 {
        self.hash([[x]], &[[tweak]])[0][0]
    }
}
