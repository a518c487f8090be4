//! Distillation losses shared by the methods (linearization.md §11.3).

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

/// Hinton KD: `KL(softmax(t/T) ‖ softmax(s/T))·T²`, summed over classes, mean over the batch.
/// `teacher` carries no gradient.
pub fn kd(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n, _] = student.dims();
    let log_ps = log_softmax(student.div_scalar(temperature), 1);
    let t = teacher.div_scalar(temperature);
    let pt = softmax(t.clone(), 1);
    let log_pt = log_softmax(t, 1);
    (pt * (log_pt - log_ps))
        .sum()
        .mul_scalar(temperature * temperature / n as f64)
}

/// Attention map of a feature map `[n, c, h, w]`: per sample `mean_c(f²)` flattened to
/// `[n, h·w]` and L2-normalised (Zagoruyko & Komodakis).
pub fn attention_map(f: Tensor<4>) -> Tensor<2> {
    let [n, _, h, w] = f.dims();
    let a = f.square().mean_dim(1).reshape([n, h * w]);
    let norm = a.clone().square().sum_dim(1).sqrt().add_scalar(1e-12);
    a / norm
}

/// Attention transfer: mean squared difference of the two attention maps.
pub fn attention_transfer(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    (attention_map(student) - attention_map(teacher))
        .square()
        .mean()
}

/// Mean squared difference of two post-activation maps (StreamliNet's consistency term).
pub fn mse(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    (student - teacher).square().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        crate::model::to_f32_vec(t)[0] as f64
    }

    #[test]
    fn kd_matches_hand_computation() {
        // One sample, two classes, T = 2: s/T = (0, 0) gives q = (0.5, 0.5); t = (2 ln 3, 0)
        // gives t/T = (ln 3, 0) and p = (0.75, 0.25). KD = T² · Σ p ln(p/q).
        let ln3 = 3f32.ln();
        let s = t2(vec![0.0, 0.0], [1, 2]);
        let t = t2(vec![2.0 * ln3, 0.0], [1, 2]);
        let kl = 0.75 * (0.75f64 / 0.5).ln() + 0.25 * (0.25f64 / 0.5).ln();
        let got = scalar(kd(s, t, 2.0));
        assert!((got - 4.0 * kl).abs() < 1e-5, "{got} vs {}", 4.0 * kl);
        // Identical logits: zero; batch mean over two equal samples equals one sample.
        let z = scalar(kd(
            t2(vec![1.0, 2.0], [1, 2]),
            t2(vec![1.0, 2.0], [1, 2]),
            4.0,
        ));
        assert!(z.abs() < 1e-6);
        let two = scalar(kd(
            t2(vec![0.0, 0.0, 0.0, 0.0], [2, 2]),
            t2(vec![2.0 * ln3, 0.0, 2.0 * ln3, 0.0], [2, 2]),
            2.0,
        ));
        assert!((two - 4.0 * kl).abs() < 1e-5);
    }

    #[test]
    fn attention_transfer_matches_hand_computation() {
        let d = Device::flex();
        // One sample, 2 channels, 1x2 map. Student: channels (1, 0) and (1, 0):
        // mean_c f² = (1, 0) -> normalised (1, 0). Teacher: (1, 1), (1, 1): mean (1, 1) ->
        // (1/√2, 1/√2). AT = mean((1-1/√2)², (0-1/√2)²).
        let s = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 1.0, 0.0], [1, 2, 1, 2]),
            &d,
        );
        let t = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 1.0, 1.0, 1.0], [1, 2, 1, 2]),
            &d,
        );
        let r = std::f64::consts::FRAC_1_SQRT_2;
        let want = ((1.0 - r).powi(2) + r * r) / 2.0;
        let got = scalar(attention_transfer(s.clone(), t));
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Scale invariance: AT ignores the magnitude of the maps.
        let got2 = scalar(attention_transfer(s.clone(), s.mul_scalar(3.0)));
        assert!(got2.abs() < 1e-9);
    }
}
