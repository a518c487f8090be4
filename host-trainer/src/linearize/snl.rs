//! SNL (linearization.md §2): real-valued mask `α` per unit, initialised to 1 and trained jointly
//! with the weights on `CE + KD_T + λ·Σ cost·|α|`; λ grows ×1.1 when the ReLU count
//! `#{α > ε}` stalls; the mask phase stops at the budget; then `α → 1[α > ε]`, frozen.
//!
//! Scaled to CPU budgets: λ is updated every `snl_lambda_every` steps instead of once per epoch
//! (the paper's 400+ epochs become a few), and masks learn at `mask_lr` through the gate
//! reparameterisation.

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use super::{Ctx, EpochStats, Hooks, LinState, MethodImpl, Student, Weights, mask_phase_epoch};

/// SNL's threshold ε: `α > ε` counts as a kept ReLU (a signed compare, as in the paper's code).
pub const EPSILON: f32 = 0.01;

pub(crate) struct Snl;

/// The mask-phase hooks; `lambda` mirrors the state's λ (the penalty has no access to it).
struct SnlHooks {
    lambda: f64,
}

/// ReLUs kept by thresholded gates.
fn count(ctx: &Ctx, gates: &[Vec<f32>]) -> usize {
    gates
        .iter()
        .zip(&ctx.units)
        .map(|(g, u)| g.iter().filter(|&&a| a > EPSILON).count() * u.cost)
        .sum()
}

/// SNL's λ rule at a check: progress (a new lowest count) keeps λ, a stall multiplies it by 1.1.
pub fn lambda_update(lambda: f64, lowest: &mut usize, count: usize) -> f64 {
    if count < *lowest {
        *lowest = count;
        lambda
    } else {
        lambda * 1.1
    }
}

impl Hooks for SnlHooks {
    fn masks(&mut self, ctx: &Ctx, s: &Student) -> Option<Vec<Tensor<3>>> {
        Some(ctx.gate_values(s))
    }

    fn penalty(&mut self, ctx: &Ctx, masks: &[Tensor<3>]) -> Option<Tensor<1>> {
        // Σ_l cost_l·|α_l|₁: with channel units, one channel weighs its H·W ReLUs.
        let l1 = masks
            .iter()
            .zip(&ctx.units)
            .map(|(m, u)| m.clone().abs().sum().mul_scalar(u.cost as f64))
            .reduce(|a, b| a + b)?;
        Some(l1.mul_scalar(self.lambda))
    }

    fn after_step(&mut self, ctx: &Ctx, st: &mut LinState, s: &Student) -> bool {
        st.count = count(ctx, &ctx.gate_vecs(s));
        st.steps += 1;
        if st.steps.is_multiple_of(ctx.cfg.snl_lambda_every.max(1)) {
            st.lambda = lambda_update(st.lambda, &mut st.lowest, st.count);
        }
        self.lambda = st.lambda;
        st.count <= ctx.budget
    }

    fn status(&self, st: &LinState) -> String {
        format!("ReLUs {} λ {:.2e}", st.count, st.lambda)
    }
}

impl MethodImpl for Snl {
    fn prepare(&self, ctx: &mut Ctx, st: &mut LinState, s: Student) -> Result<Student> {
        st.lambda = ctx.cfg.snl_lambda;
        st.lowest = ctx.total;
        let ones: Vec<Vec<f32>> = ctx.units.iter().map(|u| vec![1.0; u.count]).collect();
        Ok(ctx.set_gates(s, &ones))
    }

    fn mask_epoch(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        let mut hooks = SnlHooks { lambda: st.lambda };
        mask_phase_epoch(ctx, st, s, optim, epoch, &Weights::ce_kd(), &mut hooks)
    }

    fn eval_masks(&self, ctx: &Ctx, _st: &LinState, s: &Student) -> Option<Vec<Tensor<3>>> {
        Some(ctx.gate_values(s))
    }

    fn finalize(
        &self,
        ctx: &mut Ctx,
        _st: &mut LinState,
        s: &Student,
    ) -> Result<(Vec<Vec<bool>>, Vec<Vec<f32>>)> {
        let g = ctx.gate_vecs(s);
        let masks = g
            .iter()
            .map(|l| l.iter().map(|&a| a > EPSILON).collect())
            .collect();
        Ok((masks, g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_grows_only_on_stalls() {
        let mut lowest = 100;
        let l = lambda_update(1.0, &mut lowest, 90);
        assert_eq!((l, lowest), (1.0, 90));
        let l = lambda_update(l, &mut lowest, 90);
        assert!((l - 1.1).abs() < 1e-12);
        let l = lambda_update(l, &mut lowest, 95);
        assert!((l - 1.21).abs() < 1e-12 && lowest == 90);
    }
}
