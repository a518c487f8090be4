//! Homomorphic encryption for linear layers: the BFV parameter sets the protocols use, what one
//! ciphertext and the keys weigh as SEAL serializes them, and how many ciphertexts a conv or FC
//! layer moves under each packing.
//!
//! Sizes are measured with SEAL's own serializer (`scripts/he-sizes.py`, \[X\]: SEAL 4.1 as
//! bundled by TenSEAL 0.3.18, default zstd compression, which Delphi's build enables) or
//! derived from the parameters (\[R\]: `2 · N · k` 64-bit RNS words for a ciphertext over `k`
//! primes). Sources for each parameter set are in `docs/PROTOCOL.md` §5.

/// How a protocol packs a linear layer into ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Packing {
    /// Delphi's output packing (`conv2d.cpp::conv_metadata` \[C\]): channels padded to a power
    /// of two and packed into the two `N/2`-slot halves of a batched ciphertext; the client
    /// uploads every input ciphertext *and its `kh·kw` plaintext rotations*; FC: the input
    /// vector in one ciphertext, one back.
    DelphiRotations,
    /// SCI's `conv-field.cpp` (CrypTFlow2's HE variant) \[C\]: the same channel packing, but the
    /// server rotates with Galois keys, so the client uploads only the input ciphertexts.
    Gazelle,
    /// Cheetah's coefficient packing (`hom_conv2d_ss.cc` \[C\]): a `C_n × H × W` block of the
    /// padded input per ciphertext, one ciphertext back per output channel and spatial block
    /// \[R\] (one spatial block when the padded image fits `N`).
    Cheetah,
}

/// A BFV parameter set and what its objects weigh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeParams {
    /// Name in tables.
    pub name: &'static str,
    /// Ring degree `N` (slots of a batched ciphertext, coefficients of a packed one).
    pub degree: u64,
    /// Bytes of one ciphertext the client sends, as serialized.
    pub query_bytes: u64,
    /// Bytes of one ciphertext the server returns, as serialized (for Cheetah: its `c1`
    /// polynomial; the used coefficients of `c0` are [`HeParams::reply_per_output`]).
    pub reply_bytes: u64,
    /// Bytes per output element on top of [`HeParams::reply_bytes`] (Cheetah sends only the
    /// coefficients of `c0` that hold outputs; 0 for batched replies).
    pub reply_per_output: u64,
    /// Bytes one fresh ciphertext occupies in memory (`2 · N · k · 8`, what SEAL allocates).
    pub ciphertext_memory: u64,
    /// Bytes of the secret key in memory (`N · K · 8` over all `K` primes, NTT form).
    pub secret_key_memory: u64,
    /// One-time key upload from the client (public, Galois, relinearization keys as sent).
    pub key_upload: u64,
    /// The packing of linear layers.
    pub packing: Packing,
}

/// Delphi (mc2-project/delphi `interface.{h,cpp}` \[C\]): BFV, N = 8192,
/// `CoeffModulus::BFVDefault(8192)` = 43+43+44+44+44 bits, plaintext modulus 2 061 584 302 081,
/// SEAL 3.6.5 built with zstd. Fresh ciphertexts live at the first data level (4 primes, the
/// fifth is SEAL's special prime): 524 288 B of RNS words, 432 312 B as `save` writes them
/// \[X\]. Replies are not mod-switched in Delphi's code \[C\], so they weigh the same. Keys: the
/// client sends a public key, the 24 default Galois keys and a relinearization key, created as
/// seeded `Serializable`s (half their polynomials replaced by a seed): 541 690 + 52 041 690 +
/// 2 167 016 B measured unseeded \[X\], halved \[R\].
pub const DELPHI_HE: HeParams = HeParams {
    name: "delphi-bfv-8192",
    degree: 8192,
    query_bytes: 432_312,
    reply_bytes: 432_312,
    reply_per_output: 0,
    ciphertext_memory: 2 * 8192 * 4 * 8,
    secret_key_memory: 8192 * 5 * 8,
    key_upload: (541_690 + 52_041_690 + 2_167_016) / 2,
    packing: Packing::DelphiRotations,
};

/// CrypTFlow2's HE variant (SCI `LinearHE/utils-HE.cpp`, `conv-field.cpp` \[C\]): BFV,
/// N = 8192, 60+60+60+49 bits. Fresh ciphertexts at 3 primes: 393 350 B serialized \[X\]; the
/// server mod-switches its replies to 2 primes (`conv-field.cpp`) \[C\]: 262 275 B \[X\]. Keys:
/// a public key and the default Galois keys, seeded: (511 238 + 36 799 918) / 2 B \[X\]/\[R\].
pub const CRYPTFLOW2_HE: HeParams = HeParams {
    name: "sci-bfv-8192",
    degree: 8192,
    query_bytes: 393_350,
    reply_bytes: 262_275,
    reply_per_output: 0,
    ciphertext_memory: 2 * 8192 * 3 * 8,
    secret_key_memory: 8192 * 4 * 8,
    key_upload: (511_238 + 36_799_918) / 2,
    packing: Packing::Gazelle,
};

/// Cheetah (OpenCheetah `cheetah-api.cpp`, `hom_conv2d_ss.cc` \[C\]): BFV, N = 4096,
/// 60+49 bits with no special prime (patched SEAL 3.7). Queries are seeded symmetric
/// encryptions: one polynomial over both primes, 65 536 B of words \[R\]. Replies are
/// mod-switched to the 60-bit prime with their low bits masked (`truncate_for_decryption`), and
/// every coefficient of `c0` that holds no output zeroed (`removeUnusedCoeffs`), which SEAL's
/// compression then drops: `c1` in full (4 096 words, 32 768 B) plus one word per output, an
/// upper bound on the serialized size (the masked low bits also compress) \[R\]. Keys: the client's public key and three more for batch norm's CRT
/// contexts, seeded: 4 × 65 536 B \[R\]. No Galois keys.
pub const CHEETAH_HE: HeParams = HeParams {
    name: "cheetah-bfv-4096",
    degree: 4096,
    query_bytes: 4096 * 2 * 8,
    reply_bytes: 4096 * 8,
    reply_per_output: 8,
    ciphertext_memory: 2 * 4096 * 2 * 8,
    secret_key_memory: 4096 * 2 * 8,
    key_upload: 4 * 4096 * 2 * 8,
    packing: Packing::Cheetah,
};

/// The geometry of a linear layer, as HE packing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    /// Input channels (FC: 1).
    pub in_channels: u64,
    /// Input height × width (FC: input features).
    pub in_plane: u64,
    /// Padded input height × width (FC: input features).
    pub padded_plane: u64,
    /// Kernel height × width (FC: 0, marking a fully connected layer).
    pub kernel: u64,
    /// Output channels (FC: output features).
    pub out_channels: u64,
    /// Output height × width (FC: 1).
    pub out_plane: u64,
}

/// Ciphertexts a linear layer moves: `(client → server, server → client)`.
pub fn ciphertexts(he: &HeParams, s: &LinearShape) -> (u64, u64) {
    let n = he.degree;
    if s.kernel == 0 {
        // FC: the input vector replicated into ⌈in / N⌉ ciphertexts; the output rows back.
        let width = s.in_plane.next_power_of_two().min(n);
        let rows_per_ct = (n / width).max(1);
        return (s.in_plane.div_ceil(n), s.out_channels.div_ceil(rows_per_ct));
    }
    match he.packing {
        Packing::DelphiRotations | Packing::Gazelle => {
            let half = n / 2;
            let image = s.in_plane.next_power_of_two();
            let per_half = (half / image).max(1);
            let inp = s.in_channels.div_ceil(2 * per_half);
            let out = s.out_channels.div_ceil(2 * per_half);
            let rotations = match he.packing {
                Packing::DelphiRotations => s.kernel,
                _ => 1,
            };
            (inp * rotations, out)
        }
        Packing::Cheetah => {
            let plane = s.padded_plane.max(1);
            let (blocks, per_ct) = if plane <= n {
                (1, n / plane)
            } else {
                (plane.div_ceil(n), 1)
            };
            (
                s.in_channels.div_ceil(per_ct) * blocks,
                s.out_channels * blocks,
            )
        }
    }
}

/// Bytes a linear layer moves: `(client → server, server → client)`.
pub fn linear_bytes(he: &HeParams, s: &LinearShape) -> (u64, u64) {
    let (up, down) = ciphertexts(he, s);
    let outputs = if s.kernel == 0 {
        s.out_channels
    } else {
        // Every output of the layer sits in exactly one reply.
        s.out_channels * s.out_plane
    };
    (
        up * he.query_bytes,
        down * he.reply_bytes + outputs * he.reply_per_output,
    )
}

/// The client's HE working set: one ciphertext and the secret key.
pub fn client_working_set(he: &HeParams) -> u64 {
    he.ciphertext_memory + he.secret_key_memory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delphi_uploads_every_rotation_and_cheetah_one_block_per_channel_group() {
        // ResNet CIFAR stage 1: 16 channels of 32×32 (1024 → 1024 slots per channel), 3×3.
        let s = LinearShape {
            in_channels: 16,
            in_plane: 1024,
            padded_plane: 34 * 34,
            kernel: 9,
            out_channels: 16,
            out_plane: 1024,
        };
        // 4 channels per half, 8 per ciphertext: 2 in, 2 out; Delphi uploads 9 rotations each.
        assert_eq!(ciphertexts(&DELPHI_HE, &s), (18, 2));
        assert_eq!(ciphertexts(&CRYPTFLOW2_HE, &s), (2, 2));
        // Cheetah: 34·34 = 1156 ≤ 4096, 3 channels per ciphertext: 6 up, 16 back.
        assert_eq!(ciphertexts(&CHEETAH_HE, &s), (6, 16));
        // Its replies: c1 of each, and one word per output.
        assert_eq!(
            linear_bytes(&CHEETAH_HE, &s),
            (6 * 65_536, 16 * 32_768 + 16 * 1024 * 8)
        );
        let fc = LinearShape {
            in_channels: 1,
            in_plane: 64,
            padded_plane: 64,
            kernel: 0,
            out_channels: 10,
            out_plane: 1,
        };
        assert_eq!(ciphertexts(&DELPHI_HE, &fc), (1, 1));
        assert_eq!(linear_bytes(&CRYPTFLOW2_HE, &fc), (393_350, 262_275));
    }

    #[test]
    fn ciphertext_sizes_follow_the_parameters() {
        // Serialized (zstd) sizes lie between the bits the primes use and the 64-bit words
        // SEAL stores (plus a header under 1 KiB).
        for (he, primes, bits) in [(DELPHI_HE, 4, 174), (CRYPTFLOW2_HE, 3, 180)] {
            assert_eq!(he.ciphertext_memory, 2 * he.degree * primes * 8);
            assert!(he.query_bytes <= he.ciphertext_memory + 1024);
            assert!(he.query_bytes * 8 >= 2 * he.degree * bits);
        }
        // A fresh Delphi ciphertext is not 5 primes (655 360 B): the fifth is the special prime.
        assert_eq!(DELPHI_HE.ciphertext_memory, 524_288);
        const { assert!(CRYPTFLOW2_HE.reply_bytes < CRYPTFLOW2_HE.query_bytes) };
    }
}
