//! The configuration of a training run (saved as `config.json` in the run folder).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::{DataPaths, DatasetKind, Normalization};
use crate::model::{Arch, NetSpec};

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD with momentum (no dampening) and L2 weight decay.
    Sgd,
    /// Adam (L2 weight decay if non-zero).
    Adam,
}

/// Everything that determines a run's result. Written once, at the start of a run; `--resume`
/// reads it back (only `epochs` may be raised on resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Dataset.
    pub dataset: DatasetKind,
    /// Architecture family.
    pub arch: Arch,
    /// Width (channels of the first layer); `None`: the architecture's default.
    pub width: Option<usize>,
    /// Number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Peak learning rate; a cosine schedule takes it to 0 over the run.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Seed of weight init, split, shuffles and augmentation.
    pub seed: u64,
    /// Share of the training set held out for validation (model selection).
    pub val_fraction: f64,
    /// Use only N training images (a seeded random subset, before the validation split), for
    /// quick runs.
    pub train_limit: Option<usize>,
    /// Random crop (pad 4) + horizontal flip on training images.
    pub augment: bool,
    /// Normalisation applied to every image (recorded so export/eval use the same).
    pub normalization: Normalization,
    /// Compute backend.
    pub backend: Backend,
    /// Folder with `mnist/`, `fashion-mnist/` (`None`: the default search).
    pub data_dir: Option<PathBuf>,
    /// CIFAR-10 archive (`None`: the shared archive).
    pub cifar_archive: Option<PathBuf>,
    /// The graph itself, for architectures no builder can rebuild (`Arch::Imported`); absent
    /// from the configs of built-in architectures, so their config.json files are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<NetSpec>,
    /// Run folder whose final model gives the initial weights (`train --from`: fine-tuning);
    /// `None`: fresh weights from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl TrainConfig {
    /// Sensible defaults for `dataset` and `arch` (the baselines in the README use these).
    pub fn defaults(dataset: DatasetKind, arch: Arch) -> Self {
        let (epochs, batch_size, optimizer, lr, wd) = match dataset {
            DatasetKind::Digits => (30, 32, OptimizerKind::Adam, 3e-3, 0.0),
            DatasetKind::Mnist => (8, 64, OptimizerKind::Adam, 2e-3, 0.0),
            DatasetKind::FashionMnist => (12, 64, OptimizerKind::Adam, 2e-3, 0.0),
            DatasetKind::Cifar10 => (30, 128, OptimizerKind::Sgd, 0.1, 5e-4),
        };
        Self {
            dataset,
            arch,
            width: None,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum: 0.9,
            weight_decay: wd,
            seed: 1,
            val_fraction: 0.1,
            train_limit: None,
            augment: dataset.augments(),
            normalization: dataset.normalization(),
            backend: Backend::default(),
            data_dir: None,
            cifar_archive: None,
            spec: None,
            init_from: None,
        }
    }

    /// Where this run's data is read from.
    pub fn data_paths(&self) -> DataPaths {
        let mut p = DataPaths::default();
        if let Some(d) = &self.data_dir {
            p.data_dir = d.clone();
        }
        if let Some(a) = &self.cifar_archive {
            p.cifar_archive = a.clone();
        }
        p
    }

    /// Learning rate at `step` of `total_steps`: cosine from `lr` to 0 (no restarts).
    pub fn lr_at(&self, step: usize, total_steps: usize) -> f64 {
        let t = step as f64 / total_steps.max(1) as f64;
        0.5 * self.lr * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_endpoints() {
        let c = TrainConfig::defaults(DatasetKind::Digits, Arch::DigitsCnn);
        assert!((c.lr_at(0, 100) - c.lr).abs() < 1e-12);
        assert!((c.lr_at(50, 100) - c.lr / 2.0).abs() < 1e-12);
        assert!(c.lr_at(100, 100).abs() < 1e-12);
    }

    #[test]
    fn config_json_round_trip() {
        let c = TrainConfig::defaults(DatasetKind::Cifar10, Arch::Resnet { depth: 20 });
        let s = serde_json::to_string(&c).expect("ser");
        assert!(s.contains("\"resnet20\""), "{s}");
        let back: TrainConfig = serde_json::from_str(&s).expect("de");
        assert_eq!(back, c);
    }
}
