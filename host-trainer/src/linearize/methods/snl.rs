//! SNL, Selective Network Linearization (Cho et al., ICML'22; linearization.md §2): a
//! real-valued mask `α` per unit, initialised to 1 and trained jointly with the weights on
//! `CE + KD_T + λ·Σ cost·|α|`; λ grows ×1.1 when the ReLU count `#{α > ε}` stalls; the mask
//! phase stops at the budget; then `α → 1[α > ε]`, frozen, and the weights are fine-tuned.

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::{Linearizer, set};
use crate::linearize::config::{LrSchedule, OptimizerSpec, Preset, Recipe};
use crate::linearize::masks::{FinalMasks, Student};
use crate::linearize::objective::{Hooks, LossWeights, Rates, train_epoch};
use crate::linearize::run::Run;
use crate::train::epoch::EpochStats;

/// SNL's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnlConfig {
    /// Initial λ of the L1 penalty.
    pub lambda: f64,
    /// Steps between λ updates; 0 updates once per epoch, as the paper does.
    pub lambda_every: usize,
    /// λ updates before the first one that may raise λ (the paper's code waits 5 epochs).
    pub lambda_patience: usize,
    /// Threshold ε: `α > ε` is a kept ReLU (a signed compare, as in the paper's code).
    pub epsilon: f64,
}

/// SNL's flags.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "snl")]
pub struct SnlFlags {
    /// Initial λ of SNL's L1 penalty.
    #[arg(long)]
    pub snl_lambda: Option<f64>,
    /// Steps between SNL's λ updates (0: once per epoch).
    #[arg(long)]
    pub snl_lambda_every: Option<usize>,
    /// λ updates before SNL may first raise λ.
    #[arg(long)]
    pub snl_lambda_patience: Option<usize>,
    /// SNL's threshold ε.
    #[arg(long)]
    pub snl_epsilon: Option<f64>,
}

/// SNL's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnlState {
    /// Current λ.
    pub lambda: f64,
    /// Lowest ReLU count seen at a λ update.
    pub lowest: usize,
    /// λ updates so far.
    pub updates: usize,
    /// Steps of the mask phase so far.
    pub steps: usize,
    /// ReLU count after the last step.
    pub count: usize,
    /// The count reached the budget: the mask phase is over.
    pub reached: bool,
}

/// SNL.
pub struct Snl {
    cfg: SnlConfig,
}

/// SNL's λ rule at an update: progress (a new lowest count) keeps λ; a stall multiplies it by
/// 1.1 once `patience` updates have passed.
pub fn lambda_update(
    lambda: f64,
    lowest: &mut usize,
    count: usize,
    update: usize,
    patience: usize,
) -> f64 {
    if count < *lowest {
        *lowest = count;
        lambda
    } else if update >= patience {
        lambda * 1.1
    } else {
        lambda
    }
}

impl Snl {
    /// ReLUs kept by thresholded mask values.
    fn count(&self, run: &Run, alphas: &[Vec<f32>]) -> usize {
        alphas
            .iter()
            .zip(&run.units)
            .map(|(a, u)| a.iter().filter(|&&x| f64::from(x) > self.cfg.epsilon).count() * u.cost)
            .sum()
    }

    fn update_lambda(&self, st: &mut SnlState) {
        st.lambda = lambda_update(
            st.lambda,
            &mut st.lowest,
            st.count,
            st.updates,
            self.cfg.lambda_patience,
        );
        st.updates += 1;
    }
}

struct SnlHooks<'a> {
    snl: &'a Snl,
    st: &'a mut SnlState,
}

impl Hooks for SnlHooks<'_> {
    fn masks(&mut self, run: &Run, s: &Student) -> Option<Vec<Tensor<3>>> {
        Some(run.mask_values(s))
    }

    fn penalty(&mut self, run: &Run, masks: &[Tensor<3>]) -> Option<Tensor<1>> {
        // Σ_l cost_l·|α_l|₁: with channel units, one channel weighs its H·W ReLUs.
        let l1 = masks
            .iter()
            .zip(&run.units)
            .map(|(m, u)| m.clone().abs().sum().mul_scalar(u.cost as f64))
            .reduce(|a, b| a + b)?;
        Some(l1.mul_scalar(self.st.lambda))
    }

    fn after_step(&mut self, run: &Run, s: &Student) -> bool {
        self.st.count = self.snl.count(run, &run.mask_vecs(s));
        self.st.steps += 1;
        let every = self.snl.cfg.lambda_every;
        if every > 0 {
            if self.st.steps.is_multiple_of(every) {
                self.snl.update_lambda(self.st);
            }
            self.st.reached = self.st.count <= run.budget;
        }
        self.st.reached
    }

    fn status(&self) -> String {
        format!("ReLUs {} λ {:.2e}", self.st.count, self.st.lambda)
    }
}

impl Linearizer for Snl {
    const NAME: &'static str = "snl";
    const ABOUT: &'static str =
        "SNL (Cho et al., ICML'22): trainable mask α, L1 with a growing λ, threshold, fine-tune";
    type Config = SnlConfig;
    type Flags = SnlFlags;
    type State = SnlState;

    fn preset(preset: Preset) -> (Recipe, SnlConfig) {
        match preset {
            // A few epochs stand in for the paper's hundreds: λ starts 100× higher and is
            // checked every 2 steps instead of every epoch, so it can grow within them; the
            // masks learn at 2e-2 in their own group; KD fine-tuning with Adam; a top-k cut
            // when the short mask phase ends off budget.
            Preset::Fast => (
                Recipe::fast(),
                SnlConfig {
                    lambda: 1e-3,
                    lambda_every: 2,
                    lambda_patience: 0,
                    epsilon: 0.01,
                },
            ),
            // NYU-DICE-Lab/selective_network_linearization @ eac688c.
            Preset::Paper => (
                Recipe {
                    // scripts/snl_resnet18_c100_relu_50k.sh: BATCH=128, LR=1e-3, EPOCHS=2000 (the
                    // mask phase stops at the budget: snl_finetune_unstructured.py:156).
                    batch_size: 128,
                    mask_epochs: 2000,
                    lr: 1e-3,
                    // snl_finetune_unstructured.py:124: one Adam over weights and α, no
                    // scheduler and no weight decay in the mask phase.
                    mask_lr: 1e-3,
                    mask_schedule: LrSchedule::Constant,
                    mask_optimizer: OptimizerSpec::ADAM,
                    // :32 (100 fine-tune epochs), :173 (SGD lr 1e-3, momentum 0.9, wd 5e-4),
                    // :175 (cosine over the fine-tune epochs).
                    finetune_epochs: 100,
                    finetune_lr: 1e-3,
                    finetune_optimizer: OptimizerSpec::sgd(0.9, 5e-4),
                    // utils.py:339 (mask phase) and :109 (fine-tune): SoftTarget(4.0).
                    temperature: 4.0,
                    // The code thresholds α at the budget and keeps what it gets (:165-167).
                    cut_to_budget: false,
                },
                SnlConfig {
                    // scripts/snl_resnet18_c100_relu_50k.sh: ALPHA=1e-5 (the L1 coefficient).
                    lambda: 1e-5,
                    // snl_finetune_unstructured.py:150-154: λ ×1.1 once per epoch on a stall,
                    // from epoch 5 on.
                    lambda_every: 0,
                    lambda_patience: 5,
                    // scripts: THRESHOLD=1e-2 (argparse default :42).
                    epsilon: 0.01,
                },
            ),
        }
    }

    fn apply_flags(f: &SnlFlags, c: &mut SnlConfig) {
        set(&mut c.lambda, &f.snl_lambda);
        set(&mut c.lambda_every, &f.snl_lambda_every);
        set(&mut c.lambda_patience, &f.snl_lambda_patience);
        set(&mut c.epsilon, &f.snl_epsilon);
    }

    fn new(cfg: SnlConfig) -> Self {
        Self { cfg }
    }

    fn prepare(&self, run: &mut Run, st: &mut SnlState, s: Student) -> Result<Student> {
        *st = SnlState {
            lambda: self.cfg.lambda,
            lowest: run.total,
            count: run.total,
            ..Default::default()
        };
        let ones: Vec<Vec<f32>> = run.units.iter().map(|u| vec![1.0; u.count]).collect();
        Ok(run.set_mask_params(s, &ones))
    }

    fn mask_epoch(
        &self,
        run: &mut Run,
        st: &mut SnlState,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        let index = epoch - 1;
        let rates = Rates::mask_phase(run, index, run.cfg.recipe.mask_epochs);
        let mut hooks = SnlHooks { snl: self, st };
        let out = train_epoch(run, s, optim, epoch, rates, &LossWeights::ce_kd(), &mut hooks)?;
        if self.cfg.lambda_every == 0 {
            // The paper's order: stop at the budget, else update λ for the next epoch.
            st.reached = st.count <= run.budget;
            if !st.reached {
                self.update_lambda(st);
            }
        }
        Ok(out)
    }

    fn mask_phase_done(&self, st: &SnlState) -> bool {
        st.reached
    }

    fn live_relus(&self, run: &Run, _st: &SnlState, s: &Student) -> usize {
        self.count(run, &run.mask_vecs(s))
    }

    fn eval_masks(&self, run: &Run, _st: &SnlState, s: &Student) -> Option<Vec<Tensor<3>>> {
        Some(run.mask_values(s))
    }

    fn finalize(&self, run: &mut Run, _st: &mut SnlState, s: Student) -> Result<(Student, FinalMasks)> {
        let alphas = run.mask_vecs(&s);
        let masks = alphas
            .iter()
            .map(|l| l.iter().map(|&a| f64::from(a) > self.cfg.epsilon).collect())
            .collect();
        Ok((
            s,
            FinalMasks {
                masks,
                scores: alphas,
            },
        ))
    }

    fn status(&self, st: &SnlState) -> String {
        format!("λ {:.3e} ", st.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `paper` preset is the official code's recipe (sources cited in `preset`).
    #[test]
    fn paper_preset_pins_the_official_values() {
        let (r, c) = Snl::preset(Preset::Paper);
        assert_eq!((r.batch_size, r.mask_epochs, r.lr, r.mask_lr), (128, 2000, 1e-3, 1e-3));
        assert_eq!(r.mask_schedule, LrSchedule::Constant);
        assert_eq!(r.mask_optimizer, OptimizerSpec::ADAM);
        assert_eq!((r.finetune_epochs, r.finetune_lr), (100, 1e-3));
        assert_eq!(r.finetune_optimizer, OptimizerSpec::sgd(0.9, 5e-4));
        assert_eq!((r.temperature, r.cut_to_budget), (4.0, false));
        let want = SnlConfig {
            lambda: 1e-5,
            lambda_every: 0,
            lambda_patience: 5,
            epsilon: 0.01,
        };
        assert_eq!(c, want);
        assert_ne!(Snl::preset(Preset::Fast), (r, c), "fast differs");
    }

    #[test]
    fn lambda_grows_only_on_stalls_after_the_patience() {
        let mut lowest = 100;
        let l = lambda_update(1.0, &mut lowest, 90, 0, 0);
        assert_eq!((l, lowest), (1.0, 90));
        let l = lambda_update(l, &mut lowest, 90, 1, 0);
        assert!((l - 1.1).abs() < 1e-12);
        let l = lambda_update(l, &mut lowest, 95, 2, 0);
        assert!((l - 1.21).abs() < 1e-12 && lowest == 90);
        // Within the patience a stall keeps λ.
        let mut lowest = 100;
        assert_eq!(lambda_update(1.0, &mut lowest, 100, 4, 5), 1.0);
        assert!((lambda_update(1.0, &mut lowest, 100, 5, 5) - 1.1).abs() < 1e-12);
    }
}
