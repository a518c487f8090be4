#!/usr/bin/env bash
# The linearization results behind RESULTS.md (every section but CIFAR-10, which is
# docs/results/cifar10-campaign.sh): teachers, then every method at every budget on the embedded
# digits, MNIST and Fashion-MNIST (LeNet-style), SENet against SNL over three seeds, the
# fidelity cells (SNL and AutoReP, seeds 1-3) and the `paper`-preset cells.
#
# Resumable: re-running skips finished cells and resumes unfinished ones. The MNIST,
# Fashion-MNIST and fidelity sweeps are planned (`sweep --plan`) and their cells run JOBS at a
# time, one thread each: RESULTS.md's MNIST sweep and paper cells ran 8-12 cells at a time on a
# 16-core machine, the rest 1-2 at a time on the 2-core VM. Needs data/ (scripts/fetch-datasets.sh).
#
#   cargo build --release -p host-trainer
#   HT=target/release/host-trainer JOBS=2 docs/results/run-sweep.sh     # RUNS=runs/lin by default
set -euo pipefail
HT=${HT:-target/release/host-trainer}
R=${RUNS:-runs/lin}
JOBS=${JOBS:-2}
BUDGETS=50%,20%,10%,5%,2%,1%
LENET="--train-limit 6000 --val-limit 2000 --fixed-limit 2000 --quiet"
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}

run_plan() { # run_plan DIR: every cell of a plan, JOBS at a time, then collect
  xargs -P "$JOBS" -d '\n' -I{} sh -c '{}' < "$1/commands.txt" || echo "some cells of $1 failed: re-run to retry"
  "$HT" sweep --collect "$1"
}

# Teachers (all-ReLU baselines). MNIST/Fashion on 20,000 training images.
[ -f $R/teacher-digits/model.bpk ]  || $HT train --dataset digits --quiet --out $R/teacher-digits
[ -f $R/teacher-mnist/model.bpk ]   || $HT train --dataset mnist --epochs 3 --train-limit 20000 --quiet --out $R/teacher-mnist
[ -f $R/teacher-fashion/model.bpk ] || $HT train --dataset fashion-mnist --epochs 4 --train-limit 20000 --quiet --out $R/teacher-fashion

# Digits (preset fast): whole training split (1294 images), 4 mask + 4 fine-tune epochs; element
# and channel masks; SENet against SNL at 20% and 10% over seeds 1-3.
$HT sweep --from $R/teacher-digits --budgets $BUDGETS --out $R/sweep-digits --mask-epochs 4 --finetune-epochs 4 --quiet
$HT sweep --from $R/teacher-digits --budgets $BUDGETS --out $R/sweep-digits-channel \
  --granularity channel --mask-epochs 4 --finetune-epochs 4 --quiet
$HT sweep --from $R/teacher-digits --methods snl,senet --budgets 20%,10% --seeds 1,2,3 \
  --out $R/sweep-digits-seeds --mask-epochs 4 --finetune-epochs 4 --quiet

# MNIST / Fashion-MNIST (preset fast): 6000 training images, 2000 validation images, 2 mask +
# 2 fine-tune epochs; pi-core fixed point on the first 2000 test images (float on all 10,000).
for d in mnist fashion; do
  $HT sweep --from $R/teacher-$d --plan $R/sweep-$d --budgets $BUDGETS \
    --mask-epochs 2 --finetune-epochs 2 $LENET --binary "$HT"
  run_plan $R/sweep-$d
done

# Fidelity (RESULTS.md "Fidelity"): SNL and AutoReP on MNIST at 10% and 2%, seeds 2-3 of the
# fast preset (seed 1 is in sweep-mnist). The official code's side: scripts/fidelity/official.sh.
$HT sweep --from $R/teacher-mnist --plan runs/fidelity/fast --methods snl,autorep --budgets 10%,2% \
  --seeds 2,3 --mask-epochs 2 --finetune-epochs 2 $LENET --binary "$HT"
run_plan runs/fidelity/fast

# The paper preset at the longest schedules that fitted (RESULTS.md "The paper preset").
for b in 10 2; do
  [ -f runs/paper/snl-${b}pct/report.json ] || $HT linearize --method snl --preset paper --budget $b% \
    --from $R/teacher-mnist --out runs/paper/snl-${b}pct --mask-epochs 30 --finetune-epochs 10 $LENET
  [ -f runs/paper/autorep-${b}pct/report.json ] || $HT linearize --method autorep --preset paper --budget $b% \
    --from $R/teacher-mnist --out runs/paper/autorep-${b}pct --mask-epochs 40 $LENET
done

# The linear floor (all ReLUs but one removed).
for d in mnist fashion; do
  [ -f $R/floor-$d/report.json ] || $HT linearize --method deepreduce --budget 1 --from $R/teacher-$d \
    --out $R/floor-$d --mask-epochs 2 --finetune-epochs 2 $LENET
done
