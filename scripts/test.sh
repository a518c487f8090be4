#!/usr/bin/env bash
# THE test command: every check CI runs, in the order CI runs them. Run it from anywhere.
#
#   scripts/test.sh            all checks
#   PI_SKIP_FIRMWARE=1 ...     skip the QEMU runs (plaintext firmware and private inference), e.g.
#                              on a machine without qemu
#   PI_SKIP_FUZZ=1 ...         skip the fuzz run and installing what it needs (a nightly toolchain
#                              and cargo-fuzz), e.g. where rustup cannot reach its server. Without
#                              it, a fuzz setup that fails fails the run.
#
# On a fresh machine it first installs what it needs (thumb targets, qemu-system-arm, defmt-print,
# the QEMU instruction-count plugin, a nightly toolchain through rustup and cargo-fuzz); the setup
# scripts return at once when all is there.
# Datasets are optional: tests that need MNIST or Fashion-MNIST skip with a message naming
# scripts/fetch-datasets.sh, which .ci/run runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

step() {
    local name=$1
    shift
    printf '\n==> %s\n' "$name"
    local started=$SECONDS
    "$@"
    printf '<== %s (%ds)\n' "$name" $((SECONDS - started))
}

step "provision: thumb targets" scripts/setup-targets.sh
if [[ ${PI_SKIP_FIRMWARE:-0} != 1 ]]; then
    step "provision: qemu, defmt-print, QEMU plugin" scripts/setup-firmware.sh
fi
if [[ ${PI_SKIP_FUZZ:-0} != 1 ]]; then
    step "provision: nightly toolchain, cargo-fuzz" pi-core/fuzz/setup.sh
fi

# Lints and formatting first: they fail fast.
step "rustfmt" cargo fmt --all --check
step "clippy (host workspace)" cargo clippy --workspace --all-targets --locked -- -D warnings

# pi-core must stay no_std without atomics or an FPU: build it for both bare-metal targets, with
# and without its defmt feature.
step "pi-core for thumbv7em-none-eabihf" \
    scripts/cross-build.sh build -p pi-core --target thumbv7em-none-eabihf --locked
step "pi-core for thumbv7em-none-eabihf (defmt)" \
    scripts/cross-build.sh build -p pi-core --target thumbv7em-none-eabihf --features defmt --locked
step "pi-core for thumbv6m-none-eabi" \
    scripts/cross-build.sh build -p pi-core --target thumbv6m-none-eabi --locked

step "tests (host workspace)" cargo test --workspace --locked
# pi-core's docs carry the model format and the rounding rule: broken links fail the build.
step "pi-core docs" env RUSTDOCFLAGS="-D warnings" cargo doc -p pi-core --no-deps --locked
step "benchmarks compile" cargo bench -p benches -p host-trainer --no-run --locked

if [[ ${PI_SKIP_FUZZ:-0} == 1 ]]; then
    printf '\n==> fuzz the model parser: SKIPPED (PI_SKIP_FUZZ=1)\n'
else
    # Fails on a stale pi-core/fuzz/Cargo.lock, and if the run changes it.
    step "fuzz the model parser (short run)" pi-core/fuzz/run.sh 60
fi

if [[ ${PI_SKIP_FIRMWARE:-0} == 1 ]]; then
    printf '\n==> firmware under QEMU: SKIPPED (PI_SKIP_FIRMWARE=1)\n'
else
    step "firmware under QEMU (checks its predictions)" scripts/run-firmware.sh
    # The gen check of pi-on-device rebuilds nothing run-firmware has not built already.
    step "private inference: client on the Cortex-M4F (QEMU), server on the host" \
        scripts/pi-on-device.sh
    step "private inference on the Cortex-M4F with the split ReLU on 16 bits" \
        scripts/pi-on-device.sh --relu split --sign-bits 16 --no-gen-check
fi

printf '\nAll checks passed.\n'
