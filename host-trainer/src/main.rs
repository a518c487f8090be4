//! The `host-trainer` command line; see `host-trainer --help` and the crate README.

fn main() -> std::process::ExitCode {
    host_trainer::cli::main()
}
