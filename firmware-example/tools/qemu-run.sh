#!/usr/bin/env bash
# Cargo runner for firmware-example: runs an ELF on QEMU mps2-an386 (Cortex-M4F), decodes its defmt
# log with defmt-print, and reports the instructions executed per inference (region plugin).
#
# Usage: tools/qemu-run.sh <ELF>     (what `cargo run --release` calls, see .cargo/config.toml)
# Exit status: QEMU's (the firmware's semihosting exit code: 0 pass, 1 fail; 124 on timeout),
# else defmt-print's.
#
# Environment:
#   PI_QEMU_PLUGIN    region plugin (default ../target/qemu-plugins/libregion.so, built by
#                     scripts/setup-firmware.sh); without it the run has no instruction counts
#   PI_QEMU_TIMEOUT   seconds before the run is killed (default 60)
#   PI_FIRMWARE_REPORT  file to write the instruction counts to (key=value lines)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
elf=${1:?usage: qemu-run.sh <ELF>}
plugin=${PI_QEMU_PLUGIN:-$here/../target/qemu-plugins/libregion.so}

log() { printf 'qemu-run: %s\n' "$*" >&2; }

for tool in qemu-system-arm defmt-print readelf; do
    command -v "$tool" >/dev/null 2>&1 || {
        log "ERROR: $tool not found (run scripts/setup-firmware.sh)"
        exit 127
    }
done

# Address of a function symbol (the plugin clears the Thumb bit). awk reads all of its input:
# an early exit would kill readelf with SIGPIPE and, under pipefail, this script.
symbol() { readelf -sW "$elf" | awk -v name="$1" '$8 == name && $4 == "FUNC" && !found { found = "0x" $2 } END { print found }'; }

# -icount shift=0: deterministic virtual time, one instruction per ns, so SysTick readings in the
# firmware are repeatable (25 MHz core clock: 40 instructions per tick).
args=(-machine mps2-an386 -nographic -monitor none -serial none
    -semihosting-config "enable=on,target=native" -icount shift=0)
plugin_log=""
if [[ -f $plugin ]]; then
    start=$(symbol bench_start)
    stop=$(symbol bench_stop)
    if [[ -n $start && -n $stop ]]; then
        plugin_log=$(mktemp)
        trap 'rm -f "$plugin_log"' EXIT
        # Per-layer markers (feature layer-marks): the marker after layer i starts layer i+1;
        # "other" is the input copy and layer 0.
        marks=""
        for i in 0 1 2 3 4 5 6 7; do
            addr=$(symbol "layer_done_$i")
            [[ -n $addr ]] && marks+=",mark=layer$((i + 1))@$addr"
        done
        args+=(-plugin "$plugin,start=$start,stop=$stop$marks" -d plugin -D "$plugin_log")
    else
        log "no bench_start/bench_stop symbols in $elf: no instruction counts"
    fi
else
    log "region plugin not found at $plugin (run scripts/setup-firmware.sh): no instruction counts"
fi

set +e
timeout "${PI_QEMU_TIMEOUT:-60}" qemu-system-arm "${args[@]}" -kernel "$elf" | defmt-print -e "$elf"
status=("${PIPESTATUS[@]}")
set -e

if [[ -n $plugin_log ]]; then
    # Region 1 is the firmware's empty calibration region; the rest are one per inference.
    awk -v report="${PI_FIRMWARE_REPORT:-}" '
        /^region [0-9]+: [0-9]+ insns$/ {
            n++; v = $3 + 0
            if (n == 1) { overhead = v; next }
            k++; net = v - overhead; sum += net
            if (k == 1 || net < min) min = net
            if (k == 1 || net > max) max = net
            printf "qemu-run: inference %d: %d instructions\n", k, net > "/dev/stderr"
        }
        END {
            if (k == 0) { print "qemu-run: no inference regions recorded" > "/dev/stderr"; exit }
            mean = sum / k
            printf "qemu-run: instructions per inference: min %d, max %d, mean %.1f over %d (marker overhead %d subtracted)\n", min, max, mean, k, overhead > "/dev/stderr"
            if (report != "") {
                printf "inferences=%d\ninsns_min=%d\ninsns_max=%d\ninsns_mean=%.1f\nmarker_overhead=%d\n", k, min, max, mean, overhead > report
            }
        }' "$plugin_log"
fi

if [[ -n $plugin_log ]] && grep -q ' phases: ' "$plugin_log"; then
    # The last inference's split ("other" = input copy + layer 0; layerN = layer N).
    grep ' phases: ' "$plugin_log" | tail -n 1 | sed 's/^/qemu-run: per layer: /' >&2
fi

if [[ ${status[0]} -ne 0 ]]; then
    [[ ${status[0]} -eq 124 ]] && log "ERROR: QEMU timed out after ${PI_QEMU_TIMEOUT:-60}s"
    exit "${status[0]}"
fi
exit "${status[1]}"
