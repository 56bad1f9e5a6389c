"""The `fast-cifar` recipe over several seeds: validation accuracy on the 5k split held out of the
shared CIFAR-10 JPEGs, and training time to reach 90% / 93% / 94% (evaluations excluded; each run
evaluates every ``--eval-every`` iterations, so times are resolved to that interval).
Prints one JSON line; writes runs under ``--out``.

    python benchmarks/fast_cifar.py [--seeds 5] [--device cuda] [--epochs 10] [--eval-every 22]

On a GPU: ``--device cuda``; on the 2-core CPU one seed takes about 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from resnets.train import build_config, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/cifar10-jpeg/train")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=float, default=0.0, help="0: the recipe's")
    ap.add_argument("--eval-every", type=int, default=22)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", default=f"runs/fast-cifar-{time.strftime('%Y%m%d-%H%M%S')}")
    a = ap.parse_args()
    runs = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        cli = {"data": a.data, "seed": seed, "device": a.device, "eval_every": a.eval_every}
        if a.epochs:
            cli["epochs"] = a.epochs
        if a.compile:
            cli["compile"] = "on"
        cfg = build_config("fast-cifar", cli_values=cli)
        run_dir = Path(a.out) / f"seed{seed}"
        if (run_dir / "summary.json").is_file():
            s = json.loads((run_dir / "summary.json").read_text())
        else:
            t0 = time.perf_counter()
            train(cfg, run_dir, progress=False, echo=False)
            s = json.loads((run_dir / "summary.json").read_text())
            s["wall_s"] = time.perf_counter() - t0
        runs.append(
            {
                "seed": seed,
                "val_acc": 1 - s["final_val_err"],
                "train_s": s["train_time"],
                "time_to": {k: (v or {}).get("seconds") for k, v in s["time_to_accuracy"].items()},
                "wall_s": s.get("wall_s"),
            }
        )

    def ms(xs):
        xs = [x for x in xs if x is not None]
        if not xs:
            return None
        return {
            "mean": statistics.mean(xs),
            "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "n": len(xs),
        }

    targets = runs[0]["time_to"].keys()
    print(
        json.dumps(
            {
                "runs": runs,
                "val_acc": ms([r["val_acc"] for r in runs]),
                "train_s": ms([r["train_s"] for r in runs]),
                "time_to": {t: ms([r["time_to"][t] for r in runs]) for t in targets},
                "reached": {t: sum(r["time_to"][t] is not None for r in runs) for t in targets},
                "device": a.device,
                "out": a.out,
            }
        )
    )


if __name__ == "__main__":
    main()
