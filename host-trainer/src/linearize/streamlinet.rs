//! StreamliNet, **reconstructed** (linearization.md §5 [R]): the paper's exact formulas are not
//! public; this follows the reconstruction written there.
//!
//! 1. **ReLU negativity** on 512 training images through the teacher: per unit
//!    `n_e = E|min(x,0)| / E|x|` (x the pre-activation); per layer the same ratio over the layer.
//! 2. **Layer budgets** from the multivariate score `s_l = n_l · (N_max / N_l)^½` (negativity
//!    times a cost factor: small layers are cheap to keep), `f_l = min(1, κ·s_l)` with κ solved
//!    for the budget (as SENet).
//! 3. **Gradient-learned masks, per-layer budget enforced**: gates `a` initialised to `n_e`; the
//!    forward pass keeps the top-`k_l` gates of each layer (hard mask, straight-through gradient
//!    softplus(a) as AutoReP), so every step is exactly on budget and `a` learns the locations.
//! 4. **Cost-aware post-activation consistency**: `β·Σ_l w_l·MSE(post_s, post_t)` with
//!    `w_l ∝ 1/N_l` (normalised to sum 1), in the mask phase and in fine-tuning.

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use super::autorep::ste;
use super::budget::topk_layer;
use super::senet::{fmt_list, fmt_units, layer_units};
use super::{Ctx, EpochStats, Hooks, LinState, MethodImpl, Student, Weights, mask_phase_epoch};
use crate::data::batch;
use crate::model::to_f32_vec;

pub(crate) struct Streamlinet;

/// Calibration images for the negativity statistics.
const CALIBRATION: usize = 512;

/// Per-unit and per-layer negativity of the teacher's pre-activations.
fn negativity(ctx: &Ctx) -> (Vec<Vec<f32>>, Vec<f64>) {
    let n = ctx.train.len().min(CALIBRATION);
    let idx: Vec<usize> = (0..n).collect();
    let s = ctx.train.shape;
    let x = batch::floats(&ctx.train, &idx, &ctx.tcfg.normalization, None);
    let x = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(x, [n, s.channels, s.height, s.width]),
        &ctx.plain,
    );
    let all = ctx.teacher.forward_all(x, true);
    let mut per_unit = vec![];
    let mut per_layer = vec![];
    for (site, u) in ctx.sites.iter().zip(&ctx.units) {
        let pre = all[ctx.spec.steps[site.step].input].clone();
        let mut neg = pre.clone().clamp_max(0.0).abs().sum_dim(0);
        let mut mag = pre.abs().sum_dim(0);
        if u.cost > 1 {
            neg = neg.sum_dim(2).sum_dim(3);
            mag = mag.sum_dim(2).sum_dim(3);
        }
        let (neg, mag) = (to_f32_vec(neg), to_f32_vec(mag));
        let (tn, tm): (f64, f64) = (
            neg.iter().map(|&v| v as f64).sum(),
            mag.iter().map(|&v| v as f64).sum(),
        );
        per_layer.push(tn / tm.max(1e-12));
        per_unit.push(
            neg.iter()
                .zip(&mag)
                .map(|(a, b)| a / b.max(1e-12))
                .collect(),
        );
    }
    (per_unit, per_layer)
}

/// Consistency weights `β·w_l`, `w_l ∝ 1/N_l`, summing to β.
fn consistency_weights(ctx: &Ctx) -> Vec<f64> {
    let inv: Vec<f64> = ctx
        .sites
        .iter()
        .map(|s| 1.0 / s.shape.len() as f64)
        .collect();
    let sum: f64 = inv.iter().sum();
    inv.iter()
        .map(|w| ctx.cfg.consistency_beta * w / sum)
        .collect()
}

struct TopkHooks {
    k: Vec<usize>,
}

impl TopkHooks {
    fn hard(&self, ctx: &Ctx, s: &Student) -> Vec<Vec<bool>> {
        ctx.gate_vecs(s)
            .iter()
            .zip(&self.k)
            .map(|(a, &k)| topk_layer(a, k))
            .collect()
    }
}

impl Hooks for TopkHooks {
    fn masks(&mut self, ctx: &Ctx, s: &Student) -> Option<Vec<Tensor<3>>> {
        let a = ctx.gate_values(s);
        let h = self.hard(ctx, s);
        Some(
            h.iter()
                .zip(a)
                .enumerate()
                .map(|(l, (hl, al))| {
                    let v = hl.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
                    ste(ctx.unit_tensor(l, v), al)
                })
                .collect(),
        )
    }

    fn after_step(&mut self, ctx: &Ctx, st: &mut LinState, _s: &Student) -> bool {
        st.count = self.k.iter().zip(&ctx.units).map(|(k, u)| k * u.cost).sum();
        false
    }
}

impl MethodImpl for Streamlinet {
    fn prepare(&self, ctx: &mut Ctx, st: &mut LinState, s: Student) -> Result<Student> {
        let (unit_neg, layer_neg) = negativity(ctx);
        let n_max = ctx.sites.iter().map(|s| s.shape.len()).max().unwrap_or(1) as f64;
        let score: Vec<f64> = layer_neg
            .iter()
            .zip(&ctx.sites)
            .map(|(n, s)| n * (n_max / s.shape.len() as f64).sqrt())
            .collect();
        let k = layer_units(ctx, &score);
        st.notes.push(format!(
            "streamlinet (reconstruction): layer negativity {}, score n·(N_max/N)^½ {}; per-layer budgets {}",
            fmt_list(&layer_neg),
            fmt_list(&score),
            fmt_units(ctx, &k)
        ));
        st.count = k.iter().zip(&ctx.units).map(|(k, u)| k * u.cost).sum();
        st.layer_scores = score;
        st.layer_units = k;
        Ok(ctx.set_gates(s, &unit_neg))
    }

    fn mask_epoch(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        let mut hooks = TopkHooks {
            k: st.layer_units.clone(),
        };
        let w = Weights {
            consistency: consistency_weights(ctx),
            ..Weights::ce_kd()
        };
        mask_phase_epoch(ctx, st, s, optim, epoch, &w, &mut hooks)
    }

    fn eval_masks(&self, ctx: &Ctx, st: &LinState, s: &Student) -> Option<Vec<Tensor<3>>> {
        let h = TopkHooks {
            k: st.layer_units.clone(),
        }
        .hard(ctx, s);
        Some(
            h.iter()
                .enumerate()
                .map(|(l, m)| {
                    ctx.unit_tensor(l, m.iter().map(|&b| f32::from(u8::from(b))).collect())
                })
                .collect(),
        )
    }

    fn finalize(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: &Student,
    ) -> Result<(Vec<Vec<bool>>, Vec<Vec<f32>>)> {
        let h = TopkHooks {
            k: st.layer_units.clone(),
        }
        .hard(ctx, s);
        Ok((h, ctx.gate_vecs(s)))
    }

    fn finetune_weights(&self, ctx: &Ctx, _st: &LinState) -> Weights {
        Weights {
            consistency: consistency_weights(ctx),
            ..Weights::ce_kd()
        }
    }
}
