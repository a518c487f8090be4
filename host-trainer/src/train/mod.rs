//! Training runs. A run is a folder ([`RunDir`]): `config.json`, `checkpoint.ckpt` (every
//! epoch, atomic), `best.bpk` (best validation accuracy), `metrics.csv`, `train.log`, and when
//! the run completes `model.bpk` (the selected model) plus `report.json` / `report.md`.
//!
//! Model selection uses the validation split (held out from the training set with the run's
//! seed); the test set is evaluated once, on the selected model, for the report.

pub mod checkpoint;
pub mod config;
pub mod epoch;
pub mod evaluate;
pub mod progress;
pub mod run_dir;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use checkpoint::{Checkpoint, CheckpointError, TrainState};
pub use config::{OptimizerKind, TrainConfig};
pub use run_dir::RunDir;

use crate::data::{self, ImageSet, split};
use crate::model::{Net, relu_table};
use crate::rng::Rng;
use epoch::{EpochData, Objective, TrainBatch, run_epoch, steps_per_epoch};
use evaluate::{Score, score};
use progress::RunLog;

/// How to run (not part of the run's identity).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// No progress bars or terminal output (the log file is still written).
    pub quiet: bool,
    /// Stop after this many epochs in total, as if interrupted (for tests and time-boxing).
    pub stop_after_epochs: Option<usize>,
}

/// The outcome of a training call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Epochs completed so far.
    pub epochs_done: usize,
    /// Whether all configured epochs are done (then `model.bpk` and the report exist).
    pub completed: bool,
    /// Best validation accuracy.
    pub best_val_acc: f64,
    /// Its epoch.
    pub best_epoch: usize,
    /// Test accuracy of the selected model (only when completed).
    pub test_acc: Option<f64>,
    /// Mean training throughput of this call's epochs (images per second, fwd+bwd+step).
    pub train_images_per_s: f64,
    /// ReLUs of the network (all kept).
    pub relus: usize,
    /// Trainable parameters.
    pub params: usize,
}

/// Data of a run: training (after the validation hold-out), validation, test.
pub(crate) struct RunData {
    pub(crate) train: ImageSet,
    pub(crate) val: ImageSet,
    pub(crate) test: ImageSet,
}

/// The data a run trains, validates and tests on (linearization reuses its teacher's split).
pub(crate) fn load_data(cfg: &TrainConfig) -> Result<RunData> {
    let tt = data::load(cfg.dataset, &cfg.data_paths())?;
    // A seeded random subset rather than the first N images: a dataset's file order need not
    // mix the classes.
    let full = match cfg.train_limit {
        Some(n) if n < tt.train.len() => {
            let mut idx = Rng::derive(cfg.seed, 0x5B5E7).permutation(tt.train.len());
            idx.truncate(n);
            idx.sort_unstable();
            tt.train.select(&idx)
        }
        _ => tt.train,
    };
    let (train, val) = split::train_val(&full, cfg.val_fraction, cfg.seed);
    Ok(RunData {
        train,
        val,
        test: tt.test,
    })
}

/// An optimizer: SGD with momentum (no dampening) or Adam, with L2 weight decay if non-zero.
pub fn make_optimizer(kind: OptimizerKind, momentum: f64, weight_decay: f64) -> ModuleOptimizer {
    let wd = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
    match kind {
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(momentum)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::Adam => AdamConfig::new().with_weight_decay(wd).init(),
    }
}

/// Files a training run writes before its first checkpoint: a folder holding only these may be
/// started over.
const TRAIN_FILES: &[&str] = &["config.json", "train.log", "metrics.csv"];

/// Starts a new run in `run_dir` (created if needed). Fails if the folder already holds a run
/// with a checkpoint (use [`resume`] to continue it) or anything that is not a run.
pub fn train(cfg: &TrainConfig, run_dir: &Path, opts: &RunOptions) -> Result<TrainSummary> {
    let run = RunDir::new(run_dir);
    if cfg.epochs == 0 || cfg.batch_size < 2 {
        bail!("need epochs >= 1 and batch size >= 2 (BatchNorm needs two samples)");
    }
    // A folder whose run never finished an epoch (e.g. the dataset was missing) has nothing
    // to lose: starting over in it is allowed.
    run.claim_for_new_run("train", TRAIN_FILES, |run| run.read_config().map(drop))?;
    let json = serde_json::to_string_pretty(cfg)?;
    checkpoint::write_atomic(&run.config(), json.as_bytes())?;
    run_epochs(cfg, &run, None, opts)
}

/// Continues the run in `run_dir` from its last checkpoint; `epochs` may raise the epoch count.
pub fn resume(run_dir: &Path, epochs: Option<usize>, opts: &RunOptions) -> Result<TrainSummary> {
    let run = RunDir::new(run_dir);
    let mut cfg = run.read_config()?;
    let ckpt = Checkpoint::<TrainState>::load(&run.checkpoint())?;
    if let Some(e) = epochs {
        if e < ckpt.state.epochs_done {
            bail!(
                "--epochs {e} is below the {} epochs already done",
                ckpt.state.epochs_done
            );
        }
        if e != cfg.epochs {
            cfg.epochs = e;
            checkpoint::write_atomic(
                &run.config(),
                serde_json::to_string_pretty(&cfg)?.as_bytes(),
            )?;
        }
    }
    run_epochs(&cfg, &run, Some(ckpt), opts)
}

/// Keeps the header and the rows of epochs `<= epochs_done` (rows written after the last
/// checkpoint belong to an epoch that will be re-run).
pub(crate) fn trim_metrics(path: &Path, epochs_done: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0
                || l.split(',')
                    .next()
                    .and_then(|e| e.parse::<usize>().ok())
                    .is_some_and(|e| e <= epochs_done)
        })
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    checkpoint::write_atomic(path, kept.as_bytes())?;
    Ok(())
}

const METRICS_HEADER: &str =
    "epoch,lr,train_loss,train_acc,val_loss,val_acc,train_seconds,train_images_per_s";

fn run_epochs(
    cfg: &TrainConfig,
    run: &RunDir,
    ckpt: Option<Checkpoint>,
    opts: &RunOptions,
) -> Result<TrainSummary> {
    let mut log = RunLog::new(&run.log(), opts.quiet)
        .with_context(|| format!("opening {}", run.log().display()))?;
    let device: Device = cfg.backend.train_device()?;
    let eval_device = cfg.backend.device()?;
    let spec = run_dir::spec_of(cfg)?;
    let data = load_data(cfg)?;
    log.line(&format!(
        "{} on {}: {} train / {} validation / {} test images, backend {:?}",
        spec.arch,
        cfg.dataset.name(),
        data.train.len(),
        data.val.len(),
        data.test.len(),
        cfg.backend
    ));

    // Fine-tuning (`train --from`) starts from the source run's final weights; a resumed run
    // replaces them with its checkpoint's below either way.
    let mut model = match &cfg.init_from {
        Some(from) => {
            let from_run = RunDir::new(from);
            let from_cfg = from_run.read_config()?;
            let net = run_dir::load_final_model(&from_run, &from_cfg, &device)
                .with_context(|| format!("initial weights from {}", from.display()))?;
            log.line(&format!("initial weights: {}", from.display()));
            net
        }
        None => Net::seeded(&spec, &device, cfg.seed),
    };
    let fresh_optimizer = || make_optimizer(cfg.optimizer, cfg.momentum, cfg.weight_decay);
    let mut optim = fresh_optimizer();
    let mut state = TrainState {
        epochs_done: 0,
        best_val_acc: -1.0,
        best_epoch: 0,
    };
    if let Some(ckpt) = ckpt {
        model = ckpt
            .restore_model(Net::new(&spec, &device))
            .with_context(|| format!("checkpoint of {}", spec.arch))?;
        optim = ckpt.restore_optimizer(fresh_optimizer())?;
        state = ckpt.state;
        trim_metrics(&run.metrics(), state.epochs_done)?;
        log.line(&format!(
            "resumed after epoch {} (best validation {:.2}% at epoch {})",
            state.epochs_done,
            100.0 * state.best_val_acc,
            state.best_epoch
        ));
    }
    let params = model.num_params() - spec.total_relus(); // masks are not trained here
    log.line(&format!(
        "{params} trainable parameters, {} ReLUs",
        spec.total_relus()
    ));
    if state.epochs_done == 0 {
        log.line(relu_table(&spec, &[]).trim_end());
    }
    if !run.metrics().exists() {
        std::fs::write(run.metrics(), format!("{METRICS_HEADER}\n"))?;
    }

    let n = data.train.len();
    let steps = steps_per_epoch(n, cfg.batch_size);
    let last_epoch = opts
        .stop_after_epochs
        .map_or(cfg.epochs, |s| s.min(cfg.epochs));
    let epoch_bar = log.epoch_bar(cfg.epochs, state.epochs_done);
    let (mut images_trained, mut seconds_trained) = (0usize, 0.0f64);
    let mut objective = Supervised {
        ce: CrossEntropyLossConfig::new().init(&device),
        cfg,
        first_step: 0,
        total_steps: steps * cfg.epochs,
    };

    for epoch in state.epochs_done + 1..=last_epoch {
        objective.first_step = (epoch - 1) * steps;
        let data_plan = EpochData {
            set: &data.train,
            norm: &cfg.normalization,
            batch_size: cfg.batch_size,
            order: Rng::derive(cfg.seed, epoch as u64).permutation(n),
            augment: cfg
                .augment
                .then(|| Rng::derive(cfg.seed, (1 << 32) + epoch as u64)),
            device: &device,
            epoch,
        };
        let (trained, e) = run_epoch(
            model,
            &mut optim,
            data_plan,
            &mut objective,
            &log.batch_bar(steps),
        )?;
        model = trained;
        images_trained += e.images;
        seconds_trained += e.secs;
        let lr = cfg.lr_at(
            objective.first_step + steps.saturating_sub(1),
            objective.total_steps,
        );

        let val: Score = score(
            &model.valid(),
            &data.val,
            &cfg.normalization,
            &eval_device,
            256,
        );
        let ips = e.images as f64 / e.secs;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(run.metrics())?;
        writeln!(
            f,
            "{epoch},{lr:.6e},{:.5},{:.5},{:.5},{:.5},{:.2},{ips:.1}",
            e.loss, e.acc, val.loss, val.acc, e.secs
        )?;
        drop(f);

        // Ties go to the later epoch: equally accurate on validation, and trained longer.
        let improved = val.acc >= state.best_val_acc;
        if improved {
            state.best_val_acc = val.acc;
            state.best_epoch = epoch;
            checkpoint::write_atomic(&run.best(), &checkpoint::module_bytes(&model)?)?;
        }
        state.epochs_done = epoch;
        Checkpoint::capture(state.clone(), &model, &optim)?.save(&run.checkpoint())?;

        log.line(&format!(
            "epoch {epoch}/{}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{} | {:.1}s, {ips:.0} img/s",
            cfg.epochs, e.loss, 100.0 * e.acc, val.loss, 100.0 * val.acc, if improved { " *" } else { "" }, e.secs
        ));
        epoch_bar.set_position(epoch as u64);
        epoch_bar.set_message(format!(
            "best val {:.2}% (epoch {})",
            100.0 * state.best_val_acc,
            state.best_epoch
        ));
    }
    epoch_bar.finish_and_clear();

    let completed = state.epochs_done >= cfg.epochs;
    let mut summary = TrainSummary {
        epochs_done: state.epochs_done,
        completed,
        best_val_acc: state.best_val_acc,
        best_epoch: state.best_epoch,
        test_acc: None,
        train_images_per_s: if seconds_trained > 0.0 {
            images_trained as f64 / seconds_trained
        } else {
            0.0
        },
        relus: spec.total_relus(),
        params,
    };
    if !completed {
        log.line(&format!(
            "stopped after epoch {}; continue with --resume",
            state.epochs_done
        ));
        return Ok(summary);
    }
    // The selected model: best validation accuracy. Test once, for the report.
    let best = std::fs::read(run.best()).context("reading best.bpk")?;
    checkpoint::write_atomic(&run.model(), &best)?;
    let selected = run_dir::model_from_bytes(&spec, best, &eval_device)?.valid();
    let test = score(&selected, &data.test, &cfg.normalization, &eval_device, 256);
    summary.test_acc = Some(test.acc);
    log.line(&format!(
        "done: selected epoch {} (val {:.2}%), test accuracy {:.2}% on {} images",
        state.best_epoch,
        100.0 * state.best_val_acc,
        100.0 * test.acc,
        data.test.len()
    ));
    write_report(cfg, run, &summary, &relu_table(&spec, &[]), test)?;
    Ok(summary)
}

/// Supervised training: cross-entropy on the labels, cosine learning rate over the whole run.
struct Supervised<'a> {
    ce: CrossEntropyLoss,
    cfg: &'a TrainConfig,
    /// Global index of this epoch's first step.
    first_step: usize,
    total_steps: usize,
}

impl Objective<Net> for Supervised<'_> {
    fn loss(&mut self, model: &Net, batch: &TrainBatch) -> Result<(Tensor<1>, Tensor<2>)> {
        let logits = model.forward(batch.images.clone());
        Ok((
            self.ce.forward(logits.clone(), batch.targets.clone()),
            logits,
        ))
    }

    fn learning_rate(&self, step: usize) -> ModuleLearningRate {
        self.cfg
            .lr_at(self.first_step + step, self.total_steps)
            .into()
    }
}

fn write_report(
    cfg: &TrainConfig,
    run: &RunDir,
    s: &TrainSummary,
    relus: &str,
    test: Score,
) -> Result<()> {
    let json = serde_json::json!({ "config": cfg, "summary": s, "test_loss": test.loss });
    checkpoint::write_atomic(
        &run.report_json(),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Training report: {} on {}\n",
        cfg.arch,
        cfg.dataset.name()
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| epochs | {} ({:?}, lr {} cosine, batch {}) |",
        s.epochs_done, cfg.optimizer, cfg.lr, cfg.batch_size
    );
    let _ = writeln!(
        md,
        "| selected epoch (best validation) | {} |",
        s.best_epoch
    );
    let _ = writeln!(
        md,
        "| validation accuracy | {:.2}% |",
        100.0 * s.best_val_acc
    );
    let _ = writeln!(md, "| test accuracy | {:.2}% |", 100.0 * test.acc);
    let _ = writeln!(md, "| parameters | {} |", s.params);
    let _ = writeln!(md, "| ReLUs | {} |", s.relus);
    let _ = writeln!(
        md,
        "| training throughput | {:.0} images/s ({:?}) |",
        s.train_images_per_s, cfg.backend
    );
    let _ = writeln!(md, "\n```\n{relus}```");
    checkpoint::write_atomic(&run.report_md(), md.as_bytes())?;
    Ok(())
}
