//! Command-line options of `host-trainer linearize` (shared with `sweep`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::{Budget, Granularity, LinearizeConfig, LinearizeSummary, Method};
use crate::eval::{EvalReport, eval_file};
use crate::export::{ExportOptions, export_run};
use crate::train::RunOptions;

/// Schedule and hyper-parameters common to `linearize` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Mask granularity (deepreduce thins channels either way).
    #[arg(long, value_enum, default_value = "element")]
    pub granularity: Granularity,
    /// Mask-phase epochs.
    #[arg(long)]
    pub mask_epochs: Option<usize>,
    /// Frozen-mask fine-tune epochs.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Use only the first N images of the teacher's training split.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N validation images for model selection.
    #[arg(long)]
    pub val_limit: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Weight learning rate (Adam).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Mask learning rate.
    #[arg(long)]
    pub mask_lr: Option<f64>,
    /// SNL initial λ.
    #[arg(long)]
    pub snl_lambda: Option<f64>,
    /// AutoReP density-hinge weight.
    #[arg(long)]
    pub autorep_lambda: Option<f64>,
    /// SENet attention-transfer weight β.
    #[arg(long)]
    pub at_beta: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl ScheduleArgs {
    /// The config for `method` at `budget` from run `from`.
    pub fn config(&self, method: Method, budget: Budget, from: &Path) -> LinearizeConfig {
        let mut c = LinearizeConfig::new(method, budget, from);
        c.granularity = self.granularity;
        c.seed = self.seed;
        c.train_limit = self.train_limit;
        c.val_limit = self.val_limit;
        if let Some(v) = self.mask_epochs {
            c.mask_epochs = v;
        }
        if let Some(v) = self.finetune_epochs {
            c.finetune_epochs = v;
        }
        if let Some(v) = self.batch_size {
            c.batch_size = v;
        }
        if let Some(v) = self.lr {
            c.lr = v;
        }
        if let Some(v) = self.mask_lr {
            c.mask_lr = v;
        }
        if let Some(v) = self.snl_lambda {
            c.snl_lambda = v;
        }
        if let Some(v) = self.autorep_lambda {
            c.autorep_lambda = v;
        }
        if let Some(v) = self.at_beta {
            c.at_beta = v;
        }
        c
    }
}

/// `host-trainer linearize`.
#[derive(Debug, Args)]
pub struct LinearizeArgs {
    /// Method.
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// ReLU budget: kept ReLUs per image (`1500`) or a share of the model's (`10%`).
    #[arg(long)]
    pub budget: Option<Budget>,
    /// Run folder of the trained all-ReLU model (the teacher).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Output run folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many epochs in total (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Evaluate the fixed-point model on only the first N test images.
    #[arg(long)]
    pub fixed_limit: Option<usize>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Schedule and hyper-parameters.
    #[command(flatten)]
    pub schedule: ScheduleArgs,
}

/// Exports a completed run to `RUN/model.pic` and evaluates it through pi-core.
pub fn export_and_eval(out: &Path, fixed_limit: Option<usize>) -> Result<EvalReport> {
    let model = out.join("model.pic");
    export_run(out, &model, &ExportOptions::default())?;
    eval_file(&model, None, Some(out), fixed_limit, None)
}

/// Prints a summary.
pub fn print_summary(s: &LinearizeSummary) {
    if !s.completed {
        println!(
            "{} ({:?}): {} mask-phase and {} fine-tune epochs done, budget {} of {} ReLUs",
            s.method.name(),
            s.granularity,
            s.mask_epochs,
            s.finetune_epochs,
            s.budget,
            s.total
        );
        return;
    }
    println!(
        "{} ({:?}): {} of {} ReLUs kept (budget {}){}",
        s.method.name(),
        s.granularity,
        s.kept,
        s.total,
        s.budget,
        if s.projected {
            ", projected by top-k"
        } else {
            ""
        }
    );
    for l in &s.per_layer {
        println!("  {:<12} {:>7} / {:>7}", l.name, l.kept, l.total);
    }
    println!(
        "validation {:.2}% (teacher {:.2}%)",
        100.0 * s.val_acc,
        100.0 * s.teacher_val_acc
    );
    if let (Some(t), Some(tt)) = (s.test_acc, s.teacher_test_acc) {
        println!("test {:.2}% (teacher {:.2}%)", 100.0 * t, 100.0 * tt);
    }
}

/// Runs `host-trainer linearize`.
pub fn run(a: LinearizeArgs) -> Result<()> {
    let opts = RunOptions {
        quiet: a.quiet,
        stop_after_epochs: a.stop_after,
    };
    let s = if a.resume {
        super::resume(&a.out, &opts)?
    } else {
        let (Some(method), Some(budget), Some(from)) = (a.method, a.budget, a.from.as_ref()) else {
            anyhow::bail!("a new run needs --method, --budget and --from (or --resume)");
        };
        super::linearize(&a.schedule.config(method, budget, from), &a.out, &opts)?
    };
    print_summary(&s);
    if s.completed {
        let r = export_and_eval(&a.out, a.fixed_limit)?;
        println!(
            "pi-core fixed point: {:.2}% on {} test images (float {:.2}%), ReLUs {} / {}",
            100.0 * r.fixed_acc,
            r.images,
            100.0 * r.float_acc.unwrap_or(f64::NAN),
            r.relus_kept,
            r.relus_total
        );
    } else {
        println!(
            "stopped; continue with `linearize --resume --out {}`",
            a.out.display()
        );
    }
    Ok(())
}
