"""Each experiment's RESULTS.md sections: its table, the paper's numbers beside ours (read from
paper.py) and the verdicts reports.py computed. Fed run records and verdicts; writes nothing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .paper import PAPER_PREACT, PAPER_RESNET110_MEAN_STD, PAPER_TABLE3, PAPER_TABLE6
from .reports import Verdict, fmt_pct, mean_std, verdict_block

Records = list[dict[str, Any]]


def _train_minutes(runs: Records) -> str:
    return f"{sum(r['train_time'] or 0 for r in runs) / 60:.1f}"


def degradation_sections(
    groups: dict[str, Records], depths: list[int], verdicts: Sequence[Verdict]
) -> list[str]:
    """Fig. 6: final errors of plain and residual nets per depth, and claims (a)-(c)
    (``verdicts``, from :func:`reports.degradation_verdicts`)."""
    table = [
        "| network | depth | params | final training error (%) | final validation error (%) | train time (min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in ("plain", "resnet"):
        for depth in depths:
            runs = groups[f"{kind}{depth}"]
            train_mean, train_std = mean_std([r["final_train_err"] for r in runs])
            val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
            table.append(
                f"| {kind}-{depth} | {depth} | {runs[0]['params']:,} | "
                f"{fmt_pct(train_mean, train_std, len(runs))} | "
                f"{fmt_pct(val_mean, val_std, len(runs))} | {_train_minutes(runs)} |"
            )
    return [
        "## Degradation (paper Fig. 6)",
        "",
        "![degradation](degradation.png)",
        "",
        "Dashed: training error (on augmented batches, averaged between evaluations); bold: "
        "validation error. Curves are the mean over seeds.",
        "",
        *table,
        "",
        *verdict_block(verdicts),
        "",
        "The paper (Fig. 6, CIFAR-10): plain-56 has higher training *and* test error than "
        f"plain-20, while ResNet-56 is better than ResNet-20 (test error "
        f"{PAPER_TABLE6['resnet56'][0]}% vs {PAPER_TABLE6['resnet20'][0]}%, Table 6).",
    ]


def cifar_table_sections(
    groups: dict[str, Records], depths: list[int], verdict: Verdict
) -> list[str]:
    """Table 6: each depth's validation error beside the paper's, and claim (d) (``verdict``,
    from :func:`reports.ordering_verdict`)."""
    table = [
        "| model | params | paper error (%) | ours: validation error (%) | ours - paper | within paper spread | train time (min) |",
        "| --- | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    spread = PAPER_RESNET110_MEAN_STD[1]  # the one spread the paper reports (ResNet-110, 5 runs)
    for depth in depths:
        runs = groups[f"resnet{depth}"]
        val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
        paper, paper_params = PAPER_TABLE6.get(f"resnet{depth}", (math.nan, "-"))
        diff = 100 * val_mean - paper
        within = "yes" if abs(diff) <= 2 * spread else "no"
        table.append(
            f"| ResNet-{depth} | {runs[0]['params']:,} ({paper_params}) | {paper:.2f} | "
            f"{fmt_pct(val_mean, val_std, len(runs))} | {diff:+.2f} | {within} | "
            f"{_train_minutes(runs)} |"
        )
    return [
        "## CIFAR-10 depth table (paper Table 6)",
        "",
        *table,
        "",
        f'"Within paper spread": |ours - paper| <= 2 x {spread} points, the standard deviation '
        f"the paper reports for ResNet-110 over 5 runs ({PAPER_RESNET110_MEAN_STD[0]} ± {spread}).",
        "",
        *verdict_block([verdict]),
        "",
        "![curves](curves.png)",
    ]


def shortcuts_sections(
    groups: dict[tuple[str, str], Records], verdicts: Sequence[Verdict]
) -> list[str]:
    """Table 3's comparison of shortcut options A, B, C (and the plain twin) on one net, with
    the paper's claims judged (:func:`~resnets.analysis.reports.shortcut_verdicts`)."""
    table = [
        "| network | shortcut | params | final training error (%) | final validation error (%) |",
        "| --- | :---: | ---: | ---: | ---: |",
    ]
    for (model, tag), runs in groups.items():
        train_mean, train_std = mean_std([r["final_train_err"] for r in runs])
        val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
        table.append(
            f"| {model} | {tag.strip('-') or 'none'} | {runs[0]['params']:,} | "
            f"{fmt_pct(train_mean, train_std, len(runs))} | {fmt_pct(val_mean, val_std, len(runs))} |"
        )
    return [
        "## Shortcut options A, B, C (paper Table 3)",
        "",
        *table,
        "",
        "The paper's comparison is on ImageNet with 34-layer nets (top-1 10-crop error %): "
        + ", ".join(f"{k} {v}" for k, v in PAPER_TABLE3.items())
        + ": all three far better than plain, and B slightly better than A, C marginally better "
        "than B. The paper concludes projections are not essential.",
        "",
        *verdict_block(verdicts),
    ]


def sum_vs_concat_sections(
    depth: int,
    labels: list[str],
    groups: dict[str, Records],
    costs: dict[str, dict[str, Any]],
    verdict: Verdict,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Additive against concatenating shortcuts: costs and errors per variant, the usual claims
    judged (the accuracy claim is ``verdict``, from :func:`reports.concat_verdict`); returns the
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


def preact_sections(
    pairs: list[tuple[int, str, str]], groups: dict[str, Records], verdicts: Sequence[Verdict]
) -> list[str]:
    """Original against pre-activation units per depth, beside the paper's errors, and the
    ordering judged per depth (``verdicts``, from :func:`reports.preact_verdicts`)."""
    table = [
        "| depth | unit | params | final training error (%) | final val error (%) | "
        "paper, CIFAR-10 test error (%) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for depth, original, preact in pairs:
        for model, unit, paper in (
            (original, "original", PAPER_PREACT[depth][0]),
            (preact, "pre-activation", PAPER_PREACT[depth][1]),
        ):
            runs = groups[model]
            train_mean, train_std = mean_std([r["final_train_err"] for r in runs])
            val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
            table.append(
                f"| {depth} | {unit} | {runs[0]['params']:,} | "
                f"{fmt_pct(train_mean, train_std, len(runs))} | "
                f"{fmt_pct(val_mean, val_std, len(runs))} | {paper:.2f} |"
            )
    gain_110 = PAPER_PREACT[110][0] - PAPER_PREACT[110][1]
    gain_1001 = PAPER_PREACT[1001][0] - PAPER_PREACT[1001][1]
    return [
        "## Original against pre-activation residual units (Identity Mappings, Table 3)",
        "",
        "![curves](curves.png)",
        "",
        *table,
        "",
        *verdict_block(verdicts),
        "",
        "The paper (Identity Mappings, Table 3, CIFAR-10 test error): "
        + "; ".join(
            f"depth {d}: pre-activation {PAPER_PREACT[d][1]} against original {PAPER_PREACT[d][0]}"
            for d, _, _ in pairs
        )
        + ".",
        "",
        "Original units: conv-BN-ReLU, conv-BN, addition, ReLU (He et al. 2015). Pre-activation "
        "units: BN-ReLU-conv twice (three times in the bottleneck of 164/1001), addition, nothing "
        f"after it. The paper's gain grows with depth ({gain_110:.2f} points at 110, "
        f"{gain_1001:.2f} at 1001).",
    ]


def responses_sections(
    curves: dict[str, tuple[list[float], list[float]]], verdict: Verdict
) -> list[str]:
    """Fig. 7: mean and median response std per net, and claim (e) (``verdict``, from
    :func:`reports.response_verdict`)."""
    table = ["| network | layers | mean std | median std |", "| --- | ---: | ---: | ---: |"]
    for name, (layer_order, _) in curves.items():
        table.append(
            f"| {name} | {len(layer_order)} | {np.mean(layer_order):.3f} | "
            f"{np.median(layer_order):.3f} |"
        )
    return [
        "## Layer responses (paper Fig. 7)",
        "",
        "![responses](responses.png)",
        "",
        *table,
        "",
        "The table and the figure show seed 0; claim (e) is tested on each seed's mean response "
        "std.",
        "",
        *verdict_block([verdict]),
        "",
        "The paper: ResNets have generally smaller responses than their plain counterparts, and "
        "deeper ResNets smaller ones still, supporting residual functions that are closer to zero "
        "than non-residual ones.",
    ]


def _first_over_last(norms: list[float]) -> float:
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else math.nan


def gradients_sections(
    init_curves: dict[tuple[str, bool], list[float]],
    shattered: Records,
    depths: list[int],
) -> list[str]:
    """Gradient norms at initialisation and shattered gradients, judged per depth."""
    table = [
        "| network | BatchNorm | first/last layer gradient norm at init | median layer gradient "
        "norm at init | lag-1 gradient correlation at init |",
        "| --- | :---: | ---: | ---: | ---: |",
    ]
    by_key = {(r["model"], r["batchnorm"], r["phase"]): r for r in shattered}
    for (name, batchnorm), norms in init_curves.items():
        table.append(
            f"| {name} | {'yes' if batchnorm else 'no'} | {_first_over_last(norms):.3g} | "
            f"{float(np.median(norms)):.3g} | {by_key[(name, batchnorm, 'init')]['lag1']:.3f} |"
        )
    verdicts = []
    for depth in depths:
        for batchnorm in (True, False):
            plain = init_curves[(f"plain{depth}", batchnorm)]
            residual = init_curves[(f"resnet{depth}", batchnorm)]
            ratio_plain, ratio_residual = _first_over_last(plain), _first_over_last(residual)
            if ratio_plain < 0.01:
                state = "vanish"
            elif ratio_plain > 100:
                state = "explode towards the input"
            else:
                state = "neither vanish nor explode"
            median_plain, median_residual = float(np.median(plain)), float(np.median(residual))
            verdicts.append(
                f"- {'with' if batchnorm else 'without'} BN, depth {depth}: in the plain net the "
                f"first layer's gradient is {ratio_plain:.3g}x the last layer's (gradients {state}); "
                f"in the ResNet {ratio_residual:.3g}x. Median layer gradient norm: plain "
                f"{median_plain:.3g}, ResNet {median_residual:.3g} "
                f"({median_residual / median_plain:.3g}x)."
            )
        lag_plain = by_key[(f"plain{depth}", True, "init")]["lag1"]
        lag_residual = by_key[(f"resnet{depth}", True, "init")]["lag1"]
        verdicts.append(
            f"- shattered gradients at depth {depth} (BN, init): neighbouring-input gradient "
            f"correlation {lag_plain:.3f} plain vs {lag_residual:.3f} residual: residual gradients "
            f"are {'more' if lag_residual > lag_plain else 'not more'} coherent."
        )
    return [
        "## Gradient flow",
        "",
        "![gradients](gradients.png)",
        "",
        *table,
        "",
        "Verdict, computed from the numbers (a first/last ratio below 0.01 is called vanishing, "
        "above 100 exploding):",
        "",
        *verdicts,
        "",
        "The paper (section 4.1) argues that with BatchNorm the plain nets' gradients do not "
        "vanish and their difficulty is one of optimisation; the popular claim is that residual "
        "connections fix vanishing gradients. Balduzzi et al. (2017) measure instead how "
        "*shattered* (decorrelated) gradients become with depth, which shortcuts prevent. Judge "
        "from the rows above.",
    ]


def transfer_sections(
    *,
    model: str,
    source: list[str],
    target: list[str],
    per_val: int,
    pretrain_acc: float,
    pretrain_iters: int,
    iters: int,
    modes: list[str],
    counts: list[int],
    records: Records,
    full: int,
    verdict: Verdict,
) -> tuple[list[str], dict[str, list[tuple[float, float, float]]]]:
    """Accuracy per labelled-images count and mode, judged by ``verdict`` (from
    :func:`reports.transfer_verdict`); returns the sections and the curves for the figure."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    table = [
        "| labelled images per class | " + " | ".join(modes) + " |",
        "| ---: |" + " ---: |" * len(modes),
    ]
    for n in counts:
        cells = []
        for mode in modes:
            runs = [r for r in records if r["mode"] == mode and r["labels"] == n]
            mean, std = mean_std([1 - r["final_val_err"] for r in runs])
            curves.setdefault(mode, []).append((n or full, mean, std))
            cells.append(fmt_pct(mean, std, len(runs)))
        table.append(f"| {n or f'all (~{full})'} | " + " | ".join(cells) + " |")
    sections = [
        "## Pretraining helps most where labels are few",
        "",
        f"Pretrained: `{model}` on {', '.join(source)} (validation accuracy {pretrain_acc:.2%} on "
        f"{per_val} held-out images per class, {pretrain_iters:,} iterations). "
        f"Transferred to {', '.join(target)}, with the same {per_val} held-out images per class "
        f"for every row; the smaller labelled sets are subsets of the larger ones.",
        "",
        *table,
        "",
        "![accuracy against labelled images per class](transfer.png)",
        "",
        *verdict_block([verdict]),
        "",
        f"Every run here trains {iters:,} iterations (as its record says); the pretrained "
        f"ones had {pretrain_iters:,} more on the source classes. "
        "Where the budget leaves the from-scratch run short of convergence, part of the gap at "
        "every labelled image is that extra training, not transfer: at the full schedule the last "
        "row is expected to close up, while the few-label rows measure what transfer buys.",
    ]
    return sections, curves
