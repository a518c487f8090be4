//! Marker functions: the QEMU plugin (`tools/region.c`) counts the instructions executed between
//! `bench_start` and `bench_stop`, and inside such a region attributes them to the phase whose
//! marker ran last.
//!
//! The bodies are inline assembly, which the optimizer must keep, and they differ so the linker
//! cannot merge two markers into one address (the plugin would then confuse them). A marker
//! costs three instructions (call, body, return).

/// Start of a measured region.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bench_start() {
    cortex_m::asm::nop();
}

/// End of a measured region.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bench_stop() {
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}

/// From here on: share arithmetic (masks, truncation, pools, reconstruction).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn phase_shares() {
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}

/// From here on: garbled-circuit evaluation.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn phase_garbled() {
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}

/// From here on: moving bytes through the transport.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn phase_io() {
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}

/// From here on: waiting for the peer (polling an empty receive register). Not device work: it
/// depends on the peer and the link, so it is reported apart.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn phase_wait() {
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}

/// The phase markers by name, as the runner passes them to the plugin.
pub const PHASES: [&str; 4] = ["phase_shares", "phase_garbled", "phase_io", "phase_wait"];

/// A pi-core [`Probe`](pi_core::share::Probe) that calls the phase markers.
#[derive(Debug, Default)]
pub struct MarkProbe;

impl pi_core::share::Probe for MarkProbe {
    fn enter(&mut self, phase: pi_core::share::Phase) {
        match phase {
            pi_core::share::Phase::Shares => phase_shares(),
            pi_core::share::Phase::Garbled => phase_garbled(),
            pi_core::share::Phase::Io => phase_io(),
        }
    }
}

/// Generates the per-layer markers: distinct bodies (`n` nops), so none can be merged.
macro_rules! layer_marks {
    ($($name:ident = $n:literal),*) => {
        $(
            /// Per-layer marker (feature `layer-marks`): the instructions from here to the next
            /// marker belong to the following layer.
            #[unsafe(no_mangle)]
            #[inline(never)]
            pub extern "C" fn $name() {
                for _ in 0..$n {
                    cortex_m::asm::nop();
                }
            }
        )*
    };
}

layer_marks!(
    layer_done_0 = 6,
    layer_done_1 = 7,
    layer_done_2 = 8,
    layer_done_3 = 9,
    layer_done_4 = 10,
    layer_done_5 = 11,
    layer_done_6 = 12,
    layer_done_7 = 13
);

/// Calls the marker of layer `index` (0..=7; later layers share the last marker): the region
/// plugin attributes what follows to layer `index + 1` (`tools/qemu-run.sh` names them).
#[inline(never)]
pub fn layer_done(index: usize) {
    match index {
        0 => layer_done_0(),
        1 => layer_done_1(),
        2 => layer_done_2(),
        3 => layer_done_3(),
        4 => layer_done_4(),
        5 => layer_done_5(),
        6 => layer_done_6(),
        _ => layer_done_7(),
    }
}
