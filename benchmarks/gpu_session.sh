#!/usr/bin/env bash
# What to run when a session is lent a GPU (the device tool: 10 min per command, 30 min in all).
# Prepare here first (git-ignored, carried):  mkdir -p .data && cp -r ../shared/data/cifar10-jpeg .data/
# Then one device call per step, each with carry [".data/cifar10-jpeg"], e.g.
#   run(command="bash benchmarks/gpu_session.sh fast-cifar", carry=[".data/cifar10-jpeg"])
# Every step writes its JSON under $OUT (returned by the device tool); copy the figures into
# BENCHMARKS.md and docs/results with the device name from the reply.
set -euo pipefail
D=${DATA:-.data/cifar10-jpeg/train}
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
pip install -q -e . --no-deps >/dev/null 2>&1 || pip install -q -e .
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
case "${1:-all}" in
  bench)  # issue 5 sections 1 and 4: fast paths vs fp32 eager, resnet50 bf16 vs NVIDIA's 2,470 img/s
    for args in "--model resnet20 --batch-size 512" "--model resnet50 --batch-size 256 --steps 20" \
                "--model resnet50 --batch-size 256 --steps 20 --set compile=on --set fused_optimizer=on" \
                "--model fast_resnet8 --batch-size 1024 --recipe fast-cifar --set compile=on --set compile_mode=max-autotune-no-cudagraphs --set fused_optimizer=on"; do
      resnets benchmark train $args --device cuda --json | tail -1 >> "$OUT/bench_train.jsonl"
    done ;;
  fast-cifar)  # issue 5 section 2: >= 94% on the 5k split, time over 5 seeds
    python benchmarks/fast_cifar.py --data "$D" --device cuda --seeds 5 --out "$OUT/fast-cifar" \
      | tail -1 > "$OUT/fast_cifar.json" ;;
  epochs)  # issue 5 section 3: epoch times of ResNet-20/56/110
    DEVICE=cuda OUT="$OUT/epochs" bash benchmarks/cifar_epoch_times.sh > "$OUT/epoch_times.jsonl" ;;
  he56)  # issue 5 section 3: the paper's full 64k-iteration schedule on ResNet-56 (goal < 3 min)
    /usr/bin/time -v resnets train --recipe he2015-cifar --data "$D" --model resnet56 --device cuda \
      --out "$OUT/he56" --no-progress --json 2> "$OUT/he56.time" | tail -1 > "$OUT/he56.json" ;;
  *) echo "usage: $0 bench|fast-cifar|epochs|he56"; exit 2 ;;
esac
