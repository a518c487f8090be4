#!/usr/bin/env bash
# Private inference with the client on the Cortex-M4F and the server on the host, measured.
#
# Starts `protocol-sim serve` on the host with firmware-example/pi/model.pic, runs the pi-client
# firmware under QEMU mps2-an386 with UART0 connected to it (a QEMU chardev socket), and counts
# the firmware's instructions exactly with the region plugin, split by phase: share arithmetic,
# garbled-circuit evaluation, transport (waiting for the peer is counted apart). Fails unless
# every sample's private output matches the host's plaintext one (argmax, and within the proven
# tolerance), every byte count equals the cost model's, and the cost model's per-ReLU estimate is
# within 10% of the measurement.
#
# Usage: scripts/pi-on-device.sh [--relu full|split] [--sign-bits T] [--no-gen-check]
#                                [--report FILE] [--timeout SECS]
#   --relu KIND     the ReLU protocol: full (the 189-AND circuit, default) or split (garbled sign on
#                   T bits plus a multiplexer; the server proves each layer's range)
#   --sign-bits T   the split ReLU's sign width (default 64, exact)
#   --no-gen-check  skip scripts/gen-firmware-model.sh --pi --check (which builds a host tool)
#   --report FILE   also write the figures as key=value lines to FILE
#   --timeout SECS  wall-clock limit for the QEMU run (default 900)
# Needs: scripts/setup-targets.sh and scripts/setup-firmware.sh run before.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly FW=$ROOT/firmware-example
readonly ELF=$FW/target/thumbv7em-none-eabihf/release/pi-client
readonly PLUGIN=${PI_QEMU_PLUGIN:-$FW/target/qemu-plugins/libregion.so}
# The server and dealer on the host (a dev build: `cargo test` has built it; pi-core is
# optimized even there, see Cargo.toml).
readonly SERVER=$ROOT/target/debug/protocol-sim
# The calibration regions the firmware runs before the session (see src/bin/pi-client.rs).
readonly CAL_AES_BLOCKS=64
readonly CAL_CHACHA_BYTES=1024
# AND gates and AES blocks per evaluated and per garbled ReLU (pi_core::share::gc).
readonly RELU_ANDS=189
readonly RELU_AES=694
readonly GARBLE_AES=1388

log() { printf 'pi-on-device: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

gen_check=1
report=""
timeout_s=900
relu=full
sign_bits=64
while [[ $# -gt 0 ]]; do
    case "$1" in
    --relu)
        relu=${2:?--relu needs full or split}
        [[ $relu == full || $relu == split ]] || die "--relu: full or split, not '$relu'"
        shift 2
        ;;
    --sign-bits)
        sign_bits=${2:?--sign-bits needs a number}
        [[ $sign_bits =~ ^[0-9]+$ && $sign_bits -ge 2 && $sign_bits -le 64 ]] || die "--sign-bits: 2 to 64"
        shift 2
        ;;
    --no-gen-check)
        gen_check=0
        shift
        ;;
    --report)
        report=$(realpath -m "${2:?--report needs a file}")
        shift 2
        ;;
    --timeout)
        timeout_s=${2:?--timeout needs seconds}
        shift 2
        ;;
    -h | --help)
        sed -n '2,23p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

for tool in qemu-system-arm defmt-print readelf; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup-firmware.sh first"
done
[[ -f $PLUGIN ]] || die "region plugin $PLUGIN missing: run scripts/setup-firmware.sh first"

if [[ $gen_check -eq 1 ]]; then
    log "checking firmware-example/src/pi_generated.rs against pi/model.pic"
    "$ROOT/scripts/gen-firmware-model.sh" --pi --check || die "pi-client files are stale: run scripts/gen-firmware-model.sh --pi"
fi

log "building protocol-sim"
(cd "$ROOT" && cargo build --quiet --locked -p protocol-sim) || die "protocol-sim build failed"
log "building pi-client (release, thumbv7em-none-eabihf), $relu ReLU"
if [[ $relu == split ]]; then
    export PI_SPLIT_SIGN_BITS=$sign_bits
    relu_aes=$((4 * (sign_bits - 1) + 2))
else
    unset PI_SPLIT_SIGN_BITS
    relu_aes=$RELU_AES
fi
(cd "$FW" && "$ROOT/scripts/cross-build.sh" build --release --bin pi-client) || die "firmware build failed"
[[ -f $ELF ]] || die "no ELF at $ELF after the build"

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The server: one session, streamed material. It waits for the client for up to 10 minutes
# between messages: under QEMU the client evaluates a whole ReLU layer between two of them.
"$SERVER" serve --model "$FW/pi/model.pic" --listen 127.0.0.1:0 --sessions 1 \
    --delivery streamed --timeout 600 >"$work/serve.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 300); do
    addr=$(sed -n 's/^protocol-sim serve: listening on //p' "$work/serve.log")
    [[ -n $addr ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[[ -n $addr ]] || die "protocol-sim serve did not start: $(cat "$work/serve.log")"
log "server listening on $addr"

symbol() { readelf -sW "$ELF" | awk -v name="$1" '$8 == name && $4 == "FUNC" && !found { found = "0x" $2 } END { print found }'; }
plugin_args="start=$(symbol bench_start),stop=$(symbol bench_stop)"
for phase in shares garbled io wait; do
    a=$(symbol "phase_$phase")
    [[ -n $a ]] || die "no phase_$phase symbol in $ELF"
    plugin_args+=",mark=$phase@$a"
done

log "running pi-client under QEMU mps2-an386, UART0 -> $addr (timeout ${timeout_s}s)"
started=$SECONDS
set +e
timeout "$timeout_s" qemu-system-arm -machine mps2-an386 -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -chardev "socket,id=uplink,host=${addr%:*},port=${addr##*:}" -serial chardev:uplink \
    -kernel "$ELF" -plugin "$PLUGIN,$plugin_args" -d plugin -D "$work/plugin.log" |
    defmt-print -e "$ELF" | tee "$work/firmware.log"
status=("${PIPESTATUS[@]}")
set -e
qemu_status=${status[0]}
wall=$((SECONDS - started))
set +e
wait "$server_pid"
server_status=$?
set -e
server_pid=""
log "server: $(grep -v 'listening on' "$work/serve.log" | tr '\n' ' ')"
[[ $qemu_status -eq 124 ]] && die "QEMU timed out after ${timeout_s}s"
[[ $qemu_status -eq 0 ]] || die "pi-client failed (exit status $qemu_status)"
[[ $server_status -eq 0 ]] || die "protocol-sim serve failed (exit status $server_status)"

# Figures from the firmware's log.
fw() { sed -n "s|.*$1.*|\\1|p" "$work/firmware.log" | tail -n 1; }
agreement=$(fw 'argmax agreement: \([0-9]*/[0-9]*\)')
estimate=$(fw 'cost model estimate per garbled ReLU: \([0-9]*\)')
stack=$(fw 'stack high-water mark: \([0-9]*\) B')
up=$(fw 'per inference: \([0-9]*\) B client->server')
down=$(fw 'B client->server, \([0-9]*\) B server->client')
flights=$(fw 'B server->client, \([0-9]*\) flights')
kept=$(fw 'ReLUs kept \([0-9]*\)/')
[[ -n $agreement && -n $estimate && -n $stack && -n $up && -n $kept ]] || die "the firmware log lacks its summary"

# Section sizes: flash is what the image stores, static RAM .data + .bss + .uninit.
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

# Instruction counts: regions 1-5 calibrate, the rest are inferences.
figures=$(awk -v kept="$kept" -v aes_blocks="$CAL_AES_BLOCKS" -v chacha_bytes="$CAL_CHACHA_BYTES" \
    -v ands="$RELU_ANDS" -v relu_aes="$RELU_AES" -v used_aes="$relu_aes" -v garble_aes="$GARBLE_AES" '
    /^region [0-9]+: [0-9]+ insns$/ { r = $2 + 0; total[r] = $3 + 0; n = r }
    /^region [0-9]+ phases:/ {
        r = $2 + 0
        for (i = 4; i <= NF; i++) { split($i, kv, "="); phase[r, kv[1]] = kv[2] + 0 }
    }
    END {
        if (n < 6) { print "error=no inference regions"; exit }
        overhead = total[1]
        aes = (total[2] - overhead) / aes_blocks
        relu = total[3] - overhead
        chacha = (total[4] - overhead) / chacha_bytes
        garble = total[5] - overhead
        for (r = 6; r <= n; r++) {
            k++
            shares += phase[r, "shares"] + phase[r, "other"]; garbled += phase[r, "garbled"]
            io += phase[r, "io"]; wait += phase[r, "wait"]; all += total[r] - phase[r, "wait"]
        }
        printf "inferences=%d\n", k
        printf "aes_insns_per_block=%.0f\n", aes
        printf "relu_insns_calibration=%d\n", relu
        printf "gc_and_overhead_insns=%.0f\n", (relu - relu_aes * aes) / ands
        printf "chacha_insns_per_byte=%.1f\n", chacha
        printf "garble_insns_calibration=%d\n", garble
        printf "gc_garble_and_overhead_insns=%.0f\n", (garble - garble_aes * aes) / ands
        printf "insns_per_inference=%.0f\n", all / k
        printf "share_insns_per_inference=%.0f\n", shares / k
        printf "gc_insns_per_inference=%.0f\n", garbled / k
        printf "io_insns_per_inference=%.0f\n", io / k
        printf "wait_insns_per_inference=%.0f\n", wait / k
        printf "insns_per_garbled_relu=%.0f\n", (kept > 0 ? garbled / k / kept : 0)
        printf "aes_floor_per_relu=%.0f\n", used_aes * aes
    }' "$work/plugin.log")
grep -q '^error=' <<<"$figures" && die "${figures#error=}"
get() { sed -n "s/^$1=//p" <<<"$figures"; }
per_relu=$(get insns_per_garbled_relu)
peak=$((ram + stack))

printf '\n'
printf 'private inference on the Cortex-M4F (QEMU mps2-an386), %s kept ReLUs (%s), %s inferences, %ss wall\n' \
    "$kept" "$([[ $relu == split ]] && echo "split, $sign_bits sign bits" || echo full)" "$(get inferences)" "$wall"
printf '  instructions per inference: %s (share arithmetic %s, garbled circuits %s, transport %s; waiting for the server %s, not counted)\n' \
    "$(get insns_per_inference)" "$(get share_insns_per_inference)" "$(get gc_insns_per_inference)" \
    "$(get io_insns_per_inference)" "$(get wait_insns_per_inference)"
printf '  calibration: %s instructions per AES block, %s per AND besides AES, %s per ChaCha20 byte; AES floor per ReLU %s\n' \
    "$(get aes_insns_per_block)" "$(get gc_and_overhead_insns)" "$(get chacha_insns_per_byte)" "$(get aes_floor_per_relu)"
printf '  garbling one ReLU (a client garbler): %s instructions, %s per AND besides AES\n' \
    "$(get garble_insns_calibration)" "$(get gc_garble_and_overhead_insns)"
printf '  flights per inference: %s; flash %s B; static RAM %s B + stack %s B\n' "$flights" "$flash" "$ram" "$stack"
printf 'argmax agreement: %s\n' "$agreement"
printf 'instructions per garbled ReLU: %s\n' "$per_relu"
printf 'cost model estimate per garbled ReLU: %s\n' "$estimate"
printf 'peak RAM: %s B\n' "$peak"
printf 'bytes client->server: %s\n' "$up"
printf 'bytes server->client: %s\n' "$down"

if [[ -n $report ]]; then
    {
        echo "# scripts/pi-on-device.sh --report, $(date -u +%Y-%m-%d), QEMU $(qemu-system-arm --version | sed -n 's/^QEMU emulator version \([^ ]*\).*/\1/p')"
        echo "relus_kept=$kept"
        echo "relu=$relu"
        echo "sign_bits=$sign_bits"
        echo "$figures"
        echo "cost_model_per_relu=$estimate"
        echo "flash_bytes=$flash"
        echo "static_ram_bytes=$ram"
        echo "stack_bytes=$stack"
        echo "peak_ram_bytes=$peak"
        echo "bytes_up=$up"
        echo "bytes_down=$down"
        echo "flights=$flights"
        echo "argmax_agreement=$agreement"
    } >"$report"
    log "figures written to $report"
fi

# The firmware already failed on any sample or byte-count mismatch; the cost model must also be
# within 10% of what the device measured.
off=$(awk -v m="$per_relu" -v e="$estimate" 'BEGIN { d = (e - m) / m; if (d < 0) d = -d; print (d <= 0.10) ? "ok" : sprintf("%.1f%%", 100 * d) }')
[[ $off == ok ]] || die "cost model estimate $estimate is $off off the measured $per_relu per garbled ReLU"
log "PASS"
