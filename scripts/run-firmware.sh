#!/usr/bin/env bash
# Build firmware-example for the Cortex-M4F, run it under QEMU (mps2-an386), and fail on a wrong
# prediction. Also checks that the committed generated files match the committed model, and
# reports instructions per inference, flash and static RAM.
#
# Usage: scripts/run-firmware.sh [--no-gen-check] [--per-layer] [--report FILE]
#   --no-gen-check  skip scripts/gen-firmware-model.sh --check (which builds a host tool)
#   --per-layer     build with the `layer-marks` feature: a marker call after every layer, and
#                   the last inference's instructions split per layer (the marker calls add a
#                   few instructions per layer: take headline figures from a run without it)
#   --report FILE   also write the figures as key=value lines to FILE
# Needs: scripts/setup-targets.sh and scripts/setup-firmware.sh run before (QEMU, defmt-print,
# region plugin). Exit status 0 only when every embedded sample is predicted correctly.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly FW=$ROOT/firmware-example
readonly ELF=$FW/target/thumbv7em-none-eabihf/release/firmware-example

log() { printf 'run-firmware: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

gen_check=1
per_layer=0
report=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --no-gen-check)
        gen_check=0
        shift
        ;;
    --per-layer)
        per_layer=1
        shift
        ;;
    --report)
        report=$(realpath -m "${2:?--report needs a file}")
        shift 2
        ;;
    -h | --help)
        sed -n '2,13p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

for tool in qemu-system-arm defmt-print readelf; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup-firmware.sh first"
done

if [[ $gen_check -eq 1 ]]; then
    log "checking firmware-example/src/generated.rs against model/model.pic"
    "$ROOT/scripts/gen-firmware-model.sh" --check || die "generated files are stale: run scripts/gen-firmware-model.sh and commit"
fi

log "building firmware-example (release, thumbv7em-none-eabihf)"
features=()
[[ $per_layer -eq 1 ]] && features=(--features layer-marks)
(cd "$FW" && "$ROOT/scripts/cross-build.sh" build --release "${features[@]}") || die "firmware build failed"
[[ -f $ELF ]] || die "no ELF at $ELF after the build"

# Section sizes (readelf reads any ELF, unlike the host's `size`): flash holds the vector table,
# code, read-only data and the initial values of .data; static RAM is .data + .bss + .uninit
# (the stack comes on top).
flash=0
ram=0
while read -r name _type _addr _off size _rest; do
    bytes=$((16#$size))
    case "$name" in
    .vector_table | .text | .rodata) flash=$((flash + bytes)) ;;
    .data)
        flash=$((flash + bytes))
        ram=$((ram + bytes))
        ;;
    .bss | .uninit) ram=$((ram + bytes)) ;;
    esac
done < <(readelf -SW "$ELF" | sed -n 's/^ *\[ *[0-9]*\] *//p')

counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
log "running under QEMU mps2-an386"
set +e
PI_FIRMWARE_REPORT=$counts "$FW/tools/qemu-run.sh" "$ELF"
status=$?
set -e

log "image: flash ${flash} B, static RAM ${ram} B ($(basename "$ELF"))"
if [[ -n $report ]]; then
    {
        echo "flash_bytes=$flash"
        echo "static_ram_bytes=$ram"
        cat "$counts"
        echo "exit_status=$status"
    } >"$report"
    log "figures written to $report"
fi
[[ $status -eq 0 ]] || die "firmware run failed (exit status $status): wrong prediction, setup error or timeout"
[[ -s $counts ]] || log "warning: no instruction counts (region plugin missing? run scripts/setup-firmware.sh)"
log "PASS"
