//! Standard architectures: ReLU counts per the research notes' counting convention, budgets,
//! and the CLI's cost output.

use pi_core::Model;
use protocol_sim::arch;

fn relus(name: &str, budget: Option<u64>) -> (u64, u64) {
    let mut spec = arch::spec(name).unwrap();
    arch::apply_budget(&mut spec, budget).unwrap();
    let bytes = spec.to_bytes().unwrap();
    let c = Model::parse(&bytes).unwrap().relu_count();
    (c.kept, c.total)
}

#[test]
fn relu_counts_follow_the_counting_convention() {
    assert_eq!(relus("resnet18", None), (557_056, 557_056));
    assert_eq!(relus("resnet20", None), (188_416, 188_416));
    assert_eq!(relus("resnet32", None), (303_104, 303_104));
    assert_eq!(relus("digits-cnn", None), (1_536, 1_536));
    assert_eq!(relus("lenet", None), (31_744, 31_744));
}

#[test]
fn budgets_are_met_exactly() {
    assert_eq!(relus("resnet20", Some(12_900)), (12_900, 188_416));
    assert_eq!(relus("digits-cnn", Some(0)), (0, 1_536));
    assert!(arch::apply_budget(&mut arch::spec("lenet").unwrap(), Some(40_000)).is_err());
    assert!(arch::spec("vgg16").is_err());
}

#[test]
fn cli_cost_prints_json_with_the_budget() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protocol-sim"))
        .args([
            "cost",
            "--arch",
            "resnet20",
            "--budget",
            "50000",
            "--protocol",
            "delphi",
        ])
        .args(["--device", "cortex-m4-100", "--link", "wan", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"]["relus_kept"], 50_000);
    assert_eq!(v["all_relu_total"]["relus_kept"], 188_416);
    // Delphi's client storage: 18 248 B per ReLU plus 8 B per linear output.
    let storage = v["total"]["client_storage"].as_u64().unwrap();
    assert!(storage > 50_000 * 18_248);
    assert_eq!(v["total"]["client_material_fits"], "stream");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_protocol-sim"))
        .args(["run", "--model", "/no/such.pic"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/no/such.pic"));
}
