//! firmware-example: a pi-core model running on a Cortex-M4F with no heap.
//!
//! The model file (`model/model.pic`) and a handful of test samples (`src/generated.rs`, written
//! by `scripts/gen-firmware-model.sh`) are embedded in flash. The firmware parses the model once
//! (weights stay in flash), runs every sample through it in a static activation arena, checks the
//! predicted class against the label and the logits against the host's, logs everything with
//! defmt, and exits through semihosting: status 0 when every sample is right, 1 otherwise.
//!
//! Each inference runs between two marker functions, [`bench_start`] and [`bench_stop`], so the
//! QEMU region plugin (`tools/region.c`) can count its instructions exactly. SysTick is read
//! around it too: under QEMU with `-icount shift=0` on mps2-an386 (25 MHz) one tick is 40
//! instructions; on a board it is real core clock ticks.
#![no_std]
#![no_main]

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use firmware_example::marks::{bench_start, bench_stop};
use firmware_example::{exit, fnv1a};
use pi_core::Model;

#[rustfmt::skip]
mod generated;

use generated::{
    ARENA_WORDS, CLASSES, MACS, MODEL_FNV1A, MODEL_LEN, RELUS_KEPT, RELUS_TOTAL, SAMPLES,
};

/// The exported model, kept in flash; pi-core borrows its weights in place.
static MODEL: &[u8] = include_bytes!("../model/model.pic");

/// SysTick reload: the full 24-bit range.
const SYST_RELOAD: u32 = 0x00ff_ffff;

/// Why the firmware gives up before running the samples.
#[derive(defmt::Format)]
enum Setup {
    /// The embedded model differs from the one `generated.rs` was made from.
    StaleGenerated { len: usize, fnv1a: u32 },
    /// The model file does not parse.
    Parse(pi_core::Error),
    /// The generated arena is smaller than the model's plan.
    ArenaTooSmall { needed: usize, have: usize },
    /// The model's output is not `CLASSES` logits.
    Classes { model: usize, generated: usize },
    /// The arena singleton was already taken.
    Arena,
}

#[entry]
fn main() -> ! {
    let code = match run() {
        Ok(0) => {
            defmt::info!("PASS: all {} samples predicted correctly", SAMPLES.len());
            debug::EXIT_SUCCESS
        }
        Ok(failed) => {
            defmt::error!("FAIL: {} of {} samples wrong", failed, SAMPLES.len());
            debug::EXIT_FAILURE
        }
        Err(e) => {
            defmt::error!("FAIL: setup: {}", e);
            debug::EXIT_FAILURE
        }
    };
    exit(code)
}

/// Runs every sample; returns how many failed.
fn run() -> Result<usize, Setup> {
    let fnv1a = fnv1a(MODEL);
    if MODEL.len() != MODEL_LEN || fnv1a != MODEL_FNV1A {
        return Err(Setup::StaleGenerated {
            len: MODEL.len(),
            fnv1a,
        });
    }
    let model = Model::parse(MODEL).map_err(Setup::Parse)?;
    if model.arena_words() > ARENA_WORDS {
        return Err(Setup::ArenaTooSmall {
            needed: model.arena_words(),
            have: ARENA_WORDS,
        });
    }
    let classes = model.output_shape().elements();
    if classes != CLASSES {
        return Err(Setup::Classes {
            model: classes,
            generated: CLASSES,
        });
    }
    let relus = model.relu_count();
    if relus.kept != RELUS_KEPT || relus.total != RELUS_TOTAL || model.macs() != MACS {
        return Err(Setup::StaleGenerated {
            len: MODEL.len(),
            fnv1a,
        });
    }
    defmt::info!(
        "model: {} bytes, {} layers, {} MACs, {} parameter bytes, ReLUs kept {}/{}, arena {} words",
        MODEL.len(),
        model.layer_count(),
        model.macs(),
        model.parameter_bytes(),
        relus.kept,
        relus.total,
        model.arena_words()
    );

    log_cost_report(&model);

    // The activation arena: a static handed out once, no `static mut` in this crate.
    let arena: &'static mut [i32; ARENA_WORDS] =
        cortex_m::singleton!(: [i32; ARENA_WORDS] = [0; ARENA_WORDS]).ok_or(Setup::Arena)?;
    let mut syst = cortex_m::Peripherals::take().ok_or(Setup::Arena)?.SYST;
    start_systick(&mut syst);

    // An empty region first: the marker overhead the runner subtracts.
    bench_start();
    bench_stop();

    let mut failed = 0;
    for (i, sample) in SAMPLES.iter().enumerate() {
        let t0 = SYST::get_current();
        bench_start();
        #[cfg(not(feature = "layer-marks"))]
        let result = model.infer(&sample.input, arena);
        #[cfg(feature = "layer-marks")]
        let result = model.infer_observed(&sample.input, arena, |layer, _| {
            firmware_example::marks::layer_done(layer.index)
        });
        bench_stop();
        let ticks = t0.wrapping_sub(SYST::get_current()) & SYST_RELOAD;
        match result {
            Ok(logits) => {
                let predicted = pi_core::fixed::argmax(logits);
                let exact = logits == sample.logits.as_slice();
                if predicted == sample.label && exact {
                    defmt::info!(
                        "sample {}: label {} predicted {} ok, {} SysTick ticks, logits {}",
                        i,
                        sample.label,
                        predicted,
                        ticks,
                        logits
                    );
                } else {
                    failed += 1;
                    defmt::error!(
                        "sample {}: label {} predicted {}; logits {} (host: {})",
                        i,
                        sample.label,
                        predicted,
                        logits,
                        sample.logits
                    );
                }
            }
            Err(e) => {
                failed += 1;
                defmt::error!("sample {}: inference failed: {}", i, e);
            }
        }
    }
    Ok(failed)
}

/// What a private inference of the embedded model would cost this device, computed on the device
/// by pi-core's cost model: this toolkit's garbled-ReLU protocol and Delphi, over BLE and LTE,
/// for a Cortex-M4F at 64 MHz (the nRF52840 class of the QEMU board).
fn log_cost_report(model: &Model<'_>) {
    use pi_core::cost::{BLE, CORTEX_M4_64, CostModel, LTE, Protocol};
    for (protocol, protocol_name) in [(Protocol::RingGc, "ring-gc"), (Protocol::Delphi, "delphi")] {
        for (link, link_name) in [(BLE, "ble"), (LTE, "lte")] {
            let t = CostModel::new(protocol, CORTEX_M4_64, link).for_each_layer(model, |_| {});
            defmt::info!(
                "PI cost ({}, cortex-m4-64, {}): {} ReLUs kept; offline {} B down / {} B up; online {} B down / {} B up in {} flights; client storage {} B ({}); client {} cycles; online latency {} us",
                protocol_name,
                link_name,
                t.relus_kept,
                t.offline.down,
                t.offline.up,
                t.online.down,
                t.online.up,
                t.flights,
                t.client_storage,
                t.fit.name(),
                t.client_cycles,
                t.online_latency_us
            );
        }
    }
}

/// SysTick on the core clock, counting down over the full 24-bit range.
fn start_systick(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYST_RELOAD);
    syst.clear_current();
    syst.enable_counter();
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    defmt::error!("FAIL: panic");
    exit(debug::EXIT_FAILURE)
}
