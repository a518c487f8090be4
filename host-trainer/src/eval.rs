//! Evaluation through pi-core: the exported fixed-point model on the test set, next to the
//! float model it came from.

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::data::{ImageSet, Normalization, batch};

/// Accuracy of the fixed-point model, and its agreement with the float model if given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy of the pi-core model.
    pub fixed_acc: f64,
    /// Top-1 accuracy of the float model (if it was evaluated).
    pub float_acc: Option<f64>,
    /// Share of images where both models predict the same class.
    pub agreement: Option<f64>,
    /// ReLUs kept by the model.
    pub relus_kept: u64,
    /// ReLUs of the unlinearized model.
    pub relus_total: u64,
}

/// Predictions of the pi-core model in `model_bytes` on every image of `set`. Inputs are
/// normalised in float, then quantized at `2^act_frac` (round half away from zero).
pub fn fixed_predictions(
    model_bytes: &[u8],
    act_frac: u8,
    set: &ImageSet,
    norm: &Normalization,
) -> Result<(Vec<usize>, u64, u64)> {
    let mut preds = Vec::with_capacity(set.len());
    let (kept, total) = each_fixed(model_bytes, act_frac, set, norm, |_, _, p| {
        preds.push(p);
        true
    })?;
    Ok((preds, kept, total))
}

/// Runs the images of `set` in order through the pi-core model, calling `visit(index,
/// quantized input, prediction)` until it returns `false`; returns the model's kept and total
/// ReLUs.
fn each_fixed(
    model_bytes: &[u8],
    act_frac: u8,
    set: &ImageSet,
    norm: &Normalization,
    mut visit: impl FnMut(usize, &[i32], usize) -> bool,
) -> Result<(u64, u64)> {
    let model = pi_core::Model::parse(model_bytes)
        .map_err(|e| anyhow!("pi-core rejected the model: {e}"))?;
    let mut arena = vec![0i32; model.arena_words()];
    let mut input_q = vec![0i32; set.shape.len()];
    let idx: Vec<usize> = (0..set.len()).collect();
    'chunks: for chunk in idx.chunks(256) {
        let x = batch::floats(set, chunk, norm, None);
        for (&i, sample) in chunk.iter().zip(x.chunks(set.shape.len())) {
            for (q, &v) in input_q.iter_mut().zip(sample) {
                *q = pi_core::fixed::quantize(v, act_frac);
            }
            let logits = model
                .infer(&input_q, &mut arena)
                .map_err(|e| anyhow!("pi-core inference: {e}"))?;
            // First maximum on ties, as the float side does.
            let best = logits
                .iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > logits[b] { i } else { b });
            if !visit(i, &input_q, best) {
                break 'chunks;
            }
        }
    }
    let count = model.relu_count();
    Ok((count.kept, count.total))
}

/// Firmware samples (`firmware-gen emit --samples`): for each class, the first test image the
/// pi-core model classifies correctly, quantized as [`fixed_predictions`] quantizes it, one line
/// `label v0 .. v(n-1)` each. The firmware checks its logits against the host's bit for bit,
/// and fails on a wrong prediction, so only correctly classified images are taken.
pub fn firmware_samples(
    model_bytes: &[u8],
    act_frac: u8,
    set: &ImageSet,
    norm: &Normalization,
    classes: usize,
) -> Result<String> {
    use std::fmt::Write;
    let mut taken = vec![false; classes];
    let mut text = String::new();
    each_fixed(model_bytes, act_frac, set, norm, |i, q, pred| {
        let label = set.labels[i] as usize;
        if pred == label && !taken.get(label).copied().unwrap_or(true) {
            taken[label] = true;
            let _ = write!(text, "{label}");
            for v in q {
                let _ = write!(text, " {v}");
            }
            text.push('\n');
        }
        taken.iter().any(|t| !t)
    })?;
    Ok(text)
}

/// Share of `preds` equal to `labels`.
pub fn accuracy(preds: &[usize], labels: &[u8]) -> f64 {
    let ok = preds
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    ok as f64 / preds.len().max(1) as f64
}

/// Share of positions where `a` and `b` agree.
pub fn agreement(a: &[usize], b: &[usize]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}

/// Evaluates the model file `model` on the test set of its dataset through pi-core and, when
/// its run folder is known (sidecar or `run`), the float model too. `limit` evaluates only the
/// first N test images. With `samples_out`, also writes [`firmware_samples`] of those images
/// there.
pub fn eval_file(
    model: &std::path::Path,
    dataset: Option<crate::data::DatasetKind>,
    run: Option<&std::path::Path>,
    limit: Option<usize>,
    paths: Option<&crate::data::DataPaths>,
    samples_out: Option<&std::path::Path>,
) -> Result<EvalReport> {
    use anyhow::Context;
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    // A file that is not a model must say so, not "sidecar missing".
    pi_core::Model::parse(&bytes).map_err(|e| anyhow!("{}: {e}", model.display()))?;
    let side_path = crate::export::sidecar_path(model);
    let side: crate::export::ExportSidecar =
        serde_json::from_str(&std::fs::read_to_string(&side_path).with_context(|| {
            format!(
                "{} missing: export the model with `host-trainer export`",
                side_path.display()
            )
        })?)
        .with_context(|| format!("{}: invalid", side_path.display()))?;
    let dataset = dataset.unwrap_or(side.dataset);
    anyhow::ensure!(
        dataset == side.dataset,
        "model was trained on {} but --dataset is {}",
        side.dataset.name(),
        dataset.name()
    );
    let run_dir = run
        .map(std::path::Path::to_path_buf)
        .unwrap_or(side.run.clone());
    let run_dir = crate::train::RunDir::new(&run_dir);
    let cfg = run_dir.read_config().ok();
    let paths = match (paths, &cfg) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => c.data_paths(),
        (None, None) => crate::data::DataPaths::default(),
    };
    let mut test = crate::data::load(dataset, &paths)?.test;
    if let Some(n) = limit {
        test = test.truncate(n);
    }
    let (fixed, kept, total) =
        fixed_predictions(&bytes, side.info.act_frac, &test, &side.normalization)?;
    if let Some(out) = samples_out {
        let classes = dataset.classes();
        let text = firmware_samples(
            &bytes,
            side.info.act_frac,
            &test,
            &side.normalization,
            classes,
        )?;
        crate::train::checkpoint::write_atomic(out, text.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let mut report = EvalReport {
        images: test.len(),
        fixed_acc: accuracy(&fixed, &test.labels),
        float_acc: None,
        agreement: None,
        relus_kept: kept,
        relus_total: total,
    };
    if let Some(cfg) = cfg {
        let device = cfg.backend.device()?;
        let (_, net) = crate::train::run_dir::load_trained(&run_dir, &device)?;
        let classes = net.spec.output().len();
        let logits = crate::train::evaluate::logits(&net, &test, &side.normalization, &device, 256);
        let float = crate::train::evaluate::argmax_rows(&logits, classes);
        report.float_acc = Some(accuracy(&float, &test.labels));
        report.agreement = Some(agreement(&float, &fixed));
    }
    Ok(report)
}
