//! The layout of a run folder and loading a trained model back from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};

use super::config::TrainConfig;
use crate::model::{Chw, Net, NetSpec};

/// Paths inside a run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The folder.
    pub root: PathBuf,
}

impl RunDir {
    /// The run folder at `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    /// `config.json`: the [`TrainConfig`].
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// `checkpoint.ckpt`: the last completed epoch (model, optimizer, progress).
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.ckpt")
    }
    /// `best.bpk`: the parameters with the best validation accuracy so far.
    pub fn best(&self) -> PathBuf {
        self.root.join("best.bpk")
    }
    /// `model.bpk`: the final selected model (written when the run completes).
    pub fn model(&self) -> PathBuf {
        self.root.join("model.bpk")
    }
    /// `metrics.csv`: one row per epoch.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    /// `train.log`: the run's log.
    pub fn log(&self) -> PathBuf {
        self.root.join("train.log")
    }
    /// `report.json`: the final report (machine-readable).
    pub fn report_json(&self) -> PathBuf {
        self.root.join("report.json")
    }
    /// `report.md`: the final report (human-readable).
    pub fn report_md(&self) -> PathBuf {
        self.root.join("report.md")
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<TrainConfig> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a run folder (no config.json)",
                self.root.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid run config", path.display()))
    }
}

/// The graph a config describes.
pub fn spec_of(cfg: &TrainConfig) -> Result<NetSpec> {
    let s = cfg.dataset.shape();
    let input = Chw {
        c: s.channels,
        h: s.height,
        w: s.width,
    };
    Ok(cfg.arch.spec(input, cfg.width, cfg.dataset.classes())?)
}

/// A model's parameters as burnpack bytes.
pub fn model_bytes(model: &Net) -> Result<Vec<u8>> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bytes.to_vec())
}

/// A model for `spec` on `device` with parameters from burnpack `bytes`.
pub fn model_from_bytes(spec: &NetSpec, bytes: Vec<u8>, device: &Device) -> Result<Net> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("model parameters: {e}"))?;
    Net::new(spec, device)
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("model parameters do not fit {}: {e}", spec.arch))
}

/// Loads a run's config and its final model (`model.bpk`, or `best.bpk` if the run has not
/// completed) on `device`, in evaluation mode.
pub fn load_trained(run: &RunDir, device: &Device) -> Result<(TrainConfig, Net)> {
    let cfg = run.read_config()?;
    let spec = spec_of(&cfg)?;
    let path = [run.model(), run.best()]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{}: no model.bpk or best.bpk (train first)",
                run.root.display()
            )
        })?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let net = model_from_bytes(&spec, bytes, device)
        .with_context(|| format!("loading {}", path.display()))?;
    Ok((cfg, net.valid()))
}
