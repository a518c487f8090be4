#!/usr/bin/env bash
# Build (or check / clippy) for a bare-metal thumb target through whichever toolchain route works,
# so callers need not know whether rustup's target or the Debian fallback is installed.
#
# Usage: scripts/cross-build.sh [build|check|clippy|rustc] <cargo args...>
#   scripts/cross-build.sh -p pi-core --target thumbv6m-none-eabi            # from the repo root
#   (cd firmware-example && ../scripts/cross-build.sh --release)               # target from .cargo/config.toml
#
# The subcommand defaults to `build`. Cargo runs in the current directory, so a crate's
# .cargo/config.toml (build.target, rustflags) applies as with plain cargo.
#
# Routes (see scripts/setup-targets.sh):
#   rustup  `cargo <sub> <args>` with the rustup target installed.
#   debian  RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo <sub> -Zbuild-std=core <args>, linked
#           with ld.lld-16. `clippy` is not available on this route (Debian ships no clippy for rustc-web).
# When neither route is ready, scripts/setup-targets.sh is run first.
#
# Environment:
#   PI_FORCE_DEBIAN_TOOLCHAIN=1  use the Debian route even when rustup has the target
#   PI_CROSS_ROUTE_FILE=PATH     write the route used ("rustup" or "debian") to PATH
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT

log() { printf 'cross-build: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

sub=build
case "${1:-}" in
build | check | clippy | rustc)
    sub=$1
    shift
    ;;
esac

# The thumb targets this invocation builds for: --target arguments, else build.target of the
# .cargo/config.toml in the current directory.
targets=()
prev=""
for arg in "$@"; do
    case "$arg" in
    --target=*) targets+=("${arg#--target=}") ;;
    *) [[ $prev == --target ]] && targets+=("$arg") ;;
    esac
    prev=$arg
done
if [[ ${#targets[@]} -eq 0 && -f .cargo/config.toml ]]; then
    cfg_target=$(sed -n 's/^[[:space:]]*target[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' .cargo/config.toml | sed -n 1p)
    [[ -n $cfg_target ]] && targets+=("$cfg_target")
fi
[[ ${#targets[@]} -gt 0 ]] || die "no target: pass --target <thumb target> (or run where .cargo/config.toml sets build.target)"
for t in "${targets[@]}"; do
    [[ $t == thumb* ]] || die "'$t' is not a bare-metal thumb target; use plain cargo for the host"
done

rustup_ready() {
    command -v rustup >/dev/null 2>&1 || return 1
    local installed t
    installed=$(rustup target list --installed 2>/dev/null) || return 1
    for t in "${targets[@]}"; do
        grep -qx -- "$t" <<<"$installed" || return 1
    done
}

debian_ready() {
    [[ -x /usr/bin/cargo && -x /usr/bin/rustc && -d /usr/lib/rustlib/src/rust/library/core ]] &&
        command -v ld.lld-16 >/dev/null 2>&1 &&
        [[ $(dpkg-query -W -f='${Status}' cargo-web 2>/dev/null || true) == "install ok installed" ]]
}

pick_route() {
    if [[ ${PI_FORCE_DEBIAN_TOOLCHAIN:-0} == 1 ]]; then
        debian_ready && echo debian
    elif rustup_ready; then
        echo rustup
    elif debian_ready; then
        echo debian
    fi
}

route=$(pick_route)
if [[ -z $route ]]; then
    log "no thumb toolchain ready for ${targets[*]}: running scripts/setup-targets.sh"
    "$ROOT/scripts/setup-targets.sh" "${targets[@]}"
    route=$(pick_route)
    [[ -n $route ]] || die "scripts/setup-targets.sh finished but no route is usable for ${targets[*]}"
fi
[[ -n ${PI_CROSS_ROUTE_FILE:-} ]] && printf '%s\n' "$route" >"$PI_CROSS_ROUTE_FILE"

case "$route" in
rustup)
    log "route rustup: cargo $sub $*"
    exec cargo "$sub" "$@"
    ;;
debian)
    [[ $sub == clippy ]] && die "clippy is not available on the Debian route (install the rustup target instead)"
    for t in "${targets[@]}"; do
        var="CARGO_TARGET_$(tr '[:lower:]-' '[:upper:]_' <<<"$t")_LINKER"
        export "$var=ld.lld-16"
    done
    # Inside a rustup-driven process these would point the Debian cargo at rustup's tools.
    unset RUSTUP_TOOLCHAIN CARGO RUSTDOC
    export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
    log "route debian ($(/usr/bin/rustc --version)): /usr/bin/cargo $sub -Zbuild-std=core $*"
    exec /usr/bin/cargo "$sub" -Zbuild-std=core "$@"
    ;;
esac
