//! The context of a linearization run: configuration, teacher, data, mask units, devices and
//! log, plus the operations every method needs on them.

use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::budget;
use super::config::LinearizeConfig;
use super::masks::{Student, Units, set_net_masks, with_masks};
use crate::data::ImageSet;
use crate::model::{Net, NetSpec, ReluSite, Stage, to_f32_vec};
use crate::train::evaluate::score;
use crate::train::progress::RunLog;
use crate::train::{RunDir, TrainConfig, run_dir};

/// Everything a method sees during a run.
pub struct Run {
    /// The run's configuration.
    pub cfg: LinearizeConfig,
    /// The teacher's training configuration (dataset, normalisation, augmentation, backend).
    pub tcfg: TrainConfig,
    /// The architecture.
    pub spec: NetSpec,
    /// Its ReLU sites.
    pub sites: Vec<ReluSite>,
    /// Its stages.
    pub stages: Vec<Stage>,
    /// Mask units per site.
    pub units: Vec<Units>,
    /// The budget in ReLUs.
    pub budget: usize,
    /// ReLUs of the unlinearized model.
    pub total: usize,
    /// Training device (autodiff).
    pub dev: Device,
    /// Inference device (the teacher's, no autodiff).
    pub plain: Device,
    /// The all-ReLU teacher, in evaluation mode.
    pub teacher: Net,
    /// Training images (the teacher's training split, possibly limited).
    pub train: ImageSet,
    /// Validation images (model selection).
    pub val: ImageSet,
    /// Test images (evaluated once, at the end).
    pub test: ImageSet,
    /// The run's log.
    pub log: RunLog,
    /// The run folder.
    pub dir: RunDir,
    /// What the method decided (allocations, cuts, Pareto points): logged, kept in the
    /// checkpoints and written to the report.
    pub notes: Vec<String>,
}

impl Run {
    /// Loads the teacher and the data of `cfg` for a run in `dir`.
    pub fn open(cfg: &LinearizeConfig, dir: &RunDir, quiet: bool) -> Result<Self> {
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
            .map(|s| Units::of(s, cfg.granularity))
            .collect();
        let total = spec.total_relus();
        let budget = cfg.budget.resolve(total)?;
        // The teacher's own split: its validation images were never trained on.
        let d = crate::train::load_data(&tcfg)?;
        let train = match cfg.train_limit {
            Some(n) => d.train.truncate(n),
            None => d.train,
        };
        let val = match cfg.val_limit {
            Some(n) => d.val.truncate(n),
            None => d.val,
        };
        let log = RunLog::new(&dir.log(), quiet)
            .with_context(|| format!("opening {}", dir.log().display()))?;
        Ok(Self {
            stages: spec.stages(),
            budget,
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
            dir: dir.clone(),
            notes: vec![],
        })
    }

    /// Unit costs per site.
    pub fn costs(&self) -> Vec<usize> {
        self.units.iter().map(|u| u.cost).collect()
    }

    /// ReLUs kept by unit masks.
    pub fn kept(&self, masks: &[Vec<bool>]) -> usize {
        budget::kept(masks, &self.costs())
    }

    /// ReLUs kept by per-layer unit counts.
    pub fn kept_by_counts(&self, counts: &[usize]) -> usize {
        counts
            .iter()
            .zip(&self.units)
            .map(|(k, u)| k * u.cost)
            .sum()
    }

    /// A student that starts as the teacher, with mask parameters of value 1, on the training
    /// device.
    pub fn student_from_teacher(&self) -> Result<Student> {
        let mut s = self.empty_student();
        s.net =
            run_dir::model_from_bytes(&self.spec, run_dir::model_bytes(&self.teacher)?, &self.dev)?;
        Ok(s)
    }

    /// A student of this architecture with fresh weights (a template to load checkpoints into).
    pub fn empty_student(&self) -> Student {
        let ones = |trainable: bool| -> Vec<Param<Tensor<3>>> {
            self.units
                .iter()
                .map(|u| {
                    Param::from_tensor(Tensor::ones(u.shape, &self.dev)).set_require_grad(trainable)
                })
                .collect()
        };
        Student {
            net: Net::new(&self.spec, &self.dev),
            mask_params: ones(true),
            mask_state: ones(false),
        }
    }

    /// The mask parameters per site (training device, differentiable).
    pub fn mask_values(&self, s: &Student) -> Vec<Tensor<3>> {
        s.mask_params.iter().map(|g| g.val()).collect()
    }

    /// The mask parameters per site, as plain values.
    pub fn mask_vecs(&self, s: &Student) -> Vec<Vec<f32>> {
        s.mask_params.iter().map(|g| to_f32_vec(g.val())).collect()
    }

    /// Sets the mask parameters to `values` (trainable).
    pub fn set_mask_params(&self, mut s: Student, values: &[Vec<f32>]) -> Student {
        for (l, (g, v)) in s.mask_params.iter_mut().zip(values).enumerate() {
            *g = Param::initialized(g.id, self.unit_tensor(l, v.clone()).require_grad());
        }
        s
    }

    /// Sets the untrained per-unit state to `values`.
    pub fn set_mask_state(&self, mut s: Student, values: &[Vec<f32>]) -> Student {
        for (l, (g, v)) in s.mask_state.iter_mut().zip(values).enumerate() {
            *g = Param::initialized(g.id, self.unit_tensor(l, v.clone())).set_require_grad(false);
        }
        s
    }

    /// A gate-shaped tensor of site `site` on the training device.
    pub fn unit_tensor(&self, site: usize, values: Vec<f32>) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, self.units[site].shape), &self.dev)
    }

    /// `net` with binary unit masks written into its own masks.
    pub fn with_binary_masks(&self, net: Net, masks: &[Vec<bool>]) -> Net {
        set_net_masks(&self.units, net, masks, &self.dev)
    }

    /// Validation accuracy of `net`, with override masks if given.
    pub fn val_acc(&self, net: &Net, masks: Option<Vec<Tensor<3>>>) -> f64 {
        let v = net.valid();
        let v = match masks {
            Some(m) => {
                let plain: Vec<Tensor<3>> = m
                    .into_iter()
                    .map(|t| Tensor::from_data(t.into_data(), &self.plain))
                    .collect();
                with_masks(&v, plain)
            }
            None => v,
        };
        score(&v, &self.val, &self.tcfg.normalization, &self.plain, 256).acc
    }

    /// Sites whose post-activations attention transfer compares: the outputs of the body stages
    /// with a spatial map (SENet's stage-2 distillation).
    pub fn stage_output_sites(&self) -> Vec<usize> {
        self.stages
            .iter()
            .filter(|st| st.kind == crate::model::StageKind::Body)
            .filter_map(|st| st.output_site())
            .filter(|&i| self.sites[i].shape.h * self.sites[i].shape.w > 1)
            .collect()
    }

    /// Every site with a spatial map (attention transfer at every ReLU site, an option).
    pub fn spatial_sites(&self) -> Vec<usize> {
        (0..self.sites.len())
            .filter(|&i| self.sites[i].shape.h * self.sites[i].shape.w > 1)
            .collect()
    }

    /// Logs `note` and keeps it for the report.
    pub fn record(&mut self, note: String) {
        self.log.line(&note);
        self.notes.push(note);
    }
}

/// Per-layer budgets in units from per-layer scores: `f_l = min(1, c·s_l)` with `c` solved
/// for the budget (exact for element units).
pub fn layer_units(run: &Run, scores: &[f64]) -> Vec<usize> {
    let units: Vec<usize> = run.units.iter().map(|u| u.count).collect();
    budget::allocate(&units, &run.costs(), scores, run.budget)
        .iter()
        .zip(&run.units)
        .map(|(r, u)| r / u.cost)
        .collect()
}

/// `[a, b, ...]` with three decimals.
pub fn fmt_list(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    format!("[{}]", s.join(", "))
}

/// `site:kept/total` per site for per-layer unit counts.
pub fn fmt_units(run: &Run, k: &[usize]) -> String {
    let s: Vec<String> = run
        .sites
        .iter()
        .zip(k)
        .zip(&run.units)
        .map(|((site, &k), u)| format!("{}:{}/{}", site.name, k * u.cost, site.shape.len()))
        .collect();
    s.join(" ")
}
