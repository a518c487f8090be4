//! What one kept ReLU costs under each protocol: one [`ReluPrice`] per protocol, built in one
//! place ([`Protocol::relu_price`](super::Protocol::relu_price)), so a new ReLU construction is a
//! new row here and nothing else. Every constant carries its provenance tag (`docs/PROTOCOL.md`
//! §5 cites each): \[C\] read in the protocol's code, \[D\] its authors' committed measurements,
//! \[X\] measured by building the public code, \[R\] derived.

use crate::share::{ReluKind, ReluParams, WORD_BYTES, gc};

use super::Direction;
use super::profile::DeviceProfile;

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
/// Server (garbler) storage per ReLU: fancy-garbling's encoder and r′ \[D\]. With the client as
/// garbler this is what the client keeps: Garimella et al.'s ≈3.6 KB per ReLU.
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

/// Measured bytes per OT-based ReLU in tenths of a byte, by ring width \[X\] (65 536 ReLUs; one
/// thread per party): `(bits, client → server, server → client)`. The direction split is
/// measured (client = SCI's BOB, P2).
const CRYPTFLOW2_DECI: [(u8, u64, u64); 4] = [
    (32, 4548, 767),
    (37, 5036, 836),
    (41, 5686, 926),
    (64, 9585, 1465),
];
/// Cheetah totals in tenths of a byte per ReLU \[X\]: the 2^20-ReLU runs where available (ℓ = 32,
/// 41; Ferret re-extension included), 65 536 otherwise. Only totals were measured; the split
/// reuses CrypTFlow2's proportions \[R\] (it matters on asymmetric links only).
const CHEETAH_TOTAL_DECI: [(u8, u64); 4] = [(32, 524), (37, 568), (41, 675), (64, 1013)];

/// The ring widths with measurements for the OT-based protocols.
pub const OT_WIDTHS: [u8; 4] = [32, 37, 41, 64];

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

    /// CrypTFlow2's measured bytes at ring width `bits`.
    pub fn cryptflow2(bits: u8) -> Option<Self> {
        CRYPTFLOW2_DECI
            .iter()
            .find(|row| row.0 == bits)
            .map(|&(_, up, down)| OtReluBytes {
                up_deci: up,
                down_deci: down,
            })
    }

    /// Cheetah's measured total at ring width `bits`, split as CrypTFlow2's.
    pub fn cheetah(bits: u8) -> Option<Self> {
        let total = CHEETAH_TOTAL_DECI.iter().find(|row| row.0 == bits)?.1;
        let split = Self::cryptflow2(bits)?;
        let (up, down) = (split.up_deci, split.down_deci);
        let up_deci = (total * up + (up + down) / 2) / (up + down);
        Some(OtReluBytes {
            up_deci,
            down_deci: total - up_deci,
        })
    }
}

/// Client work, counted in device operations, priced by a [`DeviceProfile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Work {
    /// AES-128 blocks of a fixed-key garbling hash.
    pub aes_blocks: u64,
    /// AND gates evaluated (their non-AES work).
    pub eval_ands: u64,
    /// AND gates garbled (their non-AES work).
    pub garble_ands: u64,
    /// Bytes of ChaCha20 keystream (masks and labels regenerated from the seed).
    pub chacha_bytes: u64,
    /// 128-bit word operations (label selects and XORs outside the gates).
    pub word_ops: u64,
}

impl Work {
    /// No work.
    pub const NONE: Work = Work {
        aes_blocks: 0,
        eval_ands: 0,
        garble_ands: 0,
        chacha_bytes: 0,
        word_ops: 0,
    };

    /// Cycles on `d`.
    pub fn cycles(&self, d: &DeviceProfile) -> u64 {
        self.aes_blocks * d.aes_cycles_per_block
            + self.eval_ands * d.gc_and_cycles
            + self.garble_ands * d.gc_garble_and_cycles
            + self.chacha_bytes * d.chacha_cycles_per_byte
            + self.word_ops * d.word_op_cycles
    }
}

/// The cost of one kept ReLU under one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReluPrice {
    /// AND gates of the circuit (0 for OT-based comparisons).
    pub and_gates: u64,
    /// Online bytes per ReLU, tenths of a byte each way (exact protocols are multiples of 10).
    pub online: OtReluBytes,
    /// Direction of a ReLU layer's first online message.
    pub first: Direction,
    /// Alternating one-way flights of a ReLU layer (any number of ReLUs).
    pub flights: u32,
    /// Preprocessing bytes per ReLU, client → server.
    pub offline_up: u64,
    /// Preprocessing bytes per ReLU, server → client.
    pub offline_down: u64,
    /// Bytes the client keeps between the phases (what it cannot regenerate); streamed, they
    /// move into the online phase as server → client bytes.
    pub client_storage: u64,
    /// Bytes the server keeps between the phases.
    pub server_storage: u64,
    /// Bytes the client needs in RAM at once to process one ReLU when its material is streamed
    /// (or read from flash).
    pub client_buffer: u64,
    /// Bytes the client needs in RAM at once to prepare one ReLU in the preprocessing phase
    /// (a client garbler's tables and zero labels).
    pub garble_buffer: u64,
    /// Client work in the online phase.
    pub online_work: Work,
    /// Client work in the offline phase (garbling, for a client garbler).
    pub offline_work: Work,
    /// One AES-equivalent hash per 16 bytes of online traffic (OT-based protocols: a rough
    /// lower bound \[R\]) instead of [`ReluPrice::online_work`].
    pub hash_per_16_bytes: bool,
}

impl ReluPrice {
    /// Delphi as implemented: the server garbles Delphi's 288-AND ReLU6 over F_p, bincode on the
    /// wire, OT extension for the client's labels offline (PCM §1.4–1.6).
    pub const DELPHI: ReluPrice = ReluPrice {
        and_gates: DELPHI_AND_GATES,
        online: OtReluBytes {
            up_deci: 0,
            down_deci: 10 * DELPHI_ONLINE_LABEL_BYTES,
        },
        first: Direction::Down,
        flights: 1,
        offline_up: DELPHI_OT_RECEIVER_BYTES,
        offline_down: DELPHI_GC_BYTES + DELPHI_MASK_LABEL_BYTES + DELPHI_OT_SENDER_BYTES,
        client_storage: DELPHI_CLIENT_STORAGE,
        server_storage: DELPHI_SERVER_STORAGE,
        client_buffer: DELPHI_CLIENT_STORAGE,
        garble_buffer: 0,
        online_work: Work {
            aes_blocks: 2 * DELPHI_AND_GATES,
            eval_ands: 0,
            garble_ands: 0,
            chacha_bytes: 0,
            word_ops: DELPHI_EVAL_XORS,
        },
        offline_work: Work::NONE,
        hash_per_16_bytes: false,
    };

    /// This toolkit's server-garbler protocol (`ring-gc`) with the full ReLU, exactly as
    /// `protocol-sim run` sends it: the client re-shares each kept element (8 B up), the server
    /// sends the 64 labels of its share (1 KiB down), the client evaluates the 189-AND circuit.
    pub const RING_GC: ReluPrice = ReluPrice::ring_gc(ReluParams::FULL);

    /// `ring-gc` with the ReLU protocol `p`, full or split (`docs/PROTOCOL.md` §3b), exactly as
    /// `protocol-sim run` sends it. Online the client re-shares each kept element (8 B up), the
    /// server sends the labels of its `t` input bits (and for the split ReLU the multiplexer
    /// ciphertext), and the split ReLU's client answers with its OT correction (8 B up, a third
    /// flight). Offline the client's input labels come by OT (one per input bit), the rest of
    /// the material is sent as is, and the split ReLU adds a random OT with the server as
    /// receiver (one extension column down).
    pub const fn ring_gc(p: ReluParams) -> ReluPrice {
        let bits = p.sign_bits() as u64;
        let material = p.material_bytes() as u64;
        let word = WORD_BYTES as u64;
        let correction = p.correction_bytes() as u64;
        let random_ot = match p.kind() {
            ReluKind::Full => 0,
            ReluKind::Split => OT_RECEIVER_BYTES,
        };
        ReluPrice {
            and_gates: p.and_gates() as u64,
            online: OtReluBytes {
                up_deci: 10 * (word + correction),
                down_deci: 10 * p.label_bytes() as u64,
            },
            first: Direction::Up,
            flights: if correction > 0 { 3 } else { 2 },
            offline_up: bits * OT_RECEIVER_BYTES,
            offline_down: material - bits * gc::LABEL_BYTES as u64
                + bits * OT_SENDER_BYTES
                + random_ot,
            client_storage: material,
            server_storage: p.server_storage_bytes() as u64,
            client_buffer: material,
            garble_buffer: 0,
            online_work: Work {
                aes_blocks: p.eval_aes_blocks() as u64,
                eval_ands: p.and_gates() as u64,
                garble_ands: 0,
                chacha_bytes: p.client_keystream_bytes() as u64,
                word_ops: 0,
            },
            offline_work: Work::NONE,
            hash_per_16_bytes: false,
        }
    }

    /// This toolkit's client-garbler protocol (`client-garbler`), exactly as `protocol-sim run
    /// --protocol client-garbler` sends it. Offline the client garbles each ReLU from its seed and
    /// uploads the tables, its mask's labels and the decoding bits; the server's input labels
    /// come by OT with the client as sender. Online the server re-shares each kept element (8 B
    /// down), the client sends the 64 labels of its share (1 KiB up) and the server evaluates.
    /// The client keeps nothing per ReLU: Δ, every label and its output share `r'` are
    /// regenerated from its seed.
    pub const CLIENT_GARBLER: ReluPrice = {
        let bits = gc::SHARE_BITS as u64;
        let circuit = (gc::TABLE_BYTES + gc::INPUT_LABEL_BYTES + gc::DECODE_BYTES) as u64;
        let labels = gc::INPUT_LABEL_BYTES as u64;
        ReluPrice {
            and_gates: gc::RELU_AND_GATES as u64,
            online: OtReluBytes {
                up_deci: 10 * labels,
                down_deci: 10 * WORD_BYTES as u64,
            },
            first: Direction::Down,
            flights: 2,
            // The circuit goes up; OT with the server as receiver: 16 B/OT down, 32 B/OT up.
            offline_up: circuit + bits * OT_SENDER_BYTES,
            offline_down: bits * OT_RECEIVER_BYTES,
            client_storage: 0,
            // The circuit and the labels of its own input `p` (from OT), and `p`.
            server_storage: circuit + labels + WORD_BYTES as u64,
            // Online: the zero labels of its 64 input wires, regenerated, then encoded.
            client_buffer: labels,
            // Garbling: one ReLU's tables and the zero labels of its three input wires.
            garble_buffer: gc::TABLE_BYTES as u64 + 3 * labels,
            online_work: Work {
                aes_blocks: 0,
                eval_ands: 0,
                garble_ands: 0,
                chacha_bytes: labels + WORD_BYTES as u64,
                word_ops: bits,
            },
            // Garbling: 1 388 AES blocks, the garbler's other work per AND, and the keystream of
            // three wires' zero labels (its input, the server's input, the mask) and r'.
            offline_work: Work {
                aes_blocks: gc::GARBLE_AES_PER_RELU as u64,
                eval_ands: 0,
                garble_ands: gc::RELU_AND_GATES as u64,
                chacha_bytes: 3 * labels + WORD_BYTES as u64,
                word_ops: 2 * bits,
            },
            hash_per_16_bytes: false,
        }
    };

    /// An OT-based comparison (CrypTFlow2, Cheetah): measured bytes, all online, the
    /// millionaires' tree with 4-bit leaves: `ceil(log2(ℓ/4)) + 2` flights starting from the
    /// client \[X\]; nothing stored.
    pub const fn ot(bytes: OtReluBytes, bits: u8) -> ReluPrice {
        let leaves = (bits as u32).div_ceil(4);
        let leaves = if leaves == 0 { 1 } else { leaves };
        let depth = u32::BITS - (leaves - 1).leading_zeros();
        ReluPrice {
            and_gates: 0,
            online: bytes,
            first: Direction::Up,
            flights: depth + 2,
            offline_up: 0,
            offline_down: 0,
            client_storage: 0,
            server_storage: 0,
            client_buffer: 0,
            garble_buffer: 0,
            online_work: Work::NONE,
            offline_work: Work::NONE,
            hash_per_16_bytes: true,
        }
    }

    /// Online bytes of `n` ReLUs in one layer, each direction rounded up.
    pub fn online_bytes(&self, n: u64) -> (u64, u64) {
        (
            (n * self.online.up_deci).div_ceil(10),
            (n * self.online.down_deci).div_ceil(10),
        )
    }
}
