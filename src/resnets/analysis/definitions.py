"""The paper's experiments, each defined once as the runs it needs and the report it writes
from their finished records, and registered by name (see :mod:`resnets.analysis.registry`).
The commands (``resnets reproduce NAME``, ``resnets analyze NAME``) and :func:`reproduce`
(``resnets.reproduce``) call these same functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..data import load_dataset
from ..errors import ConfigError
from ..plots import plot_curves, plot_label_curves, plot_panels
from . import experiments, tables
from .claims import (
    concat_verdict,
    degradation_verdicts,
    ordering_verdict,
    preact_verdicts,
    response_verdict,
    shortcut_verdicts,
    transfer_verdict,
)
from .experiments import RunSpec
from .figures import plot_gradients, plot_responses
from .paper import budget_iters
from .registry import Experiment, Report, Settings, register_experiment
from .reports import (
    group,
    judge_page,
    mean_curve,
    per_run_csv,
    run_table,
    seeds_of,
    write_csv,
)

Records = list[dict[str, Any]]

# ---------------------------------------------------------------------------------------------
# Fig. 6: plain against residual networks (the degradation problem)


def _plain_and_residual(s: Settings) -> list[RunSpec]:
    return [
        s.spec(f"{kind}{d}", seed)
        for kind in ("plain", "resnet")
        for d in s["depths"]
        for seed in range(s.seeds_at(d))
    ]


def _degradation_report(s: Settings, records: Records) -> Report:
    depths = s["depths"]
    groups = group(records, lambda r: r["model"])
    panels = [
        (title, {f"{kind}-{d}": mean_curve(groups[f"{kind}{d}"]) for d in depths})
        for kind, title in (("plain", "plain networks"), ("resnet", "ResNets"))
    ]
    plot_panels(panels, s.out / "degradation.png")
    table = run_table(records)
    verdicts = judge_page(
        s.out,
        seeds_of(table),
        lambda looks: degradation_verdicts(table, min(depths), max(depths), looks),
    )
    per_run_csv(s.out, records)
    return Report(
        "Plain vs residual networks: the degradation problem",
        tables.degradation_sections(groups, depths, verdicts),
    )


register_experiment(
    Experiment(
        "degradation",
        "plain vs residual training curves (Fig. 6)",
        _plain_and_residual,
        _degradation_report,
        {"depths": [20, 56]},
        option_help={"depths": "comma-separated 6n+2 depths"},
    )
)

# ---------------------------------------------------------------------------------------------
# Table 6: CIFAR-10 ResNets of increasing depth


def _cifar_table_depths(s: Settings) -> list[int]:
    return list(s["depths"]) + ([1202] if s["with_1202"] else [])


def _cifar_table_runs(s: Settings) -> list[RunSpec]:
    return [
        s.spec(f"resnet{d}", seed) for d in _cifar_table_depths(s) for seed in range(s.seeds_at(d))
    ]


def _cifar_table_report(s: Settings, records: Records) -> Report:
    depths = _cifar_table_depths(s)
    groups = group(records, lambda r: r["model"])
    plot_curves(
        {f"ResNet-{d}": mean_curve(groups[f"resnet{d}"]) for d in depths},
        s.out / "curves.png",
        title="CIFAR ResNets (mean over seeds)",
    )
    table = run_table(records)
    (verdict,) = judge_page(
        s.out, seeds_of(table), lambda looks: [ordering_verdict(table, depths, looks=looks)]
    )
    per_run_csv(s.out, records)
    return Report(
        "CIFAR-10 ResNets of increasing depth",
        tables.cifar_table_sections(groups, depths, verdict),
    )


register_experiment(
    Experiment(
        "cifar-table",
        "ResNet-20/32/44/56/110 beside the paper's Table 6",
        _cifar_table_runs,
        _cifar_table_report,
        {"depths": [20, 32, 44, 56, 110], "with_1202": False},
        option_help={"depths": "comma-separated 6n+2 depths", "with_1202": "also ResNet-1202"},
    )
)

# ---------------------------------------------------------------------------------------------
# Table 3: shortcut options A, B, C


def _shortcuts_runs(s: Settings) -> list[RunSpec]:
    model = s["model"]
    specs = [
        s.spec(model, seed, tag=f"-{option}", shortcut=option)
        for option in ("A", "B", "C")
        for seed in range(s.seeds)
    ]
    return specs + [s.spec(model.replace("resnet", "plain"), seed) for seed in range(s.seeds)]


def _shortcuts_report(s: Settings, records: Records) -> Report:
    groups = group(records, lambda r: (r["model"], r["tag"]))
    # the verdicts' table is keyed by option ("A", "B", "C") and "plain" for the twin
    by_option = run_table([{**r, "model": r["tag"].strip("-") or "plain"} for r in records])
    verdicts = judge_page(
        s.out, seeds_of(by_option), lambda looks: shortcut_verdicts(by_option, looks=looks)
    )
    per_run_csv(s.out, records)
    return Report(f"Shortcut options on {s['model']}", tables.shortcuts_sections(groups, verdicts))


register_experiment(
    Experiment(
        "shortcuts",
        "shortcut options A, B, C on one network (Table 3)",
        _shortcuts_runs,
        _shortcuts_report,
        {"model": "resnet20"},
        option_help={"model": "CIFAR ResNet whose options A, B, C are compared"},
    )
)

# ---------------------------------------------------------------------------------------------
# additive against concatenating shortcuts


def _sum_vs_concat_variants(s: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, model, builder options = config overrides) of each variant."""
    depth = s["depth"]
    width = experiments.matched_concat_width(
        depth, experiments.model_costs(f"resnet{depth}")["params"]
    )
    return [
        ("sum (ResNet)", f"resnet{depth}", {}),
        ("concat, same widths", f"concat{depth}", {}),
        (f"concat, matched params (width {width})", f"concat{depth}", {"base_width": width}),
    ]


def _sum_vs_concat_runs(s: Settings) -> list[RunSpec]:
    specs = []
    for label, model, options in _sum_vs_concat_variants(s):
        for seed in range(s.seeds):
            spec = s.spec(model, seed, **options)
            width = f"-w{options['base_width']}" if options else ""
            specs.append(RunSpec(f"{model}{width}-s{seed}", spec.cfg, {**spec.group, "tag": label}))
    return specs


def _sum_vs_concat_report(s: Settings, records: Records) -> Report:
    depth, variants = s["depth"], _sum_vs_concat_variants(s)
    groups = group(records, lambda r: r["tag"])
    labels = [label for label, *_ in variants]
    plot_curves(
        {label: mean_curve(groups[label]) for label in labels},
        s.out / "curves.png",
        title=f"sum vs concat, {depth} layers (mean over seeds)",
    )
    costs = {label: experiments.model_costs(model, **options) for label, model, options in variants}
    table = run_table([{**r, "model": r["tag"]} for r in records])  # keyed by variant
    (verdict,) = judge_page(
        s.out, seeds_of(table), lambda looks: [concat_verdict(table, labels[0], labels[2], looks)]
    )
    sections, rows = tables.sum_vs_concat_sections(depth, labels, groups, costs, verdict)
    write_csv(s.out / "variants.csv", rows)
    per_run_csv(s.out, records)
    return Report(f"Sum against concatenation ({depth} layers)", sections)


register_experiment(
    Experiment(
        "sum-vs-concat",
        "additive against concatenating shortcuts at matched parameters",
        _sum_vs_concat_runs,
        _sum_vs_concat_report,
        {"depth": 20},
        option_help={"depth": "6n+2 layers (20, 32, 56, 110)"},
    )
)

# ---------------------------------------------------------------------------------------------
# original against pre-activation units


def _preact_pairs(s: Settings) -> list[tuple[int, str, str]]:
    depths = [110] + ([164] if s["with_164"] else []) + ([1001] if s["with_1001"] else [])
    return [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]


def _preact_runs(s: Settings) -> list[RunSpec]:
    return [
        s.spec(model, seed)
        for _d, a, b in _preact_pairs(s)
        for model in (a, b)
        for seed in range(s.seeds)
    ]


def _preact_report(s: Settings, records: Records) -> Report:
    pairs = _preact_pairs(s)
    groups = group(records, lambda r: r["model"])
    plot_panels(
        [
            ("original units", {f"ResNet-{d}": mean_curve(groups[a]) for d, a, _b in pairs}),
            ("pre-activation units", {f"ResNet-{d}": mean_curve(groups[b]) for d, _a, b in pairs}),
        ],
        s.out / "curves.png",
    )
    per_run_csv(s.out, records)
    table = run_table(records)
    verdicts = judge_page(
        s.out, seeds_of(table), lambda looks: preact_verdicts(table, pairs, looks)
    )
    return Report("Pre-activation residual units", tables.preact_sections(pairs, groups, verdicts))


register_experiment(
    Experiment(
        "preact",
        "original against pre-activation units (depth 110)",
        _preact_runs,
        _preact_report,
        {"with_164": False, "with_1001": False},
        option_help={
            "with_164": "also the bottleneck ResNet-164",
            "with_1001": "also ResNet-1001 (slow)",
        },
    )
)

# ---------------------------------------------------------------------------------------------
# transfer learning with few labels


def _transfer_classes(s: Settings) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """(every class, the pretraining classes, the target classes, every image's label) of the
    data."""
    data = load_dataset(s.data, progress=s.progress)
    names = list(data.classes)
    source = list(s["source"]) if s["source"] else names[: len(names) // 2]
    target = [c for c in names if c not in source]
    if not target:
        raise ConfigError(f"--source {','.join(source)}: leaves no class to transfer to")
    return names, source, target, np.asarray(data.labels)


def _transfer_modes(s: Settings) -> dict[str, dict[str, Any]]:
    pretrained = str((s.runs_root / "runs" / "pretrain").resolve())
    return {
        "from scratch": {},
        "linear probe": {"init": pretrained, "freeze": "backbone", "freeze_bn": True},
        "fine-tuned": {"init": pretrained},
    }


def _transfer_runs(s: Settings) -> list[RunSpec]:
    pretrain_budget = s["pretrain_budget"]
    if not (pretrain_budget > 0 and math.isfinite(pretrain_budget)):
        raise ConfigError(f"--pretrain-budget {pretrain_budget}: must be > 0")
    _, source, target, _ = _transfer_classes(s)
    per_val = s["val_per_class"]
    pretrain = experiments.budget_config(
        s["model"],
        s.data,
        pretrain_budget,
        0,
        s.device,
        workers=s.workers,
        classes=source,
        val_split=per_val * len(source),
    )
    # the pretrained run is first: run_all trains in order, and the others start from it
    specs = [RunSpec("pretrain", pretrain, {"mode": "pretrain"})]
    # the final accuracy is what this experiment compares: 5 evaluations per run, not 40
    eval_every = max(1, budget_iters(s.budget) // 5)
    for n in s["labels"]:
        for mode, options in _transfer_modes(s).items():
            for seed in range(s.seeds):
                n_train = n * len(target) if n else None
                cfg = experiments.budget_config(
                    s["model"],
                    s.data,
                    s.budget,
                    seed,
                    s.device,
                    workers=s.workers,
                    classes=target,
                    per_class=n,
                    val_split=per_val * len(target),
                    batch_size=min(128, n_train) if n_train else 128,
                    eval_every=eval_every,
                    **options,
                )
                tag = mode.split()[-1] if mode != "from scratch" else "scratch"
                specs.append(
                    RunSpec(
                        f"{tag}-n{n or 'all'}-s{seed}",
                        cfg,
                        {"mode": mode, "labels": n, "seed": seed},
                    )
                )
    return specs


def _transfer_report(s: Settings, records: Records) -> Report:
    pretrained, runs = records[0], records[1:]
    names, source, target, labels = _transfer_classes(s)
    per_val, counts = s["val_per_class"], list(s["labels"])
    full = min(np.bincount(labels)[[names.index(c) for c in target]]) - per_val
    by_mode: dict[tuple[str, int], dict[int, float]] = {}
    for r in runs:
        by_mode.setdefault((r["mode"], r["labels"]), {})[int(r["seed"])] = r["final_val_err"]
    seeds = {f"{m} at {n}": sorted(by_seed) for (m, n), by_seed in sorted(by_mode.items())}
    (verdict,) = judge_page(
        s.out, seeds, lambda looks: [transfer_verdict(by_mode, counts[0], counts[-1], looks)]
    )
    sections, curves = tables.transfer_sections(
        model=s["model"],
        source=source,
        target=target,
        per_val=per_val,
        pretrain_acc=1 - pretrained["final_val_err"],
        pretrain_iters=pretrained["iters"],
        iters=runs[0]["iters"],
        modes=list(_transfer_modes(s)),
        counts=counts,
        records=runs,
        full=full,
        verdict=verdict,
    )
    plot_label_curves(
        curves,
        s.out / "transfer.png",
        title=f"{s['model']}: {len(target)} new classes, pretrained on {len(source)} others",
    )
    write_csv(
        s.out / "transfer.csv",
        [
            {
                "mode": r["mode"],
                "labels_per_class": r["labels"],
                "seed": r["seed"],
                "val_acc": 1 - r["final_val_err"],
                "train_time": r["train_time"],
            }
            for r in runs
        ],
    )
    return Report("Transfer learning with few labels", sections)


register_experiment(
    Experiment(
        "transfer",
        "pretrained vs from scratch with 10..all labelled images per class",
        _transfer_runs,
        _transfer_report,
        {
            "model": "resnet20",
            "source": [],
            "labels": [10, 50, 250, 0],  # 0: every labelled image
            "val_per_class": 500,
            "pretrain_budget": 1.0,
        },
        option_help={
            "model": "registered CIFAR architecture",
            "source": "pretraining classes, comma-separated (default: the first half)",
            "labels": "labelled images per class, comma-separated (0 or all: every one)",
            "val_per_class": "held-out images per class",
            "pretrain_budget": "fraction of 64k iterations to pretrain",
        },
    )
)

# ---------------------------------------------------------------------------------------------
# Fig. 7: layer responses (of the degradation runs)


def _responses_report(s: Settings, records: Records) -> Report:
    depths = s["depths"]
    specs = _plain_and_residual(s)
    rows, curves = experiments.response_curves(specs, s.runs_root)
    write_csv(s.out / "responses.csv", rows)
    first = {model: curve for (model, seed), curve in curves.items() if seed == 0}
    plot_responses(first, s.out / "responses.png")  # the figure: seed 0, as the paper shows one
    means: dict[str, dict[int, float]] = {}
    for (model, seed), (layer_order, _) in curves.items():
        means.setdefault(model, {})[seed] = float(np.mean(layer_order))
    # every seed of the degradation runs: claim (e) is tested paired by seed
    seeds = {model: sorted(by_seed) for model, by_seed in sorted(means.items())}
    (verdict,) = judge_page(
        s.out, seeds, lambda looks: [response_verdict(means, sorted(depths), looks)]
    )
    return Report("Layer response statistics", tables.responses_sections(first, verdict))


register_experiment(
    Experiment(
        "responses",
        "std of every 3x3 layer's response (Fig. 7)",
        _plain_and_residual,
        _responses_report,
        {"depths": [20, 56]},
        command="analyze",
        option_help={"depths": "comma-separated 6n+2 depths"},
    )
)

# ---------------------------------------------------------------------------------------------
# gradient flow (its trainings record gradients through a hook: they are its own, not shared)


def _no_runs(s: Settings) -> list[RunSpec]:
    return []


def _gradients_report(s: Settings, records: Records) -> Report:
    depths = s["depths"]
    found = experiments.gradients_at_init(s.data, s.budget, s.device, depths)
    # during training (BN nets, the paper's recipe at this budget): norms at a few iterations
    specs = [
        RunSpec(f"grad-{kind}{d}", s.spec(f"{kind}{d}", 0).cfg, {})
        for kind in ("plain", "resnet")
        for d in depths
    ]
    experiments.gradients_in_training(found, specs, s.runs_root, s.progress)
    write_csv(s.out / "gradients.csv", found.rows)
    write_csv(s.out / "shattered.csv", found.shattered)
    plot_gradients(found.init_curves, found.train_curves, s.out / "gradients.png")
    return Report(
        "Gradient flow in plain and residual networks",
        tables.gradients_sections(found.init_curves, found.shattered, depths),
        schedules=[(spec.cfg.iters, list(spec.cfg.milestones)) for spec in specs],
    )


register_experiment(
    Experiment(
        "gradients",
        "per-layer gradient norms and shattered gradients, plain vs residual",
        _no_runs,
        _gradients_report,
        {"depths": [20, 56]},
        command="analyze",
        option_help={"depths": "comma-separated 6n+2 depths"},
    )
)
