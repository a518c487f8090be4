//! Linearization: learn which ReLUs to keep under a ReLU budget, then fine-tune the masked model.
//!
//! Every method uses the one masked activation `y = x − m·min(x, 0)` of
//! [`crate::model::masked_relu`]; they differ in how `m` is parameterised and how the budget is
//! enforced (linearization.md §11). Each method is one file of [`methods`] with its own
//! configuration, flags, presets and state; `host-trainer linearize --help` lists them.
//!
//! | method | mask phase | budget |
//! |---|---|---|
//! | `snl` | real-valued `α` (init 1), CE + KD + λ·L1, λ ×1.1 on stalls | stop at budget, hard threshold `α > 0.01` |
//! | `autorep` | hard mask, STE gradient softplus(a), hysteresis `t` | hinge on global density |
//! | `senet` | per-layer budgets from a scale-invariant pruning sensitivity, locations by top-k of the teacher–student gap; fine-tune with attention transfer at the stage outputs | exact per-layer counts |
//! | `streamlinet` | per-layer budgets from ReLU negativity and cost, STE masks, cost-aware consistency | per-layer top-k |
//! | `deepreduce` | stage criticality, culling + block thinning, fine-tuned candidate points | coarse configs |
//!
//! Then masks are frozen (binary) and the weights fine-tuned with KD from the all-ReLU teacher
//! (the `--from` run's model), on augmented images when the teacher was trained on them.
//!
//! The pieces: [`config`] (what determines a run: method, preset, budget, the shared
//! [`Recipe`]), [`driver`] (the phases, checkpoints, resume), [`objective`] (the loss of an
//! epoch; the epoch loop is [`crate::train::epoch`], shared with training), [`masks`] (the
//! student, mask units), [`run`] (the context a method works in), [`report`], [`budget`],
//! [`losses`], [`args`] (the command line).
//!
//! A linearization run is a folder like a training run ([`crate::train::RunDir`]):
//! `linearize.json`, `checkpoint.ckpt` (every epoch; holds the method's state too), `best.bpk`,
//! `metrics.csv`, `train.log`, and when complete `model.bpk`, `config.json` (the teacher's
//! training config, so `export` and `eval` work unchanged), `report.json` / `report.md`.

pub mod args;
pub mod budget;
pub mod config;
pub mod driver;
pub mod latency;
pub mod losses;
pub mod masks;
pub mod methods;
pub mod objective;
pub mod report;
pub mod run;

use std::path::Path;

use anyhow::Result;

pub use budget::Budget;
pub use config::{Granularity, LinearizeConfig, Preset, Recipe};
pub use driver::{linearize, read_summary, resume};
pub use methods::{Linearizer, METHODS, MethodName};
pub use report::{LayerKept, LinearizeSummary};

use crate::train::RunOptions;

/// The demo's linearization step: the run's summary and its pi-core evaluation.
#[derive(Debug, Clone)]
pub struct QuickReport {
    /// The linearization run.
    pub summary: LinearizeSummary,
    /// The exported linearized model on the test set through pi-core.
    pub eval: crate::eval::EvalReport,
}

/// Linearizes the model of the run folder `from` (the demo's digits CNN) to 10% of its ReLUs
/// into `out` (4 mask + 4 fine-tune epochs: a few seconds on the digits), then exports it to
/// `out/model.pic` and evaluates it through pi-core. StreamliNet (reconstruction) is used: its
/// per-layer top-k keeps every step exactly on budget, so the short schedule needs no cut.
pub fn run_quick(from: &Path, out: &Path, quiet: bool) -> Result<QuickReport> {
    let mut cfg = LinearizeConfig::new("streamlinet", Preset::Fast, Budget::Fraction(0.1), from)?;
    cfg.recipe.mask_epochs = 4;
    cfg.recipe.finetune_epochs = 4;
    let summary = linearize(
        &cfg,
        out,
        &RunOptions {
            quiet,
            ..Default::default()
        },
    )?;
    let eval = args::export_and_eval(out, None)?;
    Ok(QuickReport { summary, eval })
}

/// Prints the ReLU count and accuracy before and after linearization.
pub fn print_quick(q: &QuickReport) {
    let s = &q.summary;
    println!(
        "{}: ReLUs {} -> {} ({:.1}% kept, budget {}); test accuracy {:.2}% -> {:.2}% (float), pi-core {:.2}%",
        s.method,
        s.total,
        q.eval.relus_kept,
        100.0 * q.eval.relus_kept as f64 / s.total.max(1) as f64,
        s.budget,
        100.0 * s.teacher_test_acc.unwrap_or(f64::NAN),
        100.0 * s.test_acc.unwrap_or(f64::NAN),
        100.0 * q.eval.fixed_acc
    );
}
