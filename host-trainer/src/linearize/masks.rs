//! Masks during linearization: the student (network plus the methods' mask parameters), mask
//! units (elements or channels), and moving binary masks in and out of the network.

use burn::module::ParamGroup;
use burn::module::{Module, Param, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::Granularity;
use crate::model::{Net, ReluSite};

/// The network being linearized plus the mask parameters of the methods that learn masks.
#[derive(Module, Debug)]
pub struct Student {
    /// The network; its own masks are the frozen binary masks once a method has set them.
    pub net: Net,
    /// Trainable mask parameters per ReLU site, gate-shaped (see [`Units`]). They form their own
    /// parameter group ([`mask_param_group`]) with the recipe's mask learning rate.
    pub mask_params: Vec<Param<Tensor<3>>>,
    /// Per-unit state that is not trained (AutoReP's hysteresis mask), kept here so checkpoints
    /// carry it.
    pub mask_state: Vec<Param<Tensor<3>>>,
}

/// The parameter group of [`Student::mask_params`].
pub fn mask_param_group() -> ParamGroup {
    ParamGroup::from_predicate("mask_params")
}

/// Learning rates of one step: `weights` for every parameter, `masks` for the mask parameters.
pub fn learning_rates(weights: f64, masks: f64) -> ModuleLearningRate {
    ModuleLrScheduler::new(weights)
        .with_group(mask_param_group(), masks)
        .step()
}

/// Shape of the mask units of one ReLU site.
#[derive(Debug, Clone, Copy)]
pub struct Units {
    /// Gate shape: `[C, H, W]` (element) or `[C, 1, 1]` (channel).
    pub shape: [usize; 3],
    /// Full activation shape `[C, H, W]`.
    pub full: [usize; 3],
    /// Number of units.
    pub count: usize,
    /// ReLUs per unit.
    pub cost: usize,
}

impl Units {
    /// The units of `site` at `granularity`.
    pub fn of(site: &ReluSite, granularity: Granularity) -> Self {
        let full = [site.shape.c, site.shape.h, site.shape.w];
        match granularity {
            Granularity::Element => Self {
                shape: full,
                full,
                count: site.shape.len(),
                cost: 1,
            },
            Granularity::Channel => Self {
                shape: [site.shape.c, 1, 1],
                full,
                count: site.shape.c,
                cost: site.shape.h * site.shape.w,
            },
        }
    }

    /// The channel of unit `i`.
    pub fn channel_of(&self, i: usize) -> usize {
        i / (self.count / self.full[0]).max(1)
    }

    /// Unit mask `mask` expanded to full `[C, H, W]` 0/1 values.
    pub fn expand(&self, mask: &[bool]) -> Vec<f32> {
        let per = self.full.iter().product::<usize>() / self.count.max(1);
        mask.iter()
            .flat_map(|&b| std::iter::repeat_n(if b { 1.0 } else { 0.0 }, per))
            .collect()
    }
}

/// A method's final binary unit masks and its per-unit scores (higher = keep first), used to
/// cut the masks to the budget when they end outside it.
pub struct FinalMasks {
    /// Binary unit masks per site.
    pub masks: Vec<Vec<bool>>,
    /// Per-unit scores per site.
    pub scores: Vec<Vec<f32>>,
}

/// 0/1 values of a binary mask.
pub fn ones_zeros(mask: &[bool]) -> Vec<f32> {
    mask.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()
}

/// The net with its masks replaced by `masks` (gate-shaped; broadcast over the batch and, for
/// channel masks, over H and W). The replacement may carry gradients to mask parameters.
pub fn with_masks(net: &Net, masks: Vec<Tensor<3>>) -> Net {
    let mut n = net.clone();
    for (r, m) in n.relus.iter_mut().zip(masks) {
        r.mask = Param::initialized(ParamId::new(), m);
    }
    n
}

/// Writes binary unit masks into the network's own (frozen) masks.
pub fn set_net_masks(units: &[Units], mut net: Net, masks: &[Vec<bool>], dev: &Device) -> Net {
    for ((r, m), u) in net.relus.iter_mut().zip(masks).zip(units) {
        let t = Tensor::from_data(TensorData::new(u.expand(m), u.full), dev);
        r.mask = Param::initialized(r.mask.id, t).set_require_grad(false);
    }
    net
}

/// The network's own masks as unit masks (a channel is kept if its first element is).
pub fn net_unit_masks(units: &[Units], net: &Net) -> Vec<Vec<bool>> {
    net.relus
        .iter()
        .zip(units)
        .map(|(r, u)| {
            let v = r.mask_values();
            let per = v.len() / u.count.max(1);
            (0..u.count).map(|i| v[i * per] > 0.5).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::optim::{AdamConfig, GradientsParams};

    use super::*;
    use crate::model::{Arch, Chw, to_f32_vec};

    /// The mask parameters form their own group: each group moves only at its own rate.
    #[test]
    fn mask_parameters_learn_at_their_own_rate() {
        let dev = Device::flex().autodiff();
        let spec = Arch::DigitsCnn
            .spec(Chw { c: 1, h: 8, w: 8 }, Some(2), 10)
            .expect("spec");
        let net = Net::seeded(&spec, &dev, 1);
        let student = Student {
            mask_params: net
                .relus
                .iter()
                .map(|r| Param::from_tensor(r.mask.val().require_grad()))
                .collect(),
            mask_state: vec![],
            net,
        };
        let loss_of = |s: &Student| {
            let masks: Tensor<1> = s
                .mask_params
                .iter()
                .map(|p| p.val().sum())
                .reduce(|a, b| a + b)
                .expect("sites");
            masks + s.net.convs[0].conv.weight.val().sum()
        };
        let values = |s: &Student| {
            (
                to_f32_vec(s.mask_params[0].val()),
                to_f32_vec(s.net.convs[0].conv.weight.val()),
            )
        };
        let mut optim = AdamConfig::new().init();
        let before = values(&student);
        let grads = GradientsParams::from_grads(loss_of(&student).backward(), &student);
        let s = optim.step(learning_rates(0.0, 0.5), student, grads);
        let after = values(&s);
        assert_eq!(after.1, before.1, "weights at rate 0 stay put");
        assert!(
            after
                .0
                .iter()
                .zip(&before.0)
                .all(|(a, b)| (b - a - 0.5).abs() < 1e-3),
            "masks move by their rate: {:?}",
            after.0
        );
        let grads = GradientsParams::from_grads(loss_of(&s).backward(), &s);
        let s2 = optim.step(learning_rates(0.5, 0.0), s, grads);
        let last = values(&s2);
        assert_eq!(last.0, after.0, "masks at rate 0 stay put");
        assert_ne!(last.1, after.1, "weights move");
    }
}
