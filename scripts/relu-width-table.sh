#!/usr/bin/env bash
# The split ReLU at several sign widths against the full ReLU, on one model and dataset: argmax
# agreement with the plaintext engine, sign faults, private accuracy, and online bytes per
# inference (each run fails unless they equal the cost model's). Prints a markdown table.
#
# Usage: scripts/relu-width-table.sh --model M.pic --dataset D [--samples N] [--widths "64 32 24 16 12"]
#   The model's export sidecar (M.pic.json) gives the input range the ranges are proven from.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=""
dataset=""
samples=1000
widths="64 32 24 16 12"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --model)
        model=${2:?}
        shift 2
        ;;
    --dataset)
        dataset=${2:?}
        shift 2
        ;;
    --samples)
        samples=${2:?}
        shift 2
        ;;
    --widths)
        widths=${2:?}
        shift 2
        ;;
    -h | --help)
        sed -n '2,9p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "relu-width-table: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
done
[[ -n $model && -n $dataset ]] || {
    echo "relu-width-table: --model and --dataset are required" >&2
    exit 2
}
(cd "$ROOT" && cargo build --quiet --release --locked -p protocol-sim)
sim=$ROOT/target/release/protocol-sim

row() {
    local label=$1
    shift
    "$sim" run --model "$model" --dataset "$dataset" --samples "$samples" --json "$@" |
        python3 -c '
import json, sys
r = json.load(sys.stdin)
n, label = r["samples"], sys.argv[1]
faults = f"{r['"'"'sign_faults'"'"']} of {r['"'"'split_relus'"'"']} ({100 * r['"'"'sign_faults'"'"'] / max(r['"'"'split_relus'"'"'], 1):.3f}%)" if r["split_relus"] else "-"
acc = f"{100 * r['"'"'private_correct'"'"'] / r['"'"'labelled'"'"']:.2f}%" if r["labelled"] else "-"
assert r["bytes_equal_model"], "bytes differ from the cost model"
print(f"| {label} | {r['"'"'argmax_agree'"'"']}/{n} ({100 * r['"'"'argmax_agree'"'"'] / n:.2f}%) | {faults} | {acc} | {r['"'"'measured_online_up'"'"']:,} | {r['"'"'measured_online_down'"'"']:,} |")
' "$label"
}

echo "| ReLU | Argmax agreement | Sign faults | Private accuracy | Bytes up | Bytes down |"
echo "|---|---:|---:|---:|---:|---:|"
row "full" --relu full
for t in $widths; do
    row "split, T = $t" --relu split --sign-bits "$t"
done
