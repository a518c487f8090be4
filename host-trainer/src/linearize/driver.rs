//! Drives a linearization run through its phases, checkpointing after each step so a run
//! resumes where it stopped:
//!
//! 1. **prepare**: the method's allocations and initial masks (the student starts as the
//!    teacher);
//! 2. **mask phase**: the method's epochs;
//! 3. **final masks**: binary and frozen; masks that end outside [97%, 100%] of the budget are
//!    cut to it by top-k of the method's scores when the recipe says so;
//! 4. **fine-tuning** with distillation and the frozen masks;
//! 5. **completion**: the selected model (best validation accuracy), its test accuracy, the
//!    report.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::budget;
use super::config::LinearizeConfig;
use super::masks::Student;
use super::methods::MethodRun;
use super::objective::{Frozen, Rates, train_epoch};
use super::report::{LinearizeSummary, per_layer, write_report};
use super::run::Run;
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::epoch::EpochStats;
use crate::train::evaluate::score;
use crate::train::{RunDir, RunOptions, run_dir, trim_metrics};

/// Files a linearization run writes before its first checkpoint.
const LINEARIZE_FILES: &[&str] = &["linearize.json", "train.log", "metrics.csv", "candidates"];

const METRICS_HEADER: &str = "epoch,phase,train_loss,train_acc,val_acc,relus,seconds";

/// The run's progress (saved in every checkpoint with the method's state).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    mask_epochs_done: usize,
    /// The method ended its mask phase early (SNL at its budget).
    mask_phase_over: bool,
    /// Masks are final (binary, frozen).
    finalized: bool,
    finetune_done: usize,
    /// Best validation accuracy of a selectable model so far (-1: none yet).
    best_val_acc: f64,
    best_epoch: usize,
    teacher_val_acc: f64,
    wall_s: f64,
    projected: bool,
    notes: Vec<String>,
    /// ReLUs the student keeps now.
    relus: usize,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    progress: Progress,
    method: serde_json::Value,
}

fn config_path(dir: &RunDir) -> std::path::PathBuf {
    dir.root.join("linearize.json")
}

/// Starts a linearization run in `out` (which must not hold anything but a run that never
/// reached its first checkpoint).
pub fn linearize(cfg: &LinearizeConfig, out: &Path, opts: &RunOptions) -> Result<LinearizeSummary> {
    let dir = RunDir::new(out);
    if cfg.recipe.batch_size < 2 {
        bail!("batch size must be >= 2 (BatchNorm needs two samples)");
    }
    cfg.method.entry().check(&cfg.method_config)?;
    // A budget the model cannot take is refused before anything is written.
    let teacher = RunDir::new(&cfg.from)
        .read_config()
        .with_context(|| format!("--from {}", cfg.from.display()))?;
    cfg.budget
        .resolve(run_dir::spec_of(&teacher)?.total_relus())?;
    dir.claim_for_new_run("linearize", LINEARIZE_FILES, |d| read_config(d).map(drop))?;
    checkpoint::write_atomic(
        &config_path(&dir),
        serde_json::to_string_pretty(cfg)?.as_bytes(),
    )?;
    drive(cfg, &dir, false, opts)
}

fn read_config(dir: &RunDir) -> Result<LinearizeConfig> {
    let text = std::fs::read_to_string(config_path(dir)).with_context(|| {
        format!(
            "{} is not a linearization run (no linearize.json)",
            dir.root.display()
        )
    })?;
    serde_json::from_str(&text).context("invalid linearize.json")
}

/// Continues the linearization run in `out` from its last checkpoint.
pub fn resume(out: &Path, opts: &RunOptions) -> Result<LinearizeSummary> {
    let dir = RunDir::new(out);
    let cfg = read_config(&dir)?;
    drive(&cfg, &dir, true, opts)
}

/// Reads a completed run's summary (`report.json`), if any.
pub fn read_summary(out: &Path) -> Option<LinearizeSummary> {
    let text = std::fs::read_to_string(RunDir::new(out).report_json()).ok()?;
    serde_json::from_str(&text).ok()
}

fn phase_optimizer(run: &Run, finalized: bool) -> ModuleOptimizer {
    let r = &run.cfg.recipe;
    if finalized {
        r.finetune_optimizer.build()
    } else {
        r.mask_optimizer.build()
    }
}

fn save(
    run: &Run,
    p: &mut Progress,
    method: &dyn MethodRun,
    s: &Student,
    optim: &ModuleOptimizer,
) -> Result<()> {
    p.notes.clone_from(&run.notes);
    let saved = Saved {
        progress: p.clone(),
        method: method.state()?,
    };
    Checkpoint::capture(saved, s, optim)?.save(&run.dir.checkpoint())?;
    Ok(())
}

fn metrics_row(run: &Run, epoch: usize, phase: &str, e: &EpochStats, val: f64, relus: usize) {
    let line = format!(
        "{epoch},{phase},{:.5},{:.5},{:.5},{relus},{:.2}\n",
        e.loss, e.acc, val, e.secs
    );
    // Metrics are a convenience; a failed append must not lose the run.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.dir.metrics())
    {
        let _ = f.write_all(line.as_bytes());
    }
}

fn write_best(run: &Run, s: &Student) -> Result<()> {
    checkpoint::write_atomic(&run.dir.best(), &run_dir::model_bytes(&s.net)?)?;
    Ok(())
}

fn drive(
    cfg: &LinearizeConfig,
    dir: &RunDir,
    resuming: bool,
    opts: &RunOptions,
) -> Result<LinearizeSummary> {
    let mut tick = Instant::now();
    let mut run = Run::open(cfg, dir, opts.quiet)?;
    let entry = cfg.method.entry();
    run.log.line(&format!(
        "linearize {} (preset {}, {:?}) of {} on {}: budget {} ReLUs of {} ({:.2}%), {} train / {} val images{}",
        cfg.method,
        cfg.preset.name(),
        cfg.granularity,
        run.spec.arch,
        run.tcfg.dataset.name(),
        run.budget,
        run.total,
        100.0 * run.budget as f64 / run.total as f64,
        run.train.len(),
        run.val.len(),
        if run.tcfg.augment { ", augmented as the teacher was" } else { "" }
    ));
    let checkpoint = if resuming && dir.checkpoint().exists() {
        Some(Checkpoint::<Saved>::load(&dir.checkpoint())?)
    } else {
        None
    };
    let (mut method, mut s, mut p, mut optim) = match checkpoint {
        Some(c) => {
            let method = entry.bind(&cfg.method_config, Some(&c.state.method))?;
            let s = c
                .restore_model(run.empty_student())
                .context("the checkpoint does not fit this run")?;
            let p = c.state.progress.clone();
            let optim = c.restore_optimizer(phase_optimizer(&run, p.finalized))?;
            run.notes.clone_from(&p.notes);
            trim_metrics(&dir.metrics(), p.epochs_done)?;
            run.log.line(&format!(
                "resumed after epoch {} ({})",
                p.epochs_done,
                if p.finalized {
                    "fine-tuning"
                } else {
                    "mask phase"
                }
            ));
            (method, s, p, optim)
        }
        None => {
            std::fs::write(dir.metrics(), format!("{METRICS_HEADER}\n"))?;
            let s = run.student_from_teacher()?;
            let mut p = Progress {
                teacher_val_acc: run.val_acc(&s.net, None),
                best_val_acc: -1.0,
                relus: run.total,
                ..Default::default()
            };
            run.log.line(&format!(
                "teacher validation accuracy {:.2}%",
                100.0 * p.teacher_val_acc
            ));
            let mut method = entry.bind(&cfg.method_config, None)?;
            let s = method.prepare(&mut run, s)?;
            p.relus = method.live_relus(&run, &s);
            let optim = phase_optimizer(&run, false);
            save(&run, &mut p, method.as_ref(), &s, &optim)?;
            (method, s, p, optim)
        }
    };
    let stop_at = opts.stop_after_epochs.unwrap_or(usize::MAX);
    let mut add_wall = |p: &mut Progress| {
        p.wall_s += tick.elapsed().as_secs_f64();
        tick = Instant::now();
    };

    // Mask phase.
    let mask_epochs = method.mask_epochs(&run);
    while !p.finalized
        && !p.mask_phase_over
        && p.mask_epochs_done < mask_epochs
        && p.epochs_done < stop_at
    {
        let epoch = p.epochs_done + 1;
        let (s2, e) = method.mask_epoch(&mut run, s, &mut optim, epoch)?;
        s = s2;
        p.mask_epochs_done += 1;
        p.mask_phase_over = method.mask_phase_done();
        p.relus = method.live_relus(&run, &s);
        let eval_masks = method.eval_masks(&run, &s);
        let v = run.val_acc(&s.net, eval_masks.clone());
        let mut selected = false;
        if method.selectable(&run, &s) && v >= p.best_val_acc {
            // The model as evaluated: the net with the epoch's (binary) masks written in.
            let net = match eval_masks {
                Some(m) => {
                    let bits: Vec<Vec<bool>> = m
                        .into_iter()
                        .map(|t| {
                            crate::model::to_f32_vec(t)
                                .iter()
                                .map(|&x| x > 0.5)
                                .collect()
                        })
                        .collect();
                    run.with_binary_masks(s.net.clone(), &bits)
                }
                None => s.net.clone(),
            };
            checkpoint::write_atomic(&run.dir.best(), &run_dir::model_bytes(&net)?)?;
            (p.best_val_acc, p.best_epoch, selected) = (v, epoch, true);
        }
        metrics_row(&run, epoch, "mask", &e, v, p.relus);
        run.log.line(&format!(
            "epoch {epoch} (mask {}/{mask_epochs}): loss {:.4} acc {:.2}% | val {:.2}%{} | ReLUs {} (budget {}) {}| {:.1}s{}",
            p.mask_epochs_done,
            e.loss,
            100.0 * e.acc,
            100.0 * v,
            if selected { " *" } else { "" },
            p.relus,
            run.budget,
            method.status(),
            e.secs,
            if p.mask_phase_over { " | mask phase done" } else { "" }
        ));
        p.epochs_done = epoch;
        add_wall(&mut p);
        save(&run, &mut p, method.as_ref(), &s, &optim)?;
    }
    if p.epochs_done >= stop_at && !p.finalized {
        return Ok(summary_of(&run, &p, &s, None));
    }

    // Final binary masks.
    if !p.finalized {
        let (s2, fin) = method.finalize(&mut run, s)?;
        s = s2;
        let got = run.kept(&fin.masks);
        let floor = budget::floor_of(run.budget);
        let masks = if (got > run.budget || got < floor) && cfg.recipe.cut_to_budget {
            let cut = budget::topk_global(&fin.scores, &run.costs(), run.budget);
            let note = format!(
                "{} ended with {got} ReLUs, outside [{floor}, {}]: cut to the budget by top-k of its own scores, {} kept",
                cfg.method,
                run.budget,
                run.kept(&cut)
            );
            run.record(note);
            p.projected = true;
            if run.kept(&cut) < floor {
                // Whole channels of H·W ReLUs cannot always add up to within 3% of the budget.
                let note = format!(
                    "the budget is not reachable within 97% with {:?} units: {} ReLUs kept",
                    cfg.granularity,
                    run.kept(&cut)
                );
                run.record(note);
            }
            cut
        } else {
            if got > run.budget || got < floor {
                let note = format!(
                    "{} ended with {got} ReLUs, outside [{floor}, {}]; kept as is (the recipe does not cut to the budget)",
                    cfg.method, run.budget
                );
                run.record(note);
            }
            fin.masks
        };
        p.relus = run.kept(&masks);
        s.net = run.with_binary_masks(s.net, &masks);
        p.finalized = true;
        optim = phase_optimizer(&run, true);
        let v = run.val_acc(&s.net, None);
        run.log.line(&format!(
            "masks frozen: {} ReLUs kept (budget {}), validation {:.2}% before fine-tuning",
            p.relus,
            run.budget,
            100.0 * v
        ));
        if v >= p.best_val_acc {
            (p.best_val_acc, p.best_epoch) = (v, p.epochs_done);
            write_best(&run, &s)?;
        }
        add_wall(&mut p);
        save(&run, &mut p, method.as_ref(), &s, &optim)?;
    }

    // Frozen-mask fine-tuning. A method whose mask phase is shorter by design fine-tunes for
    // the remaining epochs, so every method trains as many epochs.
    let weights = method.finetune_losses(&run);
    let ft_epochs = cfg.recipe.finetune_epochs + cfg.recipe.mask_epochs.saturating_sub(mask_epochs);
    while p.finetune_done < ft_epochs && p.epochs_done < stop_at {
        let epoch = p.epochs_done + 1;
        let rates = Rates::finetune(&run, p.finetune_done, ft_epochs);
        let (s2, e) = train_epoch(&run, s, &mut optim, epoch, rates, &weights, &mut Frozen)?;
        s = s2;
        p.finetune_done += 1;
        let v = run.val_acc(&s.net, None);
        metrics_row(&run, epoch, "finetune", &e, v, p.relus);
        let improved = v >= p.best_val_acc;
        if improved {
            (p.best_val_acc, p.best_epoch) = (v, epoch);
            write_best(&run, &s)?;
        }
        run.log.line(&format!(
            "epoch {epoch} (fine-tune {}/{ft_epochs}): loss {:.4} acc {:.2}% | val {:.2}%{} | ReLUs {} | {:.1}s",
            p.finetune_done,
            e.loss,
            100.0 * e.acc,
            100.0 * v,
            if improved { " *" } else { "" },
            p.relus,
            e.secs
        ));
        p.epochs_done = epoch;
        add_wall(&mut p);
        save(&run, &mut p, method.as_ref(), &s, &optim)?;
    }
    if p.finetune_done < ft_epochs {
        run.log.line(&format!(
            "stopped after epoch {}; continue with --resume",
            p.epochs_done
        ));
        return Ok(summary_of(&run, &p, &s, None));
    }
    drop(optim);

    // Complete: the selected model, the teacher's config (export/eval read it), the report.
    let best = std::fs::read(dir.best()).context("reading best.bpk")?;
    checkpoint::write_atomic(&dir.model(), &best)?;
    checkpoint::write_atomic(
        &dir.config(),
        serde_json::to_string_pretty(&run.tcfg)?.as_bytes(),
    )?;
    let selected = run_dir::model_from_bytes(&run.spec, best, &run.plain)?.valid();
    let norm = run.tcfg.normalization.clone();
    let test = score(&selected, &run.test, &norm, &run.plain, 256).acc;
    let teacher_test = score(&run.teacher, &run.test, &norm, &run.plain, 256).acc;
    add_wall(&mut p);
    let mut sum = summary_of(&run, &p, &s, Some((test, teacher_test)));
    sum.per_layer = per_layer(&run, &selected);
    sum.kept = sum.per_layer.iter().map(|l| l.kept).sum();
    sum.completed = true;
    run.log.line(&format!(
        "done: {} ReLUs of {} kept (budget {}), val {:.2}% (teacher {:.2}%), test {:.2}% (teacher {:.2}%), {:.0}s",
        sum.kept,
        sum.total,
        sum.budget,
        100.0 * sum.val_acc,
        100.0 * sum.teacher_val_acc,
        100.0 * test,
        100.0 * teacher_test,
        sum.wall_s
    ));
    write_report(&run, &sum)?;
    Ok(sum)
}

fn summary_of(run: &Run, p: &Progress, s: &Student, test: Option<(f64, f64)>) -> LinearizeSummary {
    let per_layer = if p.finalized {
        per_layer(run, &s.net)
    } else {
        vec![]
    };
    LinearizeSummary {
        method: run.cfg.method.to_string(),
        preset: run.cfg.preset,
        granularity: run.cfg.granularity,
        budget: run.budget,
        total: run.total,
        kept: per_layer.iter().map(|l| l.kept).sum(),
        per_layer,
        teacher_val_acc: p.teacher_val_acc,
        val_acc: p.best_val_acc,
        test_acc: test.map(|t| t.0),
        teacher_test_acc: test.map(|t| t.1),
        completed: false,
        mask_epochs: p.mask_epochs_done,
        finetune_epochs: p.finetune_done,
        selected_epoch: p.best_epoch,
        wall_s: p.wall_s,
        seed: run.cfg.seed,
        train_images: run.train.len(),
        projected: p.projected,
        notes: run.notes.clone(),
        config: run.cfg.clone(),
    }
}
