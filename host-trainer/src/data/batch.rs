//! Turning images into normalised float batches (and burn tensors).

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{ImageSet, Normalization, augment};
use crate::rng::Rng;

/// Normalised images of `indices`, NCHW, with optional augmentation.
pub fn floats(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    mut augment_rng: Option<&mut Rng>,
) -> Vec<f32> {
    let n = set.shape.len();
    let mut out = vec![0.0f32; indices.len() * n];
    let mut scratch = vec![0u8; n];
    for (dst, &i) in out.chunks_mut(n).zip(indices) {
        let src = match augment_rng.as_deref_mut() {
            Some(rng) => {
                augment::crop_flip(set.shape, set.image(i), &mut scratch, 4, rng);
                &scratch[..]
            }
            None => set.image(i),
        };
        norm.apply(set.shape, src, dst);
    }
    out
}

/// A batch on a device: images `[n, c, h, w]` and class targets `[n]`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Normalised images.
    pub images: Tensor<4>,
    /// Class labels.
    pub targets: Tensor<1, Int>,
}

impl Batch {
    /// Builds the batch of `indices` from `set` on `device`.
    pub fn new(
        set: &ImageSet,
        indices: &[usize],
        norm: &Normalization,
        augment_rng: Option<&mut Rng>,
        device: &Device,
    ) -> Self {
        let s = set.shape;
        let x = floats(set, indices, norm, augment_rng);
        let images = Tensor::from_data(
            TensorData::new(x, [indices.len(), s.channels, s.height, s.width]),
            device,
        );
        let labels: Vec<i64> = indices.iter().map(|&i| set.labels[i] as i64).collect();
        let targets = Tensor::from_data(TensorData::new(labels, [indices.len()]), device);
        Self { images, targets }
    }
}
