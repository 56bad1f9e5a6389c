#!/usr/bin/env bash
# Issue 34's claim at CPU scale: Faster R-CNN + FPN with a residual backbone and with its plain
# twin of the same depth (resnet18, plain18; from scratch), the same schedule, seeds given,
# trained one after another by this worker on the generated detection set. Run from the
# repository root; everything lives in the git-ignored .bgtrain/detect, trained by a code
# snapshot (.bgtrain/detect-src, taken once), niced, one thread. Two workers share 2 cores:
#   setsid nohup docs/results/detection_worker.sh 0 > .bgtrain/detect-w0.log 2>&1 < /dev/null &
#   setsid nohup docs/results/detection_worker.sh 1 > .bgtrain/detect-w1.log 2>&1 < /dev/null &
# (the argument is the seed: each worker trains resnet18 then plain18 with it). Stop them with
# SIGTERM (a checkpoint is written); the same commands resume exactly. Settings (environment):
# TRAIN_IMAGES (600), VAL_IMAGES (300), EPOCHS (8), MILESTONES (5,7).
set -euo pipefail
cd "$(dirname "$0")/../.."
seed=${1:?usage: docs/results/detection_worker.sh SEED}
root=.bgtrain/detect
mkdir -p "$root/runs"
[ -d .bgtrain/detect-src ] || cp -r src .bgtrain/detect-src
export PYTHONPATH=$PWD/.bgtrain/detect-src OMP_NUM_THREADS=1
resnets() { nice -n 10 python -m resnets "$@"; }
cifar=../shared/data/cifar10-jpeg/train
# the data, once (either worker; the second waits on the lock)
(
  flock 9
  [ -f "$root/data/train/instances.json" ] ||
    resnets detect data "$cifar" "$root/data/train" --images "${TRAIN_IMAGES:-600}" --split train
  [ -f "$root/data/val/instances.json" ] ||
    resnets detect data "$cifar" "$root/data/val" --images "${VAL_IMAGES:-300}" --split val
) 9> "$root/data.lock"
for backbone in resnet18 plain18; do
  run=$root/runs/$backbone-s$seed
  if [ -f "$run/summary.json" ]; then continue; fi
  if [ -f "$run/last.ckpt" ]; then
    resnets detect train --resume "$run" --no-progress
  else
    rm -rf "$run"  # a run stopped before its first checkpoint starts again
    resnets detect train --train "$root/data/train" --val "$root/data/val" --out "$run" \
      --backbone "$backbone" --epochs "${EPOCHS:-8}" --milestones "${MILESTONES:-5,7}" \
      --seed "$seed" --threads 1 --no-progress
  fi
done
