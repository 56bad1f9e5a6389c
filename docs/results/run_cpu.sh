#!/usr/bin/env bash
# The committed results in docs/results/, reproduced on a 2-core CPU at small budgets
# (a fraction of the paper's 64k iterations). Trained runs are shared between commands through
# --runs-from (git-ignored folders); re-running skips finished runs and resumes interrupted ones.
# On a GPU, use --budget 1 --seeds 5 --device cuda for the paper's full schedule.
set -euo pipefail
D=${DATA:-../shared/data/cifar10-jpeg/train}
B=${BUDGET:-0.01}         # shortcuts
BG=${BUDGET_GRAD:-0.005}  # gradient recordings
common=(--data "$D" --device cpu --no-progress)
# issue 20: Table 6 + Fig. 6 + Fig. 7 at budget 0.1 from one queue (start it twice with
# OMP_NUM_THREADS=1 on 2 cores: the workers share the queue, as docs/results/paper_worker.sh
# does), then the three reports and the summary page docs/results/RESULTS.md
OMP_NUM_THREADS=1 resnets reproduce paper "${common[@]}" --budget 0.1 --runs-from .bgtrain/runs-b0.1 --out docs/results
# each claim below is decided paired by seed (a verdict needs at least 2 seeds)
resnets reproduce shortcuts "${common[@]}" --budget "$B" --seeds 4 --runs-from ".bgtrain/runs-b$B" --out docs/results/shortcuts
resnets analyze gradients "${common[@]}" --budget "$BG" --runs-from ".bgtrain/runs-b$BG-grad" --out docs/results/gradients
resnets reproduce transfer "${common[@]}" --budget 0.005 --pretrain-budget 0.02 --seeds 5 --runs-from .bgtrain/runs-transfer --out docs/results/transfer
# the family (issue 13): sum against concatenation, original against pre-activation units
resnets reproduce sum-vs-concat "${common[@]}" --budget 0.005 --seeds 3 --out docs/results/sum-vs-concat --runs-from .bgtrain/runs-family
resnets reproduce preact "${common[@]}" --budget 0.003 --seeds 2 --out docs/results/preact --runs-from .bgtrain/runs-family
