#!/usr/bin/env bash
# Generate (or check) the model embedded in firmware-example: model/model.pic, model/samples.txt
# and src/generated.rs (buffer sizes, test inputs, labels and expected logits), with the host tool
# firmware-example/gen (firmware-gen).
#
# Usage:
#   scripts/gen-firmware-model.sh --from-export M.pic             embed a digits model from `host-trainer export`
#                                                                 (samples picked with its M.pic.json sidecar)
#   scripts/gen-firmware-model.sh --model M.pic --samples S.txt   embed a model with given samples
#   scripts/gen-firmware-model.sh                                 regenerate from the committed model and samples
#   scripts/gen-firmware-model.sh --demo                          stand-in nearest-centroid digits model (no training)
#   scripts/gen-firmware-model.sh --check                         fail if the committed files are out of date
#
# With --pi, the same modes make the private-inference client's files instead (pi-client):
# firmware-example/pi/model.pic (the server's), pi/model-arch.pic (what the device embeds),
# pi/samples.txt and src/pi_generated.rs. `--count N` sets how many samples --from-export picks
# (default 10).
#
# Samples file: one line per sample, `label v0 v1 ... v(n-1)` with the inputs quantized to the
# model's activation scale. Every sample must be classified correctly by the model on the host.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly FW=$ROOT/firmware-example
readonly DIGITS=$ROOT/host-trainer/data/digits.csv.gz

log() { printf 'gen-firmware-model: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

mode=emit
pi=0
count=10
model=""
samples=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --pi)
        pi=1
        shift
        ;;
    --count)
        count=${2:?--count needs a number}
        shift 2
        ;;
    --model)
        model=$(realpath "${2:?--model needs a path}")
        shift 2
        ;;
    --samples)
        samples=$(realpath "${2:?--samples needs a path}")
        shift 2
        ;;
    --from-export)
        mode=from-export
        model=$(realpath "${2:?--from-export needs a model file}")
        shift 2
        ;;
    --demo)
        mode=demo
        shift
        ;;
    --check)
        mode=check
        shift
        ;;
    -h | --help)
        sed -n '2,21p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

# What the files are for: the plaintext firmware (model/) or the private-inference client (pi/).
if [[ $pi -eq 1 ]]; then
    dir=$FW/pi
    emit_cmd=emit-pi
    [[ $mode == demo ]] && die "--demo makes the plaintext firmware's stand-in model only"
else
    dir=$FW/model
    emit_cmd=emit
fi
[[ -n $model ]] || model=$dir/model.pic
[[ -n $samples ]] || samples=$dir/samples.txt

# A host build: name the host triple so no thumb build.target from a config file applies.
host=$(rustc -vV | sed -n 's/^host: //p')
[[ -n $host ]] || die "cannot determine the host target (is rustc on PATH?)"
log "building firmware-gen for $host"
CARGO_TARGET_DIR=$FW/target/gen cargo build --quiet --release \
    --manifest-path "$FW/gen/Cargo.toml" --target "$host" ||
    die "building firmware-example/gen failed"
gen=$FW/target/gen/$host/release/firmware-gen

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unpack_digits() {
    [[ -f $DIGITS ]] || die "missing $DIGITS"
    gzip -dc "$DIGITS" >"$tmp/digits.csv"
}

case "$mode" in
from-export)
    sidecar=$model.json
    [[ -f $sidecar ]] || die "no export sidecar $sidecar next to the model (written by host-trainer export)"
    unpack_digits
    "$gen" pick --model "$model" --sidecar "$sidecar" --digits "$tmp/digits.csv" \
        --samples-out "$tmp/samples.txt" --count "$count"
    "$gen" "$emit_cmd" --model "$model" --samples "$tmp/samples.txt" --out-dir "$FW"
    # Provenance: how the model was trained and how its inputs are normalized.
    cmp -s "$sidecar" "$dir/model.pic.json" || cp "$sidecar" "$dir/model.pic.json"
    ;;
demo)
    unpack_digits
    rm -f "$FW/model/model.pic.json"
    "$gen" demo --digits "$tmp/digits.csv" --model-out "$tmp/model.pic" --samples-out "$tmp/samples.txt"
    "$gen" emit --model "$tmp/model.pic" --samples "$tmp/samples.txt" --out-dir "$FW"
    ;;
check)
    "$gen" "$emit_cmd" --model "$model" --samples "$samples" --out-dir "$FW" --check
    ;;
emit)
    "$gen" "$emit_cmd" --model "$model" --samples "$samples" --out-dir "$FW"
    ;;
esac
