//! End-to-end checks of the simulated protocol: correctness against pi-core's plaintext
//! engine, byte-exact agreement with the cost model, and what each party gets to see.

use pi_core::cost::{CORTEX_M4_64, CostModel, Direction, LTE, Protocol};
use pi_core::share::prg::{Prg, Purpose};
use pi_core::share::tolerance::output_tolerance;
use pi_core::share::{Delivery, HandshakeError, ProtocolError, ReluKind, ReluParamError, ReluPlan};
use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};
use pi_core::{Model, Shape};
use protocol_sim::SimError;
use protocol_sim::dataset::{self, Target};
use protocol_sim::entropy::Entropy;
use protocol_sim::run::{Inference, Mode, Options, architecture_only, infer, run_session};
use protocol_sim::server::ServerMessage;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

const EXPORTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../firmware-example/model/model.pic"
);

/// The committed digits model and its first `n` digits samples, in the model's fixed point.
fn exported_digits(n: usize) -> (Vec<u8>, Vec<dataset::Sample>) {
    let bytes = std::fs::read(EXPORTED).expect("firmware-example/model/model.pic is committed");
    let model = Model::parse(&bytes).unwrap();
    let target = Target {
        elements: model.input_shape().elements(),
        frac_bits: model.activation_frac_bits(),
        model_path: Some(std::path::Path::new(EXPORTED)),
    };
    let samples = dataset::load("digits", n, 0, target).unwrap();
    (bytes, samples)
}

struct Rng(ChaCha20Rng);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(ChaCha20Rng::seed_from_u64(seed))
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.0.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// A random model whose activations stay far from saturation: small weights at 6 frac bits,
/// convs (some strided), masked ReLUs with random masks, 2×2 pools, residual adds, then
/// flatten or global pool and a linear classifier.
fn random_model(rng: &mut Rng) -> Vec<u8> {
    random_model_at(rng, 8)
}

/// [`random_model`] with activations at `2^activation_frac_bits`.
fn random_model_at(rng: &mut Rng, activation_frac_bits: u8) -> Vec<u8> {
    let input = Shape::new(
        rng.range(1, 3) as u16,
        rng.range(3, 8) as u16,
        rng.range(3, 8) as u16,
    );
    let mut shapes = vec![input];
    let mut layers = Vec::new();
    for _ in 0..rng.range(2, 7) {
        let cur = *shapes.last().unwrap();
        let choice = rng.range(0, 5);
        let (op, out, from) = match choice {
            0 | 1 => {
                let k = rng.range(1, 3) as u8;
                let p = rng.range(0, k as i64 - 1) as u8;
                let s = rng.range(1, 2) as u8;
                let dim = |d: u16| (d as i64 + 2 * p as i64 - k as i64) / s as i64 + 1;
                let fits = |d: u16| d as i64 + 2 * p as i64 >= k as i64;
                if !fits(cur.height) || !fits(cur.width) {
                    continue;
                }
                let oc = rng.range(1, 4) as u16;
                let n = oc as usize * cur.channels as usize * (k as usize).pow(2);
                let op = OpSpec::Conv2d {
                    out_channels: oc,
                    kernel_h: k,
                    kernel_w: k,
                    stride: s,
                    padding: p,
                    weight_frac_bits: 6,
                    weights: (0..n).map(|_| rng.range(-40, 40) as i16).collect(),
                    bias: Some((0..oc).map(|_| rng.range(-5000, 5000) as i32).collect()),
                };
                (
                    op,
                    Shape::new(oc, dim(cur.height) as u16, dim(cur.width) as u16),
                    None,
                )
            }
            2 => {
                let mask = match rng.range(0, 2) {
                    0 => MaskSpec::All,
                    1 => MaskSpec::None,
                    _ => MaskSpec::Elements(
                        (0..cur.elements()).map(|_| rng.range(0, 1) == 1).collect(),
                    ),
                };
                (OpSpec::MaskedRelu { mask }, cur, None)
            }
            3 => {
                if cur.height < 2 || cur.width < 2 {
                    continue;
                }
                let out = Shape::new(cur.channels, cur.height / 2, cur.width / 2);
                (
                    OpSpec::AvgPool2d {
                        kernel: 2,
                        stride: 2,
                    },
                    out,
                    None,
                )
            }
            _ => {
                // Residual: add an earlier tensor of the same shape (the input itself if none).
                let t = shapes.len() - 1;
                let other = (0..t).rev().find(|&o| shapes[o] == cur).unwrap_or(t);
                (OpSpec::Add { other }, cur, Some(t))
            }
        };
        layers.push(match from {
            Some(t) => LayerSpec::reading(t, op),
            None => LayerSpec::new(op),
        });
        shapes.push(out);
    }
    let cur = *shapes.last().unwrap();
    let features = if rng.range(0, 1) == 0 {
        layers.push(LayerSpec::new(OpSpec::Flatten));
        cur.elements()
    } else {
        layers.push(LayerSpec::new(OpSpec::GlobalAvgPool));
        cur.channels as usize
    };
    let classes = rng.range(2, 5) as usize;
    layers.push(LayerSpec::new(OpSpec::Linear {
        out_features: classes as u32,
        weight_frac_bits: 6,
        weights: (0..classes * features)
            .map(|_| rng.range(-20, 20) as i16)
            .collect(),
        bias: None,
    }));
    ModelSpec {
        activation_frac_bits,
        input,
        layers,
    }
    .to_bytes()
    .expect("valid random model")
}

/// Argmax agreement over 1000 samples of random models at the activation scale the exporter
/// picks for real models (2^12). A sample whose plaintext output has a tie for the maximum has
/// no well-defined argmax (the ±1 LSB of local truncation may break the tie either way), so it
/// is left out of the rate; ties must stay rare. Among the rest at least 99.9% must agree.
#[test]
fn random_models_agree_on_argmax_for_999_in_1000_samples() {
    let mut rng = Rng::new(0xa11ce);
    let (mut decided, mut agree, mut ties) = (0usize, 0usize, 0usize);
    for m in 0..50 {
        let bytes = random_model_at(&mut rng, 12);
        let model = Model::parse(&bytes).unwrap();
        let tolerance = output_tolerance(&model);
        for s in 0..20 {
            let input: Vec<i32> = random_input(&mut rng, model.input_shape().elements())
                .iter()
                .map(|x| x * 16)
                .collect();
            let r = infer(&bytes, &input, (m * 100 + s) as u64, Mode::Channel, false).unwrap();
            assert!(r.max_abs_diff() <= tolerance, "model {m}: diff above bound");
            let top = r.plain.iter().copied().max().unwrap_or(0);
            if r.plain.iter().filter(|&&v| v == top).count() > 1 {
                ties += 1;
                continue;
            }
            decided += 1;
            agree += usize::from(r.argmax_agrees());
        }
    }
    assert!(ties <= 20, "{ties} of 1000 samples tie for the maximum");
    assert!(
        agree * 1000 >= decided * 999,
        "argmax agreed on {agree}/{decided}"
    );
}

/// One private inference of random model `m` against plaintext: within the bound, and the
/// argmax agrees wherever the plaintext top two are more than twice the bound apart (truncation
/// may legitimately swap a near-tie). Returns whether the argmax agrees.
fn check_within_tolerance(r: &Inference, tolerance: u64, m: usize) -> bool {
    assert!(
        r.max_abs_diff() <= tolerance,
        "model {m}: diff {} > bound {tolerance}",
        r.max_abs_diff()
    );
    let mut sorted = r.plain.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let margin =
        (sorted[0] as i64 - sorted.get(1).copied().unwrap_or(i32::MIN) as i64).unsigned_abs();
    if margin > 2 * tolerance {
        assert!(r.argmax_agrees(), "model {m}: decisive sample disagrees");
    }
    r.argmax_agrees()
}

fn random_input(rng: &mut Rng, n: usize) -> Vec<i32> {
    (0..n).map(|_| rng.range(-2048, 2048) as i32).collect()
}

fn check_against_cost_model(bytes: &[u8], r: &Inference) {
    check_against_cost_model_as(bytes, r, Delivery::Stored);
}

fn check_against_cost_model_as(bytes: &[u8], r: &Inference, delivery: Delivery) {
    check_against_cost_model_with(bytes, r, delivery, ReluPlan::full());
}

fn check_against_cost_model_with(bytes: &[u8], r: &Inference, delivery: Delivery, plan: ReluPlan) {
    let model = Model::parse(bytes).unwrap();
    let report = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE)
        .with_delivery(delivery)
        .with_relu_plan(plan)
        .estimate(&model);
    assert_eq!(r.stats.total, report.total.online, "total online bytes");
    assert_eq!(r.stats.flights, report.total.flights, "flights");
    for c in report.layers.iter() {
        assert_eq!(r.stats.per_layer[c.index], c.online, "layer {}", c.index);
    }
    assert_eq!(
        r.stats.per_layer[model.layer_count()].down,
        report.total.output_bytes
    );
}

#[test]
fn random_models_reconstruct_within_tolerance_and_match_the_cost_model() {
    let mut rng = Rng::new(0x5eed);
    let (mut runs, mut agree) = (0, 0);
    for m in 0..40 {
        let bytes = random_model(&mut rng);
        let model = Model::parse(&bytes).unwrap();
        let tolerance = output_tolerance(&model);
        for s in 0..3 {
            let input = random_input(&mut rng, model.input_shape().elements());
            let r = infer(&bytes, &input, (m * 10 + s) as u64, Mode::Channel, false).unwrap();
            check_against_cost_model(&bytes, &r);
            runs += 1;
            agree += usize::from(check_within_tolerance(&r, tolerance, m));
        }
    }
    // Random tiny models produce near-ties (top two within a few LSBs) that the ±1 LSB
    // truncation may swap; those are allowed above, and stay rare.
    assert!(agree * 100 >= runs * 99, "argmax agreed on {agree}/{runs}");
}

#[test]
fn exported_model_matches_plaintext_on_digits() {
    let (bytes, samples) = exported_digits(4);
    let model = Model::parse(&bytes).unwrap();
    let tolerance = output_tolerance(&model);
    for (i, s) in samples.iter().enumerate() {
        let r = infer(&bytes, &s.input, i as u64, Mode::Channel, false).unwrap();
        assert!(r.argmax_agrees(), "sample {i}");
        assert!(r.max_abs_diff() <= tolerance);
        // Far tighter in practice than the worst-case bound: a few LSBs at 12 frac bits.
        assert!(r.max_abs_diff() < 64, "sample {i}: {}", r.max_abs_diff());
        check_against_cost_model(&bytes, &r);
    }
}

#[test]
fn tcp_loopback_gives_the_same_result_and_bytes() {
    let mut rng = Rng::new(7);
    let bytes = random_model(&mut rng);
    let model = Model::parse(&bytes).unwrap();
    let input = random_input(&mut rng, model.input_shape().elements());
    let a = infer(&bytes, &input, 3, Mode::Channel, false).unwrap();
    let b = infer(&bytes, &input, 3, Mode::Tcp, false).unwrap();
    assert_eq!(a.private, b.private);
    assert_eq!(a.stats.total, b.stats.total);
    check_against_cost_model(&bytes, &b);
}

/// Words of the online messages in direction `dir`, grouped by layer.
fn words_by_layer(r: &Inference, dir: Direction) -> Vec<(usize, Vec<u64>)> {
    let mut out: Vec<(usize, Vec<u64>)> = Vec::new();
    for (d, layer, bytes) in &r.stats.captured {
        if *d != dir {
            continue;
        }
        let words = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()));
        match out.iter_mut().find(|(l, _)| l == layer) {
            Some((_, w)) => w.extend(words),
            None => out.push((*layer, words.collect())),
        }
    }
    out
}

fn words_sent(r: &Inference, dir: Direction) -> Vec<u64> {
    words_by_layer(r, dir)
        .into_iter()
        .flat_map(|(_, w)| w)
        .collect()
}

/// Whether `words` look uniform in every bit position and every byte: per bit a two-sided
/// binomial z-test, per byte position a chi-square over the 256 values, each at p = 1e-6
/// (about 1e-4 for the whole family). Returns the first failing test.
fn uniformity(words: &[u64]) -> Result<(), String> {
    const Z: f64 = 4.89; // two-sided p = 1e-6
    let n = words.len() as f64;
    for bit in 0..64 {
        let ones = words.iter().filter(|&&w| w >> bit & 1 == 1).count() as f64;
        let z = (ones - n / 2.0) / (n / 4.0).sqrt();
        if z.abs() > Z {
            return Err(format!("bit {bit}: {ones} ones in {n} words (z = {z:.1})"));
        }
    }
    // Chi-square with 255 degrees of freedom, one-sided p = 1e-6 (Wilson-Hilferty).
    let k = 255.0f64;
    let critical = k * (1.0 - 2.0 / (9.0 * k) + 4.75 * (2.0 / (9.0 * k)).sqrt()).powi(3);
    for byte in 0..8 {
        let mut counts = [0f64; 256];
        for w in words {
            counts[(w >> (8 * byte) & 0xff) as usize] += 1.0;
        }
        let expected = n / 256.0;
        let chi2: f64 = counts
            .iter()
            .map(|c| (c - expected).powi(2) / expected)
            .sum();
        if chi2 > critical {
            return Err(format!("byte {byte}: chi2 = {chi2:.0} > {critical:.0}"));
        }
    }
    Ok(())
}

#[test]
fn server_view_is_uniform_in_every_bit_whatever_the_input() {
    let bytes = std::fs::read(EXPORTED).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let n = model.input_shape().elements();
    let zero = vec![0i32; n];
    // A structured input: a ramp, strongly non-uniform in every bit.
    let ramp: Vec<i32> = (0..n as i32).map(|i| i * 64).collect();
    for (name, input) in [("zero", &zero), ("ramp", &ramp)] {
        let options = Options {
            seed: Some(11),
            capture: true,
            ..Options::default()
        };
        let inputs = vec![input.clone(); 24];
        let (runs, _) = run_session(&bytes, &inputs, &options).unwrap();
        // Per layer, everything the server received over the runs.
        let mut per_layer: Vec<(usize, Vec<u64>)> = Vec::new();
        for r in &runs {
            for (layer, words) in words_by_layer(r, Direction::Up) {
                match per_layer.iter_mut().find(|(l, _)| *l == layer) {
                    Some((_, w)) => w.extend(words),
                    None => per_layer.push((layer, words)),
                }
            }
        }
        assert!(per_layer.len() >= 3, "conv, ReLU and linear messages");
        for (layer, words) in &per_layer {
            uniformity(words).unwrap_or_else(|e| panic!("{name} input, layer {layer}: {e}"));
        }
        // Controls: the same test must reject the first layer's view with the input's low 16
        // bits left unmasked, and the raw input itself.
        let first = &per_layer.iter().find(|(l, _)| *l == 0).unwrap().1;
        let leaky: Vec<u64> = first
            .iter()
            .zip(input.iter().cycle())
            .map(|(&w, &x)| (w & !0xffff) | (x as i64 as u64 & 0xffff))
            .collect();
        assert!(
            uniformity(&leaky).is_err(),
            "{name}: 16 unmasked low bits pass"
        );
        let raw: Vec<u64> = inputs.iter().flatten().map(|&x| x as i64 as u64).collect();
        assert!(uniformity(&raw).is_err(), "{name}: the raw input passes");
    }
}

/// Two sessions on the same input with the OS's randomness send different masked words: no
/// default run repeats another's masks.
#[test]
fn default_runs_draw_fresh_masks() {
    let bytes = std::fs::read(EXPORTED).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let input = vec![7i32; model.input_shape().elements()];
    let options = Options {
        capture: true,
        ..Options::default()
    };
    let (a, _) = run_session(&bytes, &[input.clone(), input.clone()], &options).unwrap();
    let (b, _) = run_session(&bytes, &[input], &options).unwrap();
    let views = [&a[0], &a[1], &b[0]].map(|r| words_sent(r, Direction::Up));
    assert_ne!(
        views[0], views[1],
        "two inferences of a session reuse masks"
    );
    assert_ne!(views[0], views[2], "two sessions reuse masks");
    for r in a.iter().chain(&b) {
        assert!(r.argmax_agrees());
    }
}

#[test]
fn streamed_material_gives_the_same_result_and_the_modelled_bytes() {
    let mut rng = Rng::new(21);
    for m in 0..6 {
        let bytes = random_model(&mut rng);
        let model = Model::parse(&bytes).unwrap();
        let input = random_input(&mut rng, model.input_shape().elements());
        let stored = infer(&bytes, &input, m, Mode::Channel, false).unwrap();
        let options = Options {
            seed: Some(m),
            delivery: Delivery::Streamed,
            mode: if m % 2 == 0 { Mode::Channel } else { Mode::Tcp },
            ..Options::default()
        };
        let (mut streamed, served) = run_session(&bytes, &[input], &options).unwrap();
        let streamed = streamed.pop().unwrap();
        // Same seeds, same masks: the same reconstructed output, bit for bit.
        assert_eq!(streamed.private, stored.private, "model {m}");
        check_against_cost_model_as(&bytes, &streamed, Delivery::Streamed);
        assert_eq!(
            served.material.down, 0,
            "nothing is sent before the online phase"
        );
        let storage = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE)
            .estimate(&model)
            .total
            .client_storage;
        assert_eq!(streamed.stats.total.down, stored.stats.total.down + storage);
    }
}

#[test]
fn client_never_receives_weights() {
    let bytes = std::fs::read(EXPORTED).unwrap();
    let model = Model::parse(&bytes).unwrap();
    // The client runs on the architecture alone: every weight and bias it holds is zero.
    let client_model_bytes = architecture_only(&model).unwrap();
    let client_model = Model::parse(&client_model_bytes).unwrap();
    for layer in client_model.layers() {
        if let pi_core::Op::Conv2d(c) = layer.op {
            assert!(c.weights.iter().all(|w| w == 0) && c.bias.is_none());
        }
        if let pi_core::Op::Linear(l) = layer.op {
            assert!(l.weights.iter().all(|w| w == 0) && l.bias.is_none());
        }
    }
    let input = vec![100i32; model.input_shape().elements()];
    let r = infer(&bytes, &input, 5, Mode::Channel, true).unwrap();
    assert!(r.argmax_agrees());
    // Only two message kinds exist, with the sizes the public schedule fixes.
    let kept: Vec<usize> = model
        .layers()
        .filter_map(|l| match l.op {
            pi_core::Op::MaskedRelu(m) if m.kept() > 0 => Some(m.kept()),
            _ => None,
        })
        .collect();
    let mut expected: Vec<(ServerMessage, usize)> = kept
        .iter()
        .map(|&k| (ServerMessage::ReluLabels, k * 1024))
        .collect();
    expected.push((
        ServerMessage::OutputShare,
        model.output_shape().elements() * 8,
    ));
    assert_eq!(r.server_sent, expected);
    // And what arrives looks uniform: labels are fresh random strings, the output share is
    // masked by the server's randomness. Weights (small integers) would skew the high bits.
    let words = words_sent(&r, Direction::Down);
    uniformity(&words).unwrap_or_else(|e| panic!("client's view: {e}"));
    let weights: Vec<u64> = model
        .layers()
        .filter_map(|l| match l.op {
            pi_core::Op::Conv2d(c) => Some(
                c.weights
                    .iter()
                    .map(|w| w as i64 as u64)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        uniformity(&weights).is_err(),
        "control: weights are not uniform"
    );
}

#[test]
fn missing_dataset_is_a_clear_error() {
    let target = Target {
        elements: 4,
        frac_bits: 8,
        model_path: None,
    };
    let err = dataset::load("no/such/file.txt", 1, 0, target).unwrap_err();
    assert!(err.to_string().contains("no/such/file.txt"), "{err}");
    let err = dataset::load(
        "random",
        1,
        0,
        Target {
            elements: 4,
            ..target
        },
    )
    .map(|s| s.len());
    assert_eq!(err.unwrap(), 1);
}

/// Options for a split-ReLU run on `sign_bits` with inputs bounded by `2^frac_bits` (the random
/// inputs of these tests stay within ±1).
fn split(seed: u64, sign_bits: u8, frac_bits: u8, delivery: Delivery) -> Options {
    Options {
        seed: Some(seed),
        delivery,
        split_sign_bits: Some(sign_bits),
        input_bound: Some(1 << frac_bits),
        ..Options::default()
    }
}

#[test]
fn split_relus_reconstruct_and_match_the_cost_model_at_every_width() {
    let mut rng = Rng::new(0x5b11);
    for m in 0..8u64 {
        let bytes = random_model(&mut rng);
        let model = Model::parse(&bytes).unwrap();
        let tolerance = output_tolerance(&model);
        let input = random_input(&mut rng, model.input_shape().elements());
        for (t, delivery) in [
            (64, Delivery::Stored),
            (32, Delivery::Streamed),
            (24, Delivery::Stored),
            (16, Delivery::Streamed),
            (12, Delivery::Stored),
        ] {
            let options = split(m, t, model.activation_frac_bits(), delivery);
            let (mut r, served) =
                run_session(&bytes, std::slice::from_ref(&input), &options).unwrap();
            let r = r.pop().unwrap();
            assert!(
                served
                    .plan
                    .relu_layers(&model)
                    .all(|(_, p)| p.kind() == ReluKind::Split)
            );
            check_against_cost_model_with(&bytes, &r, delivery, served.plan);
            if t == 64 {
                // Exact: within the truncation bound, no sign fault.
                assert!(r.max_abs_diff() <= tolerance, "model {m}");
                assert_eq!(r.sign_faults.0, 0);
            }
        }
    }
}

#[test]
fn split_relus_on_16_bits_keep_the_digits_model_s_predictions() {
    let (bytes, samples) = exported_digits(20);
    let model = Model::parse(&bytes).unwrap();
    let inputs: Vec<Vec<i32>> = samples.iter().map(|s| s.input.clone()).collect();
    let bound = dataset::input_bound(std::path::Path::new(EXPORTED), model.activation_frac_bits());
    let options = Options {
        seed: Some(3),
        split_sign_bits: Some(16),
        input_bound: bound,
        ..Options::default()
    };
    let (runs, served) = run_session(&bytes, &inputs, &options).unwrap();
    // The ranges come from the proven bounds: some layers need more than 16 bits, so a 16-bit
    // sign comparison is an approximation there (the test is about those faults).
    let ranges: Vec<u8> = served
        .plan
        .relu_layers(&model)
        .map(|(_, p)| p.range_bits())
        .collect();
    assert!(ranges.iter().any(|&r| r > 16), "{ranges:?}");
    let agree = runs.iter().filter(|r| r.argmax_agrees()).count();
    let (faults, relus) = runs.iter().fold((0, 0), |(f, n), r| {
        (f + r.sign_faults.0, n + r.sign_faults.1)
    });
    assert_eq!(agree, runs.len());
    assert!(faults * 100 < relus, "{faults} sign faults in {relus}");
}

#[test]
fn a_range_narrower_than_the_proven_bound_or_no_bound_is_refused_on_both_sides() {
    let bytes = std::fs::read(EXPORTED).unwrap();
    let input = vec![0i32; 64];
    let mut narrow = split(1, 8, 12, Delivery::Stored);
    narrow.range_bits = Some(10);
    let err = run_session(&bytes, std::slice::from_ref(&input), &narrow).unwrap_err();
    assert!(
        matches!(
            err,
            SimError::Protocol(ProtocolError::Handshake(HandshakeError::Rejected(_)))
        ),
        "{err}"
    );
    // The server's side says why: the range does not cover the layer's proven bound.
    let model = Model::parse(&bytes).unwrap();
    let options = protocol_sim::session::ServeOptions {
        input_bound: narrow.input_bound,
        range_bits: Some(10),
        ..Default::default()
    };
    assert!(matches!(
        protocol_sim::session::split_plan(&model, 8, &options),
        Err(ReluParamError::RangeTooNarrow { .. })
    ));
    let mut unbounded = split(1, 16, 12, Delivery::Stored);
    unbounded.input_bound = None;
    assert!(run_session(&bytes, &[input], &unbounded).is_err());
    assert!(matches!(
        protocol_sim::session::split_plan(&model, 16, &Default::default()),
        Err(ReluParamError::NoInputBound)
    ));
}

/// Each split ReLU's multiplexer uses its own random OT. Were one correlation shared by two
/// ReLUs, the server could subtract their corrections and get `±q_i ∓ q_j` (the OT messages
/// cancel), and with its view of the re-shares, relations between the activations. The harness
/// knows the client's masks `q` (it replays the client's reproducible seed) and checks that no
/// pair of corrections the server received satisfies that relation.
#[test]
fn split_relu_ot_correlations_are_never_reused() {
    let mut rng = Rng::new(99);
    let bytes = random_model(&mut rng);
    let model = Model::parse(&bytes).unwrap();
    let input = random_input(&mut rng, model.input_shape().elements());
    let mut options = split(17, 16, model.activation_frac_bits(), Delivery::Stored);
    options.capture = true;
    let (mut r, served) = run_session(&bytes, &[input], &options).unwrap();
    let r = r.pop().unwrap();
    // The client's seed, as its reproducible entropy drew it: session id, then the seed.
    let mut entropy = Entropy::reproducible(17, 0);
    entropy.bytes::<16>().unwrap();
    let seed = entropy.bytes::<32>().unwrap();
    let mut pairs = 0;
    for (layer, params) in served.plan.relu_layers(&model) {
        let words = words_by_layer(&r, Direction::Up);
        let up = &words.iter().find(|(l, _)| *l == layer).unwrap().1;
        let kept = up.len() / 2; // re-shares, then corrections
        let corrections = &up[kept..];
        let mut q = Prg::new(&seed, layer, Purpose::ReluInput);
        let qs: Vec<u64> = (0..kept).map(|_| q.next_u64()).collect();
        assert_eq!(params.kind(), ReluKind::Split);
        for i in 0..kept {
            for j in i + 1..kept {
                let diff = corrections[i].wrapping_sub(corrections[j]);
                for (a, b) in [
                    (1u64, 1u64),
                    (1, u64::MAX),
                    (u64::MAX, 1),
                    (u64::MAX, u64::MAX),
                ] {
                    let relation = a.wrapping_mul(qs[i]).wrapping_sub(b.wrapping_mul(qs[j]));
                    assert_ne!(
                        diff, relation,
                        "layer {layer}: ReLUs {i} and {j} share an OT"
                    );
                }
                pairs += 1;
            }
        }
    }
    assert!(pairs > 10);
}

/// One client-garbler inference with reproducible randomness; also what the server logged.
fn client_garbler(
    bytes: &[u8],
    input: &[i32],
    seed: u64,
    delivery: Delivery,
    mode: Mode,
) -> (Inference, protocol_sim::session::ServedSession) {
    let options = Options {
        seed: Some(seed),
        mode,
        delivery,
        protocol: Protocol::ClientGarbler,
        ..Options::default()
    };
    let (mut results, served) = run_session(bytes, &[input.to_vec()], &options).unwrap();
    (results.pop().unwrap(), served)
}

/// The client-garbler run against its cost model: every layer's online bytes, the flights, and
/// the preprocessing the channel carried: circuits up (7 080 B per kept ReLU), the client's
/// linear shares down (its whole storage: nothing per ReLU).
fn check_client_garbler_bytes(
    bytes: &[u8],
    r: &Inference,
    served: &protocol_sim::session::ServedSession,
    delivery: Delivery,
) {
    let model = Model::parse(bytes).unwrap();
    let report = CostModel::new(Protocol::ClientGarbler, CORTEX_M4_64, LTE)
        .with_delivery(delivery)
        .estimate(&model);
    assert_eq!(r.stats.total, report.total.online, "total online bytes");
    assert_eq!(r.stats.flights, report.total.flights, "flights");
    for c in report.layers.iter() {
        assert_eq!(r.stats.per_layer[c.index], c.online, "layer {}", c.index);
    }
    let kept = model.relu_count().kept;
    let circuit = pi_core::share::client_garbler::CIRCUIT_BYTES as u64;
    assert_eq!(served.material.up, kept * circuit);
    let stored = match delivery {
        Delivery::Stored => report.total.client_storage,
        Delivery::Streamed => 0,
    };
    assert_eq!(served.material.down, stored);
    assert_eq!(
        report
            .layers
            .iter()
            .filter(|c| c.relus_kept > 0)
            .map(|c| c.client_storage)
            .sum::<u64>(),
        0
    );
}

#[test]
fn client_garbler_random_models_reconstruct_within_tolerance_and_match_the_cost_model() {
    let mut rng = Rng::new(0xc1a5);
    let (mut runs, mut agree) = (0, 0);
    for m in 0..30 {
        let bytes = random_model(&mut rng);
        let model = Model::parse(&bytes).unwrap();
        let tolerance = output_tolerance(&model);
        for s in 0..2 {
            let delivery = if s == 0 {
                Delivery::Stored
            } else {
                Delivery::Streamed
            };
            let input = random_input(&mut rng, model.input_shape().elements());
            let (r, served) =
                client_garbler(&bytes, &input, (m * 10 + s) as u64, delivery, Mode::Channel);
            check_client_garbler_bytes(&bytes, &r, &served, delivery);
            runs += 1;
            agree += usize::from(check_within_tolerance(&r, tolerance, m));
        }
    }
    // Tiny random models have near-ties (top two a few LSBs apart) that ±1 LSB truncation may
    // swap: allowed above, and rare (2 of 60 with these seeds).
    assert!(agree * 100 >= runs * 95, "argmax agreed on {agree}/{runs}");
}

#[test]
fn client_garbler_exported_model_matches_plaintext_on_digits() {
    let (bytes, samples) = exported_digits(3);
    let model = Model::parse(&bytes).unwrap();
    let tolerance = output_tolerance(&model);
    for (i, s) in samples.iter().enumerate() {
        let mode = if i == 0 { Mode::Tcp } else { Mode::Channel };
        let (r, served) = client_garbler(&bytes, &s.input, i as u64, Delivery::Stored, mode);
        assert!(r.argmax_agrees(), "sample {i}");
        assert!(r.max_abs_diff() <= tolerance && r.max_abs_diff() < 64);
        check_client_garbler_bytes(&bytes, &r, &served, Delivery::Stored);
        // The server sends re-shares and its output share online, nothing else.
        assert!(
            r.server_sent
                .iter()
                .all(|(k, _)| matches!(k, ServerMessage::ReluReshare | ServerMessage::OutputShare))
        );
    }
    // The same inference as server-garbler gives the same plaintext, and the client garbler's
    // storage is the linear shares alone.
    let ring = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE)
        .estimate(&model)
        .total;
    let cg = CostModel::new(Protocol::ClientGarbler, CORTEX_M4_64, LTE)
        .estimate(&model)
        .total;
    assert_eq!(
        ring.client_storage - cg.client_storage,
        model.relu_count().kept * 8104
    );
}

#[test]
fn a_client_garbler_and_a_server_garbler_stop_at_the_handshake() {
    use pi_core::share::{HandshakeError, ProtocolError};
    use protocol_sim::channel::{Meter, Metered, pipe};
    use protocol_sim::entropy::Entropy;
    let bytes = std::fs::read(EXPORTED).expect("firmware-example/model/model.pic is committed");
    let model = Model::parse(&bytes).unwrap();
    let arch = architecture_only(&model).unwrap();
    let client_model = Model::parse(&arch).unwrap();
    let (c, s) = pipe(std::time::Duration::from_secs(10));
    let (client, server) = std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let mut io = Metered::new(s, Meter::new(8, false), Direction::Down);
            protocol_sim::session::serve(
                &model,
                &mut io,
                &mut Entropy::reproducible(1, 1),
                &mut Default::default(),
                &Default::default(),
            )
        });
        let mut io = Metered::new(c, Meter::new(8, false), Direction::Up);
        let client = protocol_sim::client_garbler::client(
            &client_model,
            &mut io,
            &mut Entropy::reproducible(1, 0),
            Delivery::Stored,
            None,
            &[vec![0; 64]],
        );
        (client, server.join().unwrap())
    });
    let err = client.unwrap_err().to_string();
    assert!(
        err.contains("protocol ring-gc on the peer, client-garbler here"),
        "{err}"
    );
    assert!(matches!(
        server,
        Err(ProtocolError::Handshake(HandshakeError::Protocol { .. }))
    ));
}
