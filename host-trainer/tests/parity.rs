//! Export parity: a small trained model, exported to pi-core fixed point, must predict like the
//! float model (accuracy within 0.5 points, argmax agreement >= 99%) and produce nearly the same
//! logits. Uses the embedded digits, so it needs no data set-up.

use burn::module::Module;
use host_trainer::data::{DatasetKind, batch};
use host_trainer::eval::eval_file;
use host_trainer::export::{ExportOptions, export_run};
use host_trainer::model::Arch;
use host_trainer::train::evaluate::logits;
use host_trainer::train::run_dir::load_trained;
use host_trainer::train::{RunDir, RunOptions, TrainConfig, train};

fn tiny_run(arch: Arch, width: usize, epochs: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let mut cfg = TrainConfig::defaults(DatasetKind::Digits, arch);
    cfg.width = Some(width);
    cfg.epochs = epochs;
    let quiet = RunOptions {
        quiet: true,
        ..Default::default()
    };
    let s = train(&cfg, &run, &quiet).expect("training");
    assert!(s.completed);
    (dir, run)
}

/// Float logits vs pi-core logits (dequantized) on the first `n` test images.
fn max_logit_gap(run: &std::path::Path, model: &std::path::Path, n: usize) -> f32 {
    let device = burn::tensor::Device::flex();
    let (cfg, net) = load_trained(&RunDir::new(run), &device).expect("load");
    let test = host_trainer::data::load(cfg.dataset, &cfg.data_paths())
        .expect("data")
        .test
        .truncate(n);
    let float = logits(&net, &test, &cfg.normalization, &device, 64);
    let bytes = std::fs::read(model).expect("model file");
    let pic = pi_core::Model::parse(&bytes).expect("parse");
    let a = pic.activation_frac_bits();
    let mut arena = vec![0i32; pic.arena_words()];
    let idx: Vec<usize> = (0..test.len()).collect();
    let x = batch::floats(&test, &idx, &cfg.normalization, None);
    let mut gap = 0.0f32;
    for (i, sample) in x.chunks(test.shape.len()).enumerate() {
        let q: Vec<i32> = sample
            .iter()
            .map(|&v| pi_core::fixed::quantize(v, a))
            .collect();
        let out = pic.infer(&q, &mut arena).expect("infer");
        for (k, &v) in out.iter().enumerate() {
            let f = float[i * out.len() + k];
            gap = gap.max((pi_core::fixed::dequantize(v, a) - f).abs());
        }
    }
    gap
}

/// The wide export (format v1: 32-bit activations, i16 weights) computes what the float model
/// does up to rounding.
const WIDE: ExportOptions = ExportOptions {
    act_frac: None,
    wide: true,
};

#[test]
fn digits_cnn_export_matches_float_model() {
    let (_dir, run) = tiny_run(Arch::DigitsCnn, 8, 6);
    let model = run.join("model.pic");
    let side = export_run(&run, &model, &WIDE).expect("export");
    assert_eq!(side.info.relus_total, 8 * 64 + 16 * 16);
    let r = eval_file(&model, None, None, None, None, None).expect("eval");
    let float = r.float_acc.expect("float accuracy");
    assert!(float > 0.85, "the tiny model should learn digits: {float}");
    assert!(
        (r.fixed_acc - float).abs() <= 0.005,
        "fixed {} vs float {float}",
        r.fixed_acc
    );
    assert!(r.agreement.expect("agreement") >= 0.99, "{r:?}");
    assert_eq!((r.relus_kept, r.relus_total), (768, 768));
    let gap = max_logit_gap(&run, &model, 60);
    assert!(
        gap < 0.02,
        "dequantized pi-core logits differ from float by {gap}"
    );
}

#[test]
fn resnet_export_with_residuals_matches_float_model() {
    // Residual adds, 1x1 strided shortcuts, global average pooling: every op of the format.
    let (_dir, run) = tiny_run(Arch::Resnet { depth: 8 }, 4, 2);
    let model = run.join("r.pic");
    export_run(&run, &model, &WIDE).expect("export");
    let gap = max_logit_gap(&run, &model, 60);
    assert!(
        gap < 0.02,
        "dequantized pi-core logits differ from float by {gap}"
    );
    let r = eval_file(&model, None, None, Some(120), None, None).expect("eval");
    assert!(r.agreement.expect("agreement") >= 0.99, "{r:?}");
}

/// The default export picks the narrowest widths that keep the parity rule, says what it chose
/// (format v2), and the model it writes meets the rule on the test set.
#[test]
fn narrow_export_keeps_parity_and_reports_its_widths() {
    let (_dir, run) = tiny_run(Arch::DigitsCnn, 8, 6);
    let model = run.join("narrow.pic");
    let side = export_run(&run, &model, &ExportOptions::default()).expect("export");
    assert_eq!(side.info.format_version, 2);
    let w = &side.info.widths;
    assert_eq!(w.i8_weights.len(), 3, "{w:?}");
    let bytes = std::fs::read(&model).expect("model");
    let pic = pi_core::Model::parse(&bytes).expect("parse");
    assert_eq!(pic.activation_bits(), w.activation_bits);
    let r = eval_file(&model, None, None, None, None, None).expect("eval");
    let float = r.float_acc.expect("float accuracy");
    assert!(
        host_trainer::export::meets_parity(r.fixed_acc, r.agreement.expect("agreement"), float),
        "{r:?}"
    );
    // Every narrower width not taken has its reason.
    let wider = (w.activation_bits == 32) as usize + w.i8_weights.iter().filter(|&&b| !b).count();
    assert_eq!(
        side.info.width_notes.len(),
        wider,
        "{:?}",
        side.info.width_notes
    );
}

#[test]
fn non_binary_masks_are_refused_at_export() {
    use burn::module::Param;
    let device = burn::tensor::Device::flex();
    let spec = Arch::DigitsCnn
        .spec(host_trainer::model::Chw { c: 1, h: 8, w: 8 }, Some(2), 10)
        .expect("spec");
    let mut net = host_trainer::model::Net::new(&spec, &device);
    net.relus[0].mask =
        Param::from_tensor(burn::tensor::Tensor::ones([2, 8, 8], &device).mul_scalar(0.5));
    let err = host_trainer::export::to_model_spec(&net, 1.0, &ExportOptions::default())
        .expect_err("refused");
    assert!(err.to_string().contains("not binary"), "{err}");
}

#[test]
fn partial_masks_export_as_element_masks() {
    use burn::module::Param;
    let device = burn::tensor::Device::flex();
    let spec = Arch::DigitsCnn
        .spec(host_trainer::model::Chw { c: 1, h: 8, w: 8 }, Some(2), 10)
        .expect("spec");
    let mut net = host_trainer::model::Net::new(&spec, &device);
    // Keep the first channel's ReLUs only; make the second layer all identity.
    let mut m = vec![0.0f32; 2 * 64];
    m[..64].fill(1.0);
    net.relus[0].mask = Param::from_tensor(burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(m, [2, 8, 8]),
        &device,
    ));
    net.relus[1].mask = Param::from_tensor(burn::tensor::Tensor::zeros([4, 4, 4], &device));
    let (ms, info) =
        host_trainer::export::to_model_spec(&net.valid(), 4.0, &ExportOptions::default())
            .expect("export");
    assert_eq!((info.relus_kept, info.relus_total), (64, 128 + 64));
    let bytes = ms.to_bytes().expect("encode");
    let pic = pi_core::Model::parse(&bytes).expect("parse");
    assert_eq!((pic.relu_count().kept, pic.relu_count().total), (64, 192));
}

/// `eval --samples-out` writes, for the firmware, one test image per class that pi-core
/// classifies correctly: distinct labels, the model's input length, and pi-core's prediction on
/// each line's numbers is its label.
#[test]
fn firmware_samples_are_correctly_classified_test_images() {
    // Barely trained (one epoch, width 2), so that the first test image of some classes is
    // misclassified and has to be skipped.
    let (_dir, run) = tiny_run(Arch::DigitsCnn, 2, 1);
    let model = run.join("samples.pic");
    export_run(&run, &model, &ExportOptions::default()).expect("export");
    let samples = run.join("samples.txt");
    eval_file(&model, None, None, None, None, Some(&samples)).expect("eval");
    let bytes = std::fs::read(&model).expect("model");
    let pic = pi_core::Model::parse(&bytes).expect("parse");
    let mut arena = vec![0i32; pic.arena_words()];
    let text = std::fs::read_to_string(&samples).expect("samples");
    let mut labels = vec![];
    for line in text.lines() {
        let v: Vec<i32> = line
            .split_whitespace()
            .map(|t| t.parse().expect("int"))
            .collect();
        let (label, input) = (v[0] as usize, &v[1..]);
        assert_eq!(input.len(), 64, "{line}");
        let logits = pic.infer(input, &mut arena).expect("infer");
        let best = (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        assert_eq!(best, label, "{line}");
        labels.push(label);
    }
    // Even this model gets several classes right somewhere in the test set.
    assert!(labels.len() >= 3, "{labels:?}");
    let mut distinct = labels.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), labels.len(), "{labels:?}");
}
