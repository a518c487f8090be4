#!/usr/bin/env bash
# Cortex-M4F instruction counts of an embedded model, at several ReLU budgets.
#
#   benches/firmware-budgets.sh [METHOD] [BUDGET...]     (defaults: senet 50% 20% 10% 5%)
#   benches/firmware-budgets.sh --teacher RUN [--name NAME] [METHOD BUDGET...]
#
# Trains the digits CNN (seeded, a few seconds), or takes the trained run RUN (any dataset, e.g.
# a CIFAR-10 ResNet-8 from scripts/cifar10-campaign.sh), linearizes it with METHOD to each
# budget, exports each model (host-trainer's narrowest widths), embeds it in firmware-example
# with one correctly classified test image per class (`host-trainer eval --samples-out`), runs it
# under QEMU and records instructions per inference, flash and RAM. The committed firmware model
# is restored afterwards. Prints a Markdown table and writes it to BENCHMARKS.md between the
# "NAME" markers (default: firmware-budgets; with --teacher and no budgets, only the teacher).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
invocation="benches/firmware-budgets.sh${*:+ $*}"
teacher=""
name=firmware-budgets
while [[ $# -gt 0 ]]; do
    case "$1" in
    --teacher)
        teacher=$(realpath "${2:?--teacher needs a run folder}")
        shift 2
        ;;
    --name)
        name=${2:?--name needs a marker name}
        shift 2
        ;;
    *) break ;;
    esac
done
method=${1:-senet}
shift || true
budgets=("$@")
[[ ${#budgets[@]} -gt 0 || -n $teacher ]] || budgets=(50% 20% 10% 5%)

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

if [[ -z $teacher ]]; then
    echo "firmware-budgets: training the digits teacher" >&2
    teacher=$work/teacher
    trainer train --dataset digits --seed 1 --out "$teacher" >"$work/train.log" 2>&1
    what="the digits CNN (seed 1)"
else
    what="\`$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["arch"], "on", c["dataset"])' "$teacher/config.json")\` (run \`${teacher#"$ROOT"/}\`)"
fi

row() { # label pic
    trainer eval --model "$2" --limit 1000 --samples-out "$work/samples.txt" >"$work/eval.log" 2>&1 || {
        cat "$work/eval.log" >&2
        exit 1
    }
    scripts/gen-firmware-model.sh --model "$2" --samples "$work/samples.txt" >"$work/gen.log" 2>&1 || {
        cat "$work/gen.log" >&2
        exit 1
    }
    scripts/run-firmware.sh --no-gen-check --report "$work/fw.txt" >"$work/fw.log" 2>&1 || {
        cat "$work/fw.log" >&2
        exit 1
    }
    python3 - "$1" "$work/fw.txt" firmware-example/src/generated.rs "$2.json" <<'PY'
import json, re, sys
label, report, generated, sidecar = sys.argv[1:]
r = dict(l.strip().split("=", 1) for l in open(report) if "=" in l)
g = open(generated).read()
c = lambda n: int(re.search(rf"pub const {n}: \w+ = ([0-9_]+);", g).group(1).replace("_", ""))
info = json.load(open(sidecar))["info"]
w = info.get("widths") or {"activation_bits": 32, "i8_weights": []}
weights = "/".join("8" if n else "16" for n in w["i8_weights"]) or "16"
insns = float(r["insns_mean"])
print(f"| {label} | {c('RELUS_KEPT'):,} / {c('RELUS_TOTAL'):,} | {c('MACS'):,} | {insns:,.0f} | {insns / c('MACS'):.2f} "
      f"| {w['activation_bits']} / {weights} | {int(r['flash_bytes']):,} B | {int(r['static_ram_bytes']):,} B |")
PY
}

table=$work/table.md
{
    if [[ ${#budgets[@]} -gt 0 ]]; then
        echo "\`$invocation\`: $what, linearized with \`$method\` to each budget, embedded and run"
    else
        echo "\`$invocation\`: $what, embedded and run"
    fi
    echo "under QEMU \`mps2-an386\` (instructions, not cycles). Widths: activation bits / weight bits"
    echo "per conv or linear layer, as the export chose them."
    echo
    echo "| Model | ReLUs kept / total | MACs | Instructions per inference | per MAC | Widths | Flash | Static RAM |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|"
    trainer export --run "$teacher" --out "$work/teacher.pic" >/dev/null 2>&1
    row "all ReLUs" "$work/teacher.pic"
    for budget in "${budgets[@]}"; do
        echo "firmware-budgets: $method at $budget" >&2
        out="$work/lin-${budget%\%}"
        trainer linearize --method "$method" --budget "$budget" --from "$teacher" --out "$out" \
            >"$work/lin.log" 2>&1 || { tail -20 "$work/lin.log" >&2; exit 1; }
        trainer export --run "$out" --out "$out.pic" >/dev/null 2>&1
        row "$method $budget" "$out.pic"
    done
} >"$table"
cat "$table"
python3 - BENCHMARKS.md "$table" "$name" <<'PY'
import sys
path, table, name = sys.argv[1], open(sys.argv[2]).read().rstrip("\n"), sys.argv[3]
text = open(path).read()
begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"
    open(path, "w").write(text)
PY
