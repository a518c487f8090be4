//! Runs are resumable: an interrupted run continues from its last checkpoint, and a missing or
//! corrupt checkpoint is a clear error.

use host_trainer::data::DatasetKind;
use host_trainer::model::Arch;
use host_trainer::train::{RunDir, RunOptions, TrainConfig, resume, train};

fn cfg(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::defaults(DatasetKind::Digits, Arch::DigitsCnn);
    c.width = Some(4);
    c.epochs = epochs;
    c.train_limit = Some(400);
    c
}

fn quiet(stop: Option<usize>) -> RunOptions {
    RunOptions {
        quiet: true,
        stop_after_epochs: stop,
    }
}

fn metric_epochs(run: &RunDir) -> Vec<usize> {
    std::fs::read_to_string(run.metrics())
        .expect("metrics.csv")
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .next()
                .and_then(|e| e.parse().ok())
                .expect("epoch column")
        })
        .collect()
}

#[test]
fn interrupted_run_resumes_where_it_stopped_and_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));

    let partial = train(&cfg(3), &a, &quiet(Some(2))).expect("first part");
    assert_eq!((partial.epochs_done, partial.completed), (2, false));
    assert!(
        !RunDir::new(&a).model().exists(),
        "no final model before the run completes"
    );
    // A stray row from an epoch that never reached its checkpoint is dropped on resume.
    let mut m = std::fs::read_to_string(RunDir::new(&a).metrics()).expect("metrics");
    m.push_str("3,0,0,0,0,0,0,0\n");
    std::fs::write(RunDir::new(&a).metrics(), m).expect("write");

    let done = resume(&a, None, &quiet(None)).expect("resume");
    assert_eq!((done.epochs_done, done.completed), (3, true));
    assert_eq!(metric_epochs(&RunDir::new(&a)), vec![1, 2, 3]);
    assert!(RunDir::new(&a).model().exists() && RunDir::new(&a).report_md().exists());

    // Same seed, no interruption: the same result (shuffles and init are seeded per epoch).
    let straight = train(&cfg(3), &b, &quiet(None)).expect("straight run");
    assert_eq!(straight.test_acc, done.test_acc);
    assert_eq!(straight.best_val_acc, done.best_val_acc);

    // Extending a finished run with more epochs continues it.
    let more = resume(&a, Some(4), &quiet(None)).expect("extend");
    assert_eq!(more.epochs_done, 4);
}

#[test]
fn missing_or_corrupt_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("r");

    // Not a run at all.
    let err = resume(&run, None, &quiet(None)).expect_err("no run");
    assert!(format!("{err:#}").contains("not a run folder"), "{err:#}");

    // A start that fails before its first checkpoint (missing dataset) leaves nothing to
    // resume, and does not block a new start in the same folder.
    let mut no_data = cfg(2);
    no_data.dataset = host_trainer::data::DatasetKind::Mnist;
    no_data.data_dir = Some(dir.path().join("no-such-data"));
    let err = train(&no_data, &run, &quiet(None)).expect_err("missing data");
    assert!(format!("{err:#}").contains("fetch-datasets.sh"), "{err:#}");

    train(&cfg(2), &run, &quiet(Some(1))).expect("one epoch");
    let rd = RunDir::new(&run);

    // Starting again into the same folder is refused (no silent overwrite).
    let err = train(&cfg(2), &run, &quiet(None)).expect_err("exists");
    assert!(format!("{err:#}").contains("--resume"), "{err:#}");

    // Corrupt: truncated.
    let bytes = std::fs::read(rd.checkpoint()).expect("checkpoint");
    std::fs::write(rd.checkpoint(), &bytes[..bytes.len() / 2]).expect("truncate");
    let err = resume(&run, None, &quiet(None)).expect_err("corrupt");
    assert!(format!("{err:#}").contains("corrupt"), "{err:#}");

    // Missing.
    std::fs::remove_file(rd.checkpoint()).expect("rm");
    let err = resume(&run, None, &quiet(None)).expect_err("missing");
    assert!(format!("{err:#}").contains("no checkpoint"), "{err:#}");
}
