#!/usr/bin/env bash
# Regenerates the CIFAR-10 section of RESULTS.md from whatever cells of the campaign
# (docs/results/cifar10-campaign.sh) have finished, and names the missing ones. Safe to run while
# the campaign runs: it only reads the cells.
set -euo pipefail
HT=${HT:-target/release/host-trainer}
R=${RUNS:-runs/cifar10}
"$HT" sweep --collect "$R/sweep"
cp "$R/sweep/results.csv" docs/results/cifar10-results.csv
for p in accuracy_vs_relus allocation; do
  for ext in png svg; do
    [ -f "$R/sweep/$p.$ext" ] && cp "$R/sweep/$p.$ext" "docs/results/cifar10-$p.$ext"
  done
done
python3 docs/results/sweep_section.py "$R/sweep" cifar10 --update RESULTS.md
