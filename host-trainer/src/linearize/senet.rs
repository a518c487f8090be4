//! SENet (linearization.md §4), as reconstructed there from the paper's structure and the same
//! group's RLNet code:
//!
//! 0. **Per-layer budgets from ReLU sensitivity.** Sparsify the teacher's weights to 10% global
//!    density by magnitude; a layer whose weights are prunable (low surviving density) has
//!    sensitive ReLUs: `s_l = 1/density_l` of the conv/linear feeding ReLU layer `l`. Keep
//!    fractions `f_l = min(1, c·s_l)`, `c` solved so the counts sum exactly to the budget.
//! 1. **Locations.** Start from a random mask with `f_l` density; each epoch train on
//!    `0.5·CE + 0.5·KD`, accumulate the teacher–student post-activation gap per unit, then keep
//!    the top-`k_l` units of each layer. The gap is taken as if the unit were linear,
//!    `|ReLU(x_t) − x_s|` (for already-linear units this is the post-activation gap itself).
//! 2. **Fine-tune** with frozen masks on `0.5·CE + 0.5·KD + β·Σ AT` (β = 1000).

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use super::budget::{allocate, topk_layer};
use super::{
    Ctx, EpochStats, Hooks, LinState, MethodImpl, Student, Weights, mask_phase_epoch,
    net_unit_masks, set_net_masks,
};
use crate::model::spec::Op;
use crate::model::{Net, to_f32_vec};
use crate::rng::Rng;

pub(crate) struct Senet;

/// Global weight density kept when measuring sensitivity.
const PRUNE_DENSITY: f64 = 0.1;

/// For each ReLU site, the index of the step (a conv or linear) that feeds it, following
/// pooling/flatten/add inputs backwards.
pub(crate) fn feeding_layer(net: &Net, site_step: usize) -> Option<usize> {
    let steps = &net.spec.steps;
    let mut t = steps[site_step].input;
    while t > 0 {
        let i = t - 1;
        match steps[i].op {
            Op::Conv { .. } | Op::Linear { .. } => return Some(i),
            _ => t = steps[i].input,
        }
    }
    None
}

/// |weights| of each conv/linear step, by step index.
fn weight_magnitudes(net: &Net) -> Vec<(usize, Vec<f32>)> {
    let (mut ci, mut li) = (0, 0);
    let mut out = vec![];
    for (i, s) in net.spec.steps.iter().enumerate() {
        match s.op {
            Op::Conv { .. } => {
                out.push((i, abs(to_f32_vec(net.convs[ci].conv.weight.val()))));
                ci += 1;
            }
            Op::Linear { .. } => {
                out.push((i, abs(to_f32_vec(net.linears[li].weight.val()))));
                li += 1;
            }
            _ => {}
        }
    }
    out
}

fn abs(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(f32::abs).collect()
}

/// SENet-style sensitivity per ReLU site: `1 / density` of its feeding layer after global
/// magnitude pruning to [`PRUNE_DENSITY`].
pub(crate) fn sensitivity(ctx: &Ctx) -> Vec<f64> {
    let mags = weight_magnitudes(&ctx.teacher);
    let mut all: Vec<f32> = mags.iter().flat_map(|(_, w)| w.iter().copied()).collect();
    all.sort_by(|a, b| b.total_cmp(a));
    let keep = ((all.len() as f64 * PRUNE_DENSITY) as usize).clamp(1, all.len());
    let threshold = all[keep - 1];
    ctx.sites
        .iter()
        .map(|site| {
            let density = feeding_layer(&ctx.teacher, site.step)
                .and_then(|i| mags.iter().find(|(j, _)| *j == i))
                .map(|(_, w)| w.iter().filter(|&&x| x >= threshold).count() as f64 / w.len() as f64)
                .unwrap_or(1.0);
            1.0 / density.max(1e-3)
        })
        .collect()
}

/// Per-layer budgets in units from per-layer scores (exact sum for element units).
pub(crate) fn layer_units(ctx: &Ctx, scores: &[f64]) -> Vec<usize> {
    let units: Vec<usize> = ctx.units.iter().map(|u| u.count).collect();
    allocate(&units, &ctx.costs(), scores, ctx.budget)
        .iter()
        .zip(&ctx.units)
        .map(|(r, u)| r / u.cost)
        .collect()
}

struct GapHooks {
    /// Accumulated |teacher − student| per unit and site.
    scores: Vec<Vec<f32>>,
    channel: bool,
}

impl Hooks for GapHooks {
    fn needs_feats(&self) -> bool {
        true
    }

    /// The gap a unit would have if it were linear: `|ReLU(x_teacher) − x_student|` (equal to
    /// the post-activation gap where the student is linear already). Scoring kept units by the
    /// post-activation gap instead (≈ 0 where both apply ReLU) flips the whole mask every epoch.
    fn observe(&mut self, _ctx: &Ctx, student_pre: &[Tensor<4>], teacher: &[Tensor<4>]) {
        for ((acc, s), t) in self.scores.iter_mut().zip(student_pre).zip(teacher) {
            let mut gap = (t.clone() - s.clone()).abs().sum_dim(0);
            if self.channel {
                gap = gap.sum_dim(2).sum_dim(3);
            }
            for (a, g) in acc.iter_mut().zip(to_f32_vec(gap)) {
                *a += g;
            }
        }
    }

    fn after_step(&mut self, ctx: &Ctx, st: &mut LinState, _s: &Student) -> bool {
        st.count = st
            .layer_units
            .iter()
            .zip(&ctx.units)
            .map(|(k, u)| k * u.cost)
            .sum();
        false
    }
}

impl MethodImpl for Senet {
    fn prepare(&self, ctx: &mut Ctx, st: &mut LinState, mut s: Student) -> Result<Student> {
        let sens = sensitivity(ctx);
        let k = layer_units(ctx, &sens);
        let mut rng = Rng::derive(ctx.cfg.seed, 0x5E7E);
        let masks: Vec<Vec<bool>> = ctx
            .units
            .iter()
            .zip(&k)
            .map(|(u, &k)| {
                let mut m = vec![false; u.count];
                for i in rng.permutation(u.count).into_iter().take(k) {
                    m[i] = true;
                }
                m
            })
            .collect();
        s.net = set_net_masks(ctx, s.net, &masks);
        st.count = ctx.kept(&masks);
        st.notes.push(format!(
            "senet: sensitivity (1/weight density at {:.0}% global density) {}; per-layer budgets {} (sum {})",
            100.0 * PRUNE_DENSITY,
            fmt_list(&sens),
            fmt_units(ctx, &k),
            st.count
        ));
        st.layer_scores = sens;
        st.layer_units = k;
        Ok(s)
    }

    fn mask_epoch(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        let mut hooks = GapHooks {
            scores: ctx.units.iter().map(|u| vec![0.0; u.count]).collect(),
            channel: ctx.units.iter().any(|u| u.cost > 1),
        };
        let w = Weights {
            ce: 0.5,
            kd: 0.5,
            ..Default::default()
        };
        let (mut s, e) = mask_phase_epoch(ctx, st, s, optim, epoch, &w, &mut hooks)?;
        let old = net_unit_masks(ctx, &s.net);
        let new: Vec<Vec<bool>> = hooks
            .scores
            .iter()
            .zip(&st.layer_units)
            .map(|(sc, &k)| topk_layer(sc, k))
            .collect();
        let changed: usize = old
            .iter()
            .zip(&new)
            .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x != y).count())
            .sum();
        let units: usize = ctx.units.iter().map(|u| u.count).sum();
        ctx.log.line(&format!(
            "senet: mask update, normalised Hamming distance to the previous mask {:.4}",
            changed as f64 / units.max(1) as f64
        ));
        s.net = set_net_masks(ctx, s.net, &new);
        st.scores = hooks.scores;
        Ok((s, e))
    }

    fn finalize(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: &Student,
    ) -> Result<(Vec<Vec<bool>>, Vec<Vec<f32>>)> {
        let masks = net_unit_masks(ctx, &s.net);
        let scores = if st.scores.is_empty() {
            masks
                .iter()
                .map(|m| m.iter().map(|&b| f32::from(u8::from(b))).collect())
                .collect()
        } else {
            st.scores.clone()
        };
        Ok((masks, scores))
    }

    fn finetune_weights(&self, ctx: &Ctx, _st: &LinState) -> Weights {
        Weights {
            ce: 0.5,
            kd: 0.5,
            at: ctx.cfg.at_beta,
            consistency: vec![],
        }
    }
}

pub(crate) fn fmt_list(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    format!("[{}]", s.join(", "))
}

pub(crate) fn fmt_units(ctx: &Ctx, k: &[usize]) -> String {
    let s: Vec<String> = ctx
        .sites
        .iter()
        .zip(k)
        .zip(&ctx.units)
        .map(|((site, &k), u)| format!("{}:{}/{}", site.name, k * u.cost, site.shape.len()))
        .collect();
    s.join(" ")
}
