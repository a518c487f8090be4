//! Checkpoint files: model + optimizer + progress in one file, written atomically and checked
//! on read, so an interrupted run resumes from its last complete epoch and a damaged file is
//! reported as such instead of loading garbage. The one checkpoint code of the crate: training
//! runs store a [`TrainState`], linearization runs their own progress (any serde type).
//!
//! Layout: `b"HTCKPT01"`, three little-endian u64 lengths (state JSON, model burnpack,
//! optimizer burnpack), the three blobs, then the FNV-1a 64 hash of everything before it.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"HTCKPT01";

/// Progress of a run at the end of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed (the next epoch to run is this number + 1).
    pub epochs_done: usize,
    /// Best validation accuracy so far.
    pub best_val_acc: f64,
    /// Epoch that reached it.
    pub best_epoch: usize,
}

/// A checkpoint's content: progress of type `S`, the model and the optimizer.
#[derive(Debug, Clone)]
pub struct Checkpoint<S = TrainState> {
    /// Progress.
    pub state: S,
    /// Model parameters (burnpack bytes).
    pub model: Vec<u8>,
    /// Optimizer state (burnpack bytes).
    pub optimizer: Vec<u8>,
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// No checkpoint file.
    #[error("no checkpoint at {0}: nothing to resume (start the run without --resume)")]
    Missing(PathBuf),
    /// The file is damaged.
    #[error("checkpoint {path} is corrupt ({reason}); delete it to restart the run")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// I/O failure.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over `path`. A crash leaves either the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A module's parameters as burnpack bytes.
pub fn module_bytes<M: Module>(module: &M) -> anyhow::Result<Vec<u8>> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("serialising parameters: {e}"))?;
    Ok(bytes.to_vec())
}

/// `template` with the parameters of burnpack `bytes` (shapes must match).
pub fn module_from_bytes<M: Module>(template: M, bytes: Vec<u8>) -> anyhow::Result<M> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("parameters: {e}"))?;
    template
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("parameters do not fit the model: {e}"))
}

impl<S: Serialize + DeserializeOwned> Checkpoint<S> {
    /// A checkpoint of `state`, `model` and `optim` as they are now.
    pub fn capture<M: Module>(
        state: S,
        model: &M,
        optim: &ModuleOptimizer,
    ) -> anyhow::Result<Self> {
        let optimizer = optim
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("optimizer state: {e}"))?
            .to_vec();
        Ok(Self {
            state,
            model: module_bytes(model)?,
            optimizer,
        })
    }

    /// The saved model, loaded into `template`.
    pub fn restore_model<M: Module>(&self, template: M) -> anyhow::Result<M> {
        module_from_bytes(template, self.model.clone())
    }

    /// The saved optimizer state, loaded into `fresh` (an optimizer of the same configuration).
    pub fn restore_optimizer(&self, fresh: ModuleOptimizer) -> anyhow::Result<ModuleOptimizer> {
        fresh
            .from_bytes(Bytes::from_bytes_vec(self.optimizer.clone()))
            .map_err(|e| anyhow::anyhow!("checkpoint optimizer state: {e}"))
    }

    /// Serialises the checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        let state = serde_json::to_vec(&self.state).expect("run states serialise to JSON");
        let mut out =
            Vec::with_capacity(48 + state.len() + self.model.len() + self.optimizer.len());
        out.extend_from_slice(MAGIC);
        for blob in [&state, &self.model, &self.optimizer] {
            out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        }
        for blob in [&state, &self.model, &self.optimizer] {
            out.extend_from_slice(blob);
        }
        let h = fnv1a(&out);
        out.extend_from_slice(&h.to_le_bytes());
        out
    }

    /// Parses and checks a checkpoint read from `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let corrupt = |reason: &str| CheckpointError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        };
        if bytes.len() < 8 + 24 + 8 || &bytes[..8] != MAGIC {
            return Err(corrupt(
                "not a host-trainer checkpoint (bad magic or too short)",
            ));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
        if fnv1a(body) != stored {
            return Err(corrupt("checksum mismatch: truncated or modified"));
        }
        let len = |i: usize| {
            u64::from_le_bytes(body[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes")) as usize
        };
        let (a, b, c) = (len(0), len(1), len(2));
        if a.checked_add(b).and_then(|x| x.checked_add(c)) != Some(body.len() - 32) {
            return Err(corrupt("section lengths do not add up"));
        }
        let blobs = &body[32..];
        let state = serde_json::from_slice(&blobs[..a]).map_err(|_| corrupt("bad state JSON"))?;
        Ok(Self {
            state,
            model: blobs[a..a + b].to_vec(),
            optimizer: blobs[a + b..].to_vec(),
        })
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomic(path, &self.to_bytes()).map_err(|source| CheckpointError::Io {
            path: path.into(),
            source,
        })
    }

    /// Reads and checks the checkpoint at `path`.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CheckpointError::Missing(path.into()));
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        Self::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            state: TrainState {
                epochs_done: 3,
                best_val_acc: 0.9,
                best_epoch: 2,
            },
            model: vec![1, 2, 3],
            optimizer: vec![4, 5],
        }
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.ckpt");
        sample().save(&p).expect("save");
        let back = Checkpoint::<TrainState>::load(&p).expect("load");
        assert_eq!(back.state, sample().state);
        assert_eq!((back.model, back.optimizer), (vec![1, 2, 3], vec![4, 5]));
        assert!(!dir.path().join("c.ckpt.tmp").exists());
    }

    #[test]
    fn every_single_byte_flip_and_truncation_is_detected() {
        let bytes = sample().to_bytes();
        let p = Path::new("x");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                Checkpoint::<TrainState>::from_bytes(&b, p).is_err(),
                "flip at {i} undetected"
            );
            assert!(
                Checkpoint::<TrainState>::from_bytes(&bytes[..i], p).is_err(),
                "truncation at {i}"
            );
        }
    }

    #[test]
    fn missing_is_its_own_error() {
        let err =
            Checkpoint::<TrainState>::load(Path::new("/nonexistent/x.ckpt")).expect_err("missing");
        assert!(matches!(err, CheckpointError::Missing(_)), "{err}");
    }
}
