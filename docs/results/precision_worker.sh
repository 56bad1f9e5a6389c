#!/usr/bin/env bash
# Issue 35, item 2: does bf16 autocast hold deep nets back? One budget-0.1 run (6,400 iterations
# of batch 128, lr /10 at 3,200 and 4,800), the config `reproduce paper` gives MODEL-sSEED, with
# only the precision changed (PRECISION, default fp32), to set beside the bf16 run of the same
# seed (same held-out split). Run from the repository root; the run lives in the git-ignored
# .bgtrain/precision/runs/MODEL-sSEED-PRECISION, trained by a code snapshot
# (.bgtrain/precision-src, taken once), niced, 1 thread. Start it detached:
#   setsid nohup docs/results/precision_worker.sh resnet56 > .bgtrain/precision-resnet56.log 2>&1 < /dev/null &
# Stop it with SIGTERM (a checkpoint is written); the same command resumes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: docs/results/precision_worker.sh MODEL [SEED]}
seed=${2:-0}
precision=${PRECISION:-fp32}
mkdir -p .bgtrain/precision
[ -d .bgtrain/precision-src ] || cp -r src .bgtrain/precision-src
export PYTHONPATH=$PWD/.bgtrain/precision-src RESNETS_CACHE=$PWD/.bgtrain/cache OMP_NUM_THREADS=1
exec nice -n 10 python - "$model" "$seed" "$precision" <<'PY'
import sys
from pathlib import Path

from resnets.analysis.runs import RunSpec, budget_config, run_all

model, seed, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = budget_config(
    model, "../shared/data/cifar10-jpeg/train", 0.1, seed, "cpu", precision=precision, threads=1
)
spec = RunSpec(f"{model}-s{seed}-{precision}", cfg, {"precision": precision})
run_all([spec], Path(".bgtrain/precision"), progress=False)
PY
