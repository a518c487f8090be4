//! # host-trainer
//!
//! Trains PI-friendly CNNs with [burn](https://burn.dev) 0.22 and exports them to the pi-core
//! fixed-point model format. Every ReLU is one masked activation `y = x - m * min(x, 0)`
//! ([`model::masked_relu`]), pooling is average pooling only, and BatchNorm is folded into the
//! convolutions at export, so the exported model is exactly what a private-inference client
//! evaluates.
//!
//! - [`data`]: embedded optical digits (default), MNIST / Fashion-MNIST (IDX, raw or .gz),
//!   CIFAR-10 (JPEG archive, decoded with zune-jpeg), the seeded validation split, augmentation.
//! - [`model`]: architecture graphs (digits CNN, LeNet-style, CIFAR ResNets), ReLU counting.
//! - [`train`]: training runs (a run is a folder: config, checkpoints, metrics, model, report).
//! - [`export`]: BatchNorm folding and quantization to a pi-core `.pic` file.
//! - [`eval`]: test-set evaluation through pi-core next to the float model.
//! - [`linearize`]: ReLU-budget linearization (SNL, AutoReP, SENet, StreamliNet, DeepReDuce) with
//!   KD fine-tuning; [`sweep`] runs methods × budgets into `results.csv` and [`plot`]s.
//!
//! Backends: burn-flex (CPU, default feature `flex`), burn-ndarray (`ndarray`), CUDA (`cuda`);
//! see [`backend`].
//!
//! ```no_run
//! use host_trainer::train::{TrainConfig, train};
//! use host_trainer::data::DatasetKind;
//!
//! let cfg = TrainConfig::defaults(DatasetKind::Digits, "digits-cnn".parse().unwrap());
//! let summary = train(&cfg, "runs/digits".as_ref(), &Default::default()).unwrap();
//! println!("best validation accuracy {:.2}%", 100.0 * summary.best_val_acc);
//! ```

pub mod backend;
pub mod cli;
pub mod data;
pub mod eval;
pub mod export;
pub mod linearize;
pub mod model;
pub mod onnx;
pub mod plot;
pub mod rng;
pub mod sweep;
pub mod train;
