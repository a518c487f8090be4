//! pi-client: the client's side of a private inference on the Cortex-M4F.
//!
//! The device holds the model's architecture only (`pi/model-arch.pic`: weights zero) and a few
//! test inputs (`src/pi_generated.rs`). Over UART0 it opens a session with `protocol-sim serve`
//! on the host (handshake: protocol version, model digest, protocol name, session id), then runs
//! pi-core's client online phase once per input, with the garbled material streamed to it in
//! the order it is consumed. Each reconstructed output is checked against the host's plaintext
//! logits (within the model's proven tolerance, and the argmax), and the bytes the UART moved
//! against pi-core's cost model, computed here on the device. Exit status 0 only if all agree.
//!
//! Randomness: QEMU's board has no TRNG, so every seed derives from [`SIMULATION_SEED`], a
//! public constant: INSECURE, for the simulation only. On a board, take the 32 bytes of each
//! [`ClientSeed`] from its TRNG instead (for example the nRF52840's RNG peripheral).
//!
//! Instruction counts: the QEMU plugin counts each region between `bench_start` and
//! `bench_stop`, split by phase markers. Regions, in order: an empty one (marker overhead), 64
//! AES blocks, one garbled-ReLU evaluation, 1 KiB of ChaCha20 keystream, one garbling of the same
//! circuit (a client garbler's offline work), then one per inference.
#![no_std]
#![no_main]

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use firmware_example::marks::{MarkProbe, bench_start, bench_stop};
use firmware_example::uart::{Kind, UART0_BASE, UART0_RX_IRQ, Uart};
use firmware_example::{exit, fnv1a, stack};
use pi_core::Model;
use pi_core::cost::{BLE, CORTEX_M4_64, CostModel, Protocol};
use pi_core::share::gc::{self, Aes128Cipher, BlockCipher, GcHash};
use pi_core::share::prg::{Prg, Purpose};
use pi_core::share::session::{self, Frame};
use pi_core::share::{
    Client, ClientBuffers, ClientSeed, Delivery, GcMaterial, Hello, ProtocolError, ProtocolName,
    ReluKind, Streamed,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

#[path = "../pi_generated.rs"]
#[rustfmt::skip]
mod pi_generated;

use pi_generated::{
    ARCH_DIGEST, ARENA_WORDS, CLASSES, COLOUR_BYTES, MODEL_FNV1A, MODEL_LEN, RELUS_KEPT, SAMPLES,
    TOLERANCE,
};

/// The model's architecture (weights zero): all the client knows of it.
static MODEL: &[u8] = include_bytes!("../../pi/model-arch.pic");

/// The simulation's seed: QEMU has no TRNG. INSECURE: public, so every mask it derives is
/// known to anyone who reads this file. Replace with TRNG output on a board.
pub const SIMULATION_SEED: [u8; 32] = *b"pi-toolkit: QEMU simulation seed";

/// Core clock of the MPS2 AN386 (SysTick counts it).
const CORE_HZ: u64 = 25_000_000;
/// How long the client waits for the server before giving up.
const TIMEOUT_S: u64 = 60;

/// The split ReLU's sign width, when the firmware is built with `PI_SPLIT_SIGN_BITS=T` (what
/// `scripts/pi-on-device.sh --relu split --sign-bits T` does); otherwise every ReLU is full.
const SPLIT_SIGN_BITS: Option<u8> = parse_u8(option_env!("PI_SPLIT_SIGN_BITS"));

/// A decimal `u8` from a build-time variable (`None` when unset or not a number below 256).
const fn parse_u8(text: Option<&str>) -> Option<u8> {
    let Some(text) = text else {
        return None;
    };
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let d = bytes[i];
        if d < b'0' || d > b'9' || value > 25 {
            return None;
        }
        value = value * 10 + (d - b'0') as u32;
        i += 1;
    }
    if value > 255 { None } else { Some(value as u8) }
}

/// AES blocks in the calibration region.
const CAL_AES_BLOCKS: usize = 64;
/// ChaCha20 words in the calibration region (1 KiB).
const CAL_CHACHA_WORDS: usize = 128;

/// Why the client stops before or during the session.
#[derive(defmt::Format)]
enum Failure {
    /// The embedded model differs from the one `pi_generated.rs` was made from.
    StaleGenerated,
    /// The model file does not parse.
    Parse(pi_core::Error),
    /// The device and the generator disagree on the model digest.
    Digest,
    /// The generated arena is smaller than the model's plan, or the output size differs.
    Buffers,
    /// A static buffer was already taken.
    Taken,
    /// The protocol failed (handshake, transport, timeout, garbage peer).
    Protocol(ProtocolError),
}

impl From<ProtocolError> for Failure {
    fn from(e: ProtocolError) -> Self {
        Failure::Protocol(e)
    }
}

#[entry]
fn main() -> ! {
    // No handler ever runs: exceptions only pend, to wake the core from WFI (see `uart`).
    cortex_m::interrupt::disable();
    stack::paint();
    let code = match run() {
        Ok(0) => debug::EXIT_SUCCESS,
        Ok(failed) => {
            defmt::error!("FAIL: {} of {} samples disagree", failed, SAMPLES.len());
            debug::EXIT_FAILURE
        }
        Err(e) => {
            defmt::error!("FAIL: {}", e);
            debug::EXIT_FAILURE
        }
    };
    exit(code)
}

/// The calibration regions: marker overhead, AES, one garbled ReLU, ChaCha20, one garbling.
/// The garbling writes its tables into `material`, which the session refills anyway.
fn calibrate(material: &mut GcMaterial) {
    bench_start();
    bench_stop();

    let cipher = Aes128Cipher::new();
    let mut blocks = [0u128; CAL_AES_BLOCKS];
    bench_start();
    cipher.encrypt(&mut blocks);
    bench_stop();

    // Garbled evaluation is constant-time: any material costs the same.
    let hash = GcHash::new();
    let labels = [0u128; gc::SHARE_BITS];
    bench_start();
    let z = gc::evaluate_relu(&hash, 0, material, &labels);
    bench_stop();

    let mut words = [0u64; CAL_CHACHA_WORDS];
    bench_start();
    Prg::new(&SIMULATION_SEED, 0, Purpose::LinearInput).fill(&mut words);
    bench_stop();

    // Garbling is constant-time as well: any labels cost the same.
    bench_start();
    let decode = gc::garble_relu(&hash, 1, 0, &labels, &labels, &labels, &mut material.tables);
    bench_stop();
    defmt::info!(
        "calibration regions: marker overhead, {} AES blocks, 1 garbled ReLU ({} AND), {} B of ChaCha20, 1 garbling (checksums {} {} {} {})",
        CAL_AES_BLOCKS,
        gc::RELU_AND_GATES,
        CAL_CHACHA_WORDS * 8,
        blocks[0] as u32,
        z as u32,
        words[0] as u32,
        decode as u32
    );
}

fn run() -> Result<usize, Failure> {
    if MODEL.len() != MODEL_LEN || fnv1a(MODEL) != MODEL_FNV1A {
        return Err(Failure::StaleGenerated);
    }
    let model = Model::parse(MODEL).map_err(Failure::Parse)?;
    let relus = model.relu_count();
    if relus.kept != RELUS_KEPT {
        return Err(Failure::StaleGenerated);
    }
    if session::architecture_digest(&model) != ARCH_DIGEST {
        return Err(Failure::Digest);
    }
    if model.arena_words() > ARENA_WORDS || model.output_shape().elements() != CLASSES {
        return Err(Failure::Buffers);
    }
    let shares: &'static mut [u64; ARENA_WORDS] =
        cortex_m::singleton!(: [u64; ARENA_WORDS] = [0; ARENA_WORDS]).ok_or(Failure::Taken)?;
    let material: &'static mut GcMaterial =
        cortex_m::singleton!(: GcMaterial = GcMaterial::EMPTY).ok_or(Failure::Taken)?;
    let colours: &'static mut [u8; COLOUR_BYTES] =
        cortex_m::singleton!(: [u8; COLOUR_BYTES] = [0; COLOUR_BYTES]).ok_or(Failure::Taken)?;
    let mut syst = cortex_m::Peripherals::take().ok_or(Failure::Taken)?.SYST;
    start_systick(&mut syst);

    defmt::info!(
        "model: {} bytes (architecture only), {} layers, ReLUs kept {}/{}, share arena {} B, material buffer {} B",
        MODEL.len(),
        model.layer_count(),
        relus.kept,
        relus.total,
        ARENA_WORDS * 8,
        core::mem::size_of::<GcMaterial>()
    );
    calibrate(material);

    defmt::warn!("seeds derive from SIMULATION_SEED, a public constant: insecure, QEMU only");
    let mut rng = ChaCha20Rng::from_seed(SIMULATION_SEED);
    // SAFETY: UART0 of the MPS2 board, used by nothing else in this program.
    let mut uart = unsafe { Uart::new(UART0_BASE, UART0_RX_IRQ, TIMEOUT_S * CORE_HZ) };
    let mut session_id = [0u8; 16];
    rng.fill_bytes(&mut session_id);
    let mut hello = Hello::new(
        ProtocolName::RING_GC,
        &model,
        session_id,
        Delivery::Streamed,
    );
    if let Some(t) = SPLIT_SIGN_BITS {
        hello = hello.with_split_relu(t);
    }
    session::client_handshake(&mut uart, &hello)?;
    let plan = session::receive_plan(&mut uart, &model, &hello)?;
    for (layer, p) in plan.relu_layers(&model) {
        defmt::info!(
            "layer {}: {} ReLU, sign on {} bits of a {}-bit range",
            layer,
            p.kind().name(),
            p.sign_bits(),
            p.range_bits()
        );
    }
    defmt::info!("session open: protocol ring-gc, material streamed");

    // What this device's cost model expects, computed here: the same no_std code as the host.
    let costs = CostModel::new(Protocol::RingGc, CORTEX_M4_64, BLE)
        .with_delivery(Delivery::Streamed)
        .with_relu_plan(plan);
    let expected = costs.for_each_layer(&model, |_| {});
    let per_relu = plan
        .relu_layers(&model)
        .next()
        .map_or(0, |(_, p)| costs.relu_cycles(p));
    defmt::info!(
        "cost model (cortex-m4-64, streamed): {} B up, {} B down, {} flights per inference; {} cycles per garbled ReLU",
        expected.online.up,
        expected.online.down,
        expected.flights,
        per_relu
    );

    let (mut agree, mut failed) = (0usize, 0usize);
    for (i, sample) in SAMPLES.iter().enumerate() {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let seed = ClientSeed::from_bytes(seed);
        uart.set_kind(Kind::Control);
        Frame::Start {
            index: i as u32,
            dealer_seed: *seed.expose_to_dealer(),
        }
        .send(&mut uart)?;
        uart.set_kind(Kind::Online);
        uart.reset_online();
        let mut output = [0i64; CLASSES];
        let buffers = ClientBuffers {
            shares: &mut shares[..],
            material: core::slice::from_mut(&mut *material),
            colours: &mut colours[..],
        };
        bench_start();
        let result = Client::with_plan(&model, seed, plan).run(
            &sample.input,
            buffers,
            Streamed,
            &mut uart,
            &mut MarkProbe,
            &mut output,
        );
        bench_stop();
        result?;
        let counts = uart.counts();
        let worst = output
            .iter()
            .zip(&sample.logits)
            .map(|(&p, &q)| p.abs_diff(i64::from(q)))
            .max()
            .unwrap_or(0);
        let plain_class = pi_core::fixed::argmax(&sample.logits);
        let class = argmax(&output);
        let bytes_ok = counts.up == expected.online.up
            && counts.down == expected.online.down
            && counts.flights == expected.flights;
        let ok = class == plain_class && worst <= TOLERANCE && bytes_ok;
        agree += usize::from(class == plain_class);
        failed += usize::from(!ok);
        defmt::info!(
            "sample {}: label {} private {} plaintext {}, max |private - plaintext| {} LSB (bound {}); {} B up, {} B down, {} flights{}",
            i,
            sample.label,
            class,
            plain_class,
            worst,
            TOLERANCE,
            counts.up,
            counts.down,
            counts.flights,
            if bytes_ok {
                ""
            } else {
                " (NOT the cost model's)"
            }
        );
    }
    uart.set_kind(Kind::Control);
    Frame::End.send(&mut uart)?;
    let counts = uart.counts();
    defmt::info!("argmax agreement: {}/{}", agree, SAMPLES.len());
    defmt::info!("cost model estimate per garbled ReLU: {}", per_relu);
    let split = plan
        .relu_layers(&model)
        .any(|(_, p)| p.kind() == ReluKind::Split);
    defmt::info!("relu protocol: {}", if split { "split" } else { "full" });
    defmt::info!("stack high-water mark: {} B", stack::high_water_bytes());
    defmt::info!(
        "per inference: {} B client->server, {} B server->client, {} flights; session framing {} B up, {} B down",
        counts.up,
        counts.down,
        counts.flights,
        counts.control_up,
        counts.control_down
    );
    Ok(failed)
}

/// Index of the first largest value.
fn argmax(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// SysTick on the core clock, counting down over the full 24-bit range, its wrap pending an
/// exception (masked: it only wakes the core from WFI so the UART can check its timeout).
fn start_systick(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00ff_ffff);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    defmt::error!("FAIL: panic");
    exit(debug::EXIT_FAILURE)
}
