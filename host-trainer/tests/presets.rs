//! Every method's presets are visible: `linearize --help` lists `fast` and `paper` for each
//! registered method, with the values a run starts from.

use std::process::Command;

use host_trainer::linearize::{METHODS, Preset};

#[test]
fn linearize_help_lists_both_presets_of_every_method() {
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(["linearize", "--help"])
        .output()
        .expect("host-trainer runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for e in METHODS {
        for p in [Preset::Fast, Preset::Paper] {
            let line = help
                .lines()
                .find(|l| {
                    l.trim_start()
                        .starts_with(&format!("{} {}:", e.name, p.name()))
                })
                .unwrap_or_else(|| panic!("no `{} {}` preset line in:\n{help}", e.name, p.name()));
            // The line carries the recipe and the method's settings as the run would use them.
            let (recipe, config) = (e.configure)(p, None).expect("preset");
            assert!(
                line.contains(&format!("batch {}", recipe.batch_size)),
                "{line}"
            );
            if let serde_json::Value::Object(m) = &config {
                for k in m.keys() {
                    assert!(line.contains(&format!("{k}=")), "{line} lacks {k}");
                }
            }
            // A `paper` preset that is only `fast` again (the paper publishes no values) says
            // so, and no other line claims it.
            let same_as_fast = (e.configure)(Preset::Fast, None).ok() == Some((recipe, config));
            assert_eq!(
                line.contains("the same as fast"),
                p == Preset::Paper && same_as_fast,
                "{line}"
            );
        }
    }
}
