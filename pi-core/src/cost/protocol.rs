//! The protocols the cost model knows: their ReLU (one [`ReluPrice`] each, [`relu`](super::relu)),
//! how they run linear layers ([`LinearPhase`], HE parameters in [`he`](super::he)), and their
//! one-time setup. Tags: \[C\] read in the protocol's code, \[D\] measured data committed by its
//! authors, \[X\] measured by building the public code, \[R\] derived.

use core::fmt;

use crate::share::gc;

use super::Traffic;
use super::he::{CHEETAH_HE, CRYPTFLOW2_HE, DELPHI_HE, HeParams};
use super::relu::{DELPHI_ELEMENT_BYTES, OT_WIDTHS, OtReluBytes, ReluPrice};

/// A private-inference protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Protocol {
    /// Delphi as implemented (mc2-project/delphi): 41-bit prime field, 288-AND ReLU6 circuit
    /// garbled by the server, bincode-serialized; linear layers with HE offline.
    Delphi,
    /// This toolkit's server-garbler protocol: half-gates ReLU over `Z_2^64` (189 ANDs) garbled
    /// by the server and evaluated by the client, exactly as `protocol-sim run` sends it; linear
    /// layers Delphi-style (HE offline).
    RingGc,
    /// This toolkit's client-garbler protocol: the same circuit garbled by the client from its
    /// seed and evaluated by the server (`protocol-sim run --protocol client-garbler`); linear
    /// layers Delphi-style.
    ClientGarbler,
    /// CrypTFlow2's HE variant (SCI_HE): OT-based ReLU over `Z_2^bits` with IKNP, linear layers
    /// with HE online; no preprocessing.
    CrypTFlow2 {
        /// Ring width ℓ: 32, 37, 41 or 64 (the measured widths).
        bits: u8,
    },
    /// Cheetah (OpenCheetah): OT-based ReLU over `Z_2^bits` with Ferret silent OT, linear layers
    /// with HE online; no preprocessing.
    Cheetah {
        /// Ring width ℓ: 32, 37, 41 or 64.
        bits: u8,
    },
}

/// When and how a protocol runs its linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinearPhase {
    /// Delphi-style: HE in the preprocessing phase produces the client's share `W·r − s`
    /// (stored between the phases); online the client sends its masked input and the server
    /// computes in the clear.
    OfflineHe(HeParams),
    /// The client's share is encrypted and sent online, the server answers with its masked
    /// result; nothing stored.
    OnlineHe(HeParams),
}

impl LinearPhase {
    /// The HE parameter set.
    pub fn he(&self) -> &HeParams {
        match self {
            LinearPhase::OfflineHe(he) | LinearPhase::OnlineHe(he) => he,
        }
    }
}

/// Base OTs (Chou–Orlandi, 128 of them, 32-byte curve points) that seed an OT extension: about
/// 128 × 32 B each way \[R\].
pub const BASE_OT_BYTES: u64 = 128 * 32;

/// Ferret (silent OT) one-time setup per direction, measured: 1.73 MB \[X\].
pub const FERRET_SETUP_BYTES: u64 = 1_730_000;

/// Ferret's working buffer: `n` = 10 608 640 correlated OTs of 16 B for emp-ot's main LPN
/// parameters (`ferret/constants.h` \[C\]), held at once by each party \[R\].
pub const FERRET_BUFFER_BYTES: u64 = 10_608_640 * 16;

/// Why a protocol description is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolParseError {
    /// Not one of [`Protocol::NAMES`].
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
                "unknown protocol (expected delphi, ring-gc, client-garbler, cryptflow2 or cheetah)"
            ),
            Self::UnsupportedBits { bits } => {
                write!(f, "no measurements at {bits} bits (use 32, 37, 41 or 64)")
            }
        }
    }
}

impl core::error::Error for ProtocolParseError {}

impl Protocol {
    /// Every protocol name [`Protocol::by_name`] accepts.
    pub const NAMES: [&'static str; 5] = [
        "delphi",
        "ring-gc",
        "client-garbler",
        "cryptflow2",
        "cheetah",
    ];

    /// The protocol called `name`; `bits` is the ring width of the OT-based ones.
    pub fn by_name(name: &str, bits: u8) -> Result<Self, ProtocolParseError> {
        let p = match name {
            "delphi" => Protocol::Delphi,
            "ring-gc" => Protocol::RingGc,
            "client-garbler" => Protocol::ClientGarbler,
            "cryptflow2" => Protocol::CrypTFlow2 { bits },
            "cheetah" => Protocol::Cheetah { bits },
            _ => return Err(ProtocolParseError::UnknownName),
        };
        if matches!(p, Self::CrypTFlow2 { .. } | Self::Cheetah { .. }) && !OT_WIDTHS.contains(&bits)
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
            Protocol::ClientGarbler => "client-garbler",
            Protocol::CrypTFlow2 { .. } => "cryptflow2",
            Protocol::Cheetah { .. } => "cheetah",
        }
    }

    /// Ring or field width in bits.
    pub fn bits(&self) -> u8 {
        match *self {
            Protocol::Delphi => 41,
            Protocol::RingGc | Protocol::ClientGarbler => gc::SHARE_BITS as u8,
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

    /// What one kept ReLU costs: the protocol's row of the pricing table
    /// ([`relu`](super::relu)). A new ReLU construction is a new [`ReluPrice`] and one arm here.
    pub fn relu_price(&self) -> ReluPrice {
        match *self {
            Protocol::Delphi => ReluPrice::DELPHI,
            Protocol::RingGc => ReluPrice::RING_GC,
            Protocol::ClientGarbler => ReluPrice::CLIENT_GARBLER,
            Protocol::CrypTFlow2 { bits } => ot_price(OtReluBytes::cryptflow2(bits), bits),
            Protocol::Cheetah { bits } => ot_price(OtReluBytes::cheetah(bits), bits),
        }
    }

    /// How the protocol runs its linear layers. This toolkit's protocols price their simulated
    /// HE as Delphi's (a 64-bit plaintext ring needs at least as large a modulus, so this is a
    /// lower bound for them \[R\]).
    pub fn linear(&self) -> LinearPhase {
        match self {
            Protocol::Delphi | Protocol::RingGc | Protocol::ClientGarbler => {
                LinearPhase::OfflineHe(DELPHI_HE)
            }
            Protocol::CrypTFlow2 { .. } => LinearPhase::OnlineHe(CRYPTFLOW2_HE),
            Protocol::Cheetah { .. } => LinearPhase::OnlineHe(CHEETAH_HE),
        }
    }

    /// One-time setup per client and server pair (not per inference): the client's HE keys,
    /// the base OTs of OT extension, Cheetah's Ferret bootstrap.
    pub fn setup(&self) -> Traffic {
        let keys = self.linear().he().key_upload;
        match self {
            Protocol::Delphi | Protocol::RingGc | Protocol::ClientGarbler => Traffic {
                up: keys + BASE_OT_BYTES,
                down: BASE_OT_BYTES,
            },
            // SCI sets up IKNP in both directions.
            Protocol::CrypTFlow2 { .. } => Traffic {
                up: keys + 2 * BASE_OT_BYTES,
                down: 2 * BASE_OT_BYTES,
            },
            Protocol::Cheetah { .. } => Traffic {
                up: keys + FERRET_SETUP_BYTES,
                down: FERRET_SETUP_BYTES,
            },
        }
    }

    /// Bytes the client's OT engine holds at once besides HE (Ferret's buffer for Cheetah).
    pub fn ot_buffer(&self) -> u64 {
        match self {
            Protocol::Cheetah { .. } => FERRET_BUFFER_BYTES,
            _ => 0,
        }
    }

    /// AND gates per garbled ReLU (0 for OT-based protocols).
    pub fn and_gates_per_relu(&self) -> u64 {
        self.relu_price().and_gates
    }

    /// Measured per-ReLU bytes of the OT-based protocols (`None` for garbled-circuit ones).
    pub fn ot_relu_bytes(&self) -> Option<OtReluBytes> {
        match *self {
            Protocol::CrypTFlow2 { bits } => OtReluBytes::cryptflow2(bits),
            Protocol::Cheetah { bits } => OtReluBytes::cheetah(bits),
            _ => None,
        }
    }

    /// One-way message flights of a ReLU layer.
    pub fn relu_flights(&self) -> u32 {
        self.relu_price().flights
    }

    /// Whether truncation needs its own protocol: rings narrower than 64 bits cannot use local
    /// truncation, so each truncated element pays about one ReLU (CrypTFlow2's faithful
    /// truncation, ≈ λ(f+1) + O(ℓ) bits) \[R\].
    pub fn interactive_truncation(&self) -> bool {
        self.ot_relu_bytes().is_some() && self.bits() < 64
    }
}

fn ot_price(bytes: Option<OtReluBytes>, bits: u8) -> ReluPrice {
    // `by_name` admits measured widths only; a hand-built unmeasured one prices at zero bytes.
    ReluPrice::ot(
        bytes.unwrap_or(OtReluBytes {
            up_deci: 0,
            down_deci: 0,
        }),
        bits,
    )
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
