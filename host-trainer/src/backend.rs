//! Backend selection. burn 0.22 picks the backend at run time through [`Device`]; which ones
//! exist is fixed by cargo features: `flex` (default, pure-Rust CPU), `ndarray` (deprecated
//! upstream, ~10x slower to train), `cuda` (NVIDIA GPU).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// burn-flex on the CPU (feature `flex`).
    #[default]
    Flex,
    /// burn-ndarray on the CPU (feature `ndarray`).
    Ndarray,
    /// CUDA GPU 0 (feature `cuda`).
    Cuda,
}

/// The backend was not compiled in.
#[derive(Debug, thiserror::Error)]
#[error("backend `{0:?}` is not compiled in: rebuild host-trainer with `--features {1}`")]
pub struct MissingBackend(Backend, &'static str);

impl Backend {
    /// The device for inference (no autodiff).
    pub fn device(self) -> Result<Device, MissingBackend> {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // kept on purpose, for comparison with flex
            Self::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(MissingBackend(other, other.feature())),
        }
    }

    /// The device for training: the same with autodiff.
    pub fn train_device(self) -> Result<Device, MissingBackend> {
        Ok(self.device()?.autodiff())
    }

    fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Cuda => "cuda",
        }
    }
}
