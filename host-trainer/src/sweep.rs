//! `host-trainer sweep`: every method at every budget from one teacher run, then `results.csv`
//! and plots. Each cell is its own linearization run folder (`OUT/METHOD/BUDGET/`); a finished
//! cell is read back, an unfinished one resumed, so an interrupted sweep continues where it
//! stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::eval::EvalReport;
use crate::linearize::args::{RunArgs, export_and_eval};
use crate::linearize::{Budget, LinearizeSummary, MethodName, read_summary};
use crate::plot::{Allocation, Series, accuracy_vs_relus, allocation};
use crate::train::{RunDir, RunOptions};

/// `host-trainer sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Run folder of the trained all-ReLU model (the teacher).
    #[arg(long)]
    pub from: PathBuf,
    /// Methods, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "snl,autorep,senet,streamlinet,deepreduce"
    )]
    pub methods: Vec<MethodName>,
    /// Budgets, comma-separated (`10%` or absolute counts).
    #[arg(long, value_delimiter = ',', default_value = "50%,20%,10%,5%,2%,1%")]
    pub budgets: Vec<Budget>,
    /// Output folder (one run folder per cell, results.csv, plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Evaluate the fixed-point models on only the first N test images.
    #[arg(long)]
    pub fixed_limit: Option<usize>,
    /// Budget of the per-layer allocation plot (default: 10%, or the first budget).
    #[arg(long)]
    pub allocation_budget: Option<Budget>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Preset, data, recipe and method settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// One row of `results.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Dataset.
    pub dataset: String,
    /// Method.
    pub method: String,
    /// Granularity.
    pub granularity: String,
    /// The budget as given.
    pub budget_arg: String,
    /// Budget in ReLUs.
    pub budget: usize,
    /// Kept ReLUs of the final model (as pi-core counts them).
    pub kept: u64,
    /// ReLUs of the model.
    pub total: u64,
    /// Validation accuracy of the selected model.
    pub val_acc: f64,
    /// Float test accuracy (full test set).
    pub test_acc: f64,
    /// pi-core fixed-point test accuracy.
    pub fixed_test_acc: f64,
    /// Test images of the fixed-point evaluation.
    pub fixed_images: usize,
    /// Float test accuracy on the same images as the fixed-point evaluation.
    pub float_acc_fixed_images: f64,
    /// Share of those images where the float and fixed-point models predict the same class.
    pub agreement: f64,
    /// Teacher test accuracy.
    pub teacher_test_acc: f64,
    /// Mask-phase epochs + fine-tune epochs.
    pub epochs: usize,
    /// Mask-phase epochs.
    pub mask_epochs: usize,
    /// Training images per epoch.
    pub train_images: usize,
    /// Wall time of the linearization, seconds.
    pub wall_s: f64,
    /// Seed.
    pub seed: u64,
    /// Whether the final masks were projected by top-k.
    pub projected: bool,
}

fn budget_label(b: Budget) -> String {
    match b {
        Budget::Absolute(n) => n.to_string(),
        Budget::Fraction(f) => format!("{}pct", 100.0 * f),
    }
}

/// Runs (or resumes, or reads back) one cell, then exports and evaluates it through pi-core.
fn cell(a: &SweepArgs, m: &MethodName, b: Budget) -> Result<(LinearizeSummary, EvalReport)> {
    let dir = a.out.join(m.as_str()).join(budget_label(b));
    let opts = RunOptions {
        quiet: a.quiet,
        stop_after_epochs: None,
    };
    let s = match read_summary(&dir) {
        Some(s) if s.completed => s,
        _ if dir.join("linearize.json").exists() => crate::linearize::resume(&dir, &opts)?,
        _ => crate::linearize::linearize(&a.run.config(m, b, &a.from, a.run.seed)?, &dir, &opts)?,
    };
    let eval_path = dir.join("eval.json");
    let r = match std::fs::read_to_string(&eval_path)
        .ok()
        .and_then(|t| serde_json::from_str::<EvalReport>(&t).ok())
    {
        Some(r) => r,
        None => {
            let r = export_and_eval(&dir, a.fixed_limit)?;
            std::fs::write(&eval_path, serde_json::to_string_pretty(&r)?)?;
            r
        }
    };
    Ok((s, r))
}

fn write_csv(path: &Path, rows: &[ResultRow]) -> Result<()> {
    let mut s = String::from(
        "dataset,method,granularity,budget_arg,budget,kept,total,val_acc,test_acc,fixed_test_acc,fixed_images,float_acc_fixed_images,agreement,teacher_test_acc,epochs,mask_epochs,train_images,wall_s,seed,projected\n",
    );
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{},{:.4},{:.4},{:.4},{},{},{},{:.1},{},{}\n",
            r.dataset,
            r.method,
            r.granularity,
            r.budget_arg,
            r.budget,
            r.kept,
            r.total,
            r.val_acc,
            r.test_acc,
            r.fixed_test_acc,
            r.fixed_images,
            r.float_acc_fixed_images,
            r.agreement,
            r.teacher_test_acc,
            r.epochs,
            r.mask_epochs,
            r.train_images,
            r.wall_s,
            r.seed,
            r.projected
        ));
    }
    crate::train::checkpoint::write_atomic(path, s.as_bytes())?;
    Ok(())
}

/// Runs `host-trainer sweep`.
pub fn run(a: SweepArgs) -> Result<()> {
    let start = Instant::now();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let tcfg = RunDir::new(&a.from).read_config()?;
    let dataset = tcfg.dataset.name().to_string();
    let mut rows = vec![];
    let mut allocs: Vec<(MethodName, Budget, LinearizeSummary)> = vec![];
    let mut failed = vec![];
    let names: Vec<&str> = a.methods.iter().map(MethodName::as_str).collect();
    a.run.method_flags.check_used_by(&names)?;
    for m in &a.methods {
        for &b in &a.budgets {
            let t = Instant::now();
            match cell(&a, m, b) {
                Ok((s, r)) => {
                    println!(
                        "{dataset} {m} {b}: {} ReLUs, val {:.2}%, test {:.2}%, pi-core {:.2}% ({:.0}s)",
                        r.relus_kept,
                        100.0 * s.val_acc,
                        100.0 * s.test_acc.unwrap_or(f64::NAN),
                        100.0 * r.fixed_acc,
                        t.elapsed().as_secs_f64()
                    );
                    rows.push(ResultRow {
                        dataset: dataset.clone(),
                        method: m.to_string(),
                        granularity: format!("{:?}", s.granularity).to_lowercase(),
                        budget_arg: b.to_string(),
                        budget: s.budget,
                        kept: r.relus_kept,
                        total: r.relus_total,
                        val_acc: s.val_acc,
                        test_acc: s.test_acc.unwrap_or(f64::NAN),
                        fixed_test_acc: r.fixed_acc,
                        fixed_images: r.images,
                        float_acc_fixed_images: r.float_acc.unwrap_or(f64::NAN),
                        agreement: r.agreement.unwrap_or(f64::NAN),
                        teacher_test_acc: s.teacher_test_acc.unwrap_or(f64::NAN),
                        epochs: s.mask_epochs + s.finetune_epochs,
                        mask_epochs: s.mask_epochs,
                        train_images: s.train_images,
                        wall_s: s.wall_s,
                        seed: s.seed,
                        projected: s.projected,
                    });
                    allocs.push((m.clone(), b, s));
                    write_csv(&a.out.join("results.csv"), &rows)?;
                }
                Err(e) => {
                    eprintln!("{dataset} {m} {b}: FAILED: {e:#}");
                    failed.push(format!("{m} {b}"));
                }
            }
        }
    }
    plots(&a, &dataset, &rows, &allocs)?;
    println!(
        "sweep done in {:.0}s: {} cells, results in {}{}",
        start.elapsed().as_secs_f64(),
        rows.len(),
        a.out.join("results.csv").display(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", failed.join(", "))
        }
    );
    Ok(())
}

fn plots(
    a: &SweepArgs,
    dataset: &str,
    rows: &[ResultRow],
    allocs: &[(MethodName, Budget, LinearizeSummary)],
) -> Result<()> {
    let series: Vec<Series> = a
        .methods
        .iter()
        .map(|m| Series {
            label: m.to_string(),
            points: rows
                .iter()
                .filter(|r| r.method == m.as_str())
                .map(|r| (r.kept.max(1) as f64, 100.0 * r.test_acc))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let teacher = rows.first().map(|r| 100.0 * r.teacher_test_acc);
    accuracy_vs_relus(
        &a.out.join("accuracy_vs_relus"),
        &format!("{dataset}: test accuracy vs kept ReLUs"),
        &series,
        teacher,
    )?;
    let which = a
        .allocation_budget
        .or_else(|| {
            a.budgets
                .iter()
                .copied()
                .find(|b| *b == Budget::Fraction(0.1))
        })
        .or_else(|| a.budgets.first().copied());
    if let Some(b) = which {
        let chosen: Vec<&LinearizeSummary> = allocs
            .iter()
            .filter(|(_, bb, _)| *bb == b)
            .map(|(_, _, s)| s)
            .collect();
        if let Some(first) = chosen.first() {
            let layers: Vec<String> = first.per_layer.iter().map(|l| l.name.clone()).collect();
            let methods: Vec<Allocation> = chosen
                .iter()
                .map(|s| Allocation {
                    label: format!("{} ({} ReLUs)", s.method, s.kept),
                    shares: s
                        .per_layer
                        .iter()
                        .map(|l| l.kept as f64 / l.total.max(1) as f64)
                        .collect(),
                })
                .collect();
            allocation(
                &a.out.join("allocation"),
                &format!("{dataset}: per-layer ReLU allocation at budget {b}"),
                &layers,
                &methods,
            )?;
        }
    }
    Ok(())
}
