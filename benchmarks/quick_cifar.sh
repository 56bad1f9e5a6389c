#!/usr/bin/env bash
# (d) ResNet-20 with the `quick` recipe on the shared CIFAR-10 JPEGs: validation accuracy on the
# 5k split held out of the 50k training images, and wall time (decode cache included if cold).
set -euo pipefail
DATA=${DATA:-../shared/data/cifar10-jpeg/train}
OUT=${OUT:-runs/bench-quick-$(date +%Y%m%d-%H%M%S)}
start=$(date +%s.%N)
resnets train --recipe quick --data "$DATA" --out "$OUT" --no-progress --json "$@" | tail -1 > "$OUT.json.tmp"
end=$(date +%s.%N)
python3 - "$OUT" "$start" "$end" <<'PY'
import json, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
r = json.load(open(out + ".json.tmp"))
s = json.load(open(f"{out}/summary.json"))
print(json.dumps({"val_acc": 1 - r["val_err"], "best_val_acc": 1 - r["best_val_err"], "iters": r["iters"],
                  "wall_s": end - start, "train_s": s["train_time"], "run_dir": out}))
PY
rm -f "$OUT.json.tmp"
