#!/usr/bin/env bash
# Installs cargo-fuzz for the nightly toolchain when one is installed (cargo-fuzz needs nightly).
set -euo pipefail
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz setup: no nightly toolchain installed; the fuzz run will be skipped" >&2
    exit 0
fi
if cargo +nightly fuzz --version >/dev/null 2>&1; then
    exit 0
fi
echo "fuzz setup: installing cargo-fuzz (a few minutes)" >&2
cargo install cargo-fuzz --locked
