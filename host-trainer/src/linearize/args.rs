//! Command-line options of `host-trainer linearize` (shared with `sweep`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::config::{Granularity, LinearizeConfig, Preset, Recipe};
use super::methods::{self, MethodFlags, MethodName, set};
use super::{Budget, LinearizeSummary};
use crate::eval::{EvalReport, eval_file};
use crate::export::{ExportOptions, export_run};
use crate::train::RunOptions;

/// Overrides of the shared recipe; each given flag replaces the preset's value.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Recipe (every method; overrides the preset)")]
pub struct RecipeFlags {
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Mask-phase epochs.
    #[arg(long)]
    pub mask_epochs: Option<usize>,
    /// Frozen-mask fine-tune epochs.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Peak learning rate of the weights in the mask phase.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Peak learning rate of the mask parameters.
    #[arg(long)]
    pub mask_lr: Option<f64>,
    /// Peak learning rate of fine-tuning (cosine to 0).
    #[arg(long)]
    pub finetune_lr: Option<f64>,
    /// KD temperature.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Cut final masks that end off budget to the budget by top-k (true/false).
    #[arg(long)]
    pub cut_to_budget: Option<bool>,
}

impl RecipeFlags {
    /// Applies the given flags to `r`.
    pub fn apply(&self, r: &mut Recipe) {
        set(&mut r.batch_size, &self.batch_size);
        set(&mut r.mask_epochs, &self.mask_epochs);
        set(&mut r.finetune_epochs, &self.finetune_epochs);
        set(&mut r.lr, &self.lr);
        set(&mut r.mask_lr, &self.mask_lr);
        set(&mut r.finetune_lr, &self.finetune_lr);
        set(&mut r.temperature, &self.temperature);
        set(&mut r.cut_to_budget, &self.cut_to_budget);
    }
}

/// Everything but the method, budget and folders: preset, data, seed, recipe and method flags.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Starting values of the recipe and the method's settings: `fast` (short CPU schedules) or
    /// `paper` (the published recipe; see the presets below and the method's file).
    #[arg(long, value_enum, default_value = "fast")]
    pub preset: Preset,
    /// Mask granularity (deepreduce thins channels either way).
    #[arg(long, value_enum, default_value = "element")]
    pub granularity: Granularity,
    /// Use only the first N images of the teacher's training split.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N validation images for model selection.
    #[arg(long)]
    pub val_limit: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Recipe overrides.
    #[command(flatten)]
    pub recipe: RecipeFlags,
    /// Every method's own flags.
    #[command(flatten)]
    pub method_flags: MethodFlags,
}

impl RunArgs {
    /// The configuration of `method` at `budget` from run `from` (seed `seed`).
    pub fn config(
        &self,
        method: &MethodName,
        budget: Budget,
        from: &Path,
        seed: u64,
    ) -> Result<LinearizeConfig> {
        let (mut recipe, method_config) =
            (method.entry().configure)(self.preset, self.method_flags.matches())?;
        self.recipe.apply(&mut recipe);
        Ok(LinearizeConfig {
            method: method.clone(),
            preset: self.preset,
            budget,
            granularity: self.granularity,
            from: from.to_path_buf(),
            seed,
            train_limit: self.train_limit,
            val_limit: self.val_limit,
            recipe,
            method_config,
        })
    }
}

fn method_help() -> String {
    let lines: Vec<String> = methods::METHODS
        .iter()
        .map(|e| format!("{}: {}", e.name, e.about))
        .collect();
    format!("Method. {}", lines.join("; "))
}

/// `host-trainer linearize`.
#[derive(Debug, Args)]
pub struct LinearizeArgs {
    /// Method.
    #[arg(long, help = method_help())]
    pub method: Option<MethodName>,
    /// ReLU budget: kept ReLUs per image (`1500`) or a share of the model's (`10%`).
    #[arg(long)]
    pub budget: Option<Budget>,
    /// Budget from a latency target instead of --budget (`2s`, `1500ms`): the most kept ReLUs
    /// whose private-inference latency with --protocol on --device over --link meets it
    /// (pi-core's cost model, as `protocol-sim budget`).
    #[arg(long, conflicts_with = "budget")]
    pub latency: Option<String>,
    /// The deployment the latency is priced on (also reported for --budget runs).
    #[command(flatten)]
    pub deployment: super::latency::Deployment,
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
    /// Preset, data, recipe and method settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Exports a completed run to `RUN/model.pic`, evaluates it through pi-core and records the
/// evaluation in `RUN/eval.json` (what `sweep` collects, and what a single run keeps too).
pub fn export_and_eval(out: &Path, fixed_limit: Option<usize>) -> Result<EvalReport> {
    let model = out.join("model.pic");
    export_run(out, &model, &ExportOptions::default())?;
    let r = eval_file(&model, None, Some(out), fixed_limit, None, None)?;
    crate::train::checkpoint::write_atomic(
        &out.join(EVAL_FILE),
        serde_json::to_string_pretty(&r)?.as_bytes(),
    )?;
    Ok(r)
}

/// The file in a run folder that holds its pi-core evaluation ([`export_and_eval`]).
pub const EVAL_FILE: &str = "eval.json";

/// Prints a summary.
pub fn print_summary(s: &LinearizeSummary) {
    if !s.completed {
        println!(
            "{} (preset {}, {:?}): {} mask-phase and {} fine-tune epochs done, budget {} of {} ReLUs",
            s.method,
            s.preset.name(),
            s.granularity,
            s.mask_epochs,
            s.finetune_epochs,
            s.budget,
            s.total
        );
        return;
    }
    println!(
        "{} (preset {}, {:?}): {} of {} ReLUs kept (budget {}){}",
        s.method,
        s.preset.name(),
        s.granularity,
        s.kept,
        s.total,
        s.budget,
        if s.projected {
            ", cut to the budget by top-k"
        } else {
            ""
        }
    );
    for l in &s.per_layer {
        println!("  {:<16} {:>7} / {:>7}", l.name, l.kept, l.total);
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
        let budget = match (&a.latency, a.from.as_ref()) {
            (Some(t), Some(from)) => {
                let target = super::latency::parse_latency(t)?;
                let (n, bound) = super::latency::budget_for(from, target, &a.deployment)?;
                println!(
                    "latency target {:.3} s ({}): budget {n} ReLUs (latency bound {:.3} s for any placement)",
                    target as f64 / 1e6,
                    a.deployment.describe(),
                    bound as f64 / 1e6
                );
                Some(Budget::Absolute(n))
            }
            _ => a.budget,
        };
        let (Some(method), Some(budget), Some(from)) = (&a.method, budget, a.from.as_ref()) else {
            anyhow::bail!(
                "a new run needs --method, --budget (or --latency) and --from (or --resume)"
            );
        };
        a.run.method_flags.check_used_by(&[method.as_str()])?;
        let cfg = a.run.config(method, budget, from, a.run.seed)?;
        println!(
            "{} with preset `{}` (flags override it; every value is in {}/linearize.json)",
            method,
            cfg.preset.name(),
            a.out.display()
        );
        super::linearize(&cfg, &a.out, &opts)?
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
        let model = a.out.join("model.pic");
        let (latency, bytes) = a.deployment.price(&model)?;
        println!(
            "{}: estimated latency {:.3} s ({}), {} client bytes per inference",
            model.display(),
            latency as f64 / 1e6,
            a.deployment.describe(),
            bytes
        );
    } else {
        println!(
            "stopped; continue with `linearize --resume --out {}`",
            a.out.display()
        );
    }
    Ok(())
}
