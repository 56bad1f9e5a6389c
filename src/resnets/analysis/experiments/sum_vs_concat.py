"""Additive against concatenating shortcuts at the same widths and at matched parameters: the
costs of each variant and the claim that concatenation at matched parameters does better.
``resnets reproduce sum-vs-concat``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...plots import plot_curves
from ..claims import judged, lower_val_error
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import run_table_from_csv
from ..reports import (
    RunTable,
    Seeds,
    Verdict,
    fmt_pct,
    group,
    judge_page,
    mean_curve,
    mean_std,
    per_run_csv,
    run_table,
    seeds_of,
    verdict_block,
    write_csv,
)
from ..runs import RunSpec, matched_concat_width, model_costs
from ..stats import Family


def _sum_vs_concat_variants(s: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, model, builder options = config overrides) of each variant."""
    depth = s["depth"]
    width = matched_concat_width(depth, model_costs(f"resnet{depth}")["params"])
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
    costs = {label: model_costs(model, **options) for label, model, options in variants}
    table = run_table([{**r, "model": r["tag"]} for r in records])  # keyed by variant
    (verdict,) = judge_page(
        s.out, seeds_of(table), lambda looks: [concat_verdict(table, labels[0], labels[2], looks)]
    )
    sections, rows = sum_vs_concat_sections(depth, labels, groups, costs, verdict)
    write_csv(s.out / "variants.csv", rows)
    per_run_csv(s.out, records)
    return Report(f"Sum against concatenation ({depth} layers)", sections)


def sum_vs_concat_sections(
    depth: int,
    labels: list[str],
    groups: dict[str, Records],
    costs: dict[str, dict[str, Any]],
    verdict: Verdict,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Additive against concatenating shortcuts: costs and errors per variant, the usual claims
    judged (the accuracy claim is ``verdict``, from :func:`concat_verdict`); returns the
    sections and the rows of variants.csv."""
    table = [
        "| shortcut | params | MACs / image | activations, batch 128 (MiB) | final width | "
        "s per epoch (45k images) | final val error (%) | best val error (%) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = {}
    for label in labels:
        runs, cost = groups[label], costs[label]
        per_epoch = float(np.mean([r["train_time"] / r["iters"] * 45000 / 128 for r in runs]))
        val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
        best_mean, best_std = mean_std([r["best_val_err"] for r in runs])
        rows[label] = {**cost, "val": val_mean, "epoch_s": per_epoch}
        table.append(
            f"| {label} | {cost['params']:,} | {cost['macs'] / 1e6:.1f} M | {cost['act_mib']:.0f} | "
            f"{cost['features']} | {per_epoch:.0f} | {fmt_pct(val_mean, val_std, len(runs))} | "
            f"{fmt_pct(best_mean, best_std, len(runs))} |"
        )
    added, concat, matched = (rows[label] for label in labels)
    grows = concat["features"] > added["features"]
    costs_more = concat["macs"] > added["macs"] and concat["act_mib"] > added["act_mib"]
    verdicts = [
        f"- *Concatenation grows the features*: at the same widths the final map has "
        f"{concat['features']} channels against {added['features']} "
        f"({concat['features'] / added['features']:.1f}x): "
        f"**{'holds' if grows else 'does not hold'}**.",
        f"- *and the cost*: {concat['params'] / added['params']:.2f}x the parameters, "
        f"{concat['macs'] / added['macs']:.2f}x the MACs, {concat['act_mib'] / added['act_mib']:.2f}x "
        f"the activation memory and {concat['epoch_s'] / added['epoch_s']:.2f}x the time per epoch: "
        f"**{'holds' if costs_more else 'does not hold'}**.",
    ]
    sections = [
        f"## Additive against concatenating shortcuts, {depth} layers",
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
        "Verdict on the usual claims, computed from the rows above (the first two are "
        "measurements of the architectures, not tests):",
        "",
        *verdicts,
        "",
        f"*It gives later layers more to work with* (so it should do better for its budget): at "
        f"matched parameters ({matched['params']:,} vs {added['params']:,}) concatenation reaches "
        f"{100 * matched['val']:.2f}% validation error against {100 * added['val']:.2f}% for the "
        "sum.",
        "",
        *verdict_block([verdict]),
    ]
    return sections, [{"variant": k, **v} for k, v in rows.items()]


def concat_verdict(table: RunTable, summed: str, matched: str, looks: int = 1) -> Verdict:
    """Concatenating shortcuts at matched parameters (``matched``) reach a lower validation
    error than the additive ones (``summed``), paired by seed: a family of one test, at 5% /
    ``looks``."""

    def build(family: Family) -> list[Verdict]:
        claim = "concatenation at matched parameters beats the sum"
        return [lower_val_error(table, "(concat)", claim, matched, summed, family, kind="")]

    return judged(build, "sum-vs-concat", looks)[0]


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    table = run_table_from_csv(folder / "runs.csv", key="tag")
    summed = next((t for t in table if t.startswith("sum")), "sum (ResNet)")
    matched = next((t for t in table if t.startswith("concat, matched")), "concat, matched")
    seeds = seeds_of(table)
    return [concat_verdict(table, summed, matched, looks(seeds))], seeds


register_experiment(
    Experiment(
        "sum-vs-concat",
        "additive against concatenating shortcuts at matched parameters",
        runs=_sum_vs_concat_runs,
        report=_sum_vs_concat_report,
        defaults={"depth": 20},
        option_help={"depth": "6n+2 layers (20, 32, 56, 110)"},
        rejudge=_rejudge,
    )
)
