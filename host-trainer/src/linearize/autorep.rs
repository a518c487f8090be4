//! AutoReP-style linearization (linearization.md §3, identity replacement, no polynomials):
//! auxiliary parameters `a` per unit (init U(0,1)), a binary hysteresis state `h` updated before
//! every forward pass (`h ← h ? a > −t : a > t`), the forward pass uses the hard mask `h` with
//! the straight-through gradient `∂m/∂a = softplus(a)`, and the loss is
//! `CE + KD_T + λ·max(0, density − B/N)` with `density = Σ m·cost / N` (through the STE).

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;
use burn::tensor::activation::softplus;

use super::{Ctx, EpochStats, Hooks, LinState, MethodImpl, Student, Weights, mask_phase_epoch};
use crate::model::to_f32_vec;
use crate::rng::Rng;

pub(crate) struct Autorep;

/// One hysteresis update: a kept unit drops only when `a < −t`, a dropped one returns only when
/// `a > t`.
pub fn hysteresis(kept: bool, a: f32, t: f32) -> bool {
    if kept { a > -t } else { a > t }
}

/// Straight-through mask: forward value `h`, gradient `softplus(a)` with respect to `a`.
pub fn ste(h: Tensor<3>, a: Tensor<3>) -> Tensor<3> {
    let s = softplus(a.clone(), 1.0).detach();
    let as_ = a * s;
    h + (as_.clone() - as_.detach())
}

struct AutorepHooks {
    /// Hysteresis state per site (1 = kept), CPU side.
    h: Vec<Vec<bool>>,
}

impl Hooks for AutorepHooks {
    fn masks(&mut self, ctx: &Ctx, s: &Student) -> Option<Vec<Tensor<3>>> {
        let a_vals = ctx.gate_vecs(s);
        let t = ctx.cfg.autorep_threshold as f32;
        let a = ctx.gate_values(s);
        let mut out = Vec::with_capacity(a.len());
        for (l, (h, av)) in self.h.iter_mut().zip(&a_vals).enumerate() {
            for (k, &x) in h.iter_mut().zip(av) {
                *k = hysteresis(*k, x, t);
            }
            let hv: Vec<f32> = h.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            out.push(ste(ctx.unit_tensor(l, hv), a[l].clone()));
        }
        Some(out)
    }

    fn penalty(&mut self, ctx: &Ctx, masks: &[Tensor<3>]) -> Option<Tensor<1>> {
        let n = ctx.total as f64;
        let density = masks
            .iter()
            .zip(&ctx.units)
            .map(|(m, u)| m.clone().sum().mul_scalar(u.cost as f64 / n))
            .reduce(|a, b| a + b)?;
        let target = ctx.budget as f64 / n;
        Some(
            density
                .sub_scalar(target)
                .clamp_min(0.0)
                .mul_scalar(ctx.cfg.autorep_lambda),
        )
    }

    fn after_step(&mut self, ctx: &Ctx, st: &mut LinState, _s: &Student) -> bool {
        st.count = ctx.kept(&self.h);
        false
    }
}

/// The hysteresis state saved in the student.
fn h_of(s: &Student) -> Vec<Vec<bool>> {
    s.aux
        .iter()
        .map(|p| to_f32_vec(p.val()).iter().map(|&v| v > 0.5).collect())
        .collect()
}

/// Saves the hysteresis state in the student (so checkpoints carry it).
fn store_h(ctx: &Ctx, mut s: Student, h: &[Vec<bool>]) -> Student {
    for (l, (p, hl)) in s.aux.iter_mut().zip(h).enumerate() {
        let v: Vec<f32> = hl.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        *p = burn::module::Param::initialized(p.id, ctx.unit_tensor(l, v)).set_require_grad(false);
    }
    s
}

impl MethodImpl for Autorep {
    fn prepare(&self, ctx: &mut Ctx, _st: &mut LinState, s: Student) -> Result<Student> {
        let mut rng = Rng::derive(ctx.cfg.seed, 0xA070);
        let init: Vec<Vec<f32>> = ctx
            .units
            .iter()
            .map(|u| {
                (0..u.count)
                    .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
                    .collect()
            })
            .collect();
        let s = ctx.set_gates(s, &init);
        let ones: Vec<Vec<bool>> = ctx.units.iter().map(|u| vec![true; u.count]).collect();
        Ok(store_h(ctx, s, &ones))
    }

    fn mask_epoch(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        let mut hooks = AutorepHooks { h: h_of(&s) };
        st.lambda = ctx.cfg.autorep_lambda;
        let (s, e) = mask_phase_epoch(ctx, st, s, optim, epoch, &Weights::ce_kd(), &mut hooks)?;
        Ok((store_h(ctx, s, &hooks.h), e))
    }

    fn eval_masks(&self, _ctx: &Ctx, _st: &LinState, s: &Student) -> Option<Vec<Tensor<3>>> {
        Some(s.aux.iter().map(|p| p.val()).collect())
    }

    fn finalize(
        &self,
        ctx: &mut Ctx,
        _st: &mut LinState,
        s: &Student,
    ) -> Result<(Vec<Vec<bool>>, Vec<Vec<f32>>)> {
        Ok((h_of(s), ctx.gate_vecs(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_switches_only_past_the_threshold() {
        let t = 0.003;
        // Kept stays kept inside (−t, t] and above; drops below −t.
        assert!(hysteresis(true, 0.0, t));
        assert!(hysteresis(true, -0.002, t));
        assert!(!hysteresis(true, -0.004, t));
        // Dropped stays dropped inside [−t, t]; returns above t.
        assert!(!hysteresis(false, 0.002, t));
        assert!(!hysteresis(false, -0.5, t));
        assert!(hysteresis(false, 0.004, t));
        // A path oscillating inside the band never flips.
        let mut h = true;
        for a in [0.002, -0.002, 0.001, -0.0029] {
            h = hysteresis(h, a, t);
            assert!(h);
        }
    }

    #[test]
    fn ste_forward_is_h_and_gradient_is_softplus() {
        use burn::tensor::{Device, TensorData};
        let d = Device::flex().autodiff();
        let a = Tensor::<3>::from_data(TensorData::new(vec![0.5f32, -1.0], [2, 1, 1]), &d)
            .require_grad();
        let h = Tensor::<3>::from_data(TensorData::new(vec![0.0f32, 1.0], [2, 1, 1]), &d);
        let m = ste(h, a.clone());
        assert_eq!(to_f32_vec(m.clone()), vec![0.0, 1.0]);
        let g = m.sum().backward();
        let grad = to_f32_vec(a.grad(&g).expect("gradient"));
        for (got, x) in grad.iter().zip([0.5f32, -1.0]) {
            let want = (1.0 + x.exp()).ln();
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }
}
