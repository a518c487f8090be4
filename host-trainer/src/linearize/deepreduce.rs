//! DeepReDuce (linearization.md §6): coarse, structured ReLU dropping.
//!
//! 1. **Criticality** of each ReLU layer (the "stages" of these small CNNs are their ReLU
//!    layers): a copy of the teacher with ReLUs *only* in that layer, fine-tuned for
//!    `criticality_steps` steps with CE + KD, scored by validation accuracy.
//! 2. **Culling**: keep the `j` most critical layers, linearize the rest.
//! 3. **Thinning**: keep every `2^t`-th channel of each kept layer (a regular structured subset;
//!    the paper's thinning drops one of the two ReLUs of a residual block, which these plain
//!    CNNs do not have).
//! 4. Every `(j, t)` is a point (ReLUs, validation accuracy before fine-tuning); the Pareto front
//!    is written to `pareto.csv`. The largest configuration within the budget is fine-tuned with
//!    KD; if it is below 97% of the budget, the generic projection fills it by top-k of the
//!    method's own priorities (chosen units first, then by layer criticality and thinning level).

use std::fmt::Write as _;

use anyhow::{Result, bail};
use burn::optim::ModuleOptimizer;

use super::{
    Ctx, EpochPlan, EpochStats, Hooks, LinState, MethodImpl, Student, Weights, adam, run_epoch,
    set_net_masks, val_acc,
};
use crate::train::checkpoint::write_atomic;

pub(crate) struct Deepreduce;

/// Coarsest thinning level tried (keep every 32nd channel).
const MAX_THIN: u32 = 5;

/// Channel of unit `i` of a layer (units are elements or channels).
fn channel_of(ctx: &Ctx, layer: usize, i: usize) -> usize {
    let u = &ctx.units[layer];
    let per = u.count / u.full[0];
    i / per.max(1)
}

/// The thinning level of a channel: the largest `t ≤ MAX_THIN` with `c % 2^t == 0`.
fn level(c: usize) -> u32 {
    if c == 0 {
        MAX_THIN
    } else {
        c.trailing_zeros().min(MAX_THIN)
    }
}

/// Unit masks of configuration (layers `kept`, thinning `t`).
fn config_masks(ctx: &Ctx, kept: &[usize], t: u32) -> Vec<Vec<bool>> {
    ctx.units
        .iter()
        .enumerate()
        .map(|(l, u)| {
            (0..u.count)
                .map(|i| kept.contains(&l) && level(channel_of(ctx, l, i)) >= t)
                .collect()
        })
        .collect()
}

/// Stops after a number of steps.
struct StopAfter(usize);
impl Hooks for StopAfter {
    fn after_step(&mut self, _ctx: &Ctx, st: &mut LinState, _s: &Student) -> bool {
        st.steps += 1;
        st.steps >= self.0
    }
}

impl MethodImpl for Deepreduce {
    fn prepare(&self, ctx: &mut Ctx, st: &mut LinState, s: Student) -> Result<Student> {
        let layers = ctx.units.len();
        // 1. Criticality: ReLUs only in layer k, a short KD fine-tune, validation accuracy.
        let mut crit = vec![];
        for k in 0..layers {
            let only: Vec<Vec<bool>> = ctx
                .units
                .iter()
                .enumerate()
                .map(|(l, u)| vec![l == k; u.count])
                .collect();
            let mut probe = s.clone();
            probe.net = set_net_masks(ctx, probe.net, &only);
            let mut tmp = LinState::default();
            let mut optim: ModuleOptimizer = adam();
            let lr = ctx.cfg.lr;
            let (probe, _) = run_epoch(
                ctx,
                &mut tmp,
                probe,
                &mut optim,
                EpochPlan {
                    epoch: 1000 + k,
                    lr: &|_| lr,
                    weights: &Weights::ce_kd(),
                },
                &mut StopAfter(ctx.cfg.criticality_steps),
            )?;
            let acc = val_acc(ctx, &probe.net, None);
            ctx.log.line(&format!(
                "deepreduce: criticality of {} (ReLUs only there, {} steps): {:.2}%",
                ctx.sites[k].name,
                ctx.cfg.criticality_steps,
                100.0 * acc
            ));
            crit.push(acc);
        }
        let mut order: Vec<usize> = (0..layers).collect();
        order.sort_by(|&a, &b| crit[b].total_cmp(&crit[a]).then(a.cmp(&b)));

        // 2-3. Culling and thinning configurations, evaluated before fine-tuning.
        let mut points = vec![];
        let base = s.net.clone();
        for j in 0..=layers {
            for t in 0..=MAX_THIN {
                if j == 0 && t > 0 {
                    continue;
                }
                let masks = config_masks(ctx, &order[..j], t);
                let relus = ctx.kept(&masks);
                let net = set_net_masks(ctx, base.clone(), &masks);
                let acc = val_acc(ctx, &net, None);
                points.push((j, t, relus, acc, masks));
            }
        }
        let mut csv =
            String::from("culled_to_layers,thinning,relus,val_acc_before_finetune,pareto\n");
        let mut by_relus: Vec<usize> = (0..points.len()).collect();
        by_relus.sort_by_key(|&i| (points[i].2, std::cmp::Reverse((points[i].3 * 1e9) as i64)));
        let mut best = f64::NEG_INFINITY;
        let mut pareto = vec![];
        for &i in &by_relus {
            let p = &points[i];
            let on_front = p.3 > best;
            if on_front {
                best = p.3;
                pareto.push(format!("{}@{:.1}%", p.2, 100.0 * p.3));
            }
            let names: Vec<&str> = order[..p.0]
                .iter()
                .map(|&l| ctx.sites[l].name.as_str())
                .collect();
            let _ = writeln!(
                csv,
                "{},1/{},{},{:.5},{}",
                names.join("+"),
                1u32 << p.1,
                p.2,
                p.3,
                on_front
            );
        }
        write_atomic(&ctx.run.root.join("pareto.csv"), csv.as_bytes())?;

        // 4. The largest configuration within the budget (ties: the more accurate).
        let chosen = points
            .iter()
            .filter(|p| p.2 <= ctx.budget)
            .max_by(|a, b| a.2.cmp(&b.2).then(a.3.total_cmp(&b.3)))
            .expect("the all-linear configuration has 0 ReLUs");
        let names: Vec<&str> = order[..chosen.0]
            .iter()
            .map(|&l| ctx.sites[l].name.as_str())
            .collect();
        st.notes.push(format!(
            "deepreduce: criticality {} (order {}); Pareto points (ReLUs@val before fine-tune) {}; chosen: layers [{}] thinned 1/{} = {} ReLUs",
            super::senet::fmt_list(&crit),
            order.iter().map(|&l| ctx.sites[l].name.as_str()).collect::<Vec<_>>().join(">"),
            pareto.join(" "),
            names.join("+"),
            1u32 << chosen.1,
            chosen.2
        ));
        // Priorities for the projection: chosen units first, then by layer criticality, then by
        // thinning level (coarse-grid channels first), so filling up continues the structure.
        let rank: Vec<usize> = (0..layers)
            .map(|l| order.iter().position(|&o| o == l).unwrap_or(layers))
            .collect();
        st.scores = chosen
            .4
            .iter()
            .enumerate()
            .map(|(l, m)| {
                m.iter()
                    .enumerate()
                    .map(|(i, &b)| {
                        if b {
                            1e6
                        } else {
                            ((layers - rank[l]) * 100) as f32 + level(channel_of(ctx, l, i)) as f32
                        }
                    })
                    .collect()
            })
            .collect();
        st.chosen = chosen.4.clone();
        st.layer_scores = crit;
        st.count = chosen.2;
        Ok(s)
    }

    fn has_mask_phase(&self) -> bool {
        false
    }

    fn mask_epoch(
        &self,
        _ctx: &mut Ctx,
        _st: &mut LinState,
        _s: Student,
        _optim: &mut ModuleOptimizer,
        _epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        bail!("deepreduce has no mask phase")
    }

    fn finalize(
        &self,
        _ctx: &mut Ctx,
        st: &mut LinState,
        _s: &Student,
    ) -> Result<(Vec<Vec<bool>>, Vec<Vec<f32>>)> {
        Ok((st.chosen.clone(), st.scores.clone()))
    }
}
