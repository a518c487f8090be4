#!/usr/bin/env bash
# Regenerates RESULTS.md's generated sections (between `<!-- BEGIN name -->` and
# `<!-- END name -->`) and the plots in docs/results/ from the finished cells of
# docs/results/run-sweep.sh and docs/results/cifar10-campaign.sh. Safe to run while they run: it
# only reads the cells, and names the missing ones.
set -euo pipefail
HT=${HT:-target/release/host-trainer}
R=${RUNS:-runs/lin}
section() { # section SWEEP_DIR NAME [PLOT_PREFIX]
  [ -f "$1/sweep.json" ] || { echo "$1: not planned yet, section $2 left as it is"; return; }
  "$HT" sweep --collect "$1" > /dev/null
  python3 docs/results/sweep_section.py "$1" "$2" --update RESULTS.md
  if [ -n "${3:-}" ]; then
    cp "$1/results.csv" "docs/results/$3-results.csv"
    for p in accuracy_vs_relus allocation; do
      for ext in png svg; do
        [ -f "$1/$p.$ext" ] && cp "$1/$p.$ext" "docs/results/$3-$p.$ext"
      done
    done
  fi
}
section $R/sweep-digits digits digits
section $R/sweep-digits-channel digits-channel digits-channel
section $R/sweep-digits-seeds digits-seeds
section $R/sweep-mnist mnist mnist
section $R/sweep-fashion fashion fashion
section runs/fidelity/fast fidelity-fast
if [ -f runs/cifar10/sweep/sweep.json ]; then
  RUNS=runs/cifar10 HT=$HT docs/results/cifar10-results.sh
else
  echo "runs/cifar10/sweep: not planned yet, section cifar10 left as it is"
fi
