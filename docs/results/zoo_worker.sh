#!/usr/bin/env bash
# A zoo model trained in the background at the paper's full CIFAR schedule (recipe he2015-cifar:
# 64k iterations of batch 128, lr 0.1 divided by 10 at 32k and 48k), for `resnets weights
# package`. Run from the repository root with the model's name; the run lives in the git-ignored
# .bgtrain/zoo/MODEL-cifar10, trained by a code snapshot (.bgtrain/zoo-src, taken once, so edits
# to src/ do not change a running model), niced, THREADS threads (default 1: one core is left).
# Start it detached (its own session, so no signal to the starting shell's group reaches it):
#   setsid nohup docs/results/zoo_worker.sh resnet32 > .bgtrain/zoo-resnet32.log 2>&1 < /dev/null &
# Stop it with SIGTERM (a checkpoint is written); the same command resumes it exactly. THREADS
# given on a resume moves the run to that many threads (no longer bit-identical to one count
# throughout; needs a snapshot of resnets with `train --resume --threads`: remove
# .bgtrain/zoo-src first and the next start takes a fresh one). When it
# has finished: resnets weights package .bgtrain/zoo/resnet32-cifar10 --name resnet32.cifar10 \
#   --out src/resnets/weights
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: docs/results/zoo_worker.sh MODEL (a CIFAR model, e.g. resnet32)}
run=.bgtrain/zoo/$model-cifar10
mkdir -p .bgtrain/zoo
[ -d .bgtrain/zoo-src ] || cp -r src .bgtrain/zoo-src
export PYTHONPATH=$PWD/.bgtrain/zoo-src RESNETS_CACHE=$PWD/.bgtrain/cache
if [ -f "$run/last.ckpt" ]; then
  exec nice -n 10 python -m resnets train --resume "$run" --no-progress ${THREADS:+--threads "$THREADS"}
fi
exec nice -n 10 python -m resnets train --recipe he2015-cifar --model "$model" \
  --data ../shared/data/cifar10-jpeg/train --seed 0 --threads "${THREADS:-1}" --out "$run" \
  --no-progress
