#!/usr/bin/env bash
# One background worker of issue 20's budget-0.1 queue (`resnets reproduce paper`), run from the
# repository root: a code snapshot in .bgtrain/src (taken once, so edits to src/ do not change
# a running set), 1 thread, niced. Start it twice on 2 cores: the workers share the queue.
# Start it detached (its own session, so no signal to the starting shell's group reaches it):
#   setsid nohup docs/results/paper_worker.sh > .bgtrain/worker1.log 2>&1 < /dev/null &
# Stop with SIGTERM (a checkpoint is written); starting it again resumes.
# Options given to it go to `reproduce paper`: `docs/results/paper_worker.sh --seeds 3` queues
# a third seed of ResNet-20/56 and plain-20/56 (give the same options on every start).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .bgtrain
[ -d .bgtrain/src ] || cp -r src .bgtrain/src
export PYTHONPATH=$PWD/.bgtrain/src RESNETS_CACHE=$PWD/.bgtrain/cache OMP_NUM_THREADS=1
exec nice -n 10 python -m resnets reproduce paper --data ../shared/data/cifar10-jpeg/train \
  --budget "${BUDGET:-0.1}" --device cpu --no-progress --out .bgtrain/paper-b0.1 \
  --runs-from .bgtrain/runs-b0.1 --train-only "$@"
