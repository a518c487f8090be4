//! The protocols the cost model knows, and their per-ReLU constants with provenance.
//!
//! Tags: \[C\] read in the protocol's code, \[D\] measured data committed by its authors, \[X\]
//! measured by building the public code (research notes `pi_cost_model.md` §3.4), \[R\] derived.

use core::fmt;

use crate::share::gc;

/// A private-inference protocol: how ReLUs are evaluated (linear layers are Delphi-style share
/// arithmetic in every case, so protocols differ only in the ReLU and its preprocessing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Protocol {
    /// Delphi as implemented (mc2-project/delphi): 41-bit prime field, 288-AND ReLU6 circuit,
    /// bincode-serialized garbled circuits.
    Delphi,
    /// This toolkit's protocol: half-gates ReLU over `Z_2^64` (189 ANDs), exactly as
    /// `protocol-sim run` sends it.
    RingGc,
    /// CrypTFlow2 (SCI) OT-based ReLU over `Z_2^bits`, IKNP OT extension, all online.
    CrypTFlow2 {
        /// Ring width ℓ: 32, 37, 41 or 64 (the measured widths).
        bits: u8,
    },
    /// Cheetah (OpenCheetah) OT-based ReLU over `Z_2^bits`, Ferret silent OT, all online.
    Cheetah {
        /// Ring width ℓ: 32, 37, 41 or 64.
        bits: u8,
    },
}

/// Delphi's ReLU circuit: 288 AND gates with half-gates (\[C\] `crypto-primitives/src/gc.rs`).
pub const DELPHI_AND_GATES: u64 = 288;
/// Delphi's serialized garbled circuit per ReLU: 8 + 662 blocks × 24 B (\[C\]+\[D\] Cryptonite).
pub const DELPHI_GC_BYTES: u64 = 15_896;
/// Labels of the output mask −r′ per ReLU as serialized (42 × 28 B) \[D\].
pub const DELPHI_MASK_LABEL_BYTES: u64 = 1_176;
/// OT sender messages for the client's 42 input bits (2 × 16 B per OT) \[R\].
pub const DELPHI_OT_SENDER_BYTES: u64 = 1_344;
/// OT receiver matrix for the client's 42 input bits (16 B per OT) \[D\].
pub const DELPHI_OT_RECEIVER_BYTES: u64 = 672;
/// Server's 42 share labels sent online per ReLU (42 × 28 + 8 B) \[D\].
pub const DELPHI_ONLINE_LABEL_BYTES: u64 = 1_184;
/// Client storage per ReLU between the phases \[D\] (Cryptonite `storage_per_relu`).
pub const DELPHI_CLIENT_STORAGE: u64 = 18_248;
/// Server storage per ReLU (encoder and r′) \[D\].
pub const DELPHI_SERVER_STORAGE: u64 = 3_590;
/// Evaluator XORs per Delphi ReLU (≈1 000) \[R\].
pub const DELPHI_EVAL_XORS: u64 = 1_000;
/// Bytes per field element on the wire as Delphi sends it (8–9 B measured; 8 used) \[D\].
pub const DELPHI_ELEMENT_BYTES: u64 = 8;

/// Bytes per OT in IKNP/ALSZ: the receiver sends κ = 128 bits per OT \[D\], the sender two
/// 128-bit messages \[R\].
pub const OT_RECEIVER_BYTES: u64 = 16;
/// See [`OT_RECEIVER_BYTES`].
pub const OT_SENDER_BYTES: u64 = 32;

/// BFV ciphertext at N = 8192 with SEAL's 218-bit default modulus: 2 · 8192 · 218 / 8 bytes
/// \[R\]; used for the HE preprocessing estimate of linear layers.
pub const HE_CIPHERTEXT_BYTES: u64 = 2 * 8192 * 218 / 8;
/// Activation elements per ciphertext (two 4096-slot halves at N = 8192, Gazelle packing) \[R\].
pub const HE_SLOTS: u64 = 4096;

/// Ferret (silent OT) one-time setup per direction, measured: 1.73 MB \[X\].
pub const FERRET_SETUP_BYTES: u64 = 1_730_000;

/// Measured bytes per OT-based ReLU in tenths of a byte, by ring width \[X\] (65 536 ReLUs; one
/// thread per party): `(bits, client → server, server → client)`.
///
/// CrypTFlow2's direction split is measured (client = SCI's BOB, P2). Cheetah's totals are the
/// 2^20-ReLU runs where available (ℓ = 32, 41; Ferret re-extension included) and split in
/// CrypTFlow2's proportions \[R\].
const CRYPTFLOW2_DECI: [(u8, u64, u64); 4] = [
    (32, 4548, 767),
    (37, 5036, 836),
    (41, 5686, 926),
    (64, 9585, 1465),
];
/// Cheetah totals in tenths of a byte per ReLU \[X\].
const CHEETAH_TOTAL_DECI: [(u8, u64); 4] = [(32, 524), (37, 568), (41, 675), (64, 1013)];

/// Per-ReLU bytes of an OT-based protocol, in tenths of a byte each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OtReluBytes {
    /// Client → server, tenths of a byte.
    pub up_deci: u64,
    /// Server → client, tenths of a byte.
    pub down_deci: u64,
}

impl OtReluBytes {
    /// Whole bytes per ReLU, both directions, rounded half up.
    pub fn total_bytes(&self) -> u64 {
        (self.up_deci + self.down_deci + 5) / 10
    }
}

/// Why a protocol description is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolParseError {
    /// Not one of `delphi`, `ring-gc`, `cryptflow2`, `cheetah`.
    UnknownName,
    /// A ring width without measurements (use 32, 37, 41 or 64).
    UnsupportedBits {
        /// The width asked for.
        bits: u8,
    },
}

impl fmt::Display for ProtocolParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownName => write!(
                f,
                "unknown protocol (expected delphi, ring-gc, cryptflow2 or cheetah)"
            ),
            Self::UnsupportedBits { bits } => {
                write!(f, "no measurements at {bits} bits (use 32, 37, 41 or 64)")
            }
        }
    }
}

impl core::error::Error for ProtocolParseError {}

impl Protocol {
    /// The protocol called `name`; `bits` is the ring width of the OT-based ones.
    pub fn by_name(name: &str, bits: u8) -> Result<Self, ProtocolParseError> {
        let p = match name {
            "delphi" => Protocol::Delphi,
            "ring-gc" => Protocol::RingGc,
            "cryptflow2" => Protocol::CrypTFlow2 { bits },
            "cheetah" => Protocol::Cheetah { bits },
            _ => return Err(ProtocolParseError::UnknownName),
        };
        if p.ot_relu_bytes().is_none()
            && matches!(p, Self::CrypTFlow2 { .. } | Self::Cheetah { .. })
        {
            return Err(ProtocolParseError::UnsupportedBits { bits });
        }
        Ok(p)
    }

    /// Short name (as accepted by [`Protocol::by_name`]).
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Delphi => "delphi",
            Protocol::RingGc => "ring-gc",
            Protocol::CrypTFlow2 { .. } => "cryptflow2",
            Protocol::Cheetah { .. } => "cheetah",
        }
    }

    /// Ring or field width in bits.
    pub fn bits(&self) -> u8 {
        match *self {
            Protocol::Delphi => 41,
            Protocol::RingGc => gc::SHARE_BITS as u8,
            Protocol::CrypTFlow2 { bits } | Protocol::Cheetah { bits } => bits,
        }
    }

    /// Bytes per share element on the wire.
    pub fn element_bytes(&self) -> u64 {
        match self {
            Protocol::Delphi => DELPHI_ELEMENT_BYTES,
            _ => (self.bits() as u64).div_ceil(8),
        }
    }

    /// AND gates per garbled ReLU (0 for OT-based protocols).
    pub fn and_gates_per_relu(&self) -> u64 {
        match self {
            Protocol::Delphi => DELPHI_AND_GATES,
            Protocol::RingGc => gc::RELU_AND_GATES as u64,
            _ => 0,
        }
    }

    /// Measured per-ReLU bytes of the OT-based protocols (`None` for garbled-circuit ones or
    /// an unmeasured width).
    pub fn ot_relu_bytes(&self) -> Option<OtReluBytes> {
        match *self {
            Protocol::CrypTFlow2 { bits } => {
                CRYPTFLOW2_DECI
                    .iter()
                    .find(|row| row.0 == bits)
                    .map(|&(_, up, down)| OtReluBytes {
                        up_deci: up,
                        down_deci: down,
                    })
            }
            Protocol::Cheetah { bits } => {
                let total = CHEETAH_TOTAL_DECI.iter().find(|row| row.0 == bits)?.1;
                let (_, up, down) = *CRYPTFLOW2_DECI.iter().find(|row| row.0 == bits)?;
                let up_deci = (total * up + (up + down) / 2) / (up + down);
                Some(OtReluBytes {
                    up_deci,
                    down_deci: total - up_deci,
                })
            }
            _ => None,
        }
    }

    /// One-way message flights per OT-based ReLU layer: the millionaires' tree with 4-bit
    /// leaves has `ceil(log2(ℓ/4)) + 2` rounds \[X\].
    pub fn ot_relu_flights(&self) -> u32 {
        let leaves = (self.bits() as u32).div_ceil(4).max(1);
        let depth = u32::BITS - (leaves - 1).leading_zeros();
        depth + 2
    }

    /// One-time setup bytes per direction (Cheetah's Ferret; others none modelled).
    pub fn setup_bytes(&self) -> u64 {
        match self {
            Protocol::Cheetah { .. } => FERRET_SETUP_BYTES,
            _ => 0,
        }
    }

    /// Whether truncation needs its own protocol: rings narrower than 64 bits cannot use local
    /// truncation, so each truncated element pays about one ReLU (CrypTFlow2's faithful
    /// truncation, ≈ λ(f+1) + O(ℓ) bits) \[R\].
    pub fn interactive_truncation(&self) -> bool {
        self.ot_relu_bytes().is_some() && self.bits() < 64
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::CrypTFlow2 { bits } | Protocol::Cheetah { bits } => {
                write!(f, "{} (ℓ = {bits})", self.name())
            }
            _ => f.write_str(self.name()),
        }
    }
}
