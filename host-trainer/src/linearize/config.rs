//! What determines a linearization run (`linearize.json`): the method and its own
//! configuration, the budget, the teacher, the data and the training [`Recipe`] shared by every
//! method (schedule, optimizers, distillation temperature).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::methods::{self, MethodName};
use crate::train::OptimizerKind;

/// A set of defaults for a method's recipe and configuration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Short schedules tuned for CPU runs of a few epochs (the default; the demo and CI use it).
    #[default]
    Fast,
    /// The published recipe: the paper's or its official code's values, each cited in the
    /// method's file.
    Paper,
}

impl Preset {
    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Paper => "paper",
        }
    }
}

/// Mask granularity: one mask value per activation element, or per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// One mask bit per element (C·H·W per layer).
    #[default]
    Element,
    /// One mask bit per channel (H·W ReLUs each).
    Channel,
}

/// How the learning rate moves over the mask phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// Constant.
    Constant,
    /// Cosine from the peak to `floor` over the phase (per step).
    Cosine {
        /// Learning rate at the end of the phase.
        floor: f64,
    },
}

impl LrSchedule {
    /// The learning rate at progress `t` in `[0, 1]` of a phase that starts at `peak`.
    pub fn at(self, peak: f64, t: f64) -> f64 {
        match self {
            Self::Constant => peak,
            Self::Cosine { floor } => {
                floor
                    + 0.5
                        * (peak - floor)
                        * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos())
            }
        }
    }
}

/// An optimizer and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSpec {
    /// SGD (momentum, no dampening) or Adam.
    pub kind: OptimizerKind,
    /// SGD momentum (unused by Adam).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
}

impl OptimizerSpec {
    /// Adam without weight decay.
    pub const ADAM: Self = Self {
        kind: OptimizerKind::Adam,
        momentum: 0.0,
        weight_decay: 0.0,
    };

    /// SGD with momentum and weight decay.
    pub const fn sgd(momentum: f64, weight_decay: f64) -> Self {
        Self {
            kind: OptimizerKind::Sgd,
            momentum,
            weight_decay,
        }
    }

    /// A fresh optimizer of this kind.
    pub fn build(&self) -> burn::optim::ModuleOptimizer {
        crate::train::make_optimizer(self.kind, self.momentum, self.weight_decay)
    }
}

/// The training recipe every method shares: a mask phase, then frozen-mask fine-tuning with
/// distillation from the all-ReLU teacher. Each method's preset fills it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs of the mask phase (a method may stop earlier, e.g. SNL at its budget).
    pub mask_epochs: usize,
    /// Peak learning rate of the weights in the mask phase.
    pub lr: f64,
    /// Peak learning rate of the mask parameters (their own parameter group).
    pub mask_lr: f64,
    /// Learning-rate schedule of the mask phase (both groups).
    pub mask_schedule: LrSchedule,
    /// Optimizer of the mask phase.
    pub mask_optimizer: OptimizerSpec,
    /// Epochs of frozen-mask fine-tuning.
    pub finetune_epochs: usize,
    /// Peak learning rate of fine-tuning (cosine to 0 over the fine-tune epochs).
    pub finetune_lr: f64,
    /// Optimizer of fine-tuning.
    pub finetune_optimizer: OptimizerSpec,
    /// Distillation temperature `T` of the KD term.
    pub temperature: f64,
    /// When the method's final masks keep more than the budget or less than 97% of it, cut them
    /// to the budget by top-k of the method's own scores (reported as "projected").
    pub cut_to_budget: bool,
}

impl Recipe {
    /// The short CPU schedule most methods share under [`Preset::Fast`]: Adam, batch 64,
    /// 2 mask + 2 fine-tune epochs, weights at 1e-3 (constant in the mask phase, cosine in
    /// fine-tuning), masks at 2e-2, KD at T = 4, cut to the budget.
    pub fn fast() -> Self {
        Self {
            batch_size: 64,
            mask_epochs: 2,
            lr: 1e-3,
            mask_lr: 2e-2,
            mask_schedule: LrSchedule::Constant,
            mask_optimizer: OptimizerSpec::ADAM,
            finetune_epochs: 2,
            finetune_lr: 1e-3,
            finetune_optimizer: OptimizerSpec::ADAM,
            temperature: 4.0,
            cut_to_budget: true,
        }
    }
}

impl Recipe {
    /// One line: batch, mask phase, fine-tuning, temperature, cut.
    pub fn summary(&self) -> String {
        let opt = |o: &OptimizerSpec| match o.kind {
            OptimizerKind::Adam => "Adam".to_string(),
            OptimizerKind::Sgd => format!("SGD m{} wd{}", o.momentum, o.weight_decay),
        };
        let sched = match self.mask_schedule {
            LrSchedule::Constant => "constant".to_string(),
            LrSchedule::Cosine { floor } => format!("cosine to {floor:e}"),
        };
        format!(
            "batch {}; mask phase {} ep, {} lr {:e} (masks {:e}), {sched}; fine-tune {} ep, {} lr {:e} cosine; KD T {}; cut to budget {}",
            self.batch_size,
            self.mask_epochs,
            opt(&self.mask_optimizer),
            self.lr,
            self.mask_lr,
            self.finetune_epochs,
            opt(&self.finetune_optimizer),
            self.finetune_lr,
            self.temperature,
            self.cut_to_budget
        )
    }
}

/// Everything that determines a linearization run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizeConfig {
    /// The method (a name in [`methods::METHODS`]).
    pub method: MethodName,
    /// The preset the recipe and the method's configuration started from.
    pub preset: Preset,
    /// The ReLU budget.
    pub budget: Budget,
    /// Mask granularity.
    pub granularity: Granularity,
    /// The teacher's run folder (its final model is the teacher and the student's start).
    pub from: PathBuf,
    /// Seed of shuffles, augmentation and random initial masks.
    pub seed: u64,
    /// Use only the first N images of the teacher's training split (the validation split is the
    /// teacher's, untouched).
    pub train_limit: Option<usize>,
    /// Use only the first N validation images for model selection.
    pub val_limit: Option<usize>,
    /// Schedule, optimizers, distillation.
    pub recipe: Recipe,
    /// The method's own configuration (its `Linearizer::Config` as JSON).
    pub method_config: serde_json::Value,
}

impl LinearizeConfig {
    /// The `preset` defaults of `method` at `budget` from the run folder `from`.
    pub fn new(method: &str, preset: Preset, budget: Budget, from: &Path) -> Result<Self> {
        let entry = methods::find(method)?;
        let (recipe, method_config) = (entry.configure)(preset, None)?;
        Ok(Self {
            method: MethodName(entry.name.to_string()),
            preset,
            budget,
            granularity: Granularity::Element,
            from: from.to_path_buf(),
            seed: 1,
            train_limit: None,
            val_limit: None,
            recipe,
            method_config,
        })
    }

    /// Sets one value of the method's configuration (`key` as in `linearize.json`); for tests and
    /// scripts that build configurations in code.
    pub fn set_method_value(&mut self, key: &str, value: serde_json::Value) -> Result<()> {
        let obj = self
            .method_config
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("{}: configuration is not an object", self.method))?;
        anyhow::ensure!(
            obj.contains_key(key),
            "{} has no setting `{key}` (it has {})",
            self.method,
            obj.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        obj.insert(key.to_string(), value);
        methods::find(&self.method.0)?.check(&self.method_config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_ends_at_its_floor() {
        let s = LrSchedule::Cosine { floor: 1e-5 };
        assert!((s.at(1e-3, 0.0) - 1e-3).abs() < 1e-15);
        assert!((s.at(1e-3, 1.0) - 1e-5).abs() < 1e-15);
        assert!((s.at(1e-3, 0.5) - (1e-5 + 0.5 * (1e-3 - 1e-5))).abs() < 1e-15);
        assert_eq!(LrSchedule::Constant.at(2e-2, 0.7), 2e-2);
    }
}
