//! The layout of a run folder and loading a trained model back from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;

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

    /// Makes sure this folder can take a new run of `command` (`train`, `linearize`): it does
    /// not exist, is empty, or holds only `own_files` of a run that never reached its first
    /// checkpoint and whose files `is_own` accepts (a start that failed, e.g. on a missing
    /// dataset, can be retried in place). A folder with a checkpoint is a run to `--resume`;
    /// anything else is refused, so nothing of the user's is overwritten. Creates the folder.
    pub fn claim_for_new_run(
        &self,
        command: &str,
        own_files: &[&str],
        is_own: impl Fn(&RunDir) -> Result<()>,
    ) -> Result<()> {
        let root = &self.root;
        if self.checkpoint().exists() {
            anyhow::bail!(
                "{} already holds a run: continue it with `{command} --resume --out {0}` or choose another --out",
                root.display()
            );
        }
        if root.exists() {
            let entries = std::fs::read_dir(root)
                .with_context(|| format!("{} is not a readable folder", root.display()))?;
            let mut names = vec![];
            for e in entries {
                names.push(e?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            let foreign: Vec<&String> = names
                .iter()
                .filter(|n| !own_files.contains(&n.as_str()))
                .collect();
            if !foreign.is_empty() {
                anyhow::bail!(
                    "{} is not empty and is not a {command} run (it holds {}): choose another --out",
                    root.display(),
                    foreign
                        .iter()
                        .take(3)
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if !names.is_empty() {
                is_own(self).with_context(|| {
                    format!(
                        "{} holds files that are not from a {command} run: choose another --out",
                        root.display()
                    )
                })?;
            }
        }
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))
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
    if let Some(spec) = &cfg.spec {
        return Ok(spec.clone());
    }
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
    super::checkpoint::module_bytes(model)
}

/// A model for `spec` on `device` with parameters from burnpack `bytes`.
pub fn model_from_bytes(spec: &NetSpec, bytes: Vec<u8>, device: &Device) -> Result<Net> {
    super::checkpoint::module_from_bytes(Net::new(spec, device), bytes)
        .with_context(|| format!("loading {}", spec.arch))
}

/// Loads a run's config and its final model (`model.bpk`, or `best.bpk` if the run has not
/// completed) on `device`, in evaluation mode.
pub fn load_trained(run: &RunDir, device: &Device) -> Result<(TrainConfig, Net)> {
    let cfg = run.read_config()?;
    let net = load_final_model(run, &cfg, device)?;
    Ok((cfg, net.valid()))
}

/// A run's final model (`model.bpk`, or `best.bpk` if the run has not completed) on `device`,
/// as stored (not switched to evaluation mode: `train --from` fine-tunes it).
pub fn load_final_model(run: &RunDir, cfg: &TrainConfig, device: &Device) -> Result<Net> {
    let spec = spec_of(cfg)?;
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
    model_from_bytes(&spec, bytes, device).with_context(|| format!("loading {}", path.display()))
}
