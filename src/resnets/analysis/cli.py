"""`resnets reproduce ...` and `resnets analyze ...`: the paper's experiments as commands.

Each command leaves a results folder with the resolved config of every run (``runs/*/``), the
metrics, CSV files, figures and a RESULTS.md that puts the paper's numbers beside ours.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..argtypes import count
from ..data import AugmentSpec, BatchStream, channel_stats, load_dataset, stratified_split
from ..errors import ConfigError, TrainingDiverged
from ..models import count_macs, count_params, create_model
from ..models.hub import load_model
from ..models.summary import activation_bytes
from ..plots import plot_curves, plot_label_curves, plot_panels, save_figure, subplots
from ..train import TrainingInterrupted, train
from . import experiments as X
from .layers import (
    calibrate_bn,
    gradient_norms,
    gradient_norms_at,
    response_stds,
    shattered_correlation,
)
from .paper import PAPER_ITERS, PAPER_PREACT, PAPER_RESNET110_MEAN_STD, PAPER_TABLE3, PAPER_TABLE6
from .reports import RunFinal, degradation_verdicts, ordering_verdict, response_verdict


def _ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{what} {text!r}: expected comma-separated integers") from None
    if not vals:
        raise ConfigError(f"--{what}: empty")
    return vals


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.set_defaults(depth_seeds=None)  # set per depth by `reproduce paper` only
    p.add_argument(
        "--data", default="cifar10", help="cifar10[:PATH], a CIFAR-layout folder, or digits"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="fraction of the paper's 64k iterations (1.0 = full)",
    )
    p.add_argument(
        "--seeds", type=count(1), default=1, help="runs per configuration (seeds 0..N-1)"
    )
    p.add_argument(
        "--out", default=default_out, help="results folder (re-running skips finished runs)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=count(0), default=0)
    p.add_argument(
        "--runs-from",
        help="folder whose runs/ to use and add to (share trained runs between commands)",
    )
    p.add_argument("--no-progress", action="store_true")


def _command() -> str:
    return "resnets " + " ".join(sys.argv[1:])


def _check(args: argparse.Namespace) -> Path:
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: must be >= 1")
    if not (args.budget > 0 and math.isfinite(args.budget)):
        raise ConfigError(f"--budget {args.budget}: must be > 0")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    this = args.fn.__name__.strip("_").replace("_", "-")  # e.g. "transfer"
    prev = out / "experiment.json"
    if prev.is_file():
        try:
            saved = json.loads(prev.read_text())
            # (folders written before the field existed: the command's fourth word)
            other = saved.get("experiment") or saved["command"].split()[2]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            other = "another experiment (unreadable experiment.json)"
        if other != this:
            raise ConfigError(
                f"--out {out}: holds the results of {other!r}, not {this!r}; give this "
                "experiment its own folder"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create the folder ({e.strerror or e})") from None
    (out / "experiment.json").write_text(
        json.dumps(
            {
                "experiment": this,
                "command": _command(),
                "args": {k: v for k, v in vars(args).items() if k != "fn"},
            },
            indent=2,
        )
    )
    return out


def _finish(
    out: Path,
    title: str,
    args: argparse.Namespace,
    sections: list[str],
    wall: float,
    records: list[dict[str, Any]] | None = None,
) -> Path:
    train_s = sum(r.get("train_time") or 0 for r in records) if records else None
    machines = [r["machine"] for r in records] if records else None
    return X.write_results(
        out, title, _command(), args.budget, sections, wall, args.data, train_s, machines
    )


def _runs_root(args: argparse.Namespace, out: Path) -> Path:
    return Path(args.runs_from) if args.runs_from else out


def _spec(model: str, seed: int, args: argparse.Namespace, tag: str = "", **kw: Any) -> X.RunSpec:
    cfg = X.budget_config(
        model, args.data, args.budget, seed, args.device, workers=args.workers, **kw
    )
    return X.RunSpec(f"{model}{tag}-s{seed}", cfg, {"model": model, "seed": seed, "tag": tag})


def _seeds_at(args: argparse.Namespace, depth: int) -> int:
    """Seeds of the nets of this depth: --seeds, unless `reproduce paper` set them per depth."""
    return args.depth_seeds.get(depth, args.seeds) if args.depth_seeds else args.seeds


def _mean_curve(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Average the metrics rows of several seeds step by step."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        for row in r["rows"]:
            by_step.setdefault(row["step"], []).append(row)
    out = []
    for step in sorted(by_step):
        rows = by_step[step]
        vals = [x["val_err"] for x in rows if x.get("val_err") is not None]
        out.append(
            {
                "step": step,
                "train_err": float(np.mean([x["train_err"] for x in rows])),
                "val_err": float(np.mean(vals)) if vals else None,
            }
        )
    return out


def _run_table(records: list[dict[str, Any]]) -> dict[str, list[RunFinal]]:
    """Each model's finished runs, one RunFinal per seed, for the verdicts."""
    table: dict[str, list[RunFinal]] = {}
    for r in records:
        if r["final_val_err"] is not None and r["final_train_err"] is not None:
            table.setdefault(r["model"], []).append(
                RunFinal(r["final_train_err"], r["final_val_err"])
            )
    return table


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _per_run_csv(out: Path, records: list[dict[str, Any]]) -> None:
    _write_csv(
        out / "runs.csv",
        [
            {
                k: r.get(k)
                for k in (
                    "name",
                    "model",
                    "tag",
                    "seed",
                    "params",
                    "iters",
                    "final_train_err",
                    "final_val_err",
                    "best_val_err",
                    "train_time",
                )
            }
            for r in records
        ],
    )


def _group(records: list[dict[str, Any]], key) -> dict[Any, list[dict[str, Any]]]:
    g: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        g.setdefault(key(r), []).append(r)
    return g


# ---------------------------------------------------------------------------------------------
# reproduce


def _degradation(args: argparse.Namespace) -> int:

    out = _check(args)
    depths = _ints(args.depths, "depths")
    specs = [
        _spec(f"{kind}{d}", s, args)
        for kind in ("plain", "resnet")
        for d in depths
        for s in range(_seeds_at(args, d))
    ]
    t0 = time.perf_counter()
    records = X.run_all(specs, _runs_root(args, out), progress=not args.no_progress)
    wall = time.perf_counter() - t0
    groups = _group(records, lambda r: r["model"])
    panels = []
    for kind, title in (("plain", "plain networks"), ("resnet", "ResNets")):
        panels.append((title, {f"{kind}-{d}": _mean_curve(groups[f"{kind}{d}"]) for d in depths}))
    plot_panels(panels, out / "degradation.png")
    table = [
        "| network | depth | params | final training error (%) | final validation error (%) | train time (min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    finals: dict[str, float] = {}
    for kind in ("plain", "resnet"):
        for d in depths:
            rs = groups[f"{kind}{d}"]
            tm, ts = X.mean_std([r["final_train_err"] for r in rs])
            vm, vs = X.mean_std([r["final_val_err"] for r in rs])
            finals[f"{kind}{d}"] = tm
            table.append(
                f"| {kind}-{d} | {d} | {rs[0]['params']:,} | {X.fmt_pct(tm, ts, len(rs))} | "
                f"{X.fmt_pct(vm, vs, len(rs))} | {sum(r['train_time'] or 0 for r in rs) / 60:.1f} |"
            )
    verdict = [
        v.line() for v in degradation_verdicts(_run_table(records), min(depths), max(depths))
    ]
    sections = [
        "## Degradation (paper Fig. 6)",
        "",
        "![degradation](degradation.png)",
        "",
        "Dashed: training error (on augmented batches, averaged between evaluations); bold: validation "
        "error. Curves are the mean over seeds.",
        "",
        *table,
        "",
        "Verdicts, computed from the numbers above (means over seeds; holds when the means are "
        "ordered as the paper says):",
        "",
        *verdict,
        "",
        "The paper (Fig. 6, CIFAR-10): plain-56 has higher training *and* test error than plain-20, while "
        f"ResNet-56 is better than ResNet-20 (test error {PAPER_TABLE6['resnet56'][0]}% vs "
        f"{PAPER_TABLE6['resnet20'][0]}%, Table 6).",
    ]
    _per_run_csv(out, records)
    p = _finish(
        out, "Plain vs residual networks: the degradation problem", args, sections, wall, records
    )
    print(f"results: {p}\nfigure:  {out / 'degradation.png'}")
    return 0


def _cifar_table(args: argparse.Namespace) -> int:

    out = _check(args)
    depths = _ints(args.depths, "depths") + ([1202] if args.with_1202 else [])
    specs = [_spec(f"resnet{d}", s, args) for d in depths for s in range(_seeds_at(args, d))]
    t0 = time.perf_counter()
    records = X.run_all(specs, _runs_root(args, out), progress=not args.no_progress)
    wall = time.perf_counter() - t0
    groups = _group(records, lambda r: r["model"])
    plot_curves(
        {f"ResNet-{d}": _mean_curve(groups[f"resnet{d}"]) for d in depths},
        out / "curves.png",
        title="CIFAR ResNets (mean over seeds)",
    )
    table = [
        "| model | params | paper error (%) | ours: validation error (%) | ours - paper | within paper spread | train time (min) |",
        "| --- | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    spread = PAPER_RESNET110_MEAN_STD[1]  # the one spread the paper reports (ResNet-110, 5 runs)
    for d in depths:
        rs = groups[f"resnet{d}"]
        vm, vs = X.mean_std([r["final_val_err"] for r in rs])
        paper, pparams = PAPER_TABLE6.get(f"resnet{d}", (math.nan, "-"))
        diff = 100 * vm - paper
        within = "yes" if abs(diff) <= 2 * spread else "no"
        table.append(
            f"| ResNet-{d} | {rs[0]['params']:,} ({pparams}) | {paper:.2f} | {X.fmt_pct(vm, vs, len(rs))} | "
            f"{diff:+.2f} | {within} | {sum(r['train_time'] or 0 for r in rs) / 60:.1f} |"
        )
    ordering = ordering_verdict(_run_table(records), depths)
    sections = [
        "## CIFAR-10 depth table (paper Table 6)",
        "",
        *table,
        "",
        f'"Within paper spread": |ours - paper| <= 2 x {spread} points, the standard deviation '
        f"the paper reports for ResNet-110 over 5 runs ({PAPER_RESNET110_MEAN_STD[0]} ± {spread}).",
        "",
        "Verdict, computed from the numbers above:",
        "",
        ordering.line(),
        "",
        "![curves](curves.png)",
    ]
    _per_run_csv(out, records)
    p = _finish(out, "CIFAR-10 ResNets of increasing depth", args, sections, wall, records)
    print(f"results: {p}")
    return 0


def _shortcuts(args: argparse.Namespace) -> int:
    out = _check(args)
    specs = [
        _spec(args.model, s, args, tag=f"-{opt}", shortcut=opt)
        for opt in ("A", "B", "C")
        for s in range(args.seeds)
    ]
    plain = args.model.replace("resnet", "plain")
    specs += [_spec(plain, s, args) for s in range(args.seeds)]
    t0 = time.perf_counter()
    records = X.run_all(specs, _runs_root(args, out), progress=not args.no_progress)
    wall = time.perf_counter() - t0
    groups = _group(records, lambda r: (r["model"], r["tag"]))
    table = [
        "| network | shortcut | params | final training error (%) | final validation error (%) |",
        "| --- | :---: | ---: | ---: | ---: |",
    ]
    for (model, tag), rs in groups.items():
        tm, ts = X.mean_std([r["final_train_err"] for r in rs])
        vm, vs = X.mean_std([r["final_val_err"] for r in rs])
        table.append(
            f"| {model} | {tag.strip('-') or 'none'} | {rs[0]['params']:,} | {X.fmt_pct(tm, ts, len(rs))} | "
            f"{X.fmt_pct(vm, vs, len(rs))} |"
        )
    sections = [
        "## Shortcut options A, B, C (paper Table 3)",
        "",
        *table,
        "",
        "The paper's comparison is on ImageNet with 34-layer nets (top-1 10-crop error %): "
        + ", ".join(f"{k} {v}" for k, v in PAPER_TABLE3.items())
        + ": all three far better than plain, and B slightly better than A, C marginally better "
        "than B. The paper concludes projections are not essential.",
    ]
    _per_run_csv(out, records)
    p = _finish(out, f"Shortcut options on {args.model}", args, sections, wall, records)
    print(f"results: {p}")
    return 0


def _cost(model: str, **kw: Any) -> dict[str, Any]:
    """Parameters, MACs (one 32x32 image) and training activations (batch 128, MiB)."""
    m = create_model(model, **kw)
    return {
        "params": count_params(m),
        "macs": count_macs(m, (1, 3, 32, 32)),
        "act_mib": activation_bytes(m, (128, 3, 32, 32)) / 2**20,
        "features": int(m.num_features),
    }


def _matched_width(depth: int, target: int) -> int:
    """The concat net's base width whose parameter count is closest to ``target``."""
    return min(range(2, 33), key=lambda w: abs(_cost_params(depth, w) - target))


def _cost_params(depth: int, width: int) -> int:
    return count_params(create_model(f"concat{depth}", base_width=width))


def _sum_vs_concat(args: argparse.Namespace) -> int:
    """Additive against concatenating shortcuts on CIFAR: at the same widths and at matched
    parameter budgets."""
    out = _check(args)
    d = args.depth
    base = _cost(f"resnet{d}")
    w = _matched_width(d, base["params"])
    variants = [  # (label, model, builder options, config overrides)
        ("sum (ResNet)", f"resnet{d}", {}, {}),
        ("concat, same widths", f"concat{d}", {}, {}),
        (f"concat, matched params (width {w})", f"concat{d}", {"base_width": w}, {"base_width": w}),
    ]
    specs = [
        X.RunSpec(
            f"{model}{'-w' + str(o['base_width']) if o else ''}-s{seed}",
            X.budget_config(
                model, args.data, args.budget, seed, args.device, workers=args.workers, **o
            ),
            {"model": model, "seed": seed, "tag": label},
        )
        for label, model, _kw, o in variants
        for seed in range(args.seeds)
    ]
    t0 = time.perf_counter()
    records = X.run_all(specs, _runs_root(args, out), progress=not args.no_progress)
    wall = time.perf_counter() - t0
    groups = _group(records, lambda r: r["tag"])
    plot_curves(
        {label: _mean_curve(groups[label]) for label, *_ in variants},
        out / "curves.png",
        title=f"sum vs concat, {d} layers (mean over seeds)",
    )
    table = [
        "| shortcut | params | MACs / image | activations, batch 128 (MiB) | final width | "
        "s per epoch (45k images) | final val error (%) | best val error (%) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = {}
    for label, model, kw, _o in variants:
        rs = groups[label]
        c = _cost(model, **kw)
        per_epoch = float(np.mean([r["train_time"] / r["iters"] * 45000 / 128 for r in rs]))
        vm, vs = X.mean_std([r["final_val_err"] for r in rs])
        bm, bs = X.mean_std([r["best_val_err"] for r in rs])
        rows[label] = {**c, "val": vm, "epoch_s": per_epoch}
        table.append(
            f"| {label} | {c['params']:,} | {c['macs'] / 1e6:.1f} M | {c['act_mib']:.0f} | "
            f"{c['features']} | {per_epoch:.0f} | {X.fmt_pct(vm, vs, len(rs))} | "
            f"{X.fmt_pct(bm, bs, len(rs))} |"
        )
    _write_csv(out / "variants.csv", [{"variant": k, **v} for k, v in rows.items()])
    s_, c_, m_ = (rows[v[0]] for v in variants)
    verdict = [
        f"- *Concatenation grows the features*: at the same widths the final map has "
        f"{c_['features']} channels against {s_['features']} "
        f"({c_['features'] / s_['features']:.1f}x): **{'holds' if c_['features'] > s_['features'] else 'does not hold'}**.",
        f"- *and the cost*: {c_['params'] / s_['params']:.2f}x the parameters, "
        f"{c_['macs'] / s_['macs']:.2f}x the MACs, {c_['act_mib'] / s_['act_mib']:.2f}x the "
        f"activation memory and {c_['epoch_s'] / s_['epoch_s']:.2f}x the time per epoch: "
        f"**{'holds' if c_['macs'] > s_['macs'] and c_['act_mib'] > s_['act_mib'] else 'does not hold'}**.",
        f"- *It gives later layers more to work with* (so it should do better for its budget): "
        f"at matched parameters ({m_['params']:,} vs {s_['params']:,}) concatenation reaches "
        f"{100 * m_['val']:.2f}% validation error against {100 * s_['val']:.2f}% for the sum: "
        f"**{'supported' if m_['val'] < s_['val'] else 'not supported'}** at this budget"
        f"{' (one seed: within noise unless the gap is large)' if args.seeds == 1 else ''}.",
    ]
    sections = [
        f"## Additive against concatenating shortcuts, {d} layers",
        "",
        "The concatenating net is the paper's CIFAR ResNet with each block's `relu(x + F(x))` "
        "replaced by `concat(x, relu(F(x)))`; a 1x1 transition (with 2x2 average pooling) at "
        "each later stage brings the width back to the stage width. The matched variant narrows "
        "every width until its parameter count is closest to the ResNet's.",
        "",
        "![curves](curves.png)",
        "",
        *table,
        "",
        "MACs are for one 32x32 image; activations are the tensors a training forward of batch "
        "128 keeps for backward (autograd's saved tensors, counted once per storage); time per "
        "epoch comes from each run's own training time, on this machine.",
        "",
        "Verdict on the usual claims, computed from the rows above:",
        "",
        *verdict,
    ]
    _per_run_csv(out, records)
    p = _finish(out, f"Sum against concatenation ({d} layers)", args, sections, wall, records)
    print(f"results: {p}")
    return 0


def _preact(args: argparse.Namespace) -> int:
    """Original against pre-activation units at depth 110 (and 164, 1001 with flags)."""
    out = _check(args)
    depths = [110] + ([164] if args.with_164 else []) + ([1001] if args.with_1001 else [])
    pairs = [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]
    specs = [_spec(m, s, args) for _d, a, b in pairs for m in (a, b) for s in range(args.seeds)]
    t0 = time.perf_counter()
    records = X.run_all(specs, _runs_root(args, out), progress=not args.no_progress)
    wall = time.perf_counter() - t0
    groups = _group(records, lambda r: r["model"])
    plot_panels(
        [
            ("original units", {f"ResNet-{d}": _mean_curve(groups[a]) for d, a, _b in pairs}),
            ("pre-activation units", {f"ResNet-{d}": _mean_curve(groups[b]) for d, _a, b in pairs}),
        ],
        out / "curves.png",
    )
    table = [
        "| depth | unit | params | final training error (%) | final val error (%) | "
        "paper, CIFAR-10 test error (%) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    verdict = []
    for d, a, b in pairs:
        finals = {}
        for model, unit, paper in (
            (a, "original", PAPER_PREACT[d][0]),
            (b, "pre-activation", PAPER_PREACT[d][1]),
        ):
            rs = groups[model]
            tm, ts = X.mean_std([r["final_train_err"] for r in rs])
            vm, vs = X.mean_std([r["final_val_err"] for r in rs])
            finals[unit] = vm
            table.append(
                f"| {d} | {unit} | {rs[0]['params']:,} | {X.fmt_pct(tm, ts, len(rs))} | "
                f"{X.fmt_pct(vm, vs, len(rs))} | {paper:.2f} |"
            )
        better = finals["pre-activation"] < finals["original"]
        verdict.append(
            f"- depth {d}: pre-activation {100 * finals['pre-activation']:.2f}% against "
            f"{100 * finals['original']:.2f}% (paper: {PAPER_PREACT[d][1]} against "
            f"{PAPER_PREACT[d][0]}): the paper's ordering **{'holds' if better else 'does not hold'}** here."
        )
    sections = [
        "## Original against pre-activation residual units (Identity Mappings, Table 3)",
        "",
        "![curves](curves.png)",
        "",
        *table,
        "",
        *verdict,
        "",
        "Original units: conv-BN-ReLU, conv-BN, addition, ReLU (He et al. 2015). Pre-activation "
        "units: BN-ReLU-conv twice (three times in the bottleneck of 164/1001), addition, nothing "
        "after it. The paper's gain grows with depth (0.24 points at 110, 2.69 at 1001).",
    ]
    _per_run_csv(out, records)
    p = _finish(out, "Pre-activation residual units", args, sections, wall, records)
    print(f"results: {p}")
    return 0


def _transfer(args: argparse.Namespace) -> int:
    """Does a network pretrained on some classes help on others when labels are scarce?"""
    out = _check(args)
    data = load_dataset(args.data, progress=not args.no_progress)
    names = list(data.classes)
    source = args.source.split(",") if args.source else names[: len(names) // 2]
    target = [c for c in names if c not in source]
    if not target:
        raise ConfigError(f"--source {args.source}: leaves no class to transfer to")
    counts = _ints(args.labels.replace("all", "0"), "labels")
    per_val = args.val_per_class
    pre = X.budget_config(
        args.model,
        args.data,
        args.pretrain_budget,
        0,
        args.device,
        workers=args.workers,
        classes=source,
        val_split=per_val * len(source),
    )
    root = _runs_root(args, out)
    t0 = time.perf_counter()
    (pre_rec,) = X.run_all(
        [X.RunSpec("pretrain", pre, {"mode": "pretrain"})], root, progress=not args.no_progress
    )
    pre_dir = str(Path(pre_rec["run_dir"]).resolve())
    modes = {
        "from scratch": {},
        "linear probe": {"init": pre_dir, "freeze": "backbone", "freeze_bn": True},
        "fine-tuned": {"init": pre_dir},
    }
    # the final accuracy is what this experiment compares: 5 evaluations per run, not 40
    eval_every = max(1, round(PAPER_ITERS * args.budget) // 5)
    specs = []
    for n in counts:
        for mode, kw in modes.items():
            for seed in range(args.seeds):
                n_train = n * len(target) if n else None
                bs = min(128, n_train) if n_train else 128
                cfg = X.budget_config(
                    args.model,
                    args.data,
                    args.budget,
                    seed,
                    args.device,
                    workers=args.workers,
                    classes=target,
                    per_class=n,
                    val_split=per_val * len(target),
                    batch_size=bs,
                    eval_every=eval_every,
                    **kw,
                )
                tag = mode.split()[-1] if mode != "from scratch" else "scratch"
                specs.append(
                    X.RunSpec(
                        f"{tag}-n{n or 'all'}-s{seed}",
                        cfg,
                        {"mode": mode, "labels": n, "seed": seed},
                    )
                )
    records = X.run_all(specs, root, progress=not args.no_progress)
    wall = time.perf_counter() - t0
    full = min(np.bincount(data.labels)[[names.index(c) for c in target]]) - per_val
    curves: dict[str, list[tuple[float, float, float]]] = {}
    table = [
        "| labelled images per class | " + " | ".join(modes) + " |",
        "| ---: |" + " ---: |" * len(modes),
    ]
    for n in counts:
        cells = []
        for mode in modes:
            rs = [r for r in records if r["mode"] == mode and r["labels"] == n]
            m, sd = X.mean_std([1 - r["final_val_err"] for r in rs])
            curves.setdefault(mode, []).append((n or full, m, sd))
            cells.append(X.fmt_pct(m, sd, len(rs)))
        table.append(f"| {n or f'all (~{full})'} | " + " | ".join(cells) + " |")
    plot_label_curves(
        curves,
        out / "transfer.png",
        title=f"{args.model}: {len(target)} new classes, pretrained on {len(source)} others",
    )
    pre_acc = 1 - pre_rec["final_val_err"]
    gain = {n: dict(zip(modes, [v[i][1] for v in curves.values()])) for i, n in enumerate(counts)}
    sections = [
        "## Pretraining helps most where labels are few",
        "",
        f"Pretrained: `{args.model}` on {', '.join(source)} (validation accuracy {pre_acc:.2%} on "
        f"{per_val} held-out images per class, {args.pretrain_budget:g} of the paper's schedule). "
        f"Transferred to {', '.join(target)}, with the same {per_val} held-out images per class "
        f"for every row; the smaller labelled sets are subsets of the larger ones.",
        "",
        *table,
        "",
        "![accuracy against labelled images per class](transfer.png)",
        "",
        _transfer_verdict(gain, counts, args.seeds),
        "",
        f"Every run here trains {round(PAPER_ITERS * args.budget):,} iterations; the pretrained "
        f"ones had {round(PAPER_ITERS * args.pretrain_budget):,} more on the source classes. "
        "Where the budget leaves the from-scratch run short of convergence, part of the gap at "
        "every labelled image is that extra training, not transfer: at the full schedule the last "
        "row is expected to close up, while the few-label rows measure what transfer buys.",
    ]
    _write_csv(
        out / "transfer.csv",
        [
            {
                "mode": r["mode"],
                "labels_per_class": r["labels"],
                "seed": r["seed"],
                "val_acc": 1 - r["final_val_err"],
                "train_time": r["train_time"],
            }
            for r in records
        ],
    )
    p = _finish(out, "Transfer learning with few labels", args, sections, wall, [pre_rec, *records])
    print(f"results: {p}")
    return 0


def _transfer_verdict(acc: dict[int, dict[str, float]], counts: list[int], seeds: int) -> str:
    """The claim judged from the numbers: pretrained weights help most where labels are few."""
    few, many = counts[0], counts[-1]
    d_few = acc[few]["fine-tuned"] - acc[few]["from scratch"]
    d_many = acc[many]["fine-tuned"] - acc[many]["from scratch"]
    probe = acc[few]["linear probe"] - acc[few]["from scratch"]

    def lab(n: int) -> str:
        return f"{n} labelled images per class" if n else "every labelled image"

    helps = d_few > (0.03 if seeds == 1 else 0.01)  # beyond what one seed's noise explains
    shrinks = d_many < d_few
    verdict = "supported" if helps and shrinks else "partly supported" if helps else "not shown"
    return (
        f"**Verdict: {verdict} at this budget.** With {lab(few)}, fine-tuning the pretrained "
        f"network is {100 * d_few:+.1f} points against training from scratch (the linear probe "
        f"{100 * probe:+.1f}); with {lab(many)} the difference is {100 * d_many:+.1f} points. "
        + (
            "The advantage shrinks as labels grow, as the claim says. "
            if shrinks
            else "The advantage does not shrink as labels grow here. "
        )
        + (
            "One seed per cell: differences of a point or two are within run-to-run noise."
            if seeds == 1
            else f"Mean and standard deviation over {seeds} seeds."
        )
    )


# ---------------------------------------------------------------------------------------------
# analyze


def _val_batches(run_dir: Path, limit: int | None = None):
    """The validation split of a finished run, as normalised batches, and the loaded model."""

    conf = json.loads((run_dir / "config.json").read_text())
    cfg = conf["config"]
    model, meta = load_model(run_dir / "model.safetensors")
    d = load_dataset(cfg["data"], image_size=cfg["image_size"], progress=False)
    _, val = stratified_split(d.labels, cfg["val_split"], cfg["seed"])
    if limit:
        val = val[:limit]
    s = BatchStream(d.images, d.labels, val, 500, 0, meta.mean, meta.std, None, drop_last=False)
    return model, [x for x, _ in s.epoch(0)]


def _responses(args: argparse.Namespace) -> int:

    out = _check(args)
    depths = _ints(args.depths, "depths")
    specs = [_spec(f"{kind}{d}", 0, args) for kind in ("plain", "resnet") for d in depths]
    root = _runs_root(args, out)
    t0 = time.perf_counter()
    records = X.run_all(specs, root, progress=not args.no_progress)
    rows, curves = [], {}
    for sp in specs:
        model, batches = _val_batches(root / "runs" / sp.name)
        stds = response_stds(model, batches)
        order = sorted((s for _, s in stds), reverse=True)
        curves[sp.cfg.model] = ([s for _, s in stds], order)
        for i, ((name, s), so) in enumerate(zip(stds, order)):
            rows.append(
                {
                    "model": sp.cfg.model,
                    "layer_index": i + 1,
                    "layer": name,
                    "std": s,
                    "sorted_std": so,
                }
            )
    wall = time.perf_counter() - t0
    _write_csv(out / "responses.csv", rows)
    fig, axes = subplots(2, 1, figsize=(7, 6.5), dpi=120)
    for name, (layer_order, sorted_order) in curves.items():
        ls = "--" if name.startswith("plain") else "-"
        axes[0].plot(range(1, len(layer_order) + 1), layer_order, ls=ls, label=name)
        axes[1].plot(range(1, len(sorted_order) + 1), sorted_order, ls=ls, label=name)
    axes[0].set_xlabel("layer index (original order)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std of response")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Std of 3x3 layer responses (after BN, before addition/ReLU), validation set")
    fig.tight_layout()
    save_figure(fig, out / "responses.png")
    table = ["| network | layers | mean std | median std |", "| --- | ---: | ---: | ---: |"]
    means = {}
    for name, (lo, _) in curves.items():
        means[name] = float(np.mean(lo))
        table.append(f"| {name} | {len(lo)} | {np.mean(lo):.3f} | {np.median(lo):.3f} |")
    verdict = [response_verdict({k: [v] for k, v in means.items()}, sorted(depths)).line()]
    sections = [
        "## Layer responses (paper Fig. 7)",
        "",
        "![responses](responses.png)",
        "",
        *table,
        "",
        "Verdict, computed from the numbers (seed 0 of each network):",
        "",
        *verdict,
        "",
        "The paper: ResNets have generally smaller responses than their plain counterparts, and deeper "
        "ResNets smaller ones still, supporting residual functions that are closer to zero than "
        "non-residual ones.",
    ]
    p = _finish(out, "Layer response statistics", args, sections, wall, records)
    print(f"results: {p}")
    return 0


def _gradients(args: argparse.Namespace) -> int:

    out = _check(args)
    depths = _ints(args.depths, "depths")
    t0 = time.perf_counter()
    # a fixed batch of training data for the measurements at initialisation
    base = X.budget_config("resnet20", args.data, args.budget, 0, args.device)
    d = load_dataset(base.data, image_size=base.image_size, progress=False)
    tr, val = stratified_split(d.labels, base.val_split, 0)
    mean, std = channel_stats(d.images, tr)
    s = BatchStream(d.images, d.labels, tr, min(128, len(tr)), 0, mean, std, AugmentSpec("none"))
    x, y = s.make_batch(0, 0)
    calib = [s.make_batch(0, k)[0] for k in range(min(4, len(s)))]
    x0 = BatchStream(d.images, d.labels, val, 1, 0, mean, std, None).make_batch(0, 0)[0][0]

    grad_rows, shat_rows = [], []
    init_curves: dict[tuple[str, bool], list[float]] = {}
    for bn in (True, False):
        for kind in ("plain", "resnet"):
            for dep in depths:
                name = f"{kind}{dep}"
                torch.manual_seed(0)
                m = create_model(
                    name, num_classes=len(d.classes), in_chans=d.channels, batchnorm=bn
                )
                norms = gradient_norms_at(m, x, y)
                init_curves[(name, bn)] = [v for _, v in norms]
                for i, (ln, v) in enumerate(norms):
                    grad_rows.append(
                        {
                            "model": name,
                            "batchnorm": bn,
                            "phase": "init",
                            "layer_index": i + 1,
                            "layer": ln,
                            "grad_norm": v,
                        }
                    )
                if bn:
                    calibrate_bn(m, calib)
                sc = shattered_correlation(m, x0)
                shat_rows.append({"model": name, "batchnorm": bn, "phase": "init", **sc})

    # during training (BN nets, the paper's recipe at this budget): norms at a few iterations
    train_curves: dict[str, dict[int, list[float]]] = {}
    for kind in ("plain", "resnet"):
        for dep in depths:
            name = f"{kind}{dep}"
            cfg = X.budget_config(
                name, args.data, args.budget, 0, args.device, workers=args.workers
            )
            rd = _runs_root(args, out) / "runs" / f"grad-{name}"
            rec_path = rd / "gradients.json"
            if rec_path.is_file():
                rec = {int(k): v for k, v in json.loads(rec_path.read_text()).items()}
            else:
                if rd.exists():
                    shutil.rmtree(rd)  # an interrupted recording restarts (hooks are not resumable)
                marks = sorted({0, cfg.iters // 10, cfg.iters // 2, cfg.iters - 1})
                rec = {}

                def hook(model, step, rec=rec, marks=marks):
                    if step in marks:
                        rec[step] = [v for _, v in gradient_norms(model)]

                try:
                    res = train(
                        cfg, rd, progress=not args.no_progress, echo=False, on_backward=hook
                    )
                except TrainingDiverged:
                    res = None
                if res is not None and res.stopped:
                    raise TrainingInterrupted(res)
                rec_path.write_text(json.dumps(rec))
            train_curves[name] = rec
            for step, norms in rec.items():
                for i, v in enumerate(norms):
                    grad_rows.append(
                        {
                            "model": name,
                            "batchnorm": True,
                            "phase": f"iter {step}",
                            "layer_index": i + 1,
                            "layer": "",
                            "grad_norm": v,
                        }
                    )
            if (rd / "model.safetensors").is_file():
                m, _ = load_model(rd / "model.safetensors")
                shat_rows.append(
                    {
                        "model": name,
                        "batchnorm": True,
                        "phase": "trained",
                        **shattered_correlation(m, x0),
                    }
                )
    wall = time.perf_counter() - t0
    _write_csv(out / "gradients.csv", grad_rows)
    _write_csv(out / "shattered.csv", shat_rows)
    fig, axes = subplots(1, 3, figsize=(16, 4.4), dpi=110)
    for (name, bn), norms in init_curves.items():
        ax = axes[0] if bn else axes[1]
        ax.semilogy(
            range(1, len(norms) + 1),
            norms,
            ls="--" if name.startswith("plain") else "-",
            label=name,
        )
    for name, rec in train_curves.items():
        if rec:
            last = max(rec)
            axes[2].semilogy(
                range(1, len(rec[last]) + 1),
                rec[last],
                ls="--" if name.startswith("plain") else "-",
                label=f"{name} @ iter {last}",
            )
    for ax, t in zip(
        axes,
        (
            "at initialisation, with BN",
            "at initialisation, without BN",
            "late in training, with BN",
        ),
    ):
        ax.set_title(t)
        ax.set_xlabel("conv layer (input -> output)")
        ax.set_ylabel("weight-gradient L2 norm")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "gradients.png")

    def ratio(norms: list[float]) -> float:
        return norms[0] / norms[-1] if norms and norms[-1] > 0 else math.nan

    table = [
        "| network | BatchNorm | first/last layer gradient norm at init | median layer gradient norm at init "
        "| lag-1 gradient correlation at init |",
        "| --- | :---: | ---: | ---: | ---: |",
    ]
    shat = {(r["model"], r["batchnorm"], r["phase"]): r for r in shat_rows}
    verdict = []
    for (name, bn), norms in init_curves.items():
        r = ratio(norms)
        c = shat[(name, bn, "init")]["lag1"]
        table.append(
            f"| {name} | {'yes' if bn else 'no'} | {r:.3g} | {float(np.median(norms)):.3g} | {c:.3f} |"
        )
    for dep in depths:
        for bn in (True, False):
            rp, rr = (
                ratio(init_curves[(f"plain{dep}", bn)]),
                ratio(init_curves[(f"resnet{dep}", bn)]),
            )
            state = (
                "vanish"
                if rp < 0.01
                else ("explode towards the input" if rp > 100 else "neither vanish nor explode")
            )
            mp = float(np.median(init_curves[(f"plain{dep}", bn)]))
            mr = float(np.median(init_curves[(f"resnet{dep}", bn)]))
            verdict.append(
                f"- {'with' if bn else 'without'} BN, depth {dep}: in the plain net the first layer's "
                f"gradient is {rp:.3g}x the last layer's (gradients {state}); in the ResNet {rr:.3g}x. "
                f"Median layer gradient norm: plain {mp:.3g}, ResNet {mr:.3g} ({mr / mp:.3g}x)."
            )
        cp, cr = (
            shat[(f"plain{dep}", True, "init")]["lag1"],
            shat[(f"resnet{dep}", True, "init")]["lag1"],
        )
        verdict.append(
            f"- shattered gradients at depth {dep} (BN, init): neighbouring-input gradient correlation "
            f"{cp:.3f} plain vs {cr:.3f} residual: residual gradients are "
            f"{'more' if cr > cp else 'not more'} coherent."
        )
    sections = [
        "## Gradient flow",
        "",
        "![gradients](gradients.png)",
        "",
        *table,
        "",
        "Verdict, computed from the numbers (a first/last ratio below 0.01 is called vanishing, above 100 "
        "exploding):",
        "",
        *verdict,
        "",
        "The paper (section 4.1) argues that with BatchNorm the plain nets' gradients do not vanish and their "
        "difficulty is one of optimisation; the popular claim is that residual connections fix vanishing "
        "gradients. Balduzzi et al. (2017) measure instead how *shattered* (decorrelated) gradients become "
        "with depth, which shortcuts prevent. Judge from the rows above.",
    ]
    p = _finish(out, "Gradient flow in plain and residual networks", args, sections, wall)
    print(f"results: {p}")
    return 0


def _paper(args: argparse.Namespace) -> int:
    """The paper's CIFAR result in one resumable queue: the runs behind Table 6 (cifar-table),
    Fig. 6 (degradation) and Fig. 7 (responses), trained in the order that decides the claims
    soonest, shared by any number of worker processes (start the same command several times),
    then the three reports once every run has finished."""
    if min(args.seeds, args.table_seeds, args.seeds_110) < 1:
        raise ConfigError("--seeds, --table-seeds and --seeds-110 must be >= 1")
    root = Path(args.runs_from or Path(args.out) / "runs-store")
    names = X.paper_queue(args.seeds, args.table_seeds, args.plain_32_44, args.seeds_110)
    specs = []
    for name in names:
        model, seed = name.rsplit("-s", 1)
        specs.append(_spec(model, int(seed), args))
    if args.report_only:  # train nothing: report if every run has finished
        runs = root / "runs"
        done, total = sum((runs / s.name / "summary.json").is_file() for s in specs), len(specs)
    else:
        done, total = X.run_queue(specs, root, progress=not args.no_progress)
    if done < total and args.report_only:
        print(f"{done}/{total} runs finished: no report yet", file=sys.stderr)
        return 1
    if done < total:
        print(f"{done}/{total} runs finished; the rest are held by other workers", file=sys.stderr)
        return 0
    if args.train_only:
        print(f"{done}/{total} runs finished", file=sys.stderr)
        return 0
    plain = "20,32,44,56" if args.plain_32_44 else "20,56"
    reports = [
        (_cifar_table, "cifar-table", {"depths": "20,32,44,56,110", "with_1202": False}),
        (_degradation, "degradation", {"depths": plain}),
        (_responses, "responses", {"depths": "20,56"}),
    ]
    per_depth = {
        20: args.seeds,
        56: args.seeds,
        32: args.table_seeds,
        44: args.table_seeds,
        110: args.seeds_110,
    }
    for fn, folder, extra in reports:
        sub = argparse.Namespace(**{**vars(args), **extra, "depth_seeds": per_depth})
        sub.fn, sub.out, sub.runs_from = fn, str(Path(args.out) / folder), str(root)
        fn(sub)
    return 0


def register(sub) -> None:
    rp = sub.add_parser(
        "reproduce",
        help="the paper's experiments: degradation, cifar-table, shortcuts, transfer, "
        "sum-vs-concat, preact",
    )
    rsub = rp.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    p = rsub.add_parser("degradation", help="plain vs residual training curves (Fig. 6)")
    _common(p, "results/degradation")
    p.add_argument("--depths", default="20,56", help="comma-separated 6n+2 depths")
    p.set_defaults(fn=_degradation)
    p = rsub.add_parser("cifar-table", help="ResNet-20/32/44/56/110 beside the paper's Table 6")
    _common(p, "results/cifar-table")
    p.add_argument("--depths", default="20,32,44,56,110")
    p.add_argument("--with-1202", action="store_true", help="also ResNet-1202")
    p.set_defaults(fn=_cifar_table)
    p = rsub.add_parser(
        "transfer", help="pretrained vs from scratch with 10..all labelled images per class"
    )
    _common(p, "results/transfer")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--source", default="", help="pretraining classes (default: the first half)")
    p.add_argument("--labels", default="10,50,250,all", help="labelled images per class")
    p.add_argument("--val-per-class", type=count(1), default=500, help="held-out images per class")
    p.add_argument(
        "--pretrain-budget", type=float, default=1.0, help="fraction of 64k iterations to pretrain"
    )
    p.set_defaults(fn=_transfer)
    p = rsub.add_parser(
        "paper",
        help="Table 6, Fig. 6 and Fig. 7 from one resumable queue that several workers can share",
    )
    _common(p, "results/paper")
    p.set_defaults(seeds=2)
    p.add_argument(
        "--table-seeds", type=count(1), default=1, help="seeds of ResNet-32, -44 and -110"
    )
    p.add_argument("--seeds-110", type=count(1), default=1, help="seeds of ResNet-110")
    p.add_argument("--plain-32-44", action="store_true", help="also plain-32 and plain-44")
    p.add_argument(
        "--train-only", action="store_true", help="train this worker's share, write no report"
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing; write the reports if every run has finished (else exit 1)",
    )
    p.set_defaults(fn=_paper)
    p = rsub.add_parser("shortcuts", help="shortcut options A, B, C on one network (Table 3)")
    _common(p, "results/shortcuts")
    p.add_argument("--model", default="resnet20")
    p.set_defaults(fn=_shortcuts)
    p = rsub.add_parser(
        "sum-vs-concat", help="additive against concatenating shortcuts at matched parameters"
    )
    _common(p, "results/sum-vs-concat")
    p.add_argument("--depth", type=int, default=20, help="6n+2 layers (20, 32, 56, 110)")
    p.set_defaults(fn=_sum_vs_concat)
    p = rsub.add_parser("preact", help="original against pre-activation units (depth 110)")
    _common(p, "results/preact")
    p.add_argument("--with-164", action="store_true", help="also the bottleneck ResNet-164")
    p.add_argument("--with-1001", action="store_true", help="also ResNet-1001 (slow)")
    p.set_defaults(fn=_preact)

    ap = sub.add_parser("analyze", help="layer responses (Fig. 7) and gradient flow")
    asub = ap.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    p = asub.add_parser("responses", help="std of every 3x3 layer's response (Fig. 7)")
    _common(p, "results/responses")
    p.add_argument("--depths", default="20,56")
    p.set_defaults(fn=_responses)
    p = asub.add_parser(
        "gradients", help="per-layer gradient norms and shattered gradients, plain vs residual"
    )
    _common(p, "results/gradients")
    p.add_argument("--depths", default="20,56")
    p.set_defaults(fn=_gradients)
