"""The trainer's own step (``resnets.train.step``) in several configurations beside a plain
fp32 eager loop, all in one process and in alternating rounds, so a noisy machine slows every
variant alike. Prints img/s and the ratio to the fp32 loop; the last line is JSON.

    python benchmarks/trainer_step_variants.py [--model resnet20] [--batch-size 128]
        [--recipe he2015-cifar] [--rounds 5] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from resnets.bench import alternate, reference_step, trainer_step
from resnets.models import get_spec
from resnets.train.config import build_config

VARIANTS = {
    "eager (compile=off)": {"compile": "off"},
    "compiled (compile=on)": {"compile": "on"},
    "compiled fp32": {"compile": "on", "precision": "fp32"},
    "compiled + fused SGD": {"compile": "on", "fused_optimizer": "on"},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--recipe", default="he2015-cifar")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    dev = torch.device("cpu")
    spec = get_spec(a.model)
    size, classes = spec.default_image_size, spec.default_num_classes
    fns = {"fp32 eager loop": reference_step(a.model, a.batch_size, size, classes, dev)}
    for name, sets in VARIANTS.items():
        strings = {"model": a.model, "batch_size": str(a.batch_size), **sets}
        cfg = build_config(a.recipe, string_values=strings)
        fns[name] = trainer_step(cfg, size, classes, dev, cfg.iters or 10**9)[0]
    times = alternate(fns, a.steps, a.rounds, dev, warmup=3)
    ips = {k: a.batch_size / statistics.median(v) for k, v in times.items()}
    ref = ips["fp32 eager loop"]
    for k, v in ips.items():
        print(f"{k:<24} {v:8.1f} img/s  {v / ref:5.2f}x")
    print(
        json.dumps(
            {
                "model": a.model,
                "batch_size": a.batch_size,
                "threads": torch.get_num_threads(),
                "images_per_sec": ips,
                "ratio": {k: v / ref for k, v in ips.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
