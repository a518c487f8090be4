//! What a linearization epoch minimises: cross-entropy and distillation from the all-ReLU
//! teacher (KD, attention transfer, post-activation consistency), plus whatever a method's
//! [`Hooks`] add (masks for the forward pass, a budget penalty). The epoch itself is the crate's
//! one training loop ([`crate::train::epoch::run_epoch`]).

use anyhow::Result;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::ModuleOptimizer;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::Tensor;

use super::config::LrSchedule;
use super::losses;
use super::masks::{Student, learning_rates, with_masks};
use super::run::Run;
use crate::model::{NetSpec, ReluSite};
use crate::rng::Rng;
use crate::train::epoch::{
    EpochData, EpochStats, Objective, TrainBatch, run_epoch, steps_per_epoch,
};

/// Coefficients of the loss terms of a training phase.
#[derive(Debug, Clone, Default)]
pub struct LossWeights {
    /// Cross-entropy on the labels.
    pub ce: f64,
    /// KD from the teacher's logits.
    pub kd: f64,
    /// Attention transfer β (per site in `attention_sites`).
    pub attention: f64,
    /// Sites compared by attention transfer.
    pub attention_sites: Vec<usize>,
    /// Per-site weights of the post-activation MSE (empty: none).
    pub consistency: Vec<f64>,
}

impl LossWeights {
    /// `CE + KD`.
    pub fn ce_kd() -> Self {
        Self {
            ce: 1.0,
            kd: 1.0,
            ..Default::default()
        }
    }

    fn needs_features(&self) -> bool {
        (self.attention > 0.0 && !self.attention_sites.is_empty()) || !self.consistency.is_empty()
    }
}

/// What a method plugs into a training epoch.
pub trait Hooks {
    /// Masks for this step's forward pass (gate-shaped, on the training device); `None` uses the
    /// network's own masks.
    fn masks(&mut self, _run: &Run, _s: &Student) -> Option<Vec<Tensor<3>>> {
        None
    }
    /// An extra loss term computed from this step's masks.
    fn penalty(&mut self, _run: &Run, _masks: &[Tensor<3>]) -> Option<Tensor<1>> {
        None
    }
    /// Whether [`Hooks::observe`] wants the activations.
    fn observes(&self) -> bool {
        false
    }
    /// The student's pre-activations and the teacher's post-activations of every ReLU site
    /// (detached), each step.
    fn observe(&mut self, _run: &Run, _student_pre: &[Tensor<4>], _teacher_post: &[Tensor<4>]) {}
    /// After the optimizer step; `true` ends the epoch now.
    fn after_step(&mut self, _run: &Run, _s: &Student) -> bool {
        false
    }
    /// Text for the progress bar.
    fn status(&self) -> String {
        String::new()
    }
}

/// Frozen masks and no extras: fine-tuning.
pub struct Frozen;
impl Hooks for Frozen {}

/// Learning rates over a phase: both groups follow `schedule` from their peaks.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Peak learning rate of the weights.
    pub weights: f64,
    /// Peak learning rate of the mask parameters.
    pub masks: f64,
    /// Shape over the phase.
    pub schedule: LrSchedule,
    /// Index of this epoch's first step within the phase.
    pub first_step: usize,
    /// Steps of the whole phase.
    pub total_steps: usize,
}

impl Rates {
    /// The mask-phase rates of epoch `index` (0-based within the phase) of `epochs`.
    pub fn mask_phase(run: &Run, index: usize, epochs: usize) -> Self {
        let r = &run.cfg.recipe;
        let steps = steps_per_epoch(run.train.len(), r.batch_size);
        Self {
            weights: r.lr,
            masks: r.mask_lr,
            schedule: r.mask_schedule,
            first_step: index * steps,
            total_steps: steps * epochs.max(1),
        }
    }

    /// Fine-tuning rates of epoch `index` of `epochs`: cosine from the recipe's peak to 0.
    pub fn finetune(run: &Run, index: usize, epochs: usize) -> Self {
        let r = &run.cfg.recipe;
        let steps = steps_per_epoch(run.train.len(), r.batch_size);
        Self {
            weights: r.finetune_lr,
            masks: 0.0,
            schedule: LrSchedule::Cosine { floor: 0.0 },
            first_step: index * steps,
            total_steps: steps * epochs.max(1),
        }
    }

    fn at(&self, step: usize) -> ModuleLearningRate {
        let t = (self.first_step + step) as f64 / self.total_steps.max(1) as f64;
        learning_rates(
            self.schedule.at(self.weights, t),
            self.schedule.at(self.masks, t),
        )
    }
}

/// Trains `s` one epoch on the run's training set (augmented when the teacher was), with the
/// loss `weights` plus the `hooks`.
pub fn train_epoch(
    run: &Run,
    s: Student,
    optim: &mut ModuleOptimizer,
    epoch: usize,
    rates: Rates,
    weights: &LossWeights,
    hooks: &mut dyn Hooks,
) -> Result<(Student, EpochStats)> {
    let seed = run.cfg.seed;
    let n = run.train.len();
    let batch_size = run.cfg.recipe.batch_size;
    let data = EpochData {
        set: &run.train,
        norm: &run.tcfg.normalization,
        batch_size,
        order: Rng::derive(seed ^ 0x11AE, epoch as u64).permutation(n),
        // The teacher was trained on augmented images: the student sees them too (same crop
        // and flip for both, since the teacher reads the same batch).
        augment: run
            .tcfg
            .augment
            .then(|| Rng::derive(seed ^ 0xA116, epoch as u64)),
        device: &run.dev,
        epoch,
    };
    let mut objective = Distill {
        run,
        ce: CrossEntropyLossConfig::new().init(&run.dev),
        weights,
        hooks,
        rates,
    };
    let bar = run.log.batch_bar(steps_per_epoch(n, batch_size));
    run_epoch(s, optim, data, &mut objective, &bar)
}

struct Distill<'a> {
    run: &'a Run,
    ce: CrossEntropyLoss,
    weights: &'a LossWeights,
    hooks: &'a mut dyn Hooks,
    rates: Rates,
}

impl Objective<Student> for Distill<'_> {
    fn loss(&mut self, s: &Student, batch: &TrainBatch) -> Result<(Tensor<1>, Tensor<2>)> {
        let run = self.run;
        let w = self.weights;
        let feats = w.needs_features() || self.hooks.observes();
        let t_all = run.teacher.forward_all(batch.images_on(&run.plain), feats);
        let to_dev = |t: Tensor<4>| Tensor::from_data(t.into_data(), &run.dev);
        let (t_logits, t_post) = if feats {
            let (l, post, _) = split_outputs(&run.spec, &run.sites, t_all);
            (
                Tensor::from_data(l.into_data(), &run.dev),
                post.into_iter().map(to_dev).collect(),
            )
        } else {
            let [n, c, h, ww] = t_all[0].dims();
            let l = t_all[0].clone().reshape([n, c * h * ww]);
            (Tensor::from_data(l.into_data(), &run.dev), vec![])
        };
        let masks = self.hooks.masks(run, s);
        let penalty = masks.as_ref().and_then(|m| self.hooks.penalty(run, m));
        let net = match masks {
            Some(m) => with_masks(&s.net, m),
            None => s.net.clone(),
        };
        let (logits, post, pre) = if feats {
            split_outputs(
                &run.spec,
                &run.sites,
                net.forward_all(batch.images.clone(), true),
            )
        } else {
            (net.forward(batch.images.clone()), vec![], vec![])
        };
        let mut loss = self
            .ce
            .forward(logits.clone(), batch.targets.clone())
            .mul_scalar(w.ce)
            .add(losses::kd(logits.clone(), t_logits, run.cfg.recipe.temperature).mul_scalar(w.kd));
        if w.attention > 0.0 {
            for &i in &w.attention_sites {
                let at = losses::attention_transfer(post[i].clone(), t_post[i].clone());
                loss = loss + at.mul_scalar(w.attention);
            }
        }
        for ((f, t), &wl) in post.iter().zip(&t_post).zip(&w.consistency) {
            loss = loss + losses::mse(f.clone(), t.clone()).mul_scalar(wl);
        }
        if let Some(p) = penalty {
            loss = loss + p;
        }
        if self.hooks.observes() {
            let pre: Vec<Tensor<4>> = pre.into_iter().map(|f| f.detach()).collect();
            self.hooks.observe(run, &pre, &t_post);
        }
        Ok((loss, logits))
    }

    fn learning_rate(&self, step: usize) -> ModuleLearningRate {
        self.rates.at(step)
    }

    fn after_step(&mut self, s: &Student) -> Result<bool> {
        Ok(self.hooks.after_step(self.run, s))
    }

    fn status(&self) -> String {
        self.hooks.status()
    }
}

/// Logits, post-activations and pre-activations of every ReLU site from a full forward pass.
pub fn split_outputs(
    spec: &NetSpec,
    sites: &[ReluSite],
    all: Vec<Tensor<4>>,
) -> (Tensor<2>, Vec<Tensor<4>>, Vec<Tensor<4>>) {
    let post = sites.iter().map(|s| all[s.step + 1].clone()).collect();
    let pre = sites
        .iter()
        .map(|s| all[spec.steps[s.step].input].clone())
        .collect();
    let out = all.last().expect("a graph has an output").clone();
    let [n, c, h, w] = out.dims();
    (out.reshape([n, c * h * w]), post, pre)
}
