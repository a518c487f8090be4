//! Linearization: exact budget arithmetic, and learned masks that export to pi-core with the
//! kept count intact. Uses the embedded digits with a tiny model so it runs in seconds.

use host_trainer::data::DatasetKind;
use host_trainer::linearize::budget::{allocate, floor_of, kept, topk_global, topk_layer};
use host_trainer::linearize::{
    Budget, Granularity, LinearizeConfig, Method, linearize, read_summary, resume,
};
use host_trainer::model::Arch;
use host_trainer::train::{RunOptions, TrainConfig, train};

#[test]
fn allocation_sums_exactly_to_the_budget() {
    // LeNet-sized layers; scores growing with depth (as SENet's sensitivity does).
    let units = [12_544, 3_200, 128];
    let cost = [1, 1, 1];
    let scores = [1.0, 3.0, 20.0];
    for budget in [1, 159, 317, 794, 1587, 3174, 7936, 15_000, 15_872] {
        let k = allocate(&units, &cost, &scores, budget);
        assert_eq!(k.iter().sum::<usize>(), budget, "budget {budget}: {k:?}");
        assert!(k.iter().zip(&units).all(|(k, u)| k <= u));
    }
    // Keep fractions follow f = min(1, c·s): the saturated layer is full, the others are in
    // the ratio of their scores (up to one ReLU of rounding).
    let k = allocate(&units, &cost, &scores, 3_000);
    assert_eq!(k[2], 128);
    let (f0, f1) = (k[0] as f64 / 12_544.0, k[1] as f64 / 3_200.0);
    assert!((f1 / f0 - 3.0).abs() < 0.01, "{f0} {f1}");
    // Zero scores get nothing; all-zero scores fall back to uniform.
    let k = allocate(&units, &cost, &[0.0, 1.0, 1.0], 1_000);
    assert_eq!((k[0], k.iter().sum::<usize>()), (0, 1_000));
    let k = allocate(&[100, 100], &[1, 1], &[0.0, 0.0], 50);
    assert_eq!(k, vec![25, 25]);
}

#[test]
fn channel_allocation_stays_within_the_budget() {
    // Channels of 784, 100 and 1 ReLUs: sums are whole units, never above the budget.
    let units = [16, 32, 128];
    let cost = [784, 100, 1];
    for budget in [159, 1587, 3174, 7936] {
        let k = allocate(&units, &cost, &[1.0, 3.0, 20.0], budget);
        let sum: usize = k.iter().sum();
        assert!(sum <= budget, "{budget}: {k:?}");
        assert!(k.iter().zip(&cost).all(|(k, c)| k % c == 0));
        // These budgets are reachable with the 1-ReLU units filling the gaps.
        assert!(sum >= floor_of(budget), "{budget}: {k:?}");
    }
}

#[test]
fn topk_projection_is_within_97_percent_of_the_budget() {
    let scores: Vec<Vec<f32>> = vec![
        (0..500).map(|i| ((i * 37) % 101) as f32).collect(),
        (0..300).map(|i| ((i * 13) % 97) as f32 / 3.0).collect(),
    ];
    for budget in [1, 10, 99, 400, 799, 800, 5000] {
        let m = topk_global(&scores, &[1, 1], budget);
        let k = kept(&m, &[1, 1]);
        assert_eq!(k, budget.min(800));
        assert!(k <= budget && k >= floor_of(budget).min(800));
        // The kept units are the best ones: every kept score >= every dropped score.
        let min_kept = scores
            .iter()
            .zip(&m)
            .flat_map(|(s, m)| s.iter().zip(m).filter(|(_, k)| **k).map(|(v, _)| *v))
            .fold(f32::MAX, f32::min);
        let max_dropped = scores
            .iter()
            .zip(&m)
            .flat_map(|(s, m)| s.iter().zip(m).filter(|(_, k)| !**k).map(|(v, _)| *v))
            .fold(f32::MIN, f32::max);
        assert!(budget >= 800 || min_kept >= max_dropped);
    }
    // Units of different costs: never above the budget, and small units fill the gap.
    let m = topk_global(&[vec![5.0, 4.0], vec![1.0; 50]], &[30, 1], 75);
    let k = kept(&m, &[30, 1]);
    assert!(k <= 75 && k >= floor_of(75), "{k}");
    assert_eq!(
        topk_layer(&[0.1, 0.9, 0.5, 0.9], 2),
        vec![false, true, false, true]
    );
}

fn teacher(dir: &std::path::Path) -> std::path::PathBuf {
    let run = dir.join("teacher");
    let mut cfg = TrainConfig::defaults(DatasetKind::Digits, Arch::DigitsCnn);
    cfg.width = Some(4);
    cfg.epochs = 3;
    cfg.train_limit = Some(600);
    let quiet = RunOptions {
        quiet: true,
        ..Default::default()
    };
    assert!(train(&cfg, &run, &quiet).expect("teacher").completed);
    run
}

fn quick(method: Method, budget: Budget, from: &std::path::Path) -> LinearizeConfig {
    LinearizeConfig {
        mask_epochs: 1,
        finetune_epochs: 1,
        train_limit: Some(256),
        val_limit: Some(128),
        batch_size: 32,
        criticality_steps: 2,
        ..LinearizeConfig::new(method, budget, from)
    }
}

/// Every method ends within [97%, 100%] of the budget, and pi-core counts exactly the ReLUs the
/// trainer kept after export.
#[test]
fn learned_masks_export_with_the_kept_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = teacher(dir.path());
    let quiet = RunOptions {
        quiet: true,
        ..Default::default()
    };
    for (i, method) in Method::ALL.into_iter().enumerate() {
        // 80 of 384 ReLUs: reachable with whole channels too (one 8x8 channel + one 4x4).
        let mut cfg = quick(method, Budget::Absolute(80), &from);
        if i % 2 == 1 {
            cfg.granularity = Granularity::Channel;
        }
        let out = dir.path().join(method.name());
        let s = linearize(&cfg, &out, &quiet).expect("linearize");
        assert!(s.completed);
        assert!(
            s.kept <= s.budget && s.kept >= floor_of(s.budget),
            "{}: kept {} of budget {}",
            method.name(),
            s.kept,
            s.budget
        );
        let side = host_trainer::export::export_run(&out, &out.join("m.pic"), &Default::default())
            .expect("export");
        let bytes = std::fs::read(out.join("m.pic")).expect("model file");
        let model = pi_core::Model::parse(&bytes).expect("pi-core parses");
        let count = model.relu_count();
        assert_eq!(count.kept as usize, s.kept, "{}", method.name());
        assert_eq!(side.info.relus_kept as usize, s.kept);
        assert_eq!(count.total as usize, s.total);
    }
}

/// A run stopped after its first epoch resumes to the same completion.
#[test]
fn interrupted_linearization_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = teacher(dir.path());
    let out = dir.path().join("senet");
    let cfg = LinearizeConfig {
        finetune_epochs: 2,
        ..quick(Method::Senet, Budget::Absolute(60), &from)
    };
    let partial = linearize(
        &cfg,
        &out,
        &RunOptions {
            quiet: true,
            stop_after_epochs: Some(1),
        },
    )
    .expect("first part");
    assert!(!partial.completed);
    assert!(read_summary(&out).is_none());
    assert!(
        linearize(&cfg, &out, &RunOptions::default()).is_err(),
        "refuses to overwrite"
    );
    let done = resume(
        &out,
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .expect("resume");
    assert!(done.completed);
    assert_eq!(done.mask_epochs + done.finetune_epochs, 3);
    assert_eq!(done.kept, 60);
    assert_eq!(read_summary(&out).expect("report").kept, 60);
}
