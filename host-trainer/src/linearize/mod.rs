//! Linearization: learn which ReLUs to keep under a ReLU budget, then fine-tune the masked model.
//!
//! Every method uses the one masked activation `y = x − m·min(x, 0)` of
//! [`crate::model::masked_relu`]; they differ in how `m` is parameterised and how the budget is
//! enforced (linearization.md §11):
//!
//! | method | mask phase | budget |
//! |---|---|---|
//! | [`Method::Snl`] | real-valued `α` (init 1), CE + KD + λ·L1, λ ×1.1 on stalls | stop at budget, hard threshold `α > 0.01` |
//! | [`Method::Autorep`] | hard mask, STE gradient softplus(a), hysteresis `t` | hinge on global density |
//! | [`Method::Senet`] | per-layer budgets from sensitivity, locations by top-k of the teacher–student gap | exact per-layer counts |
//! | [`Method::Streamlinet`] | per-layer budgets from ReLU negativity and cost, STE masks, cost-aware consistency | per-layer top-k |
//! | [`Method::Deepreduce`] | layer criticality, culling + thinning, Pareto points | coarse configs |
//!
//! Then masks are frozen (binary) and the weights fine-tuned with KD from the all-ReLU teacher
//! (the `--from` run's model). The final model keeps at most the budget and at least 97% of it;
//! a method that ends outside is projected by top-k of its own scores (recorded in the report).
//!
//! A linearization run is a folder like a training run ([`RunDir`]): `config.json` (the teacher's
//! training config, so `export` and `eval` work unchanged), `linearize.json`, `checkpoint.ckpt`
//! plus `state/epoch-N.json` (resumable at every epoch), `best.bpk`, `model.bpk`, `metrics.csv`,
//! `train.log`, `report.json` / `report.md`.

pub mod args;
pub mod budget;
pub mod losses;

mod autorep;
mod deepreduce;
mod senet;
mod snl;
mod streamlinet;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{Module, Param, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use budget::Budget;

use crate::data::{ImageSet, batch};
use crate::model::{Net, NetSpec, ReluSite, to_f32_vec};
use crate::rng::Rng;
use crate::train::checkpoint::{self, Checkpoint, TrainState};
use crate::train::evaluate::score;
use crate::train::progress::RunLog;
use crate::train::{RunDir, RunOptions, TrainConfig, run_dir};

/// A linearization method.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// SNL (Cho et al., ICML'22): trainable mask, L1 with a growing λ, threshold, fine-tune.
    Snl,
    /// AutoReP-style (Peng et al., ICCV'23): STE hard masks with hysteresis, density hinge.
    Autorep,
    /// SENet (Kundu et al., ICLR'23): sensitivity budgets, gap-based locations, KD + AT.
    Senet,
    /// StreamliNet (Pang et al., 2024), reconstructed: negativity budgets, per-layer STE masks.
    Streamlinet,
    /// DeepReDuce (Jha et al., ICML'21): criticality-ordered culling and thinning.
    Deepreduce,
}

impl Method {
    /// Every method, in the order used in tables.
    pub const ALL: [Method; 5] = [
        Self::Snl,
        Self::Autorep,
        Self::Senet,
        Self::Streamlinet,
        Self::Deepreduce,
    ];

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Snl => "snl",
            Self::Autorep => "autorep",
            Self::Senet => "senet",
            Self::Streamlinet => "streamlinet",
            Self::Deepreduce => "deepreduce",
        }
    }

    fn imp(self) -> Box<dyn MethodImpl> {
        match self {
            Self::Snl => Box::new(snl::Snl),
            Self::Autorep => Box::new(autorep::Autorep),
            Self::Senet => Box::new(senet::Senet),
            Self::Streamlinet => Box::new(streamlinet::Streamlinet),
            Self::Deepreduce => Box::new(deepreduce::Deepreduce),
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown method `{s}`: use snl, autorep, senet, streamlinet, deepreduce")
            })
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

/// Everything that determines a linearization run (`linearize.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizeConfig {
    /// The method.
    pub method: Method,
    /// The ReLU budget.
    pub budget: Budget,
    /// Mask granularity.
    pub granularity: Granularity,
    /// The teacher's run folder (its final model is the teacher and the student's start).
    pub from: PathBuf,
    /// Seed of shuffles and random initial masks.
    pub seed: u64,
    /// Use only the first N images of the teacher's training split (the validation split is the
    /// teacher's, untouched).
    pub train_limit: Option<usize>,
    /// Use only the first N validation images for model selection.
    pub val_limit: Option<usize>,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs of the mask phase (SNL may stop earlier, at the budget).
    pub mask_epochs: usize,
    /// Epochs of frozen-mask fine-tuning.
    pub finetune_epochs: usize,
    /// Adam learning rate of the weights (constant in the mask phase, cosine in fine-tuning).
    pub lr: f64,
    /// Learning rate of the mask parameters (through the reparameterisation `gate = s·θ`).
    pub mask_lr: f64,
    /// KD temperature.
    pub temperature: f64,
    /// SNL: initial λ.
    pub snl_lambda: f64,
    /// SNL: steps between λ updates (the paper updates once per epoch).
    pub snl_lambda_every: usize,
    /// AutoReP: weight of the density hinge.
    pub autorep_lambda: f64,
    /// AutoReP: hysteresis threshold `t`.
    pub autorep_threshold: f64,
    /// SENet: weight β of attention transfer in fine-tuning.
    pub at_beta: f64,
    /// StreamliNet: weight of the cost-aware post-activation consistency term.
    pub consistency_beta: f64,
    /// DeepReDuce: fine-tune steps per layer when measuring criticality.
    pub criticality_steps: usize,
}

impl LinearizeConfig {
    /// Defaults for `method` at `budget` from the run folder `from`.
    pub fn new(method: Method, budget: Budget, from: &Path) -> Self {
        Self {
            method,
            budget,
            granularity: Granularity::Element,
            from: from.to_path_buf(),
            seed: 1,
            train_limit: None,
            val_limit: None,
            batch_size: 64,
            mask_epochs: 2,
            finetune_epochs: 2,
            lr: 1e-3,
            mask_lr: 2e-2,
            temperature: 4.0,
            snl_lambda: 1e-3,
            snl_lambda_every: 2,
            autorep_lambda: 50.0,
            autorep_threshold: 0.003,
            at_beta: 1000.0,
            consistency_beta: 1.0,
            criticality_steps: 40,
        }
    }
}

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
    pub method: Method,
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
    /// Best validation accuracy during fine-tuning (the selected model).
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
    /// Wall time of all calls so far, seconds.
    pub wall_s: f64,
    /// Seed.
    pub seed: u64,
    /// Training images used.
    pub train_images: usize,
    /// Whether the final masks were projected by top-k (the method ended off budget).
    pub projected: bool,
    /// What the method decided (allocations, projections, Pareto points), for the report.
    pub notes: Vec<String>,
}

/// The progress of a run, saved as `state/epoch-N.json` next to each checkpoint (the
/// checkpoint holds the tensors; this holds the method's scalars and scores).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LinState {
    pub epochs_done: usize,
    pub prepared: bool,
    pub mask_epochs_run: usize,
    /// The mask phase ended early (SNL reached its budget).
    pub mask_stopped: bool,
    /// Masks are final (binary, frozen).
    pub finalized: bool,
    pub finetune_done: usize,
    pub best_val_acc: f64,
    pub best_epoch: usize,
    pub teacher_val_acc: f64,
    pub wall_s: f64,
    pub projected: bool,
    pub notes: Vec<String>,
    /// Current ReLU count (for the bars and metrics).
    pub count: usize,
    /// SNL: λ and the lowest count so far; steps of the mask phase.
    pub lambda: f64,
    pub lowest: usize,
    pub steps: usize,
    /// Per-layer budgets in units (SENet, StreamliNet).
    pub layer_units: Vec<usize>,
    /// Per-unit scores (SENet gaps, DeepReDuce priorities).
    pub scores: Vec<Vec<f32>>,
    /// Per-layer scores (sensitivity, negativity, criticality).
    pub layer_scores: Vec<f64>,
    /// DeepReDuce: the chosen configuration's unit masks.
    pub chosen: Vec<Vec<bool>>,
}

/// A student: the network plus the mask parameters of the methods that learn masks.
#[derive(Module, Debug)]
pub struct Student {
    /// The network; its own masks are the frozen binary masks once a method has set them.
    pub net: Net,
    /// Trainable mask parameters `θ` per ReLU site (gate value = `mask_lr / lr · θ`).
    pub gates: Vec<Param<Tensor<3>>>,
    /// Non-trainable per-unit state (AutoReP's hysteresis mask).
    pub aux: Vec<Param<Tensor<3>>>,
}

/// Shape of the mask units of one ReLU site.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Units {
    /// Gate shape: `[C, H, W]` (element) or `[C, 1, 1]` (channel).
    pub shape: [usize; 3],
    /// Full activation shape `[C, H, W]`.
    pub full: [usize; 3],
    /// Number of units.
    pub count: usize,
    /// ReLUs per unit.
    pub cost: usize,
}

/// Loss weights of a training phase.
#[derive(Debug, Clone, Default)]
pub(crate) struct Weights {
    pub ce: f64,
    pub kd: f64,
    /// Attention transfer on every ReLU site with a spatial map.
    pub at: f64,
    /// Per-site weights of the post-activation MSE (empty: none).
    pub consistency: Vec<f64>,
}

impl Weights {
    fn ce_kd() -> Self {
        Self {
            ce: 1.0,
            kd: 1.0,
            ..Default::default()
        }
    }
}

/// Binary unit masks per site, and per-unit scores for top-k projection.
pub(crate) type MasksAndScores = (Vec<Vec<bool>>, Vec<Vec<f32>>);

/// One epoch's schedule: its number (seeds the shuffle), learning rate per step, loss weights.
pub(crate) struct EpochPlan<'a> {
    pub epoch: usize,
    pub lr: &'a dyn Fn(usize) -> f64,
    pub weights: &'a Weights,
}

/// What a method plugs into the training loop.
pub(crate) trait Hooks {
    /// Masks for this step's forward pass (gate-shaped, on the training device); `None` uses the
    /// network's own (frozen) masks.
    fn masks(&mut self, _ctx: &Ctx, _s: &Student) -> Option<Vec<Tensor<3>>> {
        None
    }
    /// An extra loss term computed from the masks of this step.
    fn penalty(&mut self, _ctx: &Ctx, _masks: &[Tensor<3>]) -> Option<Tensor<1>> {
        None
    }
    /// Whether [`Hooks::observe`] needs the post-activations.
    fn needs_feats(&self) -> bool {
        false
    }
    /// Student pre-activations and teacher post-activations of each ReLU site (detached).
    fn observe(&mut self, _ctx: &Ctx, _student_pre: &[Tensor<4>], _teacher: &[Tensor<4>]) {}
    /// After the optimizer step; `true` ends the phase now.
    fn after_step(&mut self, _ctx: &Ctx, _st: &mut LinState, _s: &Student) -> bool {
        false
    }
    /// Text for the progress bar (live ReLU count, λ).
    fn status(&self, st: &LinState) -> String {
        format!("ReLUs {}", st.count)
    }
}

/// Frozen masks, no extras: fine-tuning.
struct Frozen;
impl Hooks for Frozen {}

/// A method: preparation, one mask-phase epoch, and the final binary masks.
pub(crate) trait MethodImpl {
    /// Before the first epoch: allocations, initial gates/masks.
    fn prepare(&self, ctx: &mut Ctx, st: &mut LinState, s: Student) -> Result<Student>;
    /// Whether the method has a gradient mask phase (DeepReDuce has none).
    fn has_mask_phase(&self) -> bool {
        true
    }
    /// One epoch of the mask phase.
    fn mask_epoch(
        &self,
        ctx: &mut Ctx,
        st: &mut LinState,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)>;
    /// Masks the forward pass uses now (for validation during the mask phase).
    fn eval_masks(&self, _ctx: &Ctx, _st: &LinState, _s: &Student) -> Option<Vec<Tensor<3>>> {
        None
    }
    /// The method's binary unit masks and its per-unit scores (used for top-k projection when
    /// the masks are off budget).
    fn finalize(&self, ctx: &mut Ctx, st: &mut LinState, s: &Student) -> Result<MasksAndScores>;
    /// Loss weights of frozen-mask fine-tuning.
    fn finetune_weights(&self, _ctx: &Ctx, _st: &LinState) -> Weights {
        Weights::ce_kd()
    }
}

/// Everything a method needs during a run.
pub(crate) struct Ctx {
    pub cfg: LinearizeConfig,
    pub tcfg: TrainConfig,
    pub spec: NetSpec,
    pub sites: Vec<ReluSite>,
    pub units: Vec<Units>,
    pub budget: usize,
    pub total: usize,
    pub dev: Device,
    pub plain: Device,
    pub teacher: Net,
    pub train: ImageSet,
    pub val: ImageSet,
    pub test: ImageSet,
    pub log: RunLog,
    pub run: RunDir,
}

/// Statistics of one epoch.
#[derive(Debug, Clone, Default)]
pub(crate) struct EpochStats {
    pub loss: f64,
    pub acc: f64,
    pub secs: f64,
    /// A hook ended the phase during the epoch.
    pub stopped: bool,
}

impl Ctx {
    /// Scale from `θ` to gate value (so Adam's step on the gate is `mask_lr`).
    pub fn gate_scale(&self) -> f64 {
        self.cfg.mask_lr / self.cfg.lr
    }

    /// Current gate values per site (on the training device, differentiable).
    pub fn gate_values(&self, s: &Student) -> Vec<Tensor<3>> {
        let k = self.gate_scale();
        s.gates.iter().map(|g| g.val().mul_scalar(k)).collect()
    }

    /// Current gate values per site, on the CPU.
    pub fn gate_vecs(&self, s: &Student) -> Vec<Vec<f32>> {
        let k = self.gate_scale() as f32;
        s.gates
            .iter()
            .map(|g| to_f32_vec(g.val()).into_iter().map(|v| v * k).collect())
            .collect()
    }

    /// Sets the gate values (`θ = v / scale`).
    pub fn set_gates(&self, mut s: Student, values: &[Vec<f32>]) -> Student {
        let k = self.gate_scale() as f32;
        for ((g, v), u) in s.gates.iter_mut().zip(values).zip(&self.units) {
            let theta: Vec<f32> = v.iter().map(|x| x / k).collect();
            let t = Tensor::from_data(TensorData::new(theta, u.shape), &self.dev);
            *g = Param::initialized(g.id, t.require_grad());
        }
        s
    }

    /// Unit costs per site.
    pub fn costs(&self) -> Vec<usize> {
        self.units.iter().map(|u| u.cost).collect()
    }

    /// A gate-shaped tensor on the training device from values.
    pub fn unit_tensor(&self, site: usize, values: Vec<f32>) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, self.units[site].shape), &self.dev)
    }

    /// Kept ReLUs of unit masks.
    pub fn kept(&self, masks: &[Vec<bool>]) -> usize {
        budget::kept(masks, &self.costs())
    }
}

/// The net with its masks replaced by `masks` (gate-shaped; broadcast over the batch and, for
/// channel masks, over H and W). The replacement may carry gradients to the gates.
pub(crate) fn with_masks(net: &Net, masks: Vec<Tensor<3>>) -> Net {
    let mut n = net.clone();
    for (r, m) in n.relus.iter_mut().zip(masks) {
        r.mask = Param::initialized(ParamId::new(), m);
    }
    n
}

/// Expands unit masks to full `[C, H, W]` 0/1 values.
pub(crate) fn expand(units: &Units, mask: &[bool]) -> Vec<f32> {
    let per = units.full.iter().product::<usize>() / units.count.max(1);
    mask.iter()
        .flat_map(|&b| std::iter::repeat_n(if b { 1.0 } else { 0.0 }, per))
        .collect()
}

/// Writes binary unit masks into the network's own (frozen) masks.
pub(crate) fn set_net_masks(ctx: &Ctx, mut net: Net, masks: &[Vec<bool>]) -> Net {
    for ((r, m), u) in net.relus.iter_mut().zip(masks).zip(&ctx.units) {
        let t = Tensor::from_data(TensorData::new(expand(u, m), u.full), &ctx.dev);
        r.mask = Param::initialized(r.mask.id, t).set_require_grad(false);
    }
    net
}

/// The network's own masks as unit masks (a channel is kept if its first element is).
pub(crate) fn net_unit_masks(ctx: &Ctx, net: &Net) -> Vec<Vec<bool>> {
    net.relus
        .iter()
        .zip(&ctx.units)
        .map(|(r, u)| {
            let v = r.mask_values();
            let per = v.len() / u.count.max(1);
            (0..u.count).map(|i| v[i * per] > 0.5).collect()
        })
        .collect()
}

/// Normalised float images of `idx` as tensors on both devices.
fn images(ctx: &Ctx, set: &ImageSet, idx: &[usize]) -> (Tensor<4>, Tensor<4>, Tensor<1, Int>) {
    let s = set.shape;
    let x = batch::floats(set, idx, &ctx.tcfg.normalization, None);
    let shape = [idx.len(), s.channels, s.height, s.width];
    let ad = Tensor::from_data(TensorData::new(x.clone(), shape), &ctx.dev);
    let plain = Tensor::from_data(TensorData::new(x, shape), &ctx.plain);
    let labels: Vec<i64> = idx.iter().map(|&i| set.labels[i] as i64).collect();
    let y = Tensor::from_data(TensorData::new(labels, [idx.len()]), &ctx.dev);
    (ad, plain, y)
}

/// Moves a tensor to the training device (values only, no gradient).
fn to_dev<const D: usize>(ctx: &Ctx, t: Tensor<D>) -> Tensor<D> {
    Tensor::from_data(t.into_data(), &ctx.dev)
}

/// Logits, post-activations and pre-activations of every ReLU site from a full forward pass.
fn split_outputs(
    spec: &NetSpec,
    sites: &[ReluSite],
    all: Vec<Tensor<4>>,
) -> (Tensor<2>, Vec<Tensor<4>>, Vec<Tensor<4>>) {
    let post = sites.iter().map(|s| all[s.step + 1].clone()).collect();
    let pre = sites
        .iter()
        .map(|s| all[spec.steps[s.step].input].clone())
        .collect();
    let out = all.last().expect("output").clone();
    let [n, c, h, w] = out.dims();
    (out.reshape([n, c * h * w]), post, pre)
}

/// Trains one epoch: forward with the hooks' masks, loss `weights` + penalty, Adam step at
/// `lr(step_in_epoch)`. Ends early when a hook says so.
pub(crate) fn run_epoch(
    ctx: &Ctx,
    st: &mut LinState,
    mut s: Student,
    optim: &mut ModuleOptimizer,
    plan: EpochPlan,
    hooks: &mut dyn Hooks,
) -> Result<(Student, EpochStats)> {
    let EpochPlan {
        epoch,
        lr,
        weights: w,
    } = plan;
    let n = ctx.train.len();
    let bs = ctx.cfg.batch_size;
    let steps = n / bs + usize::from(n % bs >= 2);
    let perm = Rng::derive(ctx.cfg.seed ^ 0x11AE, epoch as u64).permutation(n);
    let ce = CrossEntropyLossConfig::new().init(&ctx.dev);
    let want_feats = hooks.needs_feats() || w.at > 0.0 || !w.consistency.is_empty();
    let bar = ctx.log.batch_bar(steps);
    let start = Instant::now();
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    let mut stopped = false;
    for (b, idx) in perm.chunks(bs).take(steps).enumerate() {
        let (x, xp, y) = images(ctx, &ctx.train, idx);
        let t_all = ctx.teacher.forward_all(xp, want_feats);
        let (t_logits, t_feats) = if want_feats {
            let (l, f, _) = split_outputs(&ctx.spec, &ctx.sites, t_all);
            (
                to_dev(ctx, l),
                f.into_iter().map(|f| to_dev(ctx, f)).collect(),
            )
        } else {
            let [bn, c, h, ww] = t_all[0].dims();
            (
                to_dev(ctx, t_all[0].clone().reshape([bn, c * h * ww])),
                vec![],
            )
        };
        let masks = hooks.masks(ctx, &s);
        let penalty = masks.as_ref().and_then(|m| hooks.penalty(ctx, m));
        let net = match masks {
            Some(m) => with_masks(&s.net, m),
            None => s.net.clone(),
        };
        let (logits, feats, pre) = if want_feats {
            split_outputs(&ctx.spec, &ctx.sites, net.forward_all(x, true))
        } else {
            (net.forward(x), vec![], vec![])
        };
        let mut loss = ce
            .forward(logits.clone(), y.clone())
            .mul_scalar(w.ce)
            .add(losses::kd(logits.clone(), t_logits, ctx.cfg.temperature).mul_scalar(w.kd));
        if w.at > 0.0 {
            for (f, t) in feats.iter().zip(&t_feats) {
                let [_, _, h, ww] = f.dims();
                if h * ww > 1 {
                    loss = loss + losses::attention_transfer(f.clone(), t.clone()).mul_scalar(w.at);
                }
            }
        }
        for ((f, t), &wl) in feats.iter().zip(&t_feats).zip(&w.consistency) {
            loss = loss + losses::mse(f.clone(), t.clone()).mul_scalar(wl);
        }
        if let Some(p) = penalty {
            loss = loss + p;
        }
        if hooks.needs_feats() {
            let sd: Vec<Tensor<4>> = pre.iter().map(|f| f.clone().detach()).collect();
            hooks.observe(ctx, &sd, &t_feats);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &s);
        s = optim.step(lr(b), s, grads);
        let pred = logits.argmax(1).reshape([idx.len()]);
        let ok: i64 = pred.equal(y).int().sum().into_scalar();
        let l: f32 = loss.into_scalar();
        if !l.is_finite() {
            bail!("linearization diverged at epoch {epoch}, batch {b} (loss {l}); lower --lr");
        }
        loss_sum += l as f64 * idx.len() as f64;
        correct += ok as usize;
        seen += idx.len();
        stopped = hooks.after_step(ctx, st, &s);
        bar.inc(1);
        bar.set_message(format!(
            "loss {:.4} acc {:.2}% | {}",
            loss_sum / seen as f64,
            100.0 * correct as f64 / seen as f64,
            hooks.status(st)
        ));
        if stopped {
            break;
        }
    }
    bar.finish_and_clear();
    Ok((
        s,
        EpochStats {
            loss: loss_sum / seen.max(1) as f64,
            acc: correct as f64 / seen.max(1) as f64,
            secs: start.elapsed().as_secs_f64(),
            stopped,
        },
    ))
}

/// One mask-phase epoch at the constant weight learning rate.
pub(crate) fn mask_phase_epoch(
    ctx: &Ctx,
    st: &mut LinState,
    s: Student,
    optim: &mut ModuleOptimizer,
    epoch: usize,
    weights: &Weights,
    hooks: &mut dyn Hooks,
) -> Result<(Student, EpochStats)> {
    let lr = ctx.cfg.lr;
    let plan = EpochPlan {
        epoch,
        lr: &|_| lr,
        weights,
    };
    run_epoch(ctx, st, s, optim, plan, hooks)
}

/// Validation accuracy of `net` with optional override masks.
pub(crate) fn val_acc(ctx: &Ctx, net: &Net, masks: Option<Vec<Tensor<3>>>) -> f64 {
    let v = net.valid();
    let v = match masks {
        Some(m) => {
            let plain: Vec<Tensor<3>> = m
                .into_iter()
                .map(|t| Tensor::from_data(t.into_data(), &ctx.plain))
                .collect();
            with_masks(&v, plain)
        }
        None => v,
    };
    score(&v, &ctx.val, &ctx.tcfg.normalization, &ctx.plain, 256).acc
}

fn adam() -> ModuleOptimizer {
    AdamConfig::new().init()
}

fn state_path(run: &RunDir, epoch: usize) -> PathBuf {
    run.root.join("state").join(format!("epoch-{epoch}.json"))
}

fn config_path(run: &RunDir) -> PathBuf {
    run.root.join("linearize.json")
}

fn student_bytes(s: &Student) -> Result<Vec<u8>> {
    let bytes = s
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bytes.to_vec())
}

fn empty_student(ctx: &Ctx) -> Student {
    let net = Net::new(&ctx.spec, &ctx.dev);
    let mk = |v: f32| -> Vec<Param<Tensor<3>>> {
        ctx.units
            .iter()
            .map(|u| Param::from_tensor(Tensor::ones(u.shape, &ctx.dev).mul_scalar(v)))
            .collect()
    };
    let aux = mk(1.0)
        .into_iter()
        .map(|p| p.set_require_grad(false))
        .collect();
    Student {
        net,
        gates: mk(1.0),
        aux,
    }
}

fn student_from_bytes(ctx: &Ctx, bytes: Vec<u8>) -> Result<Student> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("student parameters: {e}"))?;
    empty_student(ctx)
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("checkpoint does not fit this run: {e}"))
}

fn save(ctx: &Ctx, st: &LinState, s: &Student, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let dir = ctx.run.root.join("state");
    std::fs::create_dir_all(&dir)?;
    // The state file first: the checkpoint names the epoch whose state file must exist.
    checkpoint::write_atomic(
        &state_path(&ctx.run, st.epochs_done),
        serde_json::to_string(st)?.as_bytes(),
    )?;
    let ob = optim
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("optimizer state: {e}"))?;
    let ob = ob.to_vec();
    Checkpoint {
        state: TrainState {
            epochs_done: st.epochs_done,
            best_val_acc: st.best_val_acc,
            best_epoch: st.best_epoch,
        },
        model: student_bytes(s)?,
        optimizer: ob.clone(),
    }
    .save(&ctx.run.checkpoint())?;
    adam()
        .from_bytes(Bytes::from_bytes_vec(ob))
        .map_err(|e| anyhow::anyhow!("optimizer state: {e}"))
}

const METRICS_HEADER: &str = "epoch,phase,train_loss,train_acc,val_acc,relus,lambda,seconds";

fn metrics_row(ctx: &Ctx, epoch: usize, phase: &str, e: &EpochStats, val: f64, st: &LinState) {
    let line = format!(
        "{epoch},{phase},{:.5},{:.5},{:.5},{},{:.4e},{:.2}\n",
        e.loss, e.acc, val, st.count, st.lambda, e.secs
    );
    // Metrics are a convenience; a failed append must not lose the run.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctx.run.metrics())
    {
        let _ = f.write_all(line.as_bytes());
    }
}

fn build_ctx(cfg: &LinearizeConfig, run: &RunDir, quiet: bool) -> Result<Ctx> {
    let from = RunDir::new(&cfg.from);
    let tcfg = from
        .read_config()
        .with_context(|| format!("--from {}", cfg.from.display()))?;
    let dev = tcfg.backend.train_device()?;
    let plain = tcfg.backend.device()?;
    let (_, teacher) = run_dir::load_trained(&from, &plain)?;
    let spec = teacher.spec.clone();
    let sites = spec.relu_sites();
    let units = sites
        .iter()
        .map(|s| {
            let full = [s.shape.c, s.shape.h, s.shape.w];
            match cfg.granularity {
                Granularity::Element => Units {
                    shape: full,
                    full,
                    count: s.shape.len(),
                    cost: 1,
                },
                Granularity::Channel => Units {
                    shape: [s.shape.c, 1, 1],
                    full,
                    count: s.shape.c,
                    cost: s.shape.h * s.shape.w,
                },
            }
        })
        .collect();
    let total = spec.total_relus();
    // The teacher's own split: its validation images were never trained on.
    let d = crate::train::load_data(&tcfg)?;
    let (train, val) = (d.train, d.val);
    let train = match cfg.train_limit {
        Some(n) => train.truncate(n),
        None => train,
    };
    let val = match cfg.val_limit {
        Some(n) => val.truncate(n),
        None => val,
    };
    let log = RunLog::new(&run.log(), quiet)
        .with_context(|| format!("opening {}", run.log().display()))?;
    Ok(Ctx {
        budget: cfg.budget.resolve(total),
        cfg: cfg.clone(),
        tcfg,
        spec,
        sites,
        units,
        total,
        dev,
        plain,
        teacher,
        train,
        val,
        test: d.test,
        log,
        run: run.clone(),
    })
}

/// Starts a linearization run in `out` (which must not hold a run yet).
pub fn linearize(cfg: &LinearizeConfig, out: &Path, opts: &RunOptions) -> Result<LinearizeSummary> {
    let run = RunDir::new(out);
    if config_path(&run).exists() || run.checkpoint().exists() {
        bail!(
            "{} already holds a run: continue it with `linearize --resume --out {0}` or choose another --out",
            out.display()
        );
    }
    if cfg.batch_size < 2 {
        bail!("batch size must be >= 2 (BatchNorm needs two samples)");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    checkpoint::write_atomic(
        &config_path(&run),
        serde_json::to_string_pretty(cfg)?.as_bytes(),
    )?;
    drive(cfg, &run, false, opts)
}

/// Continues the linearization run in `out` from its last checkpoint.
pub fn resume(out: &Path, opts: &RunOptions) -> Result<LinearizeSummary> {
    let run = RunDir::new(out);
    let text = std::fs::read_to_string(config_path(&run)).with_context(|| {
        format!(
            "{} is not a linearization run (no linearize.json)",
            out.display()
        )
    })?;
    let cfg: LinearizeConfig = serde_json::from_str(&text).context("invalid linearize.json")?;
    drive(&cfg, &run, true, opts)
}

/// Reads a completed run's summary (`report.json`), if any.
pub fn read_summary(out: &Path) -> Option<LinearizeSummary> {
    let text = std::fs::read_to_string(RunDir::new(out).report_json()).ok()?;
    serde_json::from_str(&text).ok()
}

fn drive(
    cfg: &LinearizeConfig,
    run: &RunDir,
    resuming: bool,
    opts: &RunOptions,
) -> Result<LinearizeSummary> {
    let call_start = Instant::now();
    let mut ctx = build_ctx(cfg, run, opts.quiet)?;
    let method = cfg.method.imp();
    ctx.log.line(&format!(
        "linearize {} ({:?}) of {} on {}: budget {} ReLUs of {} ({:.2}%), {} train / {} val images",
        cfg.method.name(),
        cfg.granularity,
        ctx.spec.arch,
        ctx.tcfg.dataset.name(),
        ctx.budget,
        ctx.total,
        100.0 * ctx.budget as f64 / ctx.total as f64,
        ctx.train.len(),
        ctx.val.len()
    ));
    let (mut s, mut st, mut optim) = if resuming && run.checkpoint().exists() {
        let ck = Checkpoint::load(&run.checkpoint())?;
        let text = std::fs::read_to_string(state_path(run, ck.state.epochs_done))
            .context("state file of the last checkpoint is missing")?;
        let st: LinState = serde_json::from_str(&text).context("invalid state file")?;
        let s = student_from_bytes(&ctx, ck.model)?;
        let optim = adam()
            .from_bytes(Bytes::from_bytes_vec(ck.optimizer))
            .map_err(|e| anyhow::anyhow!("checkpoint optimizer state: {e}"))?;
        ctx.log.line(&format!(
            "resumed after epoch {} ({})",
            st.epochs_done,
            if st.finalized {
                "fine-tuning"
            } else {
                "mask phase"
            }
        ));
        (s, st, optim)
    } else {
        if !run.metrics().exists() {
            std::fs::write(run.metrics(), format!("{METRICS_HEADER}\n"))?;
        }
        let mut s = empty_student(&ctx);
        // The student starts as the teacher, on the training device.
        s.net =
            run_dir::model_from_bytes(&ctx.spec, run_dir::model_bytes(&ctx.teacher)?, &ctx.dev)?;
        let st = LinState {
            teacher_val_acc: val_acc(&ctx, &s.net, None),
            count: ctx.total,
            best_val_acc: -1.0,
            ..Default::default()
        };
        (s, st, adam())
    };

    if !st.prepared {
        s = method.prepare(&mut ctx, &mut st, s)?;
        st.prepared = true;
        ctx.log.line(&format!(
            "teacher validation accuracy {:.2}%",
            100.0 * st.teacher_val_acc
        ));
        for n in &st.notes {
            ctx.log.line(n);
        }
        optim = save(&ctx, &st, &s, optim)?;
    }
    let stop_at = opts.stop_after_epochs.unwrap_or(usize::MAX);
    let wall = |st: &mut LinState, t: &mut Instant| {
        st.wall_s += t.elapsed().as_secs_f64();
        *t = Instant::now();
    };
    let mut tick = call_start;

    // Mask phase.
    let mask_epochs = if method.has_mask_phase() {
        cfg.mask_epochs
    } else {
        0
    };
    while !st.finalized
        && !st.mask_stopped
        && st.mask_epochs_run < mask_epochs
        && st.epochs_done < stop_at
    {
        let epoch = st.epochs_done + 1;
        let (s2, e) = method.mask_epoch(&mut ctx, &mut st, s, &mut optim, epoch)?;
        s = s2;
        st.mask_epochs_run += 1;
        st.mask_stopped |= e.stopped;
        let v = val_acc(&ctx, &s.net, method.eval_masks(&ctx, &st, &s));
        metrics_row(&ctx, epoch, "mask", &e, v, &st);
        ctx.log.line(&format!(
            "epoch {epoch} (mask {}/{}): loss {:.4} acc {:.2}% | val {:.2}% | ReLUs {} (budget {}) λ {:.3e} | {:.1}s{}",
            st.mask_epochs_run, mask_epochs, e.loss, 100.0 * e.acc, 100.0 * v, st.count, ctx.budget,
            st.lambda, e.secs, if e.stopped { " | budget reached" } else { "" }
        ));
        st.epochs_done = epoch;
        wall(&mut st, &mut tick);
        optim = save(&ctx, &st, &s, optim)?;
    }
    if st.epochs_done >= stop_at && !st.finalized {
        return Ok(summary_of(&ctx, &st, &s, None, None));
    }

    // Binary masks, on budget.
    if !st.finalized {
        let (masks, scores) = method.finalize(&mut ctx, &mut st, &s)?;
        let got = ctx.kept(&masks);
        let masks = if got > ctx.budget || got < budget::floor_of(ctx.budget) {
            let p = budget::topk_global(&scores, &ctx.costs(), ctx.budget);
            let note = format!(
                "{} ended with {got} ReLUs, outside [{}, {}]: projected by top-k of its own scores to {}",
                cfg.method.name(),
                budget::floor_of(ctx.budget),
                ctx.budget,
                ctx.kept(&p)
            );
            ctx.log.line(&note);
            st.notes.push(note);
            st.projected = true;
            if ctx.kept(&p) < budget::floor_of(ctx.budget) {
                // Whole channels of H·W ReLUs cannot always add up to within 3% of the budget.
                let note = format!(
                    "the budget is not reachable within 97% with {:?} units: {} ReLUs kept",
                    cfg.granularity,
                    ctx.kept(&p)
                );
                ctx.log.line(&note);
                st.notes.push(note);
            }
            p
        } else {
            masks
        };
        st.count = ctx.kept(&masks);
        s.net = set_net_masks(&ctx, s.net, &masks);
        st.finalized = true;
        optim = adam();
        let v = val_acc(&ctx, &s.net, None);
        ctx.log.line(&format!(
            "masks frozen: {} ReLUs kept (budget {}), validation {:.2}% before fine-tuning",
            st.count,
            ctx.budget,
            100.0 * v
        ));
        st.best_val_acc = v;
        st.best_epoch = st.epochs_done;
        checkpoint::write_atomic(&run.best(), &run_dir::model_bytes(&s.net)?)?;
        wall(&mut st, &mut tick);
        optim = save(&ctx, &st, &s, optim)?;
    }

    // Frozen-mask fine-tuning with KD (cosine learning rate). A method without a mask phase
    // (DeepReDuce) fine-tunes for the mask epochs too, so every method trains as many epochs.
    let weights = method.finetune_weights(&ctx, &st);
    let ft_epochs = cfg.finetune_epochs + (cfg.mask_epochs - mask_epochs);
    let n = ctx.train.len();
    let steps = n / cfg.batch_size + usize::from(n % cfg.batch_size >= 2);
    let total_steps = (steps * ft_epochs).max(1);
    while st.finetune_done < ft_epochs && st.epochs_done < stop_at {
        let epoch = st.epochs_done + 1;
        let base = st.finetune_done * steps;
        let lr = |b: usize| {
            let t = (base + b) as f64 / total_steps as f64;
            0.5 * cfg.lr * (1.0 + (std::f64::consts::PI * t).cos())
        };
        let (s2, e) = run_epoch(
            &ctx,
            &mut st,
            s,
            &mut optim,
            EpochPlan {
                epoch,
                lr: &lr,
                weights: &weights,
            },
            &mut Frozen,
        )?;
        s = s2;
        st.finetune_done += 1;
        let v = val_acc(&ctx, &s.net, None);
        metrics_row(&ctx, epoch, "finetune", &e, v, &st);
        let improved = v >= st.best_val_acc;
        if improved {
            st.best_val_acc = v;
            st.best_epoch = epoch;
            checkpoint::write_atomic(&run.best(), &run_dir::model_bytes(&s.net)?)?;
        }
        ctx.log.line(&format!(
            "epoch {epoch} (fine-tune {}/{}): loss {:.4} acc {:.2}% | val {:.2}%{} | ReLUs {} | {:.1}s",
            st.finetune_done,
            ft_epochs,
            e.loss,
            100.0 * e.acc,
            100.0 * v,
            if improved { " *" } else { "" },
            st.count,
            e.secs
        ));
        st.epochs_done = epoch;
        wall(&mut st, &mut tick);
        optim = save(&ctx, &st, &s, optim)?;
    }
    if st.finetune_done < ft_epochs {
        ctx.log.line(&format!(
            "stopped after epoch {}; continue with --resume",
            st.epochs_done
        ));
        return Ok(summary_of(&ctx, &st, &s, None, None));
    }
    drop(optim);

    // Complete: the selected model, the teacher's config (export/eval read it), the report.
    let best = std::fs::read(run.best()).context("reading best.bpk")?;
    checkpoint::write_atomic(&run.model(), &best)?;
    checkpoint::write_atomic(
        &run.config(),
        serde_json::to_string_pretty(&ctx.tcfg)?.as_bytes(),
    )?;
    let selected = run_dir::model_from_bytes(&ctx.spec, best, &ctx.plain)?.valid();
    let norm = ctx.tcfg.normalization.clone();
    let test = score(&selected, &ctx.test, &norm, &ctx.plain, 256).acc;
    let teacher_test = score(&ctx.teacher, &ctx.test, &norm, &ctx.plain, 256).acc;
    wall(&mut st, &mut tick);
    let mut sum = summary_of(&ctx, &st, &s, Some(test), Some(teacher_test));
    sum.per_layer = per_layer(&ctx, &selected);
    sum.kept = sum.per_layer.iter().map(|l| l.kept).sum();
    sum.completed = true;
    ctx.log.line(&format!(
        "done: {} ReLUs of {} kept (budget {}), val {:.2}% (teacher {:.2}%), test {:.2}% (teacher {:.2}%), {:.0}s",
        sum.kept,
        sum.total,
        sum.budget,
        100.0 * sum.val_acc,
        100.0 * sum.teacher_val_acc,
        100.0 * test,
        100.0 * teacher_test,
        sum.wall_s
    ));
    write_report(&ctx, &sum)?;
    Ok(sum)
}

fn per_layer(ctx: &Ctx, net: &Net) -> Vec<LayerKept> {
    net.relus
        .iter()
        .zip(&ctx.sites)
        .map(|(r, site)| LayerKept {
            name: site.name.clone(),
            total: site.shape.len(),
            kept: r.mask_values().iter().filter(|&&v| v == 1.0).count(),
        })
        .collect()
}

fn summary_of(
    ctx: &Ctx,
    st: &LinState,
    s: &Student,
    test: Option<f64>,
    teacher_test: Option<f64>,
) -> LinearizeSummary {
    let per_layer = if st.finalized {
        per_layer(ctx, &s.net)
    } else {
        vec![]
    };
    LinearizeSummary {
        method: ctx.cfg.method,
        granularity: ctx.cfg.granularity,
        budget: ctx.budget,
        total: ctx.total,
        kept: per_layer.iter().map(|l| l.kept).sum(),
        per_layer,
        teacher_val_acc: st.teacher_val_acc,
        val_acc: st.best_val_acc,
        test_acc: test,
        teacher_test_acc: teacher_test,
        completed: false,
        mask_epochs: st.mask_epochs_run,
        finetune_epochs: st.finetune_done,
        wall_s: st.wall_s,
        seed: ctx.cfg.seed,
        train_images: ctx.train.len(),
        projected: st.projected,
        notes: st.notes.clone(),
    }
}

fn write_report(ctx: &Ctx, s: &LinearizeSummary) -> Result<()> {
    let json = serde_json::to_string_pretty(s)?;
    checkpoint::write_atomic(&ctx.run.report_json(), json.as_bytes())?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Linearization report: {} ({:?}) of {} on {}\n",
        s.method.name(),
        s.granularity,
        ctx.spec.arch,
        ctx.tcfg.dataset.name()
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| teacher | {} |", ctx.cfg.from.display());
    let _ = writeln!(
        md,
        "| ReLUs kept / budget / total | {} / {} / {} |",
        s.kept, s.budget, s.total
    );
    let _ = writeln!(
        md,
        "| validation accuracy (selected) | {:.2}% (teacher {:.2}%) |",
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
    let _ = writeln!(md, "| projected by top-k | {} |", s.projected);
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
    checkpoint::write_atomic(&ctx.run.report_md(), md.as_bytes())?;
    Ok(())
}

/// The demo's linearization step: the run's summary and its pi-core evaluation.
#[derive(Debug, Clone)]
pub struct QuickReport {
    /// The linearization run.
    pub summary: LinearizeSummary,
    /// The exported linearized model on the test set through pi-core.
    pub eval: crate::eval::EvalReport,
}

/// Linearizes the model of the run folder `from` (the demo's digits CNN) to 10% of its ReLUs
/// into `out` (4 mask + 4 fine-tune epochs: a few seconds on the digits), then exports it to
/// `out/model.pic` and evaluates it through pi-core. StreamliNet (reconstruction) is used: its
/// per-layer top-k keeps every step exactly on budget, so the short schedule needs no
/// projection.
pub fn run_quick(from: &Path, out: &Path, quiet: bool) -> Result<QuickReport> {
    let cfg = LinearizeConfig {
        mask_epochs: 4,
        finetune_epochs: 4,
        ..LinearizeConfig::new(Method::Streamlinet, Budget::Fraction(0.1), from)
    };
    let summary = linearize(
        &cfg,
        out,
        &RunOptions {
            quiet,
            ..Default::default()
        },
    )?;
    let eval = args::export_and_eval(out, None)?;
    Ok(QuickReport { summary, eval })
}

/// Prints the ReLU count and accuracy before and after linearization.
pub fn print_quick(q: &QuickReport) {
    let s = &q.summary;
    println!(
        "{}: ReLUs {} -> {} ({:.1}% kept, budget {}); test accuracy {:.2}% -> {:.2}% (float), pi-core {:.2}%",
        s.method.name(),
        s.total,
        q.eval.relus_kept,
        100.0 * q.eval.relus_kept as f64 / s.total.max(1) as f64,
        s.budget,
        100.0 * s.teacher_test_acc.unwrap_or(f64::NAN),
        100.0 * s.test_acc.unwrap_or(f64::NAN),
        100.0 * q.eval.fixed_acc
    );
}
