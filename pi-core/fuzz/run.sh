#!/usr/bin/env bash
# Fuzzes Model::parse + infer for SECONDS (default 60), starting from the golden and seed files.
#   pi-core/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-60}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED: needs a nightly toolchain and cargo-fuzz (pi-core/fuzz/setup.sh)" >&2
    exit 0
fi
mkdir -p corpus/parse
cp ../tests/golden/*.pic corpus/parse/
cargo +nightly fuzz run parse corpus/parse -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048
