//! The outcome of a linearization run: [`LinearizeSummary`] (`report.json`) and `report.md`.

use std::fmt::Write as _;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::config::{Granularity, LinearizeConfig, Preset};
use super::run::Run;
use crate::model::Net;
use crate::train::checkpoint;

/// Kept and total ReLUs of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerKept {
    /// Layer name.
    pub name: String,
    /// ReLUs of the layer.
    pub total: usize,
    /// ReLUs kept.
    pub kept: usize,
}

/// The outcome of a linearization run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizeSummary {
    /// Method.
    pub method: String,
    /// Preset the run's values started from.
    pub preset: Preset,
    /// Granularity.
    pub granularity: Granularity,
    /// Budget in ReLUs.
    pub budget: usize,
    /// ReLUs of the unlinearized model.
    pub total: usize,
    /// ReLUs kept by the final model (0 until the masks are final).
    pub kept: usize,
    /// Per-layer allocation of the final model.
    pub per_layer: Vec<LayerKept>,
    /// Validation accuracy of the teacher (same validation images).
    pub teacher_val_acc: f64,
    /// Validation accuracy of the selected model.
    pub val_acc: f64,
    /// Test accuracy of the selected model (when completed).
    pub test_acc: Option<f64>,
    /// Test accuracy of the teacher (when completed).
    pub teacher_test_acc: Option<f64>,
    /// Whether the run is complete.
    pub completed: bool,
    /// Mask-phase epochs run.
    pub mask_epochs: usize,
    /// Fine-tune epochs run.
    pub finetune_epochs: usize,
    /// Epoch of the selected model.
    pub selected_epoch: usize,
    /// Wall time of all calls so far, seconds.
    pub wall_s: f64,
    /// Seed.
    pub seed: u64,
    /// Training images used.
    pub train_images: usize,
    /// Whether the final masks were cut to the budget by top-k (the method ended off budget).
    pub projected: bool,
    /// What the method decided (allocations, cuts, Pareto points), for the report.
    pub notes: Vec<String>,
    /// Every effective setting of the run (recipe and the method's configuration).
    pub config: LinearizeConfig,
}

/// Kept ReLUs per layer of `net`.
pub fn per_layer(run: &Run, net: &Net) -> Vec<LayerKept> {
    net.relus
        .iter()
        .zip(&run.sites)
        .map(|(r, site)| LayerKept {
            name: site.name.clone(),
            total: site.shape.len(),
            kept: r.mask_values().iter().filter(|&&v| v == 1.0).count(),
        })
        .collect()
}

/// Writes `report.json` and `report.md`.
pub fn write_report(run: &Run, s: &LinearizeSummary) -> Result<()> {
    let json = serde_json::to_string_pretty(s)?;
    checkpoint::write_atomic(&run.dir.report_json(), json.as_bytes())?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Linearization report: {} ({:?}, preset {}) of {} on {}\n",
        s.method,
        s.granularity,
        s.preset.name(),
        run.spec.arch,
        run.tcfg.dataset.name()
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| teacher | {} |", run.cfg.from.display());
    let _ = writeln!(
        md,
        "| ReLUs kept / budget / total | {} / {} / {} |",
        s.kept, s.budget, s.total
    );
    let _ = writeln!(
        md,
        "| validation accuracy (selected, epoch {}) | {:.2}% (teacher {:.2}%) |",
        s.selected_epoch,
        100.0 * s.val_acc,
        100.0 * s.teacher_val_acc
    );
    if let (Some(t), Some(tt)) = (s.test_acc, s.teacher_test_acc) {
        let _ = writeln!(
            md,
            "| test accuracy | {:.2}% (teacher {:.2}%) |",
            100.0 * t,
            100.0 * tt
        );
    }
    let _ = writeln!(
        md,
        "| epochs | {} mask + {} fine-tune on {} images |",
        s.mask_epochs, s.finetune_epochs, s.train_images
    );
    let _ = writeln!(md, "| cut to the budget by top-k | {} |", s.projected);
    let _ = writeln!(md, "| wall time | {:.0} s |", s.wall_s);
    let _ = writeln!(md, "\n| layer | ReLUs | kept | share |\n|---|---|---|---|");
    for l in &s.per_layer {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}% |",
            l.name,
            l.total,
            l.kept,
            100.0 * l.kept as f64 / l.total.max(1) as f64
        );
    }
    if !s.notes.is_empty() {
        let _ = writeln!(md, "\nNotes:\n");
        for n in &s.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    let _ = writeln!(
        md,
        "\nEffective settings (preset `{}` plus the flags given):\n\n```json\n{}\n```",
        s.preset.name(),
        serde_json::to_string_pretty(&serde_json::json!({
            "recipe": s.config.recipe,
            s.method.clone(): s.config.method_config,
        }))?
    );
    checkpoint::write_atomic(&run.dir.report_md(), md.as_bytes())?;
    Ok(())
}
