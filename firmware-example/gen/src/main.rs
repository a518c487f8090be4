//! `firmware-gen`: the host step between a model file and the firmware.
//!
//! ```text
//! firmware-gen emit --model M.pic --samples S.txt --out-dir firmware-example [--check]
//! firmware-gen emit-pi --model M.pic --samples S.txt --out-dir firmware-example [--check]
//! firmware-gen demo --digits digits.csv --model-out M.pic --samples-out S.txt [--count N]
//! firmware-gen pick --model M.pic --sidecar M.pic.json --digits digits.csv --samples-out S.txt [--count N]
//! ```
//!
//! `emit` validates the model with pi-core, runs every sample through it on the host, and writes
//! `<out-dir>/model/model.pic`, `<out-dir>/model/samples.txt` and `<out-dir>/src/generated.rs`
//! (buffer sizes, the samples as `i32` arrays, their labels and the host logits the firmware must
//! reproduce bit for bit). Every sample must be classified correctly on the host: the firmware
//! fails on a wrong prediction, so a sample the model gets wrong would make CI fail by design.
//! With `--check` nothing is written; the command fails when a committed file differs from what
//! it would write.
//!
//! `emit-pi` writes the private-inference client's files instead (module `pi`): the server's
//! model, its architecture-only copy for the device, and `src/pi_generated.rs`.
//!
//! `demo` builds a stand-in model without training: a nearest-centroid classifier for the 8x8
//! digits (class means fitted on the even rows, samples taken from the odd rows), written as
//! Flatten -> MaskedRelu -> Linear. It exists so the firmware can be exercised before a trained
//! model is exported by host-trainer.
//!
//! `pick` makes the samples for a model exported by `host-trainer export`: it normalizes digits
//! rows as the export's sidecar says (`(pixel / scale - mean) / std`, in `f32` as host-trainer
//! does), quantizes them at the model's activation scale with `pi_core::fixed::quantize`, and
//! keeps the first row of each class (scanning from the end of the file) that the model
//! classifies correctly. host-trainer's test split is not reproduced here, so a sample may be a
//! training image: the firmware check is "device equals host, bit for bit", not accuracy.
//!
//! Samples file: one sample per line, `label v0 v1 ... v(n-1)`, the inputs already quantized to
//! the model's activation scale; `#` starts a comment line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod pi;

use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};
use pi_core::{Model, Shape};

type Result<T> = std::result::Result<T, String>;

/// One test input with its expected label.
struct Sample {
    label: usize,
    input: Vec<i32>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("emit") => emit(&args[1..]),
        Some("emit-pi") => pi::emit_pi(&args[1..]),
        Some("demo") => demo(&args[1..]),
        Some("pick") => pick(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firmware-gen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  firmware-gen emit --model M.pic --samples S.txt --out-dir DIR [--check]
  firmware-gen emit-pi --model M.pic --samples S.txt --out-dir DIR [--check]
  firmware-gen demo --digits digits.csv --model-out M.pic --samples-out S.txt [--count N]
  firmware-gen pick --model M.pic --sidecar M.pic.json --digits digits.csv --samples-out S.txt [--count N]";

/// `--name value` options and `--flag` switches.
struct Options {
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Options {
    fn parse(args: &[String], switches: &[&str]) -> Result<Self> {
        let mut values = Vec::new();
        let mut flags = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument '{a}'\n{USAGE}"))?;
            if switches.contains(&name) {
                flags.push(name.to_string());
            } else {
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                values.push((name.to_string(), v.clone()));
            }
        }
        Ok(Self { values, flags })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        self.get(name)
            .map(PathBuf::from)
            .ok_or_else(|| format!("missing --{name}\n{USAGE}"))
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn parse_samples(text: &str) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let bad = |what: &str| format!("samples line {}: bad {what}", n + 1);
        let label = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("label"))?;
        let input = fields
            .map(|f| f.parse::<i32>().map_err(|_| bad("input value")))
            .collect::<Result<Vec<_>>>()?;
        samples.push(Sample { label, input });
    }
    if samples.is_empty() {
        return Err("the samples file holds no sample".into());
    }
    Ok(samples)
}

fn samples_text(samples: &[Sample], header: &str) -> String {
    let mut s = String::new();
    for line in header.lines() {
        let _ = writeln!(s, "# {line}");
    }
    s.push_str("# label, then the quantized inputs (i32 at the model's activation scale)\n");
    for sample in samples {
        let _ = write!(s, "{}", sample.label);
        for v in &sample.input {
            let _ = write!(s, " {v}");
        }
        s.push('\n');
    }
    s
}

/// 32-bit FNV-1a, also computed by the firmware to check the embedded model.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Runs every sample on the host; returns the logits, or an error for a wrong prediction.
fn host_logits(model: &Model<'_>, samples: &[Sample]) -> Result<Vec<Vec<i32>>> {
    let mut arena = vec![0i32; model.arena_words()];
    let mut all = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let logits = model
            .infer(&s.input, &mut arena)
            .map_err(|e| format!("sample {i}: {e}"))?;
        let predicted = pi_core::fixed::argmax(logits);
        if predicted != s.label {
            return Err(format!(
                "sample {i}: the model predicts {predicted} on the host but the label is {}; \
                 use samples the model classifies correctly",
                s.label
            ));
        }
        all.push(logits.to_vec());
    }
    Ok(all)
}

fn array(values: &[i32]) -> String {
    let body: Vec<String> = values.iter().map(i32::to_string).collect();
    format!("[{}]", body.join(", "))
}

fn generated_rs(
    model_bytes: &[u8],
    model: &Model<'_>,
    samples: &[Sample],
    logits: &[Vec<i32>],
) -> String {
    let input_len = model.input_shape().elements();
    let classes = model.output_shape().elements();
    let relus = model.relu_count();
    let shape = |s: Shape| format!("{} x {} x {}", s.channels, s.height, s.width);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "//! Generated by `scripts/gen-firmware-model.sh` (firmware-gen) from `model/model.pic` and\n\
         //! `model/samples.txt`. Do not edit: regenerate, and `scripts/gen-firmware-model.sh --check`\n\
         //! verifies that this file matches the committed model.\n\
         //!\n\
         //! Model: input {}, output {}, {} layers, {} MACs, {} parameter bytes,\n\
         //! {} of {} ReLUs kept.\n",
        shape(model.input_shape()),
        shape(model.output_shape()),
        model.layer_count(),
        model.macs(),
        model.parameter_bytes(),
        relus.kept,
        relus.total,
    );
    let _ = writeln!(s, "/// Size of `model/model.pic` in bytes.");
    let _ = writeln!(s, "pub const MODEL_LEN: usize = {};", model_bytes.len());
    let _ = writeln!(s, "/// 32-bit FNV-1a of `model/model.pic`.");
    let _ = writeln!(
        s,
        "pub const MODEL_FNV1A: u32 = 0x{:08x};",
        fnv1a(model_bytes)
    );
    let _ = writeln!(
        s,
        "/// Activation arena words the model needs (`Model::arena_words`)."
    );
    let _ = writeln!(s, "pub const ARENA_WORDS: usize = {};", model.arena_words());
    let _ = writeln!(s, "/// Input elements (CHW).");
    let _ = writeln!(s, "pub const INPUT_LEN: usize = {input_len};");
    let _ = writeln!(s, "/// Output elements (logits).");
    let _ = writeln!(s, "pub const CLASSES: usize = {classes};");
    let _ = writeln!(
        s,
        "/// ReLUs kept by the model's masks (what a private inference pays for)."
    );
    let _ = writeln!(s, "pub const RELUS_KEPT: u64 = {};", relus.kept);
    let _ = writeln!(s, "/// ReLU sites in the model.");
    let _ = writeln!(s, "pub const RELUS_TOTAL: u64 = {};", relus.total);
    let _ = writeln!(
        s,
        "/// Multiply-accumulates per inference (conv and linear layers)."
    );
    let _ = writeln!(s, "pub const MACS: u64 = {};", model.macs());
    s.push('\n');
    s.push_str(
        "/// A test input with its expected label and the logits the host computed for it.\n\
         pub struct Sample {\n\
         \x20   /// True class.\n\
         \x20   pub label: usize,\n\
         \x20   /// Quantized input at the model's activation scale.\n\
         \x20   pub input: [i32; INPUT_LEN],\n\
         \x20   /// Logits from pi-core on the host; the device must match them exactly.\n\
         \x20   pub logits: [i32; CLASSES],\n\
         }\n\n",
    );
    let _ = writeln!(s, "/// The embedded test samples.");
    let _ = writeln!(s, "pub static SAMPLES: [Sample; {}] = [", samples.len());
    for (sample, l) in samples.iter().zip(logits) {
        let _ = writeln!(s, "    Sample {{");
        let _ = writeln!(s, "        label: {},", sample.label);
        let _ = writeln!(s, "        input: {},", array(&sample.input));
        let _ = writeln!(s, "        logits: {},", array(l));
        let _ = writeln!(s, "    }},");
    }
    s.push_str("];\n");
    s
}

fn emit(args: &[String]) -> Result<()> {
    let opts = Options::parse(args, &["check"])?;
    let model_path = opts.path("model")?;
    let samples_path = opts.path("samples")?;
    let out_dir = opts.path("out-dir")?;
    let check = opts.flag("check");

    let model_bytes = read(&model_path)?;
    let model = Model::parse(&model_bytes)
        .map_err(|e| format!("{}: not a valid model: {e}", model_path.display()))?;
    let samples_src = read_text(&samples_path)?;
    let samples = parse_samples(&samples_src)?;
    let input_len = model.input_shape().elements();
    if let Some((i, s)) = samples
        .iter()
        .enumerate()
        .find(|(_, s)| s.input.len() != input_len)
    {
        return Err(format!(
            "sample {i} has {} inputs, the model takes {input_len}",
            s.input.len()
        ));
    }
    let logits = host_logits(&model, &samples)?;

    let outputs: [(PathBuf, Vec<u8>); 3] = [
        (out_dir.join("model/model.pic"), model_bytes.clone()),
        (out_dir.join("model/samples.txt"), samples_src.into_bytes()),
        (
            out_dir.join("src/generated.rs"),
            generated_rs(&model_bytes, &model, &samples, &logits).into_bytes(),
        ),
    ];
    if check {
        write_or_check(&outputs, true)?;
        eprintln!(
            "firmware-gen: generated files match the model ({} samples, arena {} words)",
            samples.len(),
            model.arena_words()
        );
        return Ok(());
    }
    write_or_check(&outputs, false)?;
    eprintln!(
        "firmware-gen: {} samples, all correct on the host; arena {} words, {} of {} ReLUs kept",
        samples.len(),
        model.arena_words(),
        model.relu_count().kept,
        model.relu_count().total
    );
    Ok(())
}

/// Writes every `(path, bytes)` that differs from the file on disk; with `check`, writes
/// nothing and fails naming the files that differ.
fn write_or_check(outputs: &[(PathBuf, Vec<u8>)], check: bool) -> Result<()> {
    let stale: Vec<&PathBuf> = outputs
        .iter()
        .filter(|(path, bytes)| std::fs::read(path).ok().as_ref() != Some(bytes))
        .map(|(path, _)| path)
        .collect();
    if check {
        if !stale.is_empty() {
            let names: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "out of date (run scripts/gen-firmware-model.sh): {}",
                names.join(", ")
            ));
        }
        return Ok(());
    }
    for (path, bytes) in outputs {
        // Copying a file onto itself (the usual `--model model/model.pic`) is a no-op.
        if stale.contains(&path) {
            write(path, bytes)?;
            eprintln!("firmware-gen: wrote {}", path.display());
        }
    }
    Ok(())
}

/// Activation scale of the demo model: inputs `v/16` (v in 0..=16) at `2^8`.
const DEMO_ACT_BITS: u8 = 8;
/// Weight scale of the demo model's linear layer.
const DEMO_WEIGHT_BITS: u8 = 12;

/// Digits rows: the label and 64 pixels (0..=16).
type DigitRow = (usize, [u8; 64]);

/// Reads the UCI digits CSV (64 pixels, then the label, per line).
fn read_digits(digits_path: &Path) -> Result<Vec<DigitRow>> {
    let mut rows: Vec<DigitRow> = Vec::new();
    for (n, line) in read_text(digits_path)?.lines().enumerate() {
        let fields: Vec<&str> = line.trim().split(',').collect();
        let bad = || {
            format!(
                "{} line {}: expected 65 integers",
                digits_path.display(),
                n + 1
            )
        };
        if fields.len() != 65 {
            return Err(bad());
        }
        // Integers, or floats with a zero fraction ("16.0").
        let value = |f: &str, max: f64| match f.trim().parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && (0.0..=max).contains(&v) => Ok(v as u8),
            _ => Err(bad()),
        };
        let mut px = [0u8; 64];
        for (p, f) in px.iter_mut().zip(&fields) {
            *p = value(f, 16.0)?;
        }
        rows.push((usize::from(value(fields[64], 9.0)?), px));
    }

    if rows.is_empty() {
        return Err(format!("{}: no rows", digits_path.display()));
    }
    Ok(rows)
}

fn count_option(opts: &Options) -> Result<usize> {
    match opts.get("count") {
        Some(c) => c.parse().map_err(|_| format!("bad --count '{c}'")),
        None => Ok(10),
    }
}

/// The part of host-trainer's export sidecar (`<model>.pic.json`) the samples depend on.
#[derive(serde::Deserialize)]
struct Sidecar {
    info: SidecarInfo,
    dataset: String,
    normalization: Normalization,
    arch: String,
}

#[derive(serde::Deserialize)]
struct SidecarInfo {
    act_frac: u8,
}

#[derive(serde::Deserialize)]
struct Normalization {
    scale: f32,
    mean: Vec<f32>,
    std: Vec<f32>,
}

fn pick(args: &[String]) -> Result<()> {
    let opts = Options::parse(args, &[])?;
    let model_path = opts.path("model")?;
    let sidecar_path = opts.path("sidecar")?;
    let digits_path = opts.path("digits")?;
    let samples_out = opts.path("samples-out")?;
    let count = count_option(&opts)?;

    let bytes = read(&model_path)?;
    let model = Model::parse(&bytes)
        .map_err(|e| format!("{}: not a valid model: {e}", model_path.display()))?;
    let sidecar: Sidecar = serde_json::from_str(&read_text(&sidecar_path)?)
        .map_err(|e| format!("{}: {e}", sidecar_path.display()))?;
    if sidecar.dataset != "digits" {
        return Err(format!(
            "the model was trained on '{}'; pick only knows the 8x8 digits",
            sidecar.dataset
        ));
    }
    if model.input_shape() != Shape::new(1, 8, 8) {
        return Err("the model's input is not 1x8x8".into());
    }
    if sidecar.info.act_frac != model.activation_frac_bits() {
        return Err(format!(
            "sidecar act_frac {} differs from the model's {}",
            sidecar.info.act_frac,
            model.activation_frac_bits()
        ));
    }
    let norm = &sidecar.normalization;
    let (mean, std) = match (norm.mean.first(), norm.std.first()) {
        (Some(&m), Some(&s)) if s > 0.0 => (m, s),
        _ => return Err("sidecar normalization needs one mean and a positive std".into()),
    };

    let rows = read_digits(&digits_path)?;
    let mut arena = vec![0i32; model.arena_words()];
    let mut picked: Vec<Sample> = Vec::new();
    for (label, px) in rows.iter().rev() {
        if picked.len() == count {
            break;
        }
        if *label != picked.len() % 10 {
            continue;
        }
        let input: Vec<i32> = px
            .iter()
            .map(|&p| {
                let x = (f32::from(p) / norm.scale - mean) / std;
                pi_core::fixed::quantize(x, sidecar.info.act_frac)
            })
            .collect();
        let logits = model.infer(&input, &mut arena).map_err(|e| e.to_string())?;
        if pi_core::fixed::argmax(logits) == *label {
            picked.push(Sample {
                label: *label,
                input,
            });
        }
    }
    if picked.len() < count {
        return Err(format!("found only {} usable samples", picked.len()));
    }
    let header = format!(
        "Samples for {} ({}): rows of {} scanned from the end, one per class in turn,\n\
         normalized as its export sidecar says and quantized at 2^{}.",
        model_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        sidecar.arch,
        digits_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        sidecar.info.act_frac
    );
    write(&samples_out, samples_text(&picked, &header).as_bytes())?;
    eprintln!(
        "firmware-gen: {} samples for {} in {}",
        picked.len(),
        model_path.display(),
        samples_out.display()
    );
    Ok(())
}

fn demo(args: &[String]) -> Result<()> {
    let opts = Options::parse(args, &[])?;
    let digits_path = opts.path("digits")?;
    let model_out = opts.path("model-out")?;
    let samples_out = opts.path("samples-out")?;
    let count = count_option(&opts)?;

    let rows = read_digits(&digits_path)?;

    // Class means on the even rows.
    let mut sums = [[0f64; 64]; 10];
    let mut counts = [0f64; 10];
    for (label, px) in rows.iter().step_by(2) {
        counts[*label] += 1.0;
        for (s, &p) in sums[*label].iter_mut().zip(px) {
            *s += f64::from(p) / 16.0;
        }
    }
    let mut weights = Vec::with_capacity(640);
    let mut bias = Vec::with_capacity(10);
    for (class, sum) in sums.iter().enumerate() {
        if counts[class] == 0.0 {
            return Err(format!("no training row for class {class}"));
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / counts[class]).collect();
        // argmin |x - m|^2 = argmax (m.x - |m|^2 / 2)
        let norm2: f64 = mean.iter().map(|m| m * m).sum();
        weights.extend(
            mean.iter()
                .map(|m| (m * f64::from(1u32 << DEMO_WEIGHT_BITS)).round() as i16),
        );
        let bias_scale = f64::from(1u32 << (DEMO_ACT_BITS + DEMO_WEIGHT_BITS));
        bias.push((-norm2 / 2.0 * bias_scale).round() as i32);
    }
    // Keep the ReLU on the centre columns only: exercises the sparse-mask path (the inputs are
    // non-negative, so the ReLUs do not change the result).
    let mask: Vec<bool> = (0..64).map(|i| (2..6).contains(&(i % 8))).collect();
    let spec = ModelSpec {
        activation_frac_bits: DEMO_ACT_BITS,
        input: Shape::new(1, 8, 8),
        layers: vec![
            LayerSpec::new(OpSpec::Flatten),
            LayerSpec::new(OpSpec::MaskedRelu {
                mask: MaskSpec::Elements(mask),
            }),
            LayerSpec::new(OpSpec::Linear {
                out_features: 10,
                weight_frac_bits: DEMO_WEIGHT_BITS,
                weights,
                bias: Some(bias),
            }),
        ],
    };
    let bytes = spec
        .to_bytes()
        .map_err(|e| format!("writing the demo model: {e}"))?;
    let model = Model::parse(&bytes).map_err(|e| format!("demo model does not parse: {e}"))?;

    // Accuracy on the odd rows, and one correctly classified sample per class (in turn).
    let mut arena = vec![0i32; model.arena_words()];
    let mut correct = 0usize;
    let mut held_out = 0usize;
    let mut picked: Vec<Sample> = Vec::new();
    for (label, px) in rows.iter().skip(1).step_by(2) {
        let input: Vec<i32> = px
            .iter()
            .map(|&p| i32::from(p) << (DEMO_ACT_BITS - 4))
            .collect();
        let logits = model.infer(&input, &mut arena).map_err(|e| e.to_string())?;
        let ok = pi_core::fixed::argmax(logits) == *label;
        held_out += 1;
        correct += usize::from(ok);
        if ok && picked.len() < count && picked.len() % 10 == *label {
            picked.push(Sample {
                label: *label,
                input,
            });
        }
    }
    if picked.len() < count {
        return Err(format!("found only {} usable samples", picked.len()));
    }
    let accuracy = 100.0 * correct as f64 / held_out as f64;
    write(&model_out, &bytes)?;
    let header = format!(
        "Demo samples for firmware-example: odd rows of {} (held out from the centroid fit).\n\
         Demo model accuracy on those rows: {correct}/{held_out} ({accuracy:.1}%).",
        digits_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    );
    write(&samples_out, samples_text(&picked, &header).as_bytes())?;
    eprintln!(
        "firmware-gen: demo model {} ({} bytes), accuracy {correct}/{held_out} ({accuracy:.1}%), {} samples in {}",
        model_out.display(),
        bytes.len(),
        picked.len(),
        samples_out.display()
    );
    Ok(())
}
