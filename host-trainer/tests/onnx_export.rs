//! ONNX export with real components: every profile of a masked model (the imported PyTorch
//! fixture with per-pixel and channel masks) is evaluated by tract-onnx and matches the trainer's
//! float model; the generic export imports back with identical masks and outputs; EzPC refuses a
//! per-pixel mask naming the layer; the side JSON counts what each target evaluates.

mod onnx_common;
use onnx_common::{TOLERANCE, fixture, max_diff, tract_logits};

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use host_trainer::model::{Net, to_f32_vec};
use host_trainer::onnx::export::{OnnxExportError, model_proto};
use host_trainer::onnx::import::map_model;
use host_trainer::onnx::{Profile, export_onnx};
use onnx_ir::Message;

fn fixture_net() -> Net {
    let p = fixture();
    let bytes = std::fs::read(&p).expect("fixture");
    map_model(&bytes, None, &p)
        .expect("maps")
        .net(&Default::default())
        .valid()
}

/// Masks: site 0 per-pixel (every third element removed) or channel-wise, site 1 channel-wise
/// (odd channels removed), site 2 (after the residual Add, so no producer to split for EzPC)
/// channel-wise (every third channel removed).
fn masked(mut net: Net, per_pixel_first: bool) -> Net {
    let dev = Default::default();
    for (s, relu) in net.relus.iter_mut().enumerate() {
        let [c, h, w] = relu.mask.val().dims();
        let m: Vec<f32> = (0..c * h * w)
            .map(|k| match s {
                0 if per_pixel_first => (k % 3 != 0) as u8 as f32,
                0 | 1 => ((k / (h * w)) % 2 == 0) as u8 as f32,
                _ => ((k / (h * w)) % 3 != 1) as u8 as f32,
            })
            .collect();
        relu.mask = Param::from_tensor(Tensor::from_data(TensorData::new(m, [c, h, w]), &dev));
    }
    net
}

fn inputs(n: usize) -> Vec<f32> {
    (0..n * 64)
        .map(|k| ((k * 37 % 101) as f32 / 50.0) - 1.0)
        .collect()
}

fn burn_logits(net: &Net, x: &[f32], n: usize) -> Vec<f32> {
    let t = Tensor::<4>::from_data(
        TensorData::new(x.to_vec(), [n, 1, 8, 8]),
        &Default::default(),
    );
    to_f32_vec(net.forward(t))
}

#[test]
fn tract_evaluates_every_profile_like_the_trainer() {
    let n = 5;
    let x = inputs(n);
    for (profile, per_pixel) in [
        (Profile::Generic, true),
        (Profile::Crypten, true),
        (Profile::Ezpc, false),
    ] {
        let net = masked(fixture_net(), per_pixel);
        let want = burn_logits(&net, &x, n);
        let (m, layers) = model_proto(&net, profile).unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        let ops: Vec<String> = m.graph.node.iter().map(|n| n.op_type.clone()).collect();
        assert!(
            ops.iter().all(|o| profile.ops().contains(&o.as_str())),
            "{profile:?}: {ops:?}"
        );
        let got = tract_logits(&m.write_to_bytes().expect("encode"), &x, n);
        let d = max_diff(&got, &want);
        assert!(d < TOLERANCE, "{profile:?}: max |tract - burn| = {d}");

        let kept: usize = layers.iter().map(|l| l.kept).sum();
        let evaluated: usize = layers.iter().map(|l| l.evaluated).sum();
        let total: usize = layers.iter().map(|l| l.total).sum();
        assert_eq!(total, 3 * 512);
        match profile {
            // Functional form: every ReLU still evaluated.
            Profile::Generic => assert_eq!(evaluated, total),
            // Gather form / split convs: only the kept ones.
            Profile::Crypten | Profile::Ezpc => assert_eq!(evaluated, kept),
        }
        assert!(kept < total);
        match profile {
            Profile::Generic => assert!(ops.contains(&"Mul".to_string())),
            Profile::Crypten => {
                assert!(ops.contains(&"Gather".to_string()) && !ops.contains(&"Mul".to_string()))
            }
            Profile::Ezpc => assert!(
                ops.contains(&"Concat".to_string()) && !ops.contains(&"Constant".to_string())
            ),
        }
    }
}

#[test]
fn generic_export_imports_back_with_identical_masks_and_outputs() {
    let net = masked(fixture_net(), true);
    let (m, _) = model_proto(&net, Profile::Generic).expect("export");
    let bytes = m.write_to_bytes().expect("encode");
    let back = map_model(&bytes, None, Path::new("roundtrip.onnx")).expect("re-import");
    let back_net = back.net(&Default::default()).valid();
    assert_eq!(back_net.relus.len(), net.relus.len());
    for (a, b) in net.relus.iter().zip(&back_net.relus) {
        assert_eq!(a.mask_values(), b.mask_values());
    }
    let x = inputs(4);
    let d = max_diff(&burn_logits(&net, &x, 4), &burn_logits(&back_net, &x, 4));
    assert!(d < TOLERANCE, "{d}");
}

#[test]
fn ezpc_refuses_a_per_pixel_mask_naming_the_layer() {
    let net = masked(fixture_net(), true);
    let first = net.spec.relu_sites()[0].name.clone();
    let err = model_proto(&net, Profile::Ezpc).expect_err("per-pixel mask refused");
    assert!(
        matches!(&err, OnnxExportError::Layer { layer, .. } if *layer == first),
        "{err}"
    );
    assert!(err.to_string().contains("per-pixel"), "{err}");
}

#[test]
fn export_onnx_writes_the_model_and_the_side_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("imported");
    host_trainer::onnx::import_onnx(&fixture(), &run, &Default::default()).expect("import");
    let out = dir.path().join("m.onnx");
    let side = export_onnx(&run, &out, Profile::Crypten).expect("export");
    assert!(out.is_file());
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(host_trainer::onnx::export::sidecar_path(&out))
            .expect("side json"),
    )
    .expect("json");
    assert_eq!(json["relus_kept"], side.relus_kept);
    assert_eq!(json["layers"].as_array().expect("layers").len(), 3);
    assert_eq!(side.relus_kept, 3 * 512);
}
