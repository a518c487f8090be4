#!/usr/bin/env bash
# Official-code side of the SNL / AutoReP fidelity comparison (issue 16, part 3).
# Runs OUTSIDE CI. Results and deviations: docs/results/fidelity-official.md.
#
# Usage (from anywhere; paths are relative to the repository root):
#   scripts/fidelity/official.sh [extra args for official.py, e.g. --seeds 1 --budgets 0.1]
# Environment:
#   VENV=scripts/fidelity/.venv    Python venv to create/use (PYTHON=/path/to/python skips the venv)
#   SNL_SRC=DIR             existing checkout (or bare/mirror git dir) of
#                           NYU-DICE-Lab/selective_network_linearization; default: clone
#   AUTOREP_SRC=DIR         same for harveyp123/AutoReP; default: clone
#   CACHE=scripts/fidelity/.cache where the pinned sources are exported / cloned
#   MNIST=data/mnist        the four raw MNIST idx files
#   THREADS=2               torch threads (the runs are niced)
#   OUT=scripts/fidelity/.cache/fidelity-official.csv  (CSV, one row per run)
# Pins: SNL eac688c, AutoReP ac8f662 (the commit the brief names; the
# v1.0.0 tag is 0121026, which lacks models_util/model_spReLU_relay.py and
# scripts/cifar100.sh); torch 2.11.0, numpy 2.4.6, scipy 1.17.1 (AutoReP's approx/ imports scipy; torchvision is not needed: the driver stubs
# it, the official files import it only for datasets that are not used here).
# Runtime (measured 2026-12-04 on the project's 2-core VM, niced, load ~7 from builds): teacher
# ~170-200 s, each run ~160-190 s with 1 thread (4-5 runs in parallel); the full default grid
# (2 methods x 2 settings x 2 budgets x 3 seeds = 24 runs) did not fit the hour there
# (estimate: ~70 min at that rate). Run slices in parallel with --methods/--settings/--seeds; the
# teacher is cached in $CACHE/work. The first install downloads torch (~200 MB CPU wheel).
# AutoReP has two extra settings, official-noft and official-adamft (see official.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SNL_COMMIT=eac688c
AUTOREP_COMMIT=ac8f662
CACHE=${CACHE:-$ROOT/scripts/fidelity/.cache}
MNIST=${MNIST:-$ROOT/data/mnist}
THREADS=${THREADS:-2}
OUT=${OUT:-$CACHE/fidelity-official.csv}
mkdir -p "$CACHE"

# --- Python -----------------------------------------------------------------------------
if [ -z "${PYTHON:-}" ]; then
  VENV=${VENV:-$ROOT/scripts/fidelity/.venv}
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --index-url https://download.pytorch.org/whl/cpu torch==2.11.0
    "$VENV/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1
  fi
  PYTHON=$VENV/bin/python
fi

# --- official sources at the pinned commits -----------------------------------------------
# get NAME URL COMMIT SRC_OVERRIDE -> prints a directory holding the files at COMMIT
get() {
  local name=$1 url=$2 commit=$3 src=${4:-}
  local dest=$CACHE/$name-$commit
  if [ ! -d "$dest" ]; then
    local gitdir=$src
    if [ -z "$gitdir" ]; then
      gitdir=$CACHE/$name.git
      [ -d "$gitdir" ] || git clone --quiet --bare "$url" "$gitdir" >&2
    fi
    if [ -d "$gitdir/.git" ]; then gitdir=$gitdir/.git; fi
    mkdir -p "$dest.tmp"
    git --git-dir="$gitdir" archive "$commit" | tar -x -C "$dest.tmp"
    mv "$dest.tmp" "$dest"
  fi
  echo "$dest"
}
SNL_DIR=$(get snl https://github.com/NYU-DICE-Lab/selective_network_linearization.git \
  "$SNL_COMMIT" "${SNL_SRC:-}")
AUTOREP_DIR=$(get autorep https://github.com/harveyp123/AutoReP.git "$AUTOREP_COMMIT" \
  "${AUTOREP_SRC:-}")

# --- run -------------------------------------------------------------------------------------
exec nice -n 10 "$PYTHON" "$ROOT/scripts/fidelity/official.py" \
  --snl-src "$SNL_DIR" --autorep-src "$AUTOREP_DIR" --mnist "$MNIST" \
  --threads "$THREADS" --out "$OUT" --work "$CACHE/work" "$@"
