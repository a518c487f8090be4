//! DeepReDuce (Jha et al., ICML'21; linearization.md §6): coarse, structured ReLU dropping.
//!
//! 1. **Criticality** of each stage (the stem and the residual stages; a plain CNN's stages are
//!    its ReLU layers): a copy of the teacher with ReLUs *only* in that stage, fine-tuned for
//!    `criticality_steps` steps with CE + KD, scored by validation accuracy. Per-layer
//!    criticality is an option.
//! 2. **Culling**: keep the `j` most critical stages, linearize the rest.
//! 3. **Thinning**: in every residual block keep one of its two ReLUs (the paper's ReLU
//!    thinning; the post-add ReLU is kept, the one after the block's first conv dropped), then,
//!    for smaller budgets, every `2^t`-th channel (standing in for the paper's channel-width
//!    factor, which changes the architecture). The channel-only thinning of earlier versions is
//!    an option; networks without two-ReLU blocks use it.
//! 4. **Pareto points, each fine-tuned**: the `candidates` largest configurations within the
//!    budget are each fine-tuned with KD from the teacher's weights for an equal share of the
//!    mask-phase epochs; the one with the best validation accuracy is the method's result and
//!    is fine-tuned further. `pareto.csv` lists every configuration and the fine-tuned accuracy
//!    of the candidates. If the chosen configuration is below 97% of the budget, the generic cut
//!    fills it by the method's own priorities (chosen units, then stage criticality, then
//!    thinning level).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::{Linearizer, set};
use crate::linearize::config::{LrSchedule, Preset, Recipe};
use crate::linearize::masks::{FinalMasks, Student, net_unit_masks};
use crate::linearize::objective::{Frozen, Hooks, LossWeights, Rates, train_epoch};
use crate::linearize::run::{Run, fmt_list};
use crate::train::checkpoint::{module_bytes, module_from_bytes, write_atomic};
use crate::train::epoch::EpochStats;

/// Coarsest channel thinning tried (keep every 32nd channel).
const MAX_CHANNEL_THIN: u32 = 5;

/// What criticality is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CriticalityUnit {
    /// Stages: the stem and the residual stages (the paper).
    Stage,
    /// Each ReLU layer.
    Layer,
}

/// How kept stages are thinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Thinning {
    /// One ReLU per residual block (the paper), then every `2^t`-th channel.
    Block,
    /// Every `2^t`-th channel only.
    Channel,
}

/// DeepReDuce's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepreduceConfig {
    /// Unit of criticality and culling.
    pub criticality: CriticalityUnit,
    /// KD fine-tune steps of each criticality probe.
    pub criticality_steps: usize,
    /// Thinning of the kept stages.
    pub thinning: Thinning,
    /// Configurations within the budget that are fine-tuned and compared (the largest ones).
    pub candidates: usize,
}

/// DeepReDuce's flags.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "deepreduce")]
pub struct DeepreduceFlags {
    /// DeepReDuce: criticality per stage or per ReLU layer.
    #[arg(long, value_enum)]
    pub deepreduce_criticality: Option<CriticalityUnit>,
    /// DeepReDuce: KD steps of each criticality probe.
    #[arg(long)]
    pub deepreduce_criticality_steps: Option<usize>,
    /// DeepReDuce: thinning by blocks (then channels) or by channels.
    #[arg(long, value_enum)]
    pub deepreduce_thinning: Option<Thinning>,
    /// DeepReDuce: candidate configurations fine-tuned and compared.
    #[arg(long)]
    pub deepreduce_candidates: Option<usize>,
}

/// One configuration: the `culled_to` most critical groups kept, thinned to level `thinning`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Groups kept (the most critical ones).
    pub culled_to: usize,
    /// Thinning level (0: none).
    pub thinning: u32,
    /// ReLUs kept.
    pub relus: usize,
    /// Validation accuracy after its fine-tune (once fine-tuned).
    pub val_acc: Option<f64>,
}

/// DeepReDuce's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeepreduceState {
    /// Groups of sites (stages or layers).
    pub groups: Vec<Vec<usize>>,
    /// Names of the groups.
    pub group_names: Vec<String>,
    /// Criticality per group (validation accuracy of the probe).
    pub criticality: Vec<f64>,
    /// Group indices, most critical first.
    pub order: Vec<usize>,
    /// Thinning actually used (block thinning falls back to channels without blocks).
    pub thinning: Option<Thinning>,
    /// The configurations being compared, largest first.
    pub candidates: Vec<Candidate>,
    /// Mask-phase epochs per candidate.
    pub epochs_per_candidate: usize,
}

/// DeepReDuce.
pub struct Deepreduce {
    cfg: DeepreduceConfig,
}

/// Whether site `i` survives block thinning: in a block with two or more ReLUs, the block's
/// first ReLU (after its first conv) is dropped and the post-add ReLU kept.
fn survives_block_thinning(run: &Run, i: usize) -> bool {
    let Some(b) = run.sites[i].block else {
        return true;
    };
    let in_block: Vec<usize> = (0..run.sites.len())
        .filter(|&j| run.sites[j].block == Some(b))
        .collect();
    in_block.len() < 2 || in_block.last() == Some(&i)
}

/// Whether unit `unit` of site `site` is kept at thinning level `t`.
fn thinned_keeps(run: &Run, thinning: Thinning, site: usize, unit: usize, t: u32) -> bool {
    let channel_level = |c: usize, t: u32| c.is_multiple_of(1 << t);
    let c = run.units[site].channel_of(unit);
    match thinning {
        Thinning::Channel => channel_level(c, t),
        Thinning::Block => {
            t == 0 || (survives_block_thinning(run, site) && channel_level(c, t - 1))
        }
    }
}

/// Unit masks of configuration (the groups `kept`, thinning `t`).
fn config_masks(run: &Run, st: &DeepreduceState, culled_to: usize, t: u32) -> Vec<Vec<bool>> {
    let thinning = st.thinning.unwrap_or(Thinning::Channel);
    let kept_sites: Vec<usize> = st.order[..culled_to]
        .iter()
        .flat_map(|&g| st.groups[g].iter().copied())
        .collect();
    run.units
        .iter()
        .enumerate()
        .map(|(l, u)| {
            (0..u.count)
                .map(|i| kept_sites.contains(&l) && thinned_keeps(run, thinning, l, i, t))
                .collect()
        })
        .collect()
}

/// Ends an epoch after a number of steps.
struct StopAfter {
    steps: usize,
    done: usize,
}

impl Hooks for StopAfter {
    fn after_step(&mut self, _run: &Run, _s: &Student) -> bool {
        self.done += 1;
        self.done >= self.steps
    }
}

fn candidate_path(run: &Run, i: usize) -> std::path::PathBuf {
    run.dir.root.join("candidates").join(format!("{i}.bpk"))
}

impl Deepreduce {
    fn max_level(&self, st: &DeepreduceState) -> u32 {
        match st.thinning {
            Some(Thinning::Block) => MAX_CHANNEL_THIN + 1,
            _ => MAX_CHANNEL_THIN,
        }
    }

    fn write_pareto(&self, run: &Run, st: &DeepreduceState) -> Result<()> {
        let mut csv = String::from("kept_groups,thinning,relus,candidate,val_acc_after_finetune\n");
        for j in 0..=st.groups.len() {
            for t in 0..=self.max_level(st) {
                if j == 0 && t > 0 {
                    continue;
                }
                let relus = run.kept(&config_masks(run, st, j, t));
                let names: Vec<&str> = st.order[..j]
                    .iter()
                    .map(|&g| st.group_names[g].as_str())
                    .collect();
                let c = st
                    .candidates
                    .iter()
                    .find(|c| c.culled_to == j && c.thinning == t);
                let _ = writeln!(
                    csv,
                    "{},{t},{relus},{},{}",
                    names.join("+"),
                    c.is_some(),
                    c.and_then(|c| c.val_acc)
                        .map_or(String::new(), |a| format!("{a:.5}"))
                );
            }
        }
        write_atomic(&run.dir.root.join("pareto.csv"), csv.as_bytes())?;
        Ok(())
    }
}

impl Linearizer for Deepreduce {
    const NAME: &'static str = "deepreduce";
    const ABOUT: &'static str = "DeepReDuce (Jha et al., ICML'21): stage criticality, culling and block thinning, fine-tuned candidate points";
    type Config = DeepreduceConfig;
    type Flags = DeepreduceFlags;
    type State = DeepreduceState;

    fn preset(preset: Preset) -> (Recipe, DeepreduceConfig) {
        // The structure is the paper's (Jha et al., ICML'21, §3; linearization.md §6.1):
        // criticality per stage (stem + stages), culling whole stages, thinning by dropping one
        // of the two ReLUs of each block, every reduced network retrained with KD (T = 4, the
        // value the paper is believed to use: §6.1 step 5 [M]). The arithmetic of every
        // published point confirms stages and halvings (§6.2).
        let cfg = DeepreduceConfig {
            criticality: CriticalityUnit::Stage,
            criticality_steps: 40,
            thinning: Thinning::Block,
            candidates: 3,
        };
        match preset {
            Preset::Fast => (Recipe::fast(), cfg),
            // No official code, and the paper is silent (in our sources) on the retraining
            // schedule, optimizer, the length of the criticality runs and the number of Pareto
            // points retrained: `paper` keeps the paper's structure above with the `fast`
            // schedule, and says so in `linearize --help` and RESULTS.md.
            Preset::Paper => (Recipe::fast(), cfg),
        }
    }

    fn apply_flags(f: &DeepreduceFlags, c: &mut DeepreduceConfig) {
        set(&mut c.criticality, &f.deepreduce_criticality);
        set(&mut c.criticality_steps, &f.deepreduce_criticality_steps);
        set(&mut c.thinning, &f.deepreduce_thinning);
        set(&mut c.candidates, &f.deepreduce_candidates);
    }

    fn new(cfg: DeepreduceConfig) -> Self {
        Self { cfg }
    }

    fn prepare(&self, run: &mut Run, st: &mut DeepreduceState, s: Student) -> Result<Student> {
        let (groups, names): (Vec<Vec<usize>>, Vec<String>) = match self.cfg.criticality {
            CriticalityUnit::Stage => run
                .stages
                .iter()
                .map(|g| (g.sites.clone(), g.name.clone()))
                .unzip(),
            CriticalityUnit::Layer => run
                .sites
                .iter()
                .enumerate()
                .map(|(i, site)| (vec![i], site.name.clone()))
                .unzip(),
        };
        let has_blocks = (0..run.sites.len()).any(|i| !survives_block_thinning(run, i));
        let thinning = match self.cfg.thinning {
            Thinning::Block if !has_blocks => {
                run.record(
                    "deepreduce: the network has no two-ReLU blocks to thin; thinning by channels"
                        .into(),
                );
                Thinning::Channel
            }
            t => t,
        };

        // 1. Criticality: ReLUs only in group g, a short KD fine-tune, validation accuracy.
        let mut crit = vec![];
        for (g, sites) in groups.iter().enumerate() {
            let only: Vec<Vec<bool>> = run
                .units
                .iter()
                .enumerate()
                .map(|(l, u)| vec![sites.contains(&l); u.count])
                .collect();
            let mut probe = s.clone();
            probe.net = run.with_binary_masks(probe.net, &only);
            let mut optim: ModuleOptimizer = run.cfg.recipe.mask_optimizer.build();
            let rates = Rates {
                weights: run.cfg.recipe.lr,
                masks: 0.0,
                schedule: LrSchedule::Constant,
                first_step: 0,
                total_steps: 1,
            };
            let mut stop = StopAfter {
                steps: self.cfg.criticality_steps.max(1),
                done: 0,
            };
            let (probe, _) = train_epoch(
                run,
                probe,
                &mut optim,
                1000 + g,
                rates,
                &LossWeights::ce_kd(),
                &mut stop,
            )?;
            let acc = run.val_acc(&probe.net, None);
            run.log.line(&format!(
                "deepreduce: criticality of {} (ReLUs only there, {} steps): {:.2}%",
                names[g],
                stop.done,
                100.0 * acc
            ));
            crit.push(acc);
        }
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| crit[b].total_cmp(&crit[a]).then(a.cmp(&b)));
        *st = DeepreduceState {
            groups,
            group_names: names,
            criticality: crit,
            order,
            thinning: Some(thinning),
            candidates: vec![],
            epochs_per_candidate: 0,
        };

        // 2-3. Culling and thinning configurations; the largest ones within the budget are the
        // candidates (ties: fewer kept groups thinned less, i.e. enumeration order).
        let mut configs = vec![];
        for j in 0..=st.groups.len() {
            for t in 0..=self.max_level(st) {
                if j == 0 && t > 0 {
                    continue;
                }
                let relus = run.kept(&config_masks(run, st, j, t));
                if relus <= run.budget && !configs.iter().any(|c: &Candidate| c.relus == relus) {
                    configs.push(Candidate {
                        culled_to: j,
                        thinning: t,
                        relus,
                        val_acc: None,
                    });
                }
            }
        }
        configs.sort_by_key(|c| std::cmp::Reverse(c.relus));
        configs.truncate(self.cfg.candidates.max(1));
        let mask_epochs = run.cfg.recipe.mask_epochs;
        let count = configs.len().min(mask_epochs).max(1);
        configs.truncate(count);
        st.epochs_per_candidate = mask_epochs / count;
        st.candidates = configs;
        let order_names: Vec<&str> = st.order.iter().map(|&g| st.group_names[g].as_str()).collect();
        let cands: Vec<String> = st
            .candidates
            .iter()
            .map(|c| format!("{} groups thinned at level {} = {} ReLUs", c.culled_to, c.thinning, c.relus))
            .collect();
        run.record(format!(
            "deepreduce: criticality {} (order {}); thinning {:?}; candidates, {} epochs each: {}",
            fmt_list(&st.criticality),
            order_names.join(">"),
            thinning,
            st.epochs_per_candidate,
            cands.join("; ")
        ));
        self.write_pareto(run, st)?;
        Ok(s)
    }

    fn mask_epochs(&self, _run: &Run, st: &DeepreduceState) -> usize {
        st.candidates.len() * st.epochs_per_candidate
    }

    fn mask_epoch(
        &self,
        run: &mut Run,
        st: &mut DeepreduceState,
        mut s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        let per = st.epochs_per_candidate.max(1);
        let (i, within) = ((epoch - 1) / per, (epoch - 1) % per);
        let c = st.candidates[i].clone();
        if within == 0 {
            // Each candidate starts from the teacher's weights with its own optimizer.
            s = run.student_from_teacher()?;
            s.net = run.with_binary_masks(s.net, &config_masks(run, st, c.culled_to, c.thinning));
            *optim = run.cfg.recipe.mask_optimizer.build();
        }
        // A candidate is fine-tuned as the final model will be: KD, cosine from the fine-tune
        // learning rate over its epochs.
        let rates = Rates::finetune(run, within, per);
        let (s, e) = train_epoch(run, s, optim, epoch, rates, &LossWeights::ce_kd(), &mut Frozen)?;
        if within + 1 == per {
            let acc = run.val_acc(&s.net, None);
            st.candidates[i].val_acc = Some(acc);
            let path = candidate_path(run, i);
            std::fs::create_dir_all(path.parent().unwrap_or(&run.dir.root))?;
            write_atomic(&path, &module_bytes(&s.net)?)?;
            run.log.line(&format!(
                "deepreduce: candidate {} ({} ReLUs) fine-tuned: validation {:.2}%",
                i + 1,
                c.relus,
                100.0 * acc
            ));
            self.write_pareto(run, st)?;
        }
        Ok((s, e))
    }

    fn live_relus(&self, run: &Run, _st: &DeepreduceState, s: &Student) -> usize {
        run.kept(&net_unit_masks(&run.units, &s.net))
    }

    fn finalize(
        &self,
        run: &mut Run,
        st: &mut DeepreduceState,
        mut s: Student,
    ) -> Result<(Student, FinalMasks)> {
        // The best fine-tuned candidate (ties: the larger); untrained candidates only if none
        // was fine-tuned (no mask-phase epochs).
        let best = (0..st.candidates.len())
            .max_by(|&a, &b| {
                let (ca, cb) = (&st.candidates[a], &st.candidates[b]);
                ca.val_acc
                    .unwrap_or(-1.0)
                    .total_cmp(&cb.val_acc.unwrap_or(-1.0))
                    .then(ca.relus.cmp(&cb.relus))
            })
            .context("deepreduce has no candidate configuration")?;
        let c = st.candidates[best].clone();
        let path = candidate_path(run, best);
        if c.val_acc.is_some() {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            s.net = module_from_bytes(s.net, bytes)?;
        } else {
            s = run.student_from_teacher()?;
        }
        let masks = config_masks(run, st, c.culled_to, c.thinning);
        let points: Vec<String> = st
            .candidates
            .iter()
            .filter_map(|c| c.val_acc.map(|a| format!("{}@{:.2}%", c.relus, 100.0 * a)))
            .collect();
        run.record(format!(
            "deepreduce: fine-tuned Pareto points (ReLUs@validation) {}; chosen: {} ReLUs",
            points.join(" "),
            c.relus
        ));
        // Priorities for a cut: chosen units first, then by group criticality, then by
        // thinning level (coarse-grid channels first), so filling up continues the structure.
        let thinning = st.thinning.unwrap_or(Thinning::Channel);
        let groups = st.groups.len();
        let rank_of_site: Vec<usize> = (0..run.sites.len())
            .map(|l| {
                st.order
                    .iter()
                    .position(|&g| st.groups[g].contains(&l))
                    .unwrap_or(groups)
            })
            .collect();
        let scores = masks
            .iter()
            .enumerate()
            .map(|(l, m)| {
                m.iter()
                    .enumerate()
                    .map(|(i, &b)| {
                        if b {
                            1e6
                        } else {
                            let level = (0..=self.max_level(st))
                                .rev()
                                .find(|&t| thinned_keeps(run, thinning, l, i, t))
                                .unwrap_or(0);
                            ((groups - rank_of_site[l].min(groups)) * 100) as f32 + level as f32
                        }
                    })
                    .collect()
            })
            .collect();
        Ok((s, FinalMasks { masks, scores }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `paper` is the paper's structure; where the paper is silent it is `fast`.
    #[test]
    fn paper_preset_is_the_papers_structure_and_fast_where_the_paper_is_silent() {
        let (r, c) = Deepreduce::preset(Preset::Paper);
        assert_eq!(c.criticality, CriticalityUnit::Stage);
        assert_eq!(c.thinning, Thinning::Block);
        assert_eq!(r.temperature, 4.0);
        assert_eq!((r, c), Deepreduce::preset(Preset::Fast));
    }
}
