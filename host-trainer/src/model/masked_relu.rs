//! The one masked-activation primitive: `y = x - m * min(x, 0)`.
//!
//! `m = 1` keeps the ReLU (`max(x, 0)`), `m = 0` makes the element the identity (free under PI).
//! The mask has one element per activation (C, H, W), shared by every sample of a batch. This
//! issue trains with every mask at 1; linearization methods (a later issue) learn `m` and change
//! only how it is parameterised and budgeted, never this forward rule.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// A layer of masked ReLUs.
#[derive(Module, Debug)]
pub struct MaskedRelu {
    /// Mask `m`, shape (C, H, W). Stored as a parameter so checkpoints carry it; it does not
    /// require gradients until a linearization method makes it trainable.
    pub mask: Param<Tensor<3>>,
}

impl MaskedRelu {
    /// A layer for activations of shape `[c, h, w]` with every ReLU kept.
    pub fn new(shape: [usize; 3], device: &Device) -> Self {
        let mask = Param::from_tensor(Tensor::ones(shape, device)).set_require_grad(false);
        Self { mask }
    }

    /// `x - m * min(x, 0)` for `x` of shape (N, C, H, W).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let m: Tensor<4> = self.mask.val().unsqueeze_dim(0);
        x.clone() - x.clamp_max(0.0) * m
    }

    /// The mask values, CHW order.
    pub fn mask_values(&self) -> Vec<f32> {
        super::to_f32_vec(self.mask.val())
    }
}
