#!/usr/bin/env bash
# Regenerates the measured tables in BENCHMARKS.md (between the <!-- BEGIN x --> / <!-- END x -->
# markers) from fresh measurements:
#   host-inference   criterion wall clock of pi-core inference per reference model
#   host-callgrind   instructions per inference and per MAC (valgrind callgrind, exact counts)
#   host-private     criterion wall clock of the PI building blocks (garbled ReLU, masks, shares, cost)
#   trainer          criterion wall clock of host-trainer forward and train step per architecture
#   firmware         Cortex-M4F instruction counts, flash and RAM under QEMU (scripts/run-firmware.sh)
#   pi-device        private inference with the client on the Cortex-M4F (scripts/pi-on-device.sh);
#                    also refreshes firmware-example/pi/measured.txt, which the cost model's test reads
#
#   benches/run.sh [host-inference] [host-callgrind] [host-private] [trainer] [firmware] [pi-device]
#   (default: all)
#
# Needs valgrind for callgrind and what scripts/setup-firmware.sh installs for the firmware table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

sections=("$@")
[[ ${#sections[@]} -gt 0 ]] || sections=(host-inference host-callgrind host-private trainer firmware pi-device)

machine() {
    printf '%s, %s cores, %s' "$(uname -m)" "$(nproc)" "$(rustc --version | cut -d' ' -f1-2)"
}

cases() {
    cargo run -q --release -p benches --bin count-instructions -- --list
}

host_inference() {
    cargo bench -p benches --bench inference -- --warm-up-time 2 --measurement-time 5 \
        >"$OUT/criterion.log" 2>&1
    {
        echo "Measured $(date -u +%Y-%m-%d) on $(machine); \`cargo bench -p benches --bench inference\`"
        echo "(criterion mean; MAC/s counts every multiply-accumulate of conv and linear layers;"
        echo "1-minute load average when it started: $(cut -d' ' -f1 /proc/loadavg), on $(nproc) cores)."
        echo
        echo "| Case | MACs | Mean time | Throughput |"
        echo "|---|---:|---:|---:|"
        python3 - "$ROOT/target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
group = os.path.join(root, "pi_core_infer")
for case in sorted(os.listdir(group)):
    est = os.path.join(group, case, "new", "estimates.json")
    bench = os.path.join(group, case, "new", "benchmark.json")
    if not os.path.exists(est):
        continue
    mean_ns = json.load(open(est))["mean"]["point_estimate"]
    macs = json.load(open(bench)).get("throughput", {}).get("Elements", 0)
    time = f"{mean_ns/1e6:.3f} ms" if mean_ns >= 1e5 else f"{mean_ns/1e3:.1f} µs"
    print(f"| `{case}` | {macs:,} | {time} | {macs/mean_ns:.2f} GMAC/s |")
PY
    } >"$OUT/host-inference.md"
}

host_private() {
    cargo bench -p benches --bench private -- --warm-up-time 2 --measurement-time 5 \
        >"$OUT/private.log" 2>&1
    {
        echo "Measured $(date -u +%Y-%m-%d) on $(machine); \`cargo bench -p benches --bench private\`"
        echo "(criterion mean; 1-minute load average when it started: $(cut -d' ' -f1 /proc/loadavg))."
        echo
        echo "| Operation | Mean time | Throughput |"
        echo "|---|---:|---:|"
        python3 - "$ROOT/target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
for group in ("garbled_relu", "garbled_relu_lock_step", "chacha20_masks", "conv_on_shares", "cost_model"):
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        continue
    for case in sorted(os.listdir(gdir)):
        new = os.path.join(gdir, case, "new")
        if not os.path.exists(os.path.join(new, "estimates.json")):
            continue
        mean = json.load(open(os.path.join(new, "estimates.json")))["mean"]["point_estimate"]
        bench = json.load(open(os.path.join(new, "benchmark.json")))
        thr = bench.get("throughput") or {}
        name = bench.get("full_id", f"{group}/{case}")
        time = f"{mean/1e6:.3f} ms" if mean >= 1e5 else f"{mean/1e3:.2f} µs"
        # Per AND gate, for comparing one-at-a-time with lock-step.
        if group.startswith("garbled_relu") and "Elements" in thr:
            time += f" ({mean/thr['Elements']:.1f} ns/AND)"
        if "Elements" in thr:
            unit = "AND gates/s" if group.startswith("garbled_relu") else "MAC/s"
            rate = f"{thr['Elements']/mean*1e3:.1f} M{unit}"
        elif "Bytes" in thr:
            rate = f"{thr['Bytes']/mean:.2f} GB/s"
        else:
            rate = ""
        print(f"| `{name}` | {time} | {rate} |")
PY
    } >"$OUT/host-private.md"
}

trainer() {
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    cargo bench -p host-trainer --bench train_step -- --warm-up-time 1 --measurement-time 5 \
        >"$OUT/trainer.log" 2>&1
    {
        echo "Measured $(date -u +%Y-%m-%d) on $(machine); \`cargo bench -p host-trainer --bench train_step\`"
        echo "(criterion mean, burn flex backend, random images; 1-minute load average when it started:"
        echo "$(cut -d' ' -f1 /proc/loadavg))."
        echo
        echo "| Architecture | Operation | Mean time | Images/s |"
        echo "|---|---|---:|---:|"
        python3 - "$target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
for group in sorted(d for d in os.listdir(root) if d.startswith("trainer_")):
    for case in sorted(os.listdir(os.path.join(root, group))):
        new = os.path.join(root, group, case, "new")
        if not os.path.exists(os.path.join(new, "estimates.json")):
            continue
        mean = json.load(open(os.path.join(new, "estimates.json")))["mean"]["point_estimate"]
        images = json.load(open(os.path.join(new, "benchmark.json")))["throughput"]["Elements"]
        print(f"| {group[len('trainer_'):]} | {case} | {mean/1e6:.2f} ms | {images/mean*1e9:,.0f} |")
PY
    } >"$OUT/trainer.md"
}

host_callgrind() {
    command -v valgrind >/dev/null || { echo "run.sh: valgrind is not installed" >&2; exit 1; }
    cargo build -q --release -p benches --bin count-instructions
    local bin="$ROOT/target/release/count-instructions"
    {
        echo "Measured $(date -u +%Y-%m-%d) on $(machine); \`benches/run.sh host-callgrind\`"
        echo "(\`valgrind --tool=callgrind\`, counting only the \`measured\` function: one inference)."
        echo
        echo "| Case | MACs | ReLUs kept / total | Instructions | Instructions per MAC |"
        echo "|---|---:|---:|---:|---:|"
        for case in $("$bin" --list); do
            local log="$OUT/$case.callgrind"
            local info
            info=$(valgrind --tool=callgrind --callgrind-out-file="$log" --collect-atstart=no \
                --toggle-collect=measured "$bin" "$case" 2>"$OUT/$case.err")
            local ir
            ir=$(awk '/^summary:/ {print $2}' "$log")
            python3 - "$case" "$ir" "$info" <<'PY'
import sys
case, ir, info = sys.argv[1], int(sys.argv[2]), dict(kv.split("=") for kv in sys.argv[3].split())
macs = int(info["macs"])
print(f"| `{case}` | {macs:,} | {int(info['relus_kept']):,} / {int(info['relus_total']):,} | {ir:,} | {ir/macs:.2f} |")
PY
        done
    } >"$OUT/host-callgrind.md"
}

firmware() {
    scripts/run-firmware.sh --report "$OUT/fw.txt" >"$OUT/fw.log" 2>&1 || {
        cat "$OUT/fw.log" >&2
        exit 1
    }
    python3 - "$OUT/fw.txt" "$ROOT/firmware-example/src/generated.rs" >"$OUT/firmware.md" <<'PY'
import re, sys
r = dict(line.strip().split("=", 1) for line in open(sys.argv[1]) if "=" in line)
g = open(sys.argv[2]).read()
def const(name):
    m = re.search(rf"pub const {name}: \w+ = ([0-9_]+);", g)
    return int(m.group(1).replace("_", "")) if m else None
print(f"`benches/run.sh firmware` (QEMU `mps2-an386`, region plugin; instructions, not cycles).")
print()
print("| Figure | Value |")
print("|---|---:|")
print(f"| Instructions per inference (mean of {r['inferences']}) | {float(r['insns_mean']):,.0f} |")
for name, label in (("MACS", "MACs per inference"), ("RELUS_KEPT", "ReLUs kept"), ("ARENA_WORDS", "Arena words")):
    v = const(name)
    if v is not None:
        print(f"| {label} | {v:,} |")
macs = const("MACS")
if macs:
    print(f"| Instructions per MAC (whole inference) | {float(r['insns_mean'])/macs:.2f} |")
print(f"| Flash | {int(r['flash_bytes']):,} B |")
print(f"| Static RAM | {int(r['static_ram_bytes']):,} B |")
PY
}

pi_device() {
    scripts/pi-on-device.sh --report "$OUT/pi.txt" >"$OUT/pi.log" 2>&1 || {
        cat "$OUT/pi.log" >&2
        exit 1
    }
    cp "$OUT/pi.txt" "$ROOT/firmware-example/pi/measured.txt"
    python3 - "$OUT/pi.txt" "$ROOT/firmware-example/src/pi_generated.rs" >"$OUT/pi-device.md" <<'PY'
import re, sys
r = dict(line.strip().split("=", 1) for line in open(sys.argv[1]) if "=" in line and not line.startswith("#"))
g = open(sys.argv[2]).read()
total = int(re.search(r"of (\d+) ReLUs kept", g).group(1))
n = lambda k: f"{float(r[k]):,.0f}"
print("`benches/run.sh pi-device` (`scripts/pi-on-device.sh`: QEMU `mps2-an386`, region plugin;")
print("instructions, not cycles; the client's waiting for the server is counted apart and left out).")
print()
print("| Figure | Value |")
print("|---|---:|")
print(f"| Model | digits CNN, {int(r['relus_kept']):,} of {total:,} ReLUs kept, material streamed |")
print(f"| Inferences, argmax agreement with plaintext | {r['inferences']}, {r['argmax_agreement']} |")
print(f"| Instructions per inference | {n('insns_per_inference')} |")
print(f"| &nbsp;&nbsp;share arithmetic | {n('share_insns_per_inference')} |")
print(f"| &nbsp;&nbsp;garbled-circuit evaluation | {n('gc_insns_per_inference')} |")
print(f"| &nbsp;&nbsp;transport (UART) | {n('io_insns_per_inference')} |")
print(f"| Instructions per garbled ReLU | {n('insns_per_garbled_relu')} |")
print(f"| Cost model estimate per garbled ReLU (`cortex-m4-64`) | {n('cost_model_per_relu')} |")
print(f"| AES-128 block (RustCrypto fixsliced, 2 blocks per pass) | {n('aes_insns_per_block')} |")
print(f"| AES floor per ReLU (694 blocks) | {n('aes_floor_per_relu')} |")
print(f"| Other work per AND | {n('gc_and_overhead_insns')} |")
print(f"| ChaCha20 per byte | {float(r['chacha_insns_per_byte']):.1f} |")
print(f"| Garbling one ReLU (client garbler, 1,388 AES blocks) | {n('garble_insns_calibration')} |")
print(f"| &nbsp;&nbsp;garbler's other work per AND | {n('gc_garble_and_overhead_insns')} |")
print(f"| Bytes client→server / server→client per inference | {n('bytes_up')} / {n('bytes_down')} |")
print(f"| Flights per inference | {r['flights']} |")
print(f"| Flash | {n('flash_bytes')} B |")
print(f"| Peak RAM (static + stack high-water mark) | {n('peak_ram_bytes')} B ({n('static_ram_bytes')} + {n('stack_bytes')}) |")
PY
}

for section in "${sections[@]}"; do
    case $section in
        host-inference) host_inference ;;
        host-callgrind) host_callgrind ;;
        host-private) host_private ;;
        trainer) trainer ;;
        firmware) firmware ;;
        pi-device) pi_device ;;
        *) echo "run.sh: unknown section $section" >&2; exit 2 ;;
    esac
    python3 - "$ROOT/BENCHMARKS.md" "$section" "$OUT/$section.md" <<'PY'
import sys
path, name, table = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip("\n")
text = open(path).read()
begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
if begin not in text or end not in text:
    sys.exit(f"run.sh: BENCHMARKS.md has no {begin} ... {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{table}\n{end}{tail}")
PY
    echo "run.sh: updated the $section table in BENCHMARKS.md"
done
