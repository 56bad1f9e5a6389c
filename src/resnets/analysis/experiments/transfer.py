"""Transfer learning with few labels: a network pretrained on half the classes, fine-tuned
(or linearly probed) on the other half with 10..all labelled images per class, against
training from scratch; the claim that pretraining helps most where labels are few.
``resnets reproduce transfer``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...data import load_dataset
from ...errors import ConfigError
from ...plots import plot_label_curves
from ..claims import judged, runs_missing, tested
from ..paper_numbers import budget_iters
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import csv_rows, fraction, report_args, seed_cell
from ..reports import (
    WORDS,
    Seeds,
    Verdict,
    fmt_pct,
    judge_page,
    mean_std,
    verdict_block,
    write_csv,
)
from ..runs import RunSpec, budget_config
from ..stats import Family, combine, paired_by_seed


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
    pretrain = budget_config(
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
                cfg = budget_config(
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
    sections, curves = transfer_sections(
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
    :func:`transfer_verdict`); returns the sections and the curves for the figure."""
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


#: transfer's run table: (mode, labelled images per class; 0 = all) -> {seed: validation error}
TransferTable = Mapping[tuple[str, int], Mapping[int, float]]


def transfer_verdict(table: TransferTable, few: int, many: int, looks: int = 1) -> Verdict:
    """The transfer claim, decided by tests paired by seed (one seed: one initialisation and one
    draw of the labelled images, shared by the modes): with the fewest labels, fine-tuning the
    pretrained network beats training from scratch, and that advantage is larger there than
    with the most labels. The page's four paired tests (the linear probe's and the advantage
    with every label included) are one family (Holm) at 5% / ``looks``."""

    def lab(n: int) -> str:
        return f"{n} labelled images per class" if n else "every labelled image"

    def build(family: Family) -> list[Verdict]:
        claim = (
            f"with {lab(few)}, fine-tuning the pretrained network beats training from scratch, "
            f"and by more than with {lab(many)}"
        )
        needed = [("fine-tuned", few), ("from scratch", few), ("fine-tuned", many),
                  ("from scratch", many)]  # fmt: skip
        if any(not table.get(k) for k in needed):
            return [runs_missing("(transfer)", claim, *(f"{m} at {n}" for m, n in needed))]
        helps = paired_by_seed(table["fine-tuned", few], table["from scratch", few])
        probe = paired_by_seed(table.get(("linear probe", few), {}), table["from scratch", few])
        at_many = paired_by_seed(table["fine-tuned", many], table["from scratch", many])
        shrinks = paired_by_seed(  # the few-label advantage minus the many-label advantage
            dict(zip(at_many.seeds, at_many.diffs)), dict(zip(helps.seeds, helps.diffs))
        )
        outcomes = [family.outcome(t) for t in (helps, probe, at_many, shrinks)]
        evidence = (
            f"with {lab(few)}, fine-tuning lowers the validation error against training from "
            f"scratch by {tested(helps, family)} ({WORDS[outcomes[0]]}; the linear probe: "
            f"{tested(probe, family)}); with {lab(many)}, by {tested(at_many, family)}; the "
            f"advantage with {lab(few)} minus the one with {lab(many)}: "
            f"{tested(shrinks, family)} ({WORDS[outcomes[3]]})"
        )
        return [Verdict("(transfer)", claim, combine([outcomes[0], outcomes[3]]), evidence)]

    return judged(build, "transfer", looks)[0]


def transfer_table_from_csv(path: Path) -> dict[tuple[str, int], dict[int, float]]:
    """Transfer's run table from its ``transfer.csv`` (mode, labels per class, seed, accuracy),
    validated as :func:`run_table_from_csv` validates a runs.csv."""
    table: dict[tuple[str, int], dict[int, float]] = {}
    try:
        for line, row in enumerate(csv_rows(path, "transfer.csv"), start=2):
            key = (row["mode"], int(row["labels_per_class"]))
            seed = seed_cell(row.get("seed"), path, line)
            if seed in table.get(key, {}):
                raise ValueError(f"{path}, row {line}: {key[0]} at {key[1]} seed {seed} again")
            acc = fraction(row["val_acc"], path, line, "val_acc")
            table.setdefault(key, {})[seed] = 1.0 - acc
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a transfer.csv a report wrote (no column {e})") from e
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a transfer.csv a report wrote ({e})") from e
    return table


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    table = transfer_table_from_csv(folder / "transfer.csv")
    counts = [int(n) for n in report_args(folder).get("labels", [10, 50, 250, 0])]
    seeds = {f"{m} at {n}": sorted(s) for (m, n), s in sorted(table.items())}
    return [transfer_verdict(table, counts[0], counts[-1], looks(seeds))], seeds


register_experiment(
    Experiment(
        "transfer",
        "pretrained vs from scratch with 10..all labelled images per class",
        runs=_transfer_runs,
        report=_transfer_report,
        defaults={
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
        rejudge=_rejudge,
    )
)
