//! `host-trainer sweep`: methods × budgets × seeds from one teacher run, then `results.csv` and
//! plots. Each cell is its own linearization run folder (`DIR/METHOD/BUDGET`, with `-sN` for
//! seeds other than 1); a finished cell is read back and an unfinished one resumed, so a sweep
//! continues where it stopped.
//!
//! Sweeps that outgrow one machine split into three steps:
//!
//! 1. `sweep --plan DIR ...` resolves every cell's configuration into `DIR/sweep.json` and writes
//!    `DIR/commands.txt`, one resumable command per cell (`host-trainer sweep --out DIR --cell
//!    ID`), for GNU parallel or any job runner; `--emit slurm` also writes `DIR/sweep.sbatch`, a
//!    job array over those lines.
//! 2. Each command runs (or resumes, or skips) its cell and writes only inside its cell folder,
//!    so cells can run anywhere that sees `DIR` and the teacher.
//! 3. `sweep --collect DIR` merges the finished cells into `results.csv` and the plots and names
//!    the missing ones (also in `DIR/missing.txt`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::eval::EvalReport;
use crate::linearize::args::{EVAL_FILE, RunArgs, export_and_eval};
use crate::linearize::latency::Deployment;
use crate::linearize::{Budget, LinearizeConfig, LinearizeSummary, MethodName, read_summary};
use crate::plot::{Allocation, Series, accuracy_vs_latency, accuracy_vs_relus, allocation};
use crate::train::checkpoint::write_atomic;
use crate::train::{RunDir, RunOptions};

/// Job list formats of `--plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// `commands.txt` only (one command per line: `parallel < commands.txt`).
    List,
    /// `commands.txt` and a Slurm job-array script `sweep.sbatch`.
    Slurm,
}

/// `host-trainer sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Run folder of the trained all-ReLU model (the teacher).
    #[arg(long)]
    pub from: Option<PathBuf>,
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
    /// Seeds, comma-separated (default: --seed).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Sweep folder: run every cell here, then collect.
    #[arg(long, conflicts_with_all = ["plan", "collect"])]
    pub out: Option<PathBuf>,
    /// Only write the plan into this sweep folder: sweep.json and commands.txt (one resumable
    /// command per cell).
    #[arg(long, conflicts_with = "collect")]
    pub plan: Option<PathBuf>,
    /// With --plan: also write a Slurm job array (`slurm`).
    #[arg(long, value_enum, default_value = "list", requires = "plan")]
    pub emit: Emit,
    /// With --plan: the host-trainer binary the commands call (default: this one).
    #[arg(long, requires = "plan")]
    pub binary: Option<PathBuf>,
    /// Run one cell of the plan in --out (an id from commands.txt, e.g. `snl/10pct`).
    #[arg(long, requires = "out")]
    pub cell: Option<String>,
    /// Merge the finished cells of this sweep folder into results.csv and plots; name the
    /// missing ones.
    #[arg(long)]
    pub collect: Option<PathBuf>,
    /// Evaluate the fixed-point models on only the first N test images.
    #[arg(long)]
    pub fixed_limit: Option<usize>,
    /// Budget of the per-layer allocation plot (default: 10%, or the first budget).
    #[arg(long)]
    pub allocation_budget: Option<Budget>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// The deployment each model is priced on (results.csv's `device_latency_s` and
    /// `client_bytes`, the accuracy-vs-latency plot).
    #[command(flatten)]
    pub deployment: Deployment,
    /// Preset, data, recipe and method settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// One planned cell: its id (its folder relative to the sweep folder) and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCell {
    /// `METHOD/BUDGET` or `METHOD/BUDGET-sSEED`.
    pub id: String,
    /// The budget as given.
    pub budget_arg: String,
    /// The full configuration of the run.
    pub config: LinearizeConfig,
}

/// A sweep's definition (`sweep.json`): every cell resolved, plus evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// The cells, in table order (methods, then budgets, then seeds).
    pub cells: Vec<PlannedCell>,
    /// Fixed-point evaluation on the first N test images.
    pub fixed_limit: Option<usize>,
    /// Budget of the allocation plot.
    pub allocation_budget: Option<String>,
    /// The deployment models are priced on (plans written before it existed get the default).
    #[serde(default)]
    pub deployment: Deployment,
}

/// One row of `results.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Dataset.
    pub dataset: String,
    /// Method.
    pub method: String,
    /// Preset the cell's settings started from.
    pub preset: String,
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
    /// Whether the final masks were cut to the budget by top-k.
    pub projected: bool,
    /// Estimated end-to-end latency of one private inference of the exported model on the
    /// plan's deployment (pi-core cost model), seconds.
    pub device_latency_s: f64,
    /// Bytes the client sends and receives per private inference (online, streamed material
    /// included) on that deployment.
    pub client_bytes: u64,
}

const CSV_HEADER: &str = "dataset,method,preset,granularity,budget_arg,budget,kept,total,val_acc,test_acc,fixed_test_acc,fixed_images,float_acc_fixed_images,agreement,teacher_test_acc,epochs,mask_epochs,train_images,wall_s,seed,projected,device_latency_s,client_bytes";

fn budget_label(b: Budget) -> String {
    match b {
        Budget::Absolute(n) => n.to_string(),
        Budget::Fraction(f) => format!("{}pct", 100.0 * f),
    }
}

fn plan_path(dir: &Path) -> PathBuf {
    dir.join("sweep.json")
}

/// Resolves every cell of `a` (teacher `from`).
fn make_plan(a: &SweepArgs, from: &Path) -> Result<SweepPlan> {
    let names: Vec<&str> = a.methods.iter().map(MethodName::as_str).collect();
    a.run.method_flags.check_used_by(&names)?;
    let seeds = if a.seeds.is_empty() {
        vec![a.run.seed]
    } else {
        a.seeds.clone()
    };
    let mut cells = vec![];
    for m in &a.methods {
        for &b in &a.budgets {
            for &seed in &seeds {
                let suffix = if seed == 1 {
                    String::new()
                } else {
                    format!("-s{seed}")
                };
                cells.push(PlannedCell {
                    id: format!("{m}/{}{suffix}", budget_label(b)),
                    budget_arg: b.to_string(),
                    config: a.run.config(m, b, from, seed)?,
                });
            }
        }
    }
    a.deployment.cost_model()?;
    Ok(SweepPlan {
        cells,
        fixed_limit: a.fixed_limit,
        allocation_budget: a.allocation_budget.map(|b| b.to_string()),
        deployment: a.deployment.clone(),
    })
}

/// Reads a sweep folder's plan.
pub fn read_plan(dir: &Path) -> Result<SweepPlan> {
    let text = std::fs::read_to_string(plan_path(dir)).with_context(|| {
        format!(
            "{} is not a sweep folder (no sweep.json; write one with `sweep --plan`)",
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid sweep.json", dir.display()))
}

/// Writes `plan` into `dir`; a plan already there must be the same (a sweep folder holds one
/// sweep).
pub fn write_plan(dir: &Path, plan: &SweepPlan) -> Result<()> {
    if plan_path(dir).exists() {
        let old = read_plan(dir)?;
        if &old != plan {
            bail!(
                "{} already holds a different sweep (sweep.json); choose another folder",
                dir.display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(
        &plan_path(dir),
        serde_json::to_string_pretty(plan)?.as_bytes(),
    )?;
    Ok(())
}

/// Quotes `s` for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:%,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command lines of `plan` (one per cell) for the binary `bin`.
pub fn commands(plan: &SweepPlan, dir: &Path, bin: &Path) -> Vec<String> {
    plan.cells
        .iter()
        .map(|c| {
            format!(
                "{} sweep --out {} --cell {} --quiet",
                shell_quote(&bin.display().to_string()),
                shell_quote(&dir.display().to_string()),
                shell_quote(&c.id)
            )
        })
        .collect()
}

/// Writes `commands.txt` (and `sweep.sbatch` for [`Emit::Slurm`]) into `dir`.
pub fn write_jobs(plan: &SweepPlan, dir: &Path, bin: &Path, emit: Emit) -> Result<()> {
    let lines = commands(plan, dir, bin);
    let mut text = lines.join("\n");
    text.push('\n');
    write_atomic(&dir.join("commands.txt"), text.as_bytes())?;
    if emit == Emit::Slurm {
        let mut s = String::new();
        let _ = writeln!(s, "#!/bin/bash");
        let _ = writeln!(
            s,
            "# One linearization cell per array task; every command resumes its cell or skips it when done."
        );
        let _ = writeln!(
            s,
            "# Submit from the folder the paths are relative to: sbatch {}",
            dir.join("sweep.sbatch").display()
        );
        let _ = writeln!(s, "#SBATCH --job-name=pi-sweep");
        let _ = writeln!(s, "#SBATCH --array=1-{}", lines.len());
        let _ = writeln!(s, "#SBATCH --cpus-per-task=4");
        let _ = writeln!(s, "#SBATCH --output={}/logs/%A_%a.out", dir.display());
        let _ = writeln!(s, "set -euo pipefail");
        let _ = writeln!(s, "cd \"${{SLURM_SUBMIT_DIR:-.}}\"");
        let _ = writeln!(
            s,
            "mkdir -p {}/logs",
            shell_quote(&dir.display().to_string())
        );
        let _ = writeln!(
            s,
            "eval \"$(sed -n \"${{SLURM_ARRAY_TASK_ID}}p\" {})\"",
            shell_quote(&dir.join("commands.txt").display().to_string())
        );
        write_atomic(&dir.join("sweep.sbatch"), s.as_bytes())?;
    }
    Ok(())
}

/// Runs (or resumes, or reads back) the cell `id` of the sweep in `dir`, then exports and
/// evaluates it through pi-core (once: `eval.json`).
pub fn run_cell(dir: &Path, id: &str, quiet: bool) -> Result<(LinearizeSummary, EvalReport)> {
    let plan = read_plan(dir)?;
    let cell = plan.cells.iter().find(|c| c.id == id).with_context(|| {
        format!(
            "no cell `{id}` in {}: the cells are {}",
            plan_path(dir).display(),
            plan.cells
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let out = dir.join(&cell.id);
    let opts = RunOptions {
        quiet,
        stop_after_epochs: None,
    };
    let s = match read_summary(&out) {
        Some(s) if s.completed => s,
        _ if RunDir::new(&out).checkpoint().exists() => crate::linearize::resume(&out, &opts)?,
        _ => crate::linearize::linearize(&cell.config, &out, &opts)?,
    };
    let r = match std::fs::read_to_string(out.join(EVAL_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<EvalReport>(&t).ok())
    {
        Some(r) => r,
        None => export_and_eval(&out, plan.fixed_limit)?,
    };
    Ok((s, r))
}

/// What `--collect` found.
#[derive(Debug, Clone)]
pub struct Collected {
    /// Finished cells, in plan order.
    pub rows: Vec<ResultRow>,
    /// Ids of the cells that are not finished (not started, running, interrupted or failed).
    pub missing: Vec<String>,
}

fn row_of(
    dataset: &str,
    cell: &PlannedCell,
    s: &LinearizeSummary,
    r: &EvalReport,
    priced: (f64, u64),
) -> ResultRow {
    ResultRow {
        dataset: dataset.to_string(),
        method: s.method.clone(),
        preset: s.preset.name().to_string(),
        granularity: format!("{:?}", s.granularity).to_lowercase(),
        budget_arg: cell.budget_arg.clone(),
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
        device_latency_s: priced.0,
        client_bytes: priced.1,
    }
}

/// Merges the finished cells of the sweep in `dir` into `results.csv` and the plots, and lists
/// the missing ones in `missing.txt`. Reads only; evaluates nothing.
pub fn collect(dir: &Path) -> Result<Collected> {
    let plan = read_plan(dir)?;
    let mut rows = vec![];
    let mut summaries = vec![];
    let mut missing = vec![];
    for cell in &plan.cells {
        let out = dir.join(&cell.id);
        let eval = std::fs::read_to_string(out.join(EVAL_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<EvalReport>(&t).ok());
        match (read_summary(&out), eval) {
            (Some(s), Some(r)) if s.completed => {
                let dataset = RunDir::new(&out)
                    .read_config()
                    .map(|c| c.dataset.name().to_string())
                    .unwrap_or_default();
                // A cell whose model file is gone still reports its accuracy.
                let priced = plan
                    .deployment
                    .price(&out.join("model.pic"))
                    .map(|(us, bytes)| (us as f64 / 1e6, bytes))
                    .unwrap_or((f64::NAN, 0));
                rows.push(row_of(&dataset, cell, &s, &r, priced));
                summaries.push((cell.clone(), s));
            }
            _ => missing.push(cell.id.clone()),
        }
    }
    let mut csv = format!("{CSV_HEADER}\n");
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{},{:.4},{:.4},{:.4},{},{},{},{:.1},{},{},{:.4},{}",
            r.dataset,
            r.method,
            r.preset,
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
            r.projected,
            r.device_latency_s,
            r.client_bytes
        );
    }
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    let mut m = missing.join("\n");
    if !m.is_empty() {
        m.push('\n');
    }
    write_atomic(&dir.join("missing.txt"), m.as_bytes())?;
    plots(dir, &plan, &rows, &summaries)?;
    Ok(Collected { rows, missing })
}

/// Runs `host-trainer sweep`.
pub fn run(a: SweepArgs) -> Result<()> {
    if let Some(dir) = &a.collect {
        return report_collect(dir);
    }
    if let Some(dir) = &a.plan {
        let from = a
            .from
            .as_ref()
            .context("--plan needs --from (the teacher)")?;
        let plan = make_plan(&a, from)?;
        write_plan(dir, &plan)?;
        let bin = match &a.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().context("the path of this binary (give --binary)")?,
        };
        write_jobs(&plan, dir, &bin, a.emit)?;
        println!(
            "planned {} cells in {}: {} (then `host-trainer sweep --collect {}`)",
            plan.cells.len(),
            dir.display(),
            match a.emit {
                Emit::List => format!("run the lines of {}", dir.join("commands.txt").display()),
                Emit::Slurm => format!("sbatch {}", dir.join("sweep.sbatch").display()),
            },
            dir.display()
        );
        return Ok(());
    }
    let Some(dir) = &a.out else {
        bail!("give --out DIR (run here), --plan DIR, --collect DIR, or --out DIR --cell ID");
    };
    if let Some(id) = &a.cell {
        if a.from.is_some() {
            bail!(
                "--cell runs a planned cell: its settings are in {}",
                plan_path(dir).display()
            );
        }
        let t = Instant::now();
        let (s, r) = run_cell(dir, id, a.quiet)?;
        println!(
            "{id}: {} ReLUs, val {:.2}%, test {:.2}%, pi-core {:.2}% ({:.0}s)",
            r.relus_kept,
            100.0 * s.val_acc,
            100.0 * s.test_acc.unwrap_or(f64::NAN),
            100.0 * r.fixed_acc,
            t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let from = a
        .from
        .as_ref()
        .context("a sweep needs --from (the teacher)")?;
    let start = Instant::now();
    let plan = make_plan(&a, from)?;
    write_plan(dir, &plan)?;
    let mut failed = vec![];
    for cell in &plan.cells {
        let t = Instant::now();
        match run_cell(dir, &cell.id, a.quiet) {
            Ok((s, r)) => println!(
                "{}: {} ReLUs, val {:.2}%, test {:.2}%, pi-core {:.2}% ({:.0}s)",
                cell.id,
                r.relus_kept,
                100.0 * s.val_acc,
                100.0 * s.test_acc.unwrap_or(f64::NAN),
                100.0 * r.fixed_acc,
                t.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("{}: FAILED: {e:#}", cell.id);
                failed.push(cell.id.clone());
            }
        }
    }
    report_collect(dir)?;
    println!("sweep done in {:.0}s", start.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("{} cells failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn report_collect(dir: &Path) -> Result<()> {
    let c = collect(dir)?;
    println!(
        "{} finished cells in {}{}",
        c.rows.len(),
        dir.join("results.csv").display(),
        if c.missing.is_empty() {
            "; none missing".to_string()
        } else {
            format!("; missing ({}): {}", c.missing.len(), c.missing.join(", "))
        }
    );
    Ok(())
}

fn plots(
    dir: &Path,
    plan: &SweepPlan,
    rows: &[ResultRow],
    summaries: &[(PlannedCell, LinearizeSummary)],
) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let mut methods: Vec<&str> = vec![];
    for c in &plan.cells {
        if !methods.contains(&c.config.method.as_str()) {
            methods.push(c.config.method.as_str());
        }
    }
    let series: Vec<Series> = methods
        .iter()
        .map(|m| Series {
            label: m.to_string(),
            points: rows
                .iter()
                .filter(|r| r.method == *m)
                .map(|r| (r.kept.max(1) as f64, 100.0 * r.test_acc))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    accuracy_vs_relus(
        &dir.join("accuracy_vs_relus"),
        &format!(
            "{} (preset {}): test accuracy vs kept ReLUs",
            first.dataset, first.preset
        ),
        &series,
        Some(100.0 * first.teacher_test_acc),
    )?;
    let latency: Vec<Series> = methods
        .iter()
        .map(|m| Series {
            label: m.to_string(),
            points: rows
                .iter()
                .filter(|r| r.method == *m && r.device_latency_s.is_finite())
                .map(|r| (r.device_latency_s, 100.0 * r.test_acc))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if !latency.is_empty() {
        accuracy_vs_latency(
            &dir.join("accuracy_vs_latency"),
            &format!(
                "{} (preset {}): test accuracy vs latency, {}",
                first.dataset,
                first.preset,
                plan.deployment.describe()
            ),
            &latency,
        )?;
    }
    let budgets: Vec<&str> = plan.cells.iter().map(|c| c.budget_arg.as_str()).collect();
    let which = plan
        .allocation_budget
        .as_deref()
        .or_else(|| budgets.iter().copied().find(|b| *b == "10%"))
        .or_else(|| budgets.first().copied());
    let Some(b) = which else {
        return Ok(());
    };
    // One bar group per method: its first seed at that budget.
    let mut chosen: Vec<&LinearizeSummary> = vec![];
    for (cell, s) in summaries.iter().filter(|(c, _)| c.budget_arg == b) {
        if !chosen
            .iter()
            .any(|c| c.method == cell.config.method.as_str())
        {
            chosen.push(s);
        }
    }
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
            &dir.join("allocation"),
            &format!(
                "{}: per-layer ReLU allocation at budget {b}",
                rows[0].dataset
            ),
            &layers,
            &methods,
        )?;
    }
    Ok(())
}
