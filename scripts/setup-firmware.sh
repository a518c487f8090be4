#!/usr/bin/env bash
# Install what running firmware-example under QEMU needs, on a fresh Debian 12 machine:
#   1. qemu-system-arm (Debian package; runs the mps2-an386 Cortex-M4F board)
#   2. defmt-print (cargo install, pinned version; decodes the defmt log stream)
#   3. the region instruction-count plugin, built from firmware-example/tools/region.c against the
#      qemu-plugin.h header of Debian's qemu source package (a deb-src entry is added if missing)
# The thumb build itself is provisioned by scripts/setup-targets.sh (run here too).
#
# Usage: scripts/setup-firmware.sh
# Every step is skipped when already done; any step that cannot be completed fails the script.
#
# Environment:
#   PI_QEMU_PLUGIN_DIR  where libregion.so is built (default firmware-example/target/qemu-plugins)
#   PI_SKIP_TARGETS=1   do not run scripts/setup-targets.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly DEFMT_PRINT_VERSION=1.2.0
readonly PLUGIN_DIR=${PI_QEMU_PLUGIN_DIR:-$ROOT/firmware-example/target/qemu-plugins}
readonly PLUGIN_SRC=$ROOT/firmware-example/tools/region.c
readonly SRC_LIST=/etc/apt/sources.list.d/pi-toolkit-deb-src.sources

log() { printf 'setup-firmware: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

apt_updated=0
apt_update_once() {
    if [[ $apt_updated -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
        apt_updated=1
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: install $* by hand"
    apt_update_once
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
        die "apt-get install $* failed"
}

# --- 0. thumb toolchain ---------------------------------------------------------------------------
if [[ ${PI_SKIP_TARGETS:-0} != 1 ]]; then
    "$ROOT/scripts/setup-targets.sh" thumbv7em-none-eabihf
fi

# --- 1. QEMU --------------------------------------------------------------------------------------
if command -v qemu-system-arm >/dev/null 2>&1; then
    log "qemu-system-arm present: $(qemu-system-arm --version | sed -n 1p)"
else
    apt_install qemu-system-arm
    command -v qemu-system-arm >/dev/null 2>&1 || die "qemu-system-arm still missing after install"
    log "installed $(qemu-system-arm --version | sed -n 1p)"
fi
machines=$(qemu-system-arm -machine help)
grep -q '^mps2-an386' <<<"$machines" ||
    die "this qemu-system-arm has no mps2-an386 machine (need QEMU >= 6)"

# --- 2. defmt-print -------------------------------------------------------------------------------
have_defmt_print=""
if command -v defmt-print >/dev/null 2>&1; then
    have_defmt_print=$(defmt-print --version 2>/dev/null | awk '{print $2; exit}' || true)
fi
if [[ $have_defmt_print == "$DEFMT_PRINT_VERSION" ]]; then
    log "defmt-print $DEFMT_PRINT_VERSION present"
else
    log "installing defmt-print $DEFMT_PRINT_VERSION (found: ${have_defmt_print:-none}); cargo install takes about 5 minutes"
    cargo install defmt-print --version "$DEFMT_PRINT_VERSION" --locked ||
        die "cargo install defmt-print --version $DEFMT_PRINT_VERSION --locked failed"
    command -v defmt-print >/dev/null 2>&1 ||
        die "defmt-print installed but not on PATH (add \${CARGO_HOME:-\$HOME/.cargo}/bin to PATH)"
fi

# --- 3. region plugin -----------------------------------------------------------------------------
# The plugin API must match the running QEMU, so the header comes from the source package of the
# installed qemu-system-arm.
fetch_plugin_header() {
    local header=$1 work srcpkg_version orig
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: put qemu-plugin.h at $header by hand"
    if ! apt-cache showsrc qemu 2>/dev/null | grep -q '^Package: qemu$'; then
        log "adding deb-src entries for bookworm and bookworm-security ($SRC_LIST)"
        as_root tee "$SRC_LIST" >/dev/null <<'EOF'
# Added by pi-toolkit scripts/setup-firmware.sh: source packages (for qemu-plugin.h).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt_updated=0
        apt_update_once
    fi
    # Source version of the installed binary: drop a binNMU suffix (+bN).
    srcpkg_version=$(dpkg-query -W -f='${source:Version}' qemu-system-arm 2>/dev/null || true)
    work=$(mktemp -d)
    log "downloading Debian's qemu source ${srcpkg_version:-(candidate)} for qemu-plugin.h (~24 MB)"
    if ! (cd "$work" && apt-get source --download-only -q "qemu${srcpkg_version:+=$srcpkg_version}" >&2); then
        log "exact source version unavailable; trying the candidate"
        (cd "$work" && apt-get source --download-only -q qemu >&2) || {
            rm -rf "$work"
            die "apt-get source --download-only qemu failed"
        }
    fi
    orig=$(find "$work" -maxdepth 1 -name 'qemu_*.orig.tar.*' | sed -n 1p)
    [[ -n $orig ]] || {
        rm -rf "$work"
        die "no qemu orig tarball downloaded"
    }
    tar -xf "$orig" -C "$work" --wildcards '*/include/qemu/qemu-plugin.h' || {
        rm -rf "$work"
        die "qemu-plugin.h not found in $orig"
    }
    mkdir -p "$(dirname "$header")"
    find "$work" -path '*/include/qemu/qemu-plugin.h' -exec cp {} "$header" \;
    rm -rf "$work"
    [[ -s $header ]] || die "could not extract qemu-plugin.h"
}

plugin=$PLUGIN_DIR/libregion.so
header=$PLUGIN_DIR/include/qemu-plugin.h
if [[ -f $plugin && $plugin -nt $PLUGIN_SRC ]]; then
    log "region plugin present: $plugin"
else
    [[ -f $header ]] || fetch_plugin_header "$header"
    command -v gcc >/dev/null 2>&1 || apt_install gcc
    mkdir -p "$PLUGIN_DIR"
    log "building $plugin"
    gcc -O2 -Wall -Wextra -shared -fPIC -I"$(dirname "$header")" "$PLUGIN_SRC" -o "$plugin" ||
        die "building the region plugin failed"
fi

log "ok: qemu-system-arm, defmt-print $DEFMT_PRINT_VERSION and $plugin ready"
