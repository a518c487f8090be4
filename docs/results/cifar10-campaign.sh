#!/usr/bin/env bash
# The CIFAR-10 linearization campaign behind RESULTS.md ("CIFAR-10"): a ResNet-8 teacher trained
# with augmentation, then every method at 30%, 10% and 3% of its ReLUs on one schedule (preset
# `fast`, 2 mask + 2 fine-tune epochs on 6,000 training images).
#
# Resumable: run it again after an interruption. The teacher resumes from its last epoch, finished
# cells are skipped and an unfinished cell resumes from its last epoch. Run it in the background:
#
#   cargo build --release -p host-trainer
#   mkdir -p runs/cifar10 && cp target/release/host-trainer runs/cifar10/host-trainer
#   HT=runs/cifar10/host-trainer nohup nice -n 10 docs/results/cifar10-campaign.sh > runs/cifar10/campaign.log 2>&1 &
#
# (A copy of the binary keeps the campaign on one build while the source changes.) At any time,
# docs/results/cifar10-results.sh regenerates the RESULTS.md section from the finished cells and
# names the missing ones. Needs the CIFAR-10 archive (see host-trainer/README.md).
set -euo pipefail
HT=${HT:-target/release/host-trainer}
R=${RUNS:-runs/cifar10}
mkdir -p "$R"

# Teacher: ResNet-8 (width 16), random crop + flip, SGD 0.1 momentum 0.9, wd 5e-4, cosine, batch
# 128, 6 epochs on the 45,000 training images (5,000 held out for validation): 23 min on the
# 2-core VM (shared with builds).
if [ ! -f "$R/teacher/model.bpk" ]; then
  if [ -f "$R/teacher/checkpoint.ckpt" ]; then
    "$HT" train --resume --out "$R/teacher" --quiet
  else
    "$HT" train --dataset cifar10 --arch resnet8 --epochs 6 --out "$R/teacher" --quiet
  fi
fi

# The plan (idempotent: the same plan is accepted again), then every cell.
"$HT" sweep --from "$R/teacher" --plan "$R/sweep" \
  --methods snl,autorep,senet,streamlinet,deepreduce --budgets 30%,10%,3% \
  --mask-epochs 2 --finetune-epochs 2 --train-limit 6000 --val-limit 2000 --fixed-limit 1000 --quiet \
  --binary "$HT"
# The cells are independent: JOBS at a time, one thread each (RESULTS.md's ran with JOBS=2 on the
# 2-core VM; a cell took 4-9 minutes there).
RAYON_NUM_THREADS=1 xargs -P "${JOBS:-2}" -d '\n' -I{} sh -c '{}' < "$R/sweep/commands.txt" \
  || echo "some cells failed: re-run the script to retry them"
"$HT" sweep --collect "$R/sweep"
