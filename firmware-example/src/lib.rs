//! What the firmware binaries share: marker functions for the QEMU instruction-count plugin,
//! the exit path, and for the private-inference client (`pi-client`) the UART transport, the
//! phase probe and the stack high-water mark.
//!
//! The binaries: `firmware-example` (plaintext inference, `src/main.rs`) and `pi-client` (the
//! client's side of a private inference against `protocol-sim serve`, `src/bin/pi-client.rs`).
#![no_std]

// The defmt transport both binaries log through: linked here, once.
#[cfg(all(feature = "qemu", feature = "rtt"))]
compile_error!(
    "choose one defmt transport: feature `qemu` (default) or `rtt` (--no-default-features --features rtt)"
);
#[cfg(not(any(feature = "qemu", feature = "rtt")))]
compile_error!("choose a defmt transport: feature `qemu` or `rtt`");

#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "qemu")]
use defmt_semihosting as _;

pub mod marks;
pub mod stack;
pub mod uart;

use cortex_m_semihosting::debug;

/// Ends the program with a semihosting exit code (QEMU's process status).
pub fn exit(code: debug::ExitStatus) -> ! {
    debug::exit(code);
    // Only reached when no debugger or emulator honours the request.
    loop {
        cortex_m::asm::wfi();
    }
}

/// 32-bit FNV-1a (the generator stores the same hash of each embedded model file).
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
