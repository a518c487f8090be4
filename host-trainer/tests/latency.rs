//! A budget set by device latency: `linearize --latency 2s --device cortex-m4-100 --link ble`
//! on the embedded digits gives a model whose private-inference latency, priced by pi-core's
//! cost model (`protocol-sim cost`), is at most 2 s.

use host_trainer::data::DatasetKind;
use host_trainer::linearize::latency::{Deployment, budget_for};
use host_trainer::linearize::{Budget, LinearizeConfig, Preset, linearize};
use host_trainer::model::Arch;
use host_trainer::train::{RunOptions, TrainConfig, train};

#[test]
fn a_latency_budget_gives_a_model_within_the_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quiet = RunOptions {
        quiet: true,
        ..Default::default()
    };
    let teacher = dir.path().join("teacher");
    let mut cfg = TrainConfig::defaults(DatasetKind::Digits, Arch::DigitsCnn);
    cfg.epochs = 2;
    cfg.train_limit = Some(400);
    assert!(train(&cfg, &teacher, &quiet).expect("teacher").completed);

    let deployment = Deployment {
        device: "cortex-m4-100".into(),
        link: "ble".into(),
        ..Deployment::default()
    };
    let target = 2_000_000;
    let (budget, bound) = budget_for(&teacher, target, &deployment).expect("a budget");
    // 60 of the 1 536 ReLUs on ring-gc (docs/PROTOCOL.md §5.5), under the target.
    assert!((40..=80).contains(&budget), "budget {budget}");
    assert!(bound <= target);
    // Priced with the split ReLU on 16 bits (about a tenth of a full one's cycles and bytes on
    // the M4), the same target allows several times the ReLUs.
    let split = Deployment {
        sign_bits: Some(16),
        ..deployment.clone()
    };
    let (split_budget, split_bound) = budget_for(&teacher, target, &split).expect("a split budget");
    assert!(
        split_budget >= 4 * budget && split_bound <= target,
        "split budget {split_budget} vs full {budget}"
    );

    let mut lin = LinearizeConfig::new(
        "streamlinet",
        Preset::Fast,
        Budget::Absolute(budget),
        &teacher,
    )
    .expect("registered");
    lin.recipe.mask_epochs = 1;
    lin.recipe.finetune_epochs = 1;
    lin.train_limit = Some(256);
    lin.val_limit = Some(128);
    let out = dir.path().join("linearized");
    let s = linearize(&lin, &out, &quiet).expect("linearize");
    assert!(s.completed && s.kept <= budget);
    let model = out.join("model.pic");
    host_trainer::export::export_run(&out, &model, &Default::default()).expect("export");
    let (latency, bytes) = deployment.price(&model).expect("priced");
    assert!(
        latency <= target,
        "latency {latency} us above the 2 s target"
    );
    assert!(bytes > 0);
    // One ReLU more than the budget, wherever it sits, would break the target.
    let model_bytes = std::fs::read(&model).unwrap();
    let parsed = pi_core::Model::parse(&model_bytes).unwrap();
    let over = deployment
        .cost_model()
        .unwrap()
        .bound_for(&parsed, budget as u64 + 1)
        .latency_us(false);
    assert!(over > target);
    // A target below the linear layers' floor is a clear error.
    let err = budget_for(&teacher, 1_000, &deployment).unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
}
