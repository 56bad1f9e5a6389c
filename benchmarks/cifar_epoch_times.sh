#!/usr/bin/env bash
# One epoch (351 iterations of batch 128, the paper's he2015-cifar settings) of ResNet-20, -56 and
# -110 through the real trainer on the shared CIFAR-10 JPEGs: training seconds per epoch
# (evaluation excluded) and images/s. DEVICE=cuda for the GPU figures.
set -euo pipefail
DATA=${DATA:-../shared/data/cifar10-jpeg/train}
DEVICE=${DEVICE:-auto}
OUT=${OUT:-runs/epoch-times-$(date +%Y%m%d-%H%M%S)}
for m in resnet20 resnet56 resnet110; do
  resnets train --recipe he2015-cifar --data "$DATA" --model "$m" --iters 351 --warmup off \
    --device "$DEVICE" --out "$OUT/$m" --no-progress --json "$@" > /dev/null
  python3 - "$OUT/$m" "$m" <<'PY'
import json, sys
s = json.load(open(f"{sys.argv[1]}/summary.json"))
print(json.dumps({"model": sys.argv[2], "epoch_train_s": s["train_time"], "images_per_sec": s["images_per_sec"],
                  "val_err_after_1_epoch": s["final_val_err"]}))
PY
done
