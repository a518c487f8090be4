#!/usr/bin/env bash
# Fuzzes Model::parse + infer for SECONDS (default 60), starting from the golden and seed files.
#   pi-core/fuzz/run.sh [SECONDS]
#
# Needs a nightly toolchain and cargo-fuzz (pi-core/fuzz/setup.sh installs both); fails without
# them. The build uses the committed Cargo.lock as it is: a stale lock file fails before the run
# (cargo-fuzz cannot pass --locked to cargo, so it is checked here), and the run must leave it
# unchanged.
#
# Environment:
#   PI_SKIP_FUZZ=1  do nothing and succeed (scripts/test.sh prints the skip)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-60}

die() {
    printf 'fuzz: ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ ${PI_SKIP_FUZZ:-0} == 1 ]]; then
    echo "fuzz: SKIPPED (PI_SKIP_FUZZ=1)" >&2
    exit 0
fi
if ! { rustc +nightly --version && cargo +nightly --version && cargo +nightly fuzz --version; } >/dev/null 2>&1; then
    die "needs a nightly toolchain and cargo-fuzz: run pi-core/fuzz/setup.sh (or set PI_SKIP_FUZZ=1)"
fi

# A lock file that resolution would change fails here, before cargo-fuzz rewrites it.
cargo +nightly metadata --locked --format-version 1 >/dev/null ||
    die "cannot resolve with the committed pi-core/fuzz/Cargo.lock (error above); if it is out of date," \
        "run 'cargo +nightly update --workspace' in pi-core/fuzz and commit it"
lock_before=$(mktemp)
trap 'rm -f "$lock_before"' EXIT
cp Cargo.lock "$lock_before"

mkdir -p corpus/parse
cp ../tests/golden/*.pic corpus/parse/
# The v2 golden file in the target's "append the CRC" form (first byte 0x02, see parse.rs), so
# mutations of its records are not all stopped by the checksum.
for v2 in ../tests/golden/*-v2.pic; do
    { printf '\002'; head -c -4 "$v2"; } >"corpus/parse/crc-$(basename "$v2")"
done
cargo +nightly fuzz run parse corpus/parse -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048

cmp -s Cargo.lock "$lock_before" ||
    die "the fuzz run changed pi-core/fuzz/Cargo.lock (git diff pi-core/fuzz/Cargo.lock)"
