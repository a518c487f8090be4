#!/usr/bin/env bash
# Installs what pi-core/fuzz/run.sh needs: a nightly toolchain (cargo-fuzz builds with nightly-only
# sanitizer flags) and cargo-fuzz. scripts/test.sh runs it; it returns at once when both are there.
#
#   pi-core/fuzz/setup.sh
#
#   1. nightly: `rustup toolchain install nightly --profile minimal` when `cargo +nightly` does not
#      run. Needs rustup's distribution server; bounded by a timeout.
#   2. cargo-fuzz: `cargo install cargo-fuzz --version $CARGO_FUZZ_VERSION --locked` from crates.io
#      when `cargo +nightly fuzz` does not run (a few minutes).
# Either step failing fails the script (exit 1): the fuzz step must not be skipped silently. To go
# without fuzzing on purpose, set PI_SKIP_FUZZ=1 (scripts/test.sh then skips the fuzz run too).
#
# Environment:
#   PI_SKIP_FUZZ=1             install nothing and succeed
#   PI_RUSTUP_TIMEOUT=SECONDS  limit for `rustup toolchain install` (default 300)
set -euo pipefail

readonly CARGO_FUZZ_VERSION=0.13.2
readonly RUSTUP_TIMEOUT=${PI_RUSTUP_TIMEOUT:-300}

log() { printf 'fuzz setup: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    log "set PI_SKIP_FUZZ=1 to run scripts/test.sh without the fuzz step"
    exit 1
}

if [[ ${PI_SKIP_FUZZ:-0} == 1 ]]; then
    log "PI_SKIP_FUZZ=1: nothing installed"
    exit 0
fi

nightly_ready() { { rustc +nightly --version && cargo +nightly --version; } >/dev/null 2>&1; }

if nightly_ready; then
    log "nightly toolchain: $(cargo +nightly --version)"
else
    command -v rustup >/dev/null 2>&1 || die "no nightly toolchain and no rustup to install one"
    log "installing the nightly toolchain through rustup (timeout ${RUSTUP_TIMEOUT}s)"
    timeout "$RUSTUP_TIMEOUT" rustup toolchain install nightly --profile minimal ||
        die "rustup could not install the nightly toolchain (is its distribution server reachable?)"
    nightly_ready || die "rustup installed nightly but 'rustc +nightly' or 'cargo +nightly' does not run"
fi

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "$(cargo +nightly fuzz --version)"
    exit 0
fi
log "installing cargo-fuzz $CARGO_FUZZ_VERSION (a few minutes)"
cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked ||
    die "cargo install cargo-fuzz failed"
cargo +nightly fuzz --version >/dev/null 2>&1 ||
    die "cargo-fuzz installed but 'cargo +nightly fuzz' does not run (is ~/.cargo/bin on PATH?)"
log "$(cargo +nightly fuzz --version)"
