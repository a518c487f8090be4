//! The one training-epoch loop of the crate, shared by `train` and `linearize`.
//!
//! An epoch walks the training set in a seeded order, in mini-batches (a last batch of a single
//! image is dropped: BatchNorm needs two), optionally augmented (random crop + flip), and takes
//! one optimizer step per batch. What is minimised, at which learning rate, and whether the epoch
//! ends early is the [`Objective`]'s business: plain cross-entropy for `train`, distillation plus
//! a method's terms for `linearize`.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::ProgressBar;

use crate::data::{ImageSet, Normalization, batch};
use crate::rng::Rng;

/// Mini-batches per epoch of `n` images at `batch_size`: a last batch of one image is dropped.
pub fn steps_per_epoch(n: usize, batch_size: usize) -> usize {
    let bs = batch_size.max(1);
    n / bs + usize::from(n % bs >= 2)
}

/// One mini-batch as the objective sees it.
pub struct TrainBatch {
    /// Normalised (and augmented) images, NCHW, as plain values (for a second device).
    pub pixels: Vec<f32>,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// The images on the training device.
    pub images: Tensor<4>,
    /// Class labels on the training device.
    pub targets: Tensor<1, Int>,
}

impl TrainBatch {
    /// The images as a tensor on `device` (e.g. the teacher's, without autodiff).
    pub fn images_on(&self, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(self.pixels.clone(), self.shape), device)
    }
}

/// What one epoch minimises.
pub trait Objective<M> {
    /// Loss and logits of `model` on `batch`.
    fn loss(&mut self, model: &M, batch: &TrainBatch) -> Result<(Tensor<1>, Tensor<2>)>;
    /// Learning rate (per parameter group) of step `step` of this epoch.
    fn learning_rate(&self, step: usize) -> ModuleLearningRate;
    /// Called after each optimizer step; `true` ends the epoch now.
    fn after_step(&mut self, _model: &M) -> Result<bool> {
        Ok(false)
    }
    /// Extra text for the progress bar.
    fn status(&self) -> String {
        String::new()
    }
}

/// Which images an epoch sees, in which order, and how.
pub struct EpochData<'a> {
    /// The training set.
    pub set: &'a ImageSet,
    /// Normalisation of every image.
    pub norm: &'a Normalization,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Image order (a seeded permutation).
    pub order: Vec<usize>,
    /// Augmentation generator (random crop with 4-pixel padding + horizontal flip), if any.
    pub augment: Option<Rng>,
    /// The training device.
    pub device: &'a Device,
    /// The epoch's number, for messages.
    pub epoch: usize,
}

/// Statistics of one epoch.
#[derive(Debug, Clone, Default)]
pub struct EpochStats {
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy (on the augmented batches).
    pub acc: f64,
    /// Images trained on.
    pub images: usize,
    /// Wall time, seconds.
    pub secs: f64,
    /// The objective ended the epoch early.
    pub stopped: bool,
}

/// Runs one epoch of `objective` on `model`, stepping `optim` once per batch.
pub fn run_epoch<M: Module>(
    mut model: M,
    optim: &mut ModuleOptimizer,
    mut data: EpochData,
    objective: &mut dyn Objective<M>,
    bar: &ProgressBar,
) -> Result<(M, EpochStats)> {
    let steps = steps_per_epoch(data.order.len(), data.batch_size);
    let s = data.set.shape;
    let start = Instant::now();
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    let mut stopped = false;
    for (b, idx) in data
        .order
        .chunks(data.batch_size.max(1))
        .take(steps)
        .enumerate()
    {
        let pixels = batch::floats(data.set, idx, data.norm, data.augment.as_mut());
        let shape = [idx.len(), s.channels, s.height, s.width];
        let labels: Vec<i64> = idx.iter().map(|&i| data.set.labels[i] as i64).collect();
        let batch = TrainBatch {
            images: Tensor::from_data(TensorData::new(pixels.clone(), shape), data.device),
            targets: Tensor::from_data(TensorData::new(labels, [idx.len()]), data.device),
            pixels,
            shape,
        };
        let (loss, logits) = objective.loss(&model, &batch)?;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(objective.learning_rate(b), model, grads);
        let pred = logits.argmax(1).reshape([idx.len()]);
        let ok: i64 = pred.equal(batch.targets).int().sum().into_scalar();
        let l: f32 = loss.into_scalar();
        if !l.is_finite() {
            bail!(
                "training diverged at epoch {}, batch {b} (loss {l}); lower the learning rate",
                data.epoch
            );
        }
        loss_sum += l as f64 * idx.len() as f64;
        correct += ok as usize;
        seen += idx.len();
        stopped = objective.after_step(&model)?;
        bar.inc(1);
        bar.set_message(format!(
            "loss {:.4} acc {:.2}% {}",
            loss_sum / seen as f64,
            100.0 * correct as f64 / seen as f64,
            objective.status()
        ));
        if stopped {
            break;
        }
    }
    bar.finish_and_clear();
    Ok((
        model,
        EpochStats {
            loss: loss_sum / seen.max(1) as f64,
            acc: correct as f64 / seen.max(1) as f64,
            images: seen,
            secs: start.elapsed().as_secs_f64(),
            stopped,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_batch_of_one_is_dropped() {
        assert_eq!(steps_per_epoch(64, 32), 2);
        assert_eq!(steps_per_epoch(65, 32), 2);
        assert_eq!(steps_per_epoch(66, 32), 3);
        assert_eq!(steps_per_epoch(1, 32), 0);
    }
}
