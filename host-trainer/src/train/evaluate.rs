//! Float-model evaluation: loss, accuracy and logits over an image set.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Device;

use crate::data::batch::Batch;
use crate::data::{ImageSet, Normalization};
use crate::model::{Net, to_f32_vec};

/// Loss and accuracy of a model on a set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Share of correct top-1 predictions.
    pub acc: f64,
}

/// Logits of every image of `set`, `[len][classes]` flattened. `model` must be in evaluation
/// mode (`model.valid()`) on `device` (a device without autodiff).
pub fn logits(
    model: &Net,
    set: &ImageSet,
    norm: &Normalization,
    device: &Device,
    batch: usize,
) -> Vec<f32> {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::with_capacity(set.len() * 10);
    for chunk in idx.chunks(batch.max(1)) {
        let b = Batch::new(set, chunk, norm, None, device);
        out.extend(to_f32_vec(model.forward(b.images)));
    }
    out
}

/// Index of the largest value of each row of `classes` values (first one on ties).
pub fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
    values
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
        })
        .collect()
}

/// Loss and accuracy of `model` (evaluation mode) on `set`.
pub fn score(
    model: &Net,
    set: &ImageSet,
    norm: &Normalization,
    device: &Device,
    batch: usize,
) -> Score {
    if set.is_empty() {
        return Score {
            loss: f64::NAN,
            acc: f64::NAN,
        };
    }
    let idx: Vec<usize> = (0..set.len()).collect();
    let ce = CrossEntropyLossConfig::new().init(device);
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    for chunk in idx.chunks(batch.max(1)) {
        let b = Batch::new(set, chunk, norm, None, device);
        let logits = model.forward(b.images);
        let [_, classes] = logits.dims();
        let loss = ce.forward(logits.clone(), b.targets).into_scalar::<f32>() as f64;
        loss_sum += loss * chunk.len() as f64;
        let pred = argmax_rows(&to_f32_vec(logits), classes);
        correct += pred
            .iter()
            .zip(chunk)
            .filter(|(p, i)| **p == set.labels[**i] as usize)
            .count();
    }
    Score {
        loss: loss_sum / set.len() as f64,
        acc: correct as f64 / set.len() as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_rows_picks_first_max() {
        assert_eq!(argmax_rows(&[0.0, 2.0, 2.0, 5.0, -1.0, 0.0], 3), vec![1, 0]);
    }
}
