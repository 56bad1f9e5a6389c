#!/usr/bin/env bash
# Ship a zoo model that docs/results/zoo_worker.sh has finished training: package its weights
# (re-scored in fp32 from the file on the run's held-out split), calibrate them in place
# (temperature fitted on the same held-out split), write their card (docs/cards/MODEL.cifar10),
# keep its recorded metrics (docs/results/zoo-curves/MODEL.jsonl, Fig. 6's curves) and judge
# the summary page's claims again, the whole-schedule Table 6 included (McNemar on the same
# 5,000 images). Run from the repository root with the model's name:
#   bash docs/results/zoo_ship.sh resnet56
# What stays by hand: the weights' row in the shipped-weights test
# (tests/models/test_catalogue.py) and in the README's table of weights.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: docs/results/zoo_ship.sh MODEL (a zoo model, e.g. resnet56)}
data=${DATA:-../shared/data/cifar10-jpeg/train}
. docs/results/zoo_names.sh
zoo_names "$model" "${SEED:-0}"  # SEED=N: a second training seed (zoo_worker.sh's SEED=N)
weights=src/resnets/weights/$name.safetensors
# (`weights package` itself refuses a run that has not finished)
if [ -e "$weights" ]; then
  echo "zoo_ship: $weights exists already; remove it to package the run again" >&2
  exit 1
fi
resnets weights package "$run" --name "$name" --out src/resnets/weights
resnets calibrate --weights "$weights" --data "$data" --no-progress
resnets weights card "$name" --data "$data" --out "docs/cards/$name" --no-progress
# the run's recorded metrics, kept beside the page for Fig. 6 (the run folder stays here)
mkdir -p docs/results/zoo-curves
cp "$run/metrics.jsonl" "docs/results/zoo-curves/.$curve.jsonl.tmp"
mv "docs/results/zoo-curves/.$curve.jsonl.tmp" "docs/results/zoo-curves/$curve.jsonl"
resnets analyze verdicts --results docs/results --data "$data" --zoo-runs .bgtrain/zoo
resnets weights list
