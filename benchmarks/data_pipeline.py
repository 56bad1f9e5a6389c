"""(c) Decoded-cache build time for the 50,000 shared CIFAR JPEGs (cold cache, all cores), and
the fraction of each training step spent waiting for data, measured by the trainer itself
(`data_wait` in metrics.jsonl) over a short ResNet-20 run. Prints one JSON line.

    python benchmarks/data_pipeline.py [--data DIR] [--iters 300] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from resnets.bench import bench_data
from resnets.train import build_config, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/cifar10-jpeg/train")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    data = bench_data(a.data, steps=100)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_config(
            "he2015-cifar",
            cli_values={"data": a.data, "iters": a.iters, "eval_every": 100, "workers": a.workers},
        )
        train(cfg, Path(tmp) / "run", progress=False, echo=False)
        rows = [
            json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
        ]
    waits = [r["data_wait"] for r in rows]
    print(
        json.dumps(
            {
                **data,
                "data_wait_fraction": sum(waits) / len(waits),
                "data_wait_per_eval": waits,
                "train_images_per_sec": [r["images_per_sec"] for r in rows],
                "workers": a.workers,
            }
        )
    )


if __name__ == "__main__":
    main()
