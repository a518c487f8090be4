#!/usr/bin/env bash
# The linearization sweep behind RESULTS.md: teachers, then every method at every budget on the
# embedded digits, MNIST and Fashion-MNIST (LeNet-style). Resumable: re-running skips finished
# cells and resumes unfinished ones. Needs data/ (scripts/fetch-datasets.sh).
set -euo pipefail
HT=${HT:-target/release/host-trainer}
R=${RUNS:-runs/lin}
BUDGETS=50%,20%,10%,5%,2%,1%

# Teachers (all-ReLU baselines). MNIST/Fashion on the first 20k training images.
[ -f $R/teacher-digits/model.bpk ]  || $HT train --dataset digits --quiet --out $R/teacher-digits
[ -f $R/teacher-mnist/model.bpk ]   || $HT train --dataset mnist --epochs 3 --train-limit 20000 --quiet --out $R/teacher-mnist
[ -f $R/teacher-fashion/model.bpk ] || $HT train --dataset fashion-mnist --epochs 4 --train-limit 20000 --quiet --out $R/teacher-fashion

# Digits: whole training split (1294 images), 4 mask + 4 fine-tune epochs.
$HT sweep --from $R/teacher-digits --budgets $BUDGETS --out $R/sweep-digits \
  --mask-epochs 4 --finetune-epochs 4 --quiet
# MNIST / Fashion-MNIST: 6000 training images, 2000 validation images, 2 mask + 2 fine-tune
# epochs per run; pi-core fixed-point accuracy on the first 2000 test images (float on all 10k).
for d in mnist fashion; do
  $HT sweep --from $R/teacher-$d --budgets $BUDGETS --out $R/sweep-$d \
    --mask-epochs 2 --finetune-epochs 2 --train-limit 6000 --val-limit 2000 --fixed-limit 2000 --quiet
done

# Channel masks on the digits, and the linear floor (all ReLUs but one removed).
$HT sweep --from $R/teacher-digits --budgets $BUDGETS --out $R/sweep-digits-channel \
  --granularity channel --mask-epochs 4 --finetune-epochs 4 --quiet
for d in mnist fashion; do
  [ -f $R/floor-$d/report.json ] || $HT linearize --method deepreduce --budget 1 --from $R/teacher-$d \
    --out $R/floor-$d --mask-epochs 2 --finetune-epochs 2 --train-limit 6000 --val-limit 2000 \
    --fixed-limit 2000 --quiet
done
