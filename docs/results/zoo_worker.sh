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
# A second training seed (issue 42's seed-to-seed spread): SEED=1 in front trains
# .bgtrain/zoo/MODEL-seed1-cifar10 with --seed 1 --split-seed 0, so it holds out the very images
# the seed-0 run held out (a paired test scores both on them); ship it with SEED=1 as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: docs/results/zoo_worker.sh MODEL (a CIFAR model, e.g. resnet32)}
seed=${SEED:-0}
. docs/results/zoo_names.sh
zoo_names "$model" "$seed"
mkdir -p .bgtrain/zoo
[ -d .bgtrain/zoo-src ] || cp -r src .bgtrain/zoo-src
export PYTHONPATH=$PWD/.bgtrain/zoo-src RESNETS_CACHE=$PWD/.bgtrain/cache
# glibc's allocator holding freed memory for the next step, as resnets.runtime.hold_freed_memory
# sets it, also for a code snapshot taken before it (BENCHMARKS.md, 'The CPU allocator':
# plain-56 at 140-160 img/s, not 118-126); a value the caller sets is kept
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-33554432}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-2147483647}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-268435456}
if [ -f "$run/last.ckpt" ]; then
  exec nice -n 10 python -m resnets train --resume "$run" --no-progress ${THREADS:+--threads "$THREADS"}
fi
if ! grep -q split_seed .bgtrain/zoo-src/resnets/train/config.py; then
  echo "zoo_worker: the code snapshot .bgtrain/zoo-src predates --split-seed; remove it while" \
    "no zoo run is training, and the next start takes a fresh one" >&2
  exit 1
fi
exec nice -n 10 python -m resnets train --recipe he2015-cifar --model "$model" \
  --data ../shared/data/cifar10-jpeg/train --seed "$seed" --split-seed 0 \
  --threads "${THREADS:-1}" --out "$run" --no-progress
