#!/usr/bin/env bash
# (a) The default job, exactly as the README runs it: `resnets train` with no options.
# Prints wall time (process start to exit) and the validation accuracy.
set -euo pipefail
tmp=$(mktemp -d)
cd "$tmp"
start=$(date +%s.%N)
resnets train --no-progress --json | tail -1 > result.json
end=$(date +%s.%N)
python3 - "$start" "$end" <<'PY'
import json, sys
r = json.load(open("result.json"))
print(json.dumps({"wall_s": float(sys.argv[2]) - float(sys.argv[1]), "val_acc": 1 - r["val_err"], "iters": r["iters"]}))
PY
rm -rf "$tmp"
