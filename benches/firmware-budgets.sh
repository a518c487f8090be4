#!/usr/bin/env bash
# Cortex-M4F instruction counts of the embedded digits model at several ReLU budgets.
#
#   benches/firmware-budgets.sh [METHOD] [BUDGET...]     (defaults: senet 50% 20% 10% 5%)
#
# Trains the digits CNN (seeded, a few seconds), linearizes it with METHOD to each budget,
# exports each model, embeds it in firmware-example, runs it under QEMU and records instructions
# per inference, flash and RAM. The committed firmware model is restored afterwards. Prints a
# Markdown table and writes it to BENCHMARKS.md between the "firmware-budgets" markers.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
method=${1:-senet}
shift || true
budgets=("$@")
[[ ${#budgets[@]} -gt 0 ]] || budgets=(50% 20% 10% 5%)

work=$(mktemp -d)
saved=$work/saved
mkdir -p "$saved"
cp firmware-example/model/model.pic firmware-example/model/model.pic.json \
    firmware-example/model/samples.txt firmware-example/src/generated.rs "$saved/"
restore() {
    cp "$saved/model.pic" "$saved/model.pic.json" "$saved/samples.txt" firmware-example/model/
    cp "$saved/generated.rs" firmware-example/src/
    rm -rf "$work"
}
trap restore EXIT

# PI_TRAINER_TARGET_DIR: a cargo target dir for the trainer only (reuse an existing release build
# of burn); the firmware always builds in its own workspace's target dir.
trainer() {
    if [[ -n ${PI_TRAINER_TARGET_DIR:-} ]]; then
        CARGO_TARGET_DIR=$PI_TRAINER_TARGET_DIR cargo run -q --release -p host-trainer -- "$@"
    else
        cargo run -q --release -p host-trainer -- "$@"
    fi
}

echo "firmware-budgets: training the digits teacher" >&2
trainer train --dataset digits --seed 1 --out "$work/teacher" >"$work/train.log" 2>&1

row() { # label pic
    scripts/gen-firmware-model.sh --from-export "$2" >"$work/gen.log" 2>&1
    scripts/run-firmware.sh --no-gen-check --report "$work/fw.txt" >"$work/fw.log" 2>&1 || {
        cat "$work/fw.log" >&2
        exit 1
    }
    python3 - "$1" "$work/fw.txt" firmware-example/src/generated.rs <<'PY'
import re, sys
label, report, generated = sys.argv[1:]
r = dict(l.strip().split("=", 1) for l in open(report) if "=" in l)
g = open(generated).read()
c = lambda n: int(re.search(rf"pub const {n}: \w+ = ([0-9_]+);", g).group(1).replace("_", ""))
insns = float(r["insns_mean"])
print(f"| {label} | {c('RELUS_KEPT'):,} / {c('RELUS_TOTAL'):,} | {insns:,.0f} | {insns / c('MACS'):.2f} "
      f"| {int(r['flash_bytes']):,} B | {int(r['static_ram_bytes']):,} B |")
PY
}

table=$work/table.md
{
    echo "\`benches/firmware-budgets.sh $method ${budgets[*]}\`: the digits CNN (seed 1) linearized with"
    echo "\`$method\` to each budget, embedded and run under QEMU \`mps2-an386\` (instructions, not cycles)."
    echo
    echo "| Model | ReLUs kept / total | Instructions per inference | per MAC | Flash | Static RAM |"
    echo "|---|---:|---:|---:|---:|---:|"
    trainer export --run "$work/teacher" --out "$work/teacher.pic" >/dev/null 2>&1
    row "all ReLUs" "$work/teacher.pic"
    for budget in "${budgets[@]}"; do
        echo "firmware-budgets: $method at $budget" >&2
        out="$work/lin-${budget%\%}"
        trainer linearize --method "$method" --budget "$budget" --from "$work/teacher" --out "$out" \
            >"$work/lin.log" 2>&1 || { tail -20 "$work/lin.log" >&2; exit 1; }
        trainer export --run "$out" --out "$out.pic" >/dev/null 2>&1
        row "$method $budget" "$out.pic"
    done
} >"$table"
cat "$table"
python3 - BENCHMARKS.md "$table" <<'PY'
import sys
path, table = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(path).read()
begin, end = "<!-- BEGIN firmware-budgets -->", "<!-- END firmware-budgets -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"
    open(path, "w").write(text)
PY
