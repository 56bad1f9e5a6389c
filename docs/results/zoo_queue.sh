#!/usr/bin/env bash
# Issue 42's whole-schedule zoo runs one after another, in the issue's order: plain-56, ResNet-44,
# ResNet-110, then the second training seed of ResNet-20 and of ResNet-56. Each goes through
# docs/results/zoo_worker.sh on THREADS threads (default 2 here: one run on both cores trains
# as many images as two 1-thread runs side by side; BENCHMARKS.md, 'plain-56 for the
# whole-schedule zoo run'), and the next starts only when one has finished, so no core idles
# between two runs. A model whose weights are shipped, or whose run has finished and waits for
# docs/results/zoo_ship.sh, is skipped. Start it detached, from the repository root:
#   setsid nohup docs/results/zoo_queue.sh >> .bgtrain/zoo-queue.log 2>&1 < /dev/null &
# Stop it with SIGTERM to the queue or to its training process: the run writes a checkpoint and
# the queue ends without starting the next; the same command resumes where it stopped.
# ZOO_QUEUE="resnet44 resnet20:1" in front trains another list (MODEL or MODEL:SEED).
set -euo pipefail
cd "$(dirname "$0")/../.."
. docs/results/zoo_names.sh
export THREADS=${THREADS:-2}
queue=${ZOO_QUEUE:-plain56 resnet44 resnet110 resnet20:1 resnet56:1}  # MODEL or MODEL:SEED
child=
stop() {  # a signal to the queue goes to the run training now, which writes its checkpoint
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" || true
  fi
  exit 143
}
trap stop TERM INT
for entry in $queue; do
  model=${entry%%:*}
  seed=0
  [ "$model" = "$entry" ] || seed=${entry#*:}
  zoo_names "$model" "$seed"
  if [ -e "src/resnets/weights/$name.safetensors" ]; then
    echo "zoo_queue: $name is shipped; next"
    continue
  fi
  if [ -e "$run/summary.json" ]; then
    echo "zoo_queue: $run has finished; ship it with:" \
      "SEED=$seed bash docs/results/zoo_ship.sh $model"
    continue
  fi
  echo "zoo_queue: $(date -u '+%F %T') training $name in $run on $THREADS threads"
  SEED=$seed docs/results/zoo_worker.sh "$model" &
  child=$!
  status=0
  wait "$child" || status=$?
  child=
  if [ "$status" != 0 ]; then
    echo "zoo_queue: $(date -u '+%F %T') $name stopped (exit $status); the same command resumes it"
    exit "$status"
  fi
done
echo "zoo_queue: every run in the queue is shipped or finished"
