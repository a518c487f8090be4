//! What the ONNX tests share: the PyTorch fixture, and tract-onnx as the independent runtime.

use std::path::{Path, PathBuf};

/// Largest |logit difference| allowed between two f32 evaluations of the same network (burn,
/// tract-onnx, onnxruntime): they sum in different orders, and the export folds BatchNorm into
/// the convolutions; logits are O(10).
pub const TOLERANCE: f32 = 1e-3;

/// The committed PyTorch export (made by tests/fixtures/onnx/make_fixture.py).
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/digits_res_maxpool.onnx")
}

/// The largest |a - b| over two equally long vectors.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// tract-onnx's logits for `n` images of 1x8x8 through the ONNX model in `bytes`.
pub fn tract_logits(bytes: &[u8], x: &[f32], n: usize) -> Vec<f32> {
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .expect("tract reads the model")
        .with_input_fact(0, f32::fact([n, 1, 8, 8]).into())
        .expect("input fact")
        .into_optimized()
        .expect("optimize")
        .into_runnable()
        .expect("runnable");
    let t: Tensor = tract_ndarray::Array4::from_shape_vec((n, 1, 8, 8), x.to_vec())
        .expect("shape")
        .into();
    let out = model.run(tvec!(t.into())).expect("tract runs");
    out[0]
        .to_plain_array_view::<f32>()
        .expect("f32")
        .iter()
        .copied()
        .collect()
}
