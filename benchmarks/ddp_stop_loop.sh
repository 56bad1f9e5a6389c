#!/usr/bin/env bash
# The 2-process `--stop-after` run of tests/train/test_distributed.py, over and over, to show
# that a rank no longer hangs in gloo's process-group destructor when a run stops (issue 30).
# Before the mend one stop in about 25 hung; at that rate 75 runs show a hang with 95%
# probability (1 - (24/25)^75 = 0.95). Each run gets LIMIT seconds (default 120); a run still
# alive then counts as a hang, and every process it left is killed.
#   bash benchmarks/ddp_stop_loop.sh [RUNS]        (default 75)
set -uo pipefail
runs=${1:-75}
limit=${LIMIT:-120}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 RESNETS_DIST_TIMEOUT=60
hangs=0 failed=0
for i in $(seq 1 "$runs"); do
  port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  started=$(date +%s.%N)
  timeout -s KILL "$limit" setsid python -m torch.distributed.run --nproc-per-node 2 \
    --master-addr 127.0.0.1 --master-port "$port" -m resnets train --model resnet8 \
    --batchnorm false --epochs 1 --batch-size 64 --lr 0.02 --precision fp32 --no-progress \
    --device cpu --out "$tmp/run$i" --stop-after 9 > "$tmp/log$i" 2>&1
  rc=$?
  took=$(echo "$(date +%s.%N) - $started" | bc)
  if [ "$rc" = 137 ]; then
    hangs=$((hangs + 1))
    pkill -KILL -f "$tmp/run$i" || true  # the ranks run in sessions of their own
    echo "run $i: HUNG (killed after ${limit} s)"; cat "$tmp/log$i"
  elif [ "$rc" != 0 ]; then
    failed=$((failed + 1)); echo "run $i: exit $rc"; cat "$tmp/log$i"  # the whole log: its cause
  else
    echo "run $i: stopped cleanly in ${took%.*} s"
  fi
  rm -rf "$tmp/run$i"
done
echo "$runs runs: $hangs hung, $failed failed otherwise"
[ "$hangs" = 0 ] && [ "$failed" = 0 ]
