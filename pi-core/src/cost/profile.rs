//! Device and link profiles, with named presets. Sources are in `docs/PROTOCOL.md`; tags as in
//! the research notes: \[D\] datasheet, \[M\] published figure quoted from memory, \[R\] our
//! estimate, \[Q\] measured on the Cortex-M4F under QEMU (instructions, counted exactly by
//! `scripts/pi-on-device.sh`; an M4 retires most of them in one cycle).

/// The client device: what its compute and memory cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceProfile {
    /// Preset name.
    pub name: &'static str,
    /// Core clock in Hz.
    pub clock_hz: u64,
    /// Cycles per AES-128 block of the garbling hash's permutation (fixed key: no key schedule),
    /// on the engine [`DeviceProfile::aes_engine`] names.
    pub aes_cycles_per_block: u64,
    /// What runs the AES blocks.
    pub aes_engine: AesEngine,
    /// Evaluator cycles per AND gate besides AES: label selects and XORs, table loads, the
    /// circuit's free XORs and the hash's feed-forward, averaged over the ReLU circuit.
    pub gc_and_cycles: u64,
    /// Garbler cycles per AND gate besides AES (a client garbler): both labels of each input,
    /// two table rows, the output zero label.
    pub gc_garble_and_cycles: u64,
    /// Cycles per 128-bit XOR/AND word operation (load, operate, store on 32-bit words).
    pub word_op_cycles: u64,
    /// Cycles per byte of ChaCha20 keystream (mask regeneration).
    pub chacha_cycles_per_byte: u64,
    /// On-chip RAM in bytes.
    pub sram_bytes: u64,
    /// Non-volatile storage (flash) in bytes.
    pub flash_bytes: u64,
}

/// What computes the AES blocks of the garbling hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AesEngine {
    /// Software on the core (pi-core's default backend, RustCrypto `aes`).
    Software,
    /// A crypto peripheral plugged in as the hash's block cipher
    /// ([`BlockCipher`](crate::share::gc::BlockCipher)).
    Peripheral,
}

/// The network between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkProfile {
    /// Preset name.
    pub name: &'static str,
    /// Client → server bandwidth in bit/s.
    pub up_bps: u64,
    /// Server → client bandwidth in bit/s.
    pub down_bps: u64,
    /// Round-trip time in microseconds (a one-way flight costs half).
    pub rtt_us: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Cortex-M4F at 64 MHz with 256 KiB RAM and 1 MiB flash (nRF52840 \[D\]). AES, the garbling
/// overhead per AND and ChaCha20 are calibrated on the Cortex-M4F under QEMU \[Q\] (pi-core's
/// soft fixsliced AES; `docs/PROTOCOL.md` has the measurement and its command).
pub const CORTEX_M4_64: DeviceProfile = DeviceProfile {
    name: "cortex-m4-64",
    clock_hz: 64_000_000,
    aes_cycles_per_block: M4_SOFT_AES_PER_BLOCK,
    aes_engine: AesEngine::Software,
    gc_and_cycles: M4_GC_AND_OVERHEAD,
    gc_garble_and_cycles: M4_GC_GARBLE_AND_OVERHEAD,
    word_op_cycles: 8,
    chacha_cycles_per_byte: M4_CHACHA_PER_BYTE,
    sram_bytes: 256 * KIB,
    flash_bytes: MIB,
};

/// Instructions per AES-128 block of RustCrypto's fixsliced software AES on the Cortex-M4F,
/// two blocks per pass \[Q\].
pub const M4_SOFT_AES_PER_BLOCK: u64 = 1_882;
/// Instructions per evaluated AND besides AES on the Cortex-M4F \[Q\].
pub const M4_GC_AND_OVERHEAD: u64 = 436;
/// Garbler instructions per AND besides AES on the Cortex-M4F (a client garbler: both labels of
/// each wire, two table rows written) \[Q\].
pub const M4_GC_GARBLE_AND_OVERHEAD: u64 = 617;
/// Instructions per byte of ChaCha20 keystream on the Cortex-M4F \[Q\].
pub const M4_CHACHA_PER_BYTE: u64 = 23;

/// Cortex-M4F at 100 MHz with 128 KiB RAM and 512 KiB flash (STM32F411 \[D\]); per-operation
/// cycles as [`CORTEX_M4_64`].
pub const CORTEX_M4_100: DeviceProfile = DeviceProfile {
    name: "cortex-m4-100",
    clock_hz: 100_000_000,
    sram_bytes: 128 * KIB,
    flash_bytes: 512 * KIB,
    ..CORTEX_M4_64
};

/// Cortex-M4F at 168 MHz with the CRYP AES peripheral, 192 KiB RAM and 1 MiB flash (STM32F417
/// \[D\]). CRYP computes an AES-128 block in 14 cycles (RM0477's CRYP figure \[D\]; the F4's
/// CRYP is the same IP, RM0090 \[M\]); with the core writing 4 words, polling and reading 4
/// words back, about 40 cycles per block \[R\]. Everything else as the soft M4 \[Q\].
pub const CORTEX_M4_CRYP_168: DeviceProfile = DeviceProfile {
    name: "cortex-m4-cryp-168",
    clock_hz: 168_000_000,
    aes_cycles_per_block: 40,
    aes_engine: AesEngine::Peripheral,
    sram_bytes: 192 * KIB,
    flash_bytes: MIB,
    ..CORTEX_M4_64
};

/// STM32H7Rx/7Sx: Cortex-M7 at 600 MHz with the CRYP peripheral, 620 KiB RAM and 64 KiB of
/// on-chip flash \[M\]. CRYP: **14 cycles** per AES-128 ECB block, the datasheet figure (RM0477,
/// table "CRYP versus SAES") \[D\], not a measurement: the core's four words in and out per
/// block are not included (no board here). Everything else as the soft M4 \[Q\], an upper bound
/// on a dual-issue M7 \[R\].
pub const STM32H7_CRYP_600: DeviceProfile = DeviceProfile {
    name: "stm32h7-cryp-600",
    clock_hz: 600_000_000,
    aes_cycles_per_block: 14,
    aes_engine: AesEngine::Peripheral,
    sram_bytes: 620 * KIB,
    flash_bytes: 64 * KIB,
    ..CORTEX_M4_64
};

/// STM32U5 (U575/U585): Cortex-M33 at 160 MHz with the AES peripheral, 786 KiB RAM and 2 MiB
/// flash \[M\]. AES: **51 cycles** per AES-128 ECB block, the datasheet figure (RM0456, table 478;
/// the side-channel-hardened SAES takes 528) \[D\], not a measurement: data movement is not
/// included. Everything else as the soft M4 \[Q\] \[R\].
pub const STM32U5_AES_160: DeviceProfile = DeviceProfile {
    name: "stm32u5-aes-160",
    clock_hz: 160_000_000,
    aes_cycles_per_block: 51,
    aes_engine: AesEngine::Peripheral,
    sram_bytes: 786 * KIB,
    flash_bytes: 2 * MIB,
    ..CORTEX_M4_64
};

/// Cortex-M0+ at 48 MHz with 32 KiB RAM and 256 KiB flash (SAMD21G18 \[D\]). Not measured:
/// about twice the M4's cycles for AES and garbling (no barrel-shifted operands, 8 usable low
/// registers) \[R\].
pub const CORTEX_M0PLUS_48: DeviceProfile = DeviceProfile {
    name: "cortex-m0plus-48",
    clock_hz: 48_000_000,
    aes_cycles_per_block: 2 * M4_SOFT_AES_PER_BLOCK,
    aes_engine: AesEngine::Software,
    gc_and_cycles: 2 * M4_GC_AND_OVERHEAD,
    gc_garble_and_cycles: 2 * M4_GC_GARBLE_AND_OVERHEAD,
    word_op_cycles: 16,
    chacha_cycles_per_byte: 30,
    sram_bytes: 32 * KIB,
    flash_bytes: 256 * KIB,
};

/// Phone-class core: Cortex-A76-class at 2.4 GHz with the ARMv8 AES instructions (≈1 cycle per
/// byte or better \[M\]; counted as a peripheral: not the core's general-purpose path), about
/// 40 cycles of other work per AND \[R\], 4 GiB RAM, 64 GiB storage.
pub const PHONE: DeviceProfile = DeviceProfile {
    name: "phone",
    clock_hz: 2_400_000_000,
    aes_cycles_per_block: 16,
    aes_engine: AesEngine::Peripheral,
    gc_and_cycles: 40,
    gc_garble_and_cycles: 80,
    word_op_cycles: 1,
    chacha_cycles_per_byte: 2,
    sram_bytes: 4 * GIB,
    flash_bytes: 64 * GIB,
};

/// Every device preset.
pub const DEVICES: [DeviceProfile; 7] = [
    CORTEX_M4_64,
    CORTEX_M4_100,
    CORTEX_M4_CRYP_168,
    STM32H7_CRYP_600,
    STM32U5_AES_160,
    CORTEX_M0PLUS_48,
    PHONE,
];

/// Data-centre LAN: 1 Gbit/s each way, 0.2 ms RTT \[R\].
pub const LAN: LinkProfile = LinkProfile {
    name: "lan",
    up_bps: 1_000_000_000,
    down_bps: 1_000_000_000,
    rtt_us: 200,
};

/// WAN: Cryptonite's simulator defaults, 100 Mbit/s up and 500 Mbit/s down (Garimella et al.,
/// ASPLOS'23 \[C\]), with a 40 ms RTT \[R\].
pub const WAN: LinkProfile = LinkProfile {
    name: "wan",
    up_bps: 100_000_000,
    down_bps: 500_000_000,
    rtt_us: 40_000,
};

/// LTE: 10 Mbit/s up, 30 Mbit/s down, 50 ms RTT (typical measured averages \[M\]).
pub const LTE: LinkProfile = LinkProfile {
    name: "lte",
    up_bps: 10_000_000,
    down_bps: 30_000_000,
    rtt_us: 50_000,
};

/// Bluetooth Low Energy to a phone gateway: 500 kbit/s application throughput each way (LE 2M
/// PHY with data length extension reaches about 1.4 Mbit/s at best \[M\]), 30 ms RTT (two 15 ms
/// connection intervals) \[R\].
pub const BLE: LinkProfile = LinkProfile {
    name: "ble",
    up_bps: 500_000,
    down_bps: 500_000,
    rtt_us: 30_000,
};

/// Every link preset.
pub const LINKS: [LinkProfile; 4] = [LAN, WAN, LTE, BLE];

impl DeviceProfile {
    /// The preset called `name`.
    pub fn by_name(name: &str) -> Option<Self> {
        DEVICES.iter().copied().find(|d| d.name == name)
    }
}

impl LinkProfile {
    /// The preset called `name`.
    pub fn by_name(name: &str) -> Option<Self> {
        LINKS.iter().copied().find(|l| l.name == name)
    }

    /// Microseconds to move `up` bytes client → server and `down` bytes back, bandwidth only.
    pub fn transfer_us(&self, up: u64, down: u64) -> u64 {
        let t = |bytes: u64, bps: u64| (bytes as u128 * 8 * 1_000_000).div_ceil(bps.max(1) as u128);
        u64::try_from(t(up, self.up_bps) + t(down, self.down_bps)).unwrap_or(u64::MAX)
    }
}
