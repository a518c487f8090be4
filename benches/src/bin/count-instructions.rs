//! Runs one benchmark case's inference once, for instruction counting under callgrind:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect=count_instructions::measured \
//!     target/release/count-instructions resnet20_w16_dense
//! ```
//!
//! Only the inference is counted (the `measured` function); parsing and model building are not.
//! Prints the case's MACs and ReLU count so a script can divide.

use std::process::ExitCode;

use pi_core::Model;

#[inline(never)]
#[unsafe(no_mangle)]
fn measured(model: &Model<'_>, input: &[i32], arena: &mut [i32]) -> i32 {
    model.infer(input, arena).map_or(i32::MIN, |out| out[0])
}

fn main() -> ExitCode {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: count-instructions CASE   (cases: {})", case_names());
        return ExitCode::from(2);
    };
    if name == "--list" {
        println!("{}", case_names().replace(", ", "\n"));
        return ExitCode::SUCCESS;
    }
    let Some((_, spec)) = benches::cases().into_iter().find(|(n, _)| *n == name) else {
        eprintln!("unknown case {name:?} (cases: {})", case_names());
        return ExitCode::from(2);
    };
    let bytes = match spec.to_bytes() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fixture {name} does not build: {e}");
            return ExitCode::FAILURE;
        }
    };
    let model = match Model::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("fixture {name} does not parse: {e}");
            return ExitCode::FAILURE;
        }
    };
    let input = benches::input_for(&spec);
    let mut arena = vec![0; model.arena_words()];
    let first = measured(&model, &input, &mut arena);
    let relus = model.relu_count();
    println!(
        "case={name} macs={} relus_kept={} relus_total={} arena_words={} out0={first}",
        model.macs(),
        relus.kept,
        relus.total,
        model.arena_words()
    );
    ExitCode::SUCCESS
}

fn case_names() -> String {
    benches::cases()
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
