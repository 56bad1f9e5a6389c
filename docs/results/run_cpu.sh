#!/usr/bin/env bash
# The committed results in docs/results/, reproduced on a 2-core CPU at a small budget.
# Trained runs are shared between commands through --runs-from (a git-ignored folder).
# On a GPU, use --budget 1 --seeds 5 --device cuda for the paper's full schedule.
set -euo pipefail
D=${DATA:-../shared/data/cifar10-jpeg/train}
B=${BUDGET:-0.01}
R=.data/runs-b$B
common=(--data "$D" --budget "$B" --runs-from "$R" --device cpu --no-progress)
resnets reproduce degradation "${common[@]}" --out docs/results/degradation
resnets analyze responses "${common[@]}" --out docs/results/responses
resnets reproduce shortcuts "${common[@]}" --out docs/results/shortcuts
resnets reproduce cifar-table "${common[@]}" --out docs/results/cifar-table
resnets analyze gradients --data "$D" --budget "$(python3 -c "print($B/2)")" --runs-from "$R-grad" \
  --device cpu --no-progress --out docs/results/gradients
