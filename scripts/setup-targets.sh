#!/usr/bin/env bash
# Make the bare-metal Arm targets buildable: thumbv7em-none-eabihf (Cortex-M4F, the firmware) and
# thumbv6m-none-eabi (Cortex-M0, pi-core's "no atomics, no FPU" check).
#
# Usage: scripts/setup-targets.sh [TARGET...]
#
# Two routes, tried in order:
#   1. rustup: `rustup target add` for the toolchain active in the repository root (needs the Rust
#      distribution server; bounded by a timeout).
#   2. Debian: rustc-web + cargo-web + rust-web-src (1.96 in bookworm-security) and lld-16; core is
#      then built from source with `RUSTC_BOOTSTRAP=1 /usr/bin/cargo -Zbuild-std=core` and linked
#      with ld.lld-16. scripts/cross-build.sh knows how to drive it.
#
# Idempotent: when a route is already usable it returns within a second and installs nothing.
#
# Environment:
#   PI_FORCE_DEBIAN_TOOLCHAIN=1  skip rustup and provision (or check) the Debian route only
#   PI_RUSTUP_TIMEOUT=SECONDS    limit for `rustup target add` (default 120)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src lld-16)
# The workspace declares rust-version = "1.95"; the Debian compiler must be at least that.
readonly MIN_DEBIAN_RUST_MINOR=95
readonly RUSTUP_TIMEOUT=${PI_RUSTUP_TIMEOUT:-120}

log() { printf 'setup-targets: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    TARGETS=(thumbv7em-none-eabihf thumbv6m-none-eabi)
fi

# True when rustup's active toolchain (as seen from the repository root) has every target.
rustup_ready() {
    command -v rustup >/dev/null 2>&1 || return 1
    local installed t
    installed=$(cd "$ROOT" && rustup target list --installed 2>/dev/null) || return 1
    for t in "${TARGETS[@]}"; do
        grep -qx -- "$t" <<<"$installed" || return 1
    done
}

# True when the Debian toolchain is installed, recent enough, and has its library sources.
debian_ready() {
    local pkg version minor
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true) == "install ok installed" ]] || return 1
    done
    [[ -x /usr/bin/cargo && -x /usr/bin/rustc ]] || return 1
    command -v ld.lld-16 >/dev/null 2>&1 || return 1
    [[ -d /usr/lib/rustlib/src/rust/library/core ]] || return 1
    version=$(/usr/bin/rustc --version 2>/dev/null) || return 1
    minor=$(sed -n 's/^rustc 1\.\([0-9]*\)\..*/\1/p' <<<"$version")
    [[ -n $minor && $minor -ge $MIN_DEBIAN_RUST_MINOR ]]
}

# Run a command as root (directly, or through passwordless sudo).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

try_rustup() {
    if rustup_ready; then
        log "targets already installed through rustup: ${TARGETS[*]}"
        return 0
    fi
    if ! command -v rustup >/dev/null 2>&1; then
        log "rustup not found"
        return 1
    fi
    log "rustup target add ${TARGETS[*]} (timeout ${RUSTUP_TIMEOUT}s)"
    if (cd "$ROOT" && timeout "$RUSTUP_TIMEOUT" rustup target add "${TARGETS[@]}"); then
        rustup_ready && return 0
        log "rustup reported success but the targets are not listed as installed"
    else
        log "rustup target add failed or timed out"
    fi
    return 1
}

try_debian() {
    if debian_ready; then
        log "Debian toolchain ready: $(/usr/bin/rustc --version), $(ld.lld-16 --version | sed -n 1p)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: cannot install the Debian fallback (${DEBIAN_PACKAGES[*]})"
    log "installing the Debian fallback toolchain: ${DEBIAN_PACKAGES[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${DEBIAN_PACKAGES[@]}" || die "apt-get install ${DEBIAN_PACKAGES[*]} failed"
    debian_ready || die "Debian toolchain installed but unusable: need rustc >= 1.${MIN_DEBIAN_RUST_MINOR} at /usr/bin/rustc" \
        "(found: $(/usr/bin/rustc --version 2>&1 || echo none)), ld.lld-16 and /usr/lib/rustlib/src/rust/library"
    log "Debian toolchain ready: $(/usr/bin/rustc --version)"
}

if [[ ${PI_FORCE_DEBIAN_TOOLCHAIN:-0} == 1 ]]; then
    log "PI_FORCE_DEBIAN_TOOLCHAIN=1: using the Debian route only"
    try_debian
elif ! try_rustup; then
    log "falling back to the Debian toolchain (rustc-web + -Zbuild-std=core + ld.lld-16)"
    try_debian
fi
log "ok: ${TARGETS[*]} buildable (use scripts/cross-build.sh)"
