//! Sweeps beyond one machine: `sweep --plan` writes one resumable command per cell (and a Slurm
//! job array), the commands run independently, and `sweep --collect` merges what is finished and
//! names what is missing. Runs the real binary on the embedded digits.

use std::path::Path;
use std::process::Command;

use host_trainer::data::DatasetKind;
use host_trainer::model::Arch;
use host_trainer::train::{RunOptions, TrainConfig, train};

fn host_trainer(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(args)
        .output()
        .expect("host-trainer runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "host-trainer {args:?} failed:\n{text}"
    );
    text
}

fn sh(line: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(line)
        .status()
        .expect("sh runs");
    assert!(status.success(), "{line}");
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("file")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_planned_sweep_runs_cell_by_cell_and_collect_names_the_missing_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let teacher = dir.path().join("teacher");
    let mut cfg = TrainConfig::defaults(DatasetKind::Digits, Arch::DigitsCnn);
    cfg.width = Some(4);
    cfg.epochs = 3;
    cfg.train_limit = Some(600);
    let quiet = RunOptions {
        quiet: true,
        ..Default::default()
    };
    assert!(train(&cfg, &teacher, &quiet).expect("teacher").completed);

    let sweep = dir.path().join("sweep");
    let (t, s) = (teacher.display().to_string(), sweep.display().to_string());
    host_trainer(&[
        "sweep",
        "--from",
        &t,
        "--plan",
        &s,
        "--emit",
        "slurm",
        "--methods",
        "snl,senet",
        "--budgets",
        "20%,10%",
        "--mask-epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--train-limit",
        "256",
        "--val-limit",
        "128",
        "--batch-size",
        "32",
        "--device",
        "cortex-m4-100",
        "--link",
        "ble",
        "--quiet",
    ]);
    let commands = lines(&sweep.join("commands.txt"));
    assert_eq!(commands.len(), 4, "{commands:?}");
    assert!(
        commands
            .iter()
            .all(|c| c.contains("sweep --out") && c.contains("--cell"))
    );
    let sbatch = std::fs::read_to_string(sweep.join("sweep.sbatch")).expect("sbatch");
    assert!(sbatch.contains("#SBATCH --array=1-4"), "{sbatch}");
    assert!(sbatch.contains("commands.txt"), "{sbatch}");

    // Three of the four cells run (in any order, as separate processes); one is missing.
    for line in &commands[1..] {
        sh(line);
    }
    let out = host_trainer(&["sweep", "--collect", &s]);
    assert!(out.contains("3 finished cells"), "{out}");
    assert!(out.contains("missing (1): snl/20pct"), "{out}");
    assert_eq!(lines(&sweep.join("missing.txt")), vec!["snl/20pct"]);
    let csv = lines(&sweep.join("results.csv"));
    assert_eq!(csv.len(), 4, "header + 3 rows: {csv:?}");
    assert!(csv[0].starts_with("dataset,method,preset,"));
    assert!(csv[1..].iter().all(|r| r.contains(",fast,")));
    assert!(sweep.join("accuracy_vs_relus.png").exists());
    // Every row is priced on the plan's deployment: latency in seconds, client bytes.
    assert!(
        csv[0].ends_with(",device_latency_s,client_bytes"),
        "{}",
        csv[0]
    );
    for row in &csv[1..] {
        let f: Vec<&str> = row.rsplitn(3, ',').collect();
        let (bytes, latency) = (f[0].parse::<u64>().unwrap(), f[1].parse::<f64>().unwrap());
        assert!(latency > 0.0 && latency.is_finite() && bytes > 0, "{row}");
    }
    assert!(sweep.join("accuracy_vs_latency.png").exists());

    // A cell that ran already is skipped on a second call; the missing one completes the sweep.
    sh(&commands[1]);
    sh(&commands[0]);
    let out = host_trainer(&["sweep", "--collect", &s]);
    assert!(
        out.contains("4 finished cells") && out.contains("none missing"),
        "{out}"
    );
    assert!(lines(&sweep.join("missing.txt")).is_empty());

    // A plan cannot be replaced by a different one in the same folder.
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args([
            "sweep",
            "--from",
            &t,
            "--plan",
            &s,
            "--methods",
            "autorep",
            "--budgets",
            "10%",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a different sweep"));
}
