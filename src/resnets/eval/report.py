"""The eval report: ``eval.json`` with its figures, built once here. ``resnets eval`` prints
from the same record, and its ``--json`` line is a view of it (:func:`summary_line`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..inference import LoadedModel
from ..io import atomic_write_text
from ..plots import plot_confusion, plot_corruptions, plot_reliability
from .corruptions import DEVIATIONS, evaluate_corruptions, spread_subset
from .metrics import EvalResult
from .predict import ScoringSelection, scoring_selection

#: record fields left out of the one-line ``--json`` summary (large, or in eval.json only)
DETAIL_FIELDS = ("per_class", "reliability", "corruptions")


def write_eval_report(
    res: EvalResult,
    lm: LoadedModel,
    out: Path,
    *,
    data: str,
    subset: str,
    ten_crop: bool,
    scales: list[int],
    tta: str,
) -> dict[str, Any]:
    """Draw ``confusion.png`` and ``reliability.png`` and write ``eval.json`` into ``out``;
    returns the record written."""
    out.mkdir(parents=True, exist_ok=True)
    per_class = res.per_class()
    confusion_png = plot_confusion(
        res.confusion,
        lm.classes,
        out / "confusion.png",
        title=f"{lm.meta.model} on {data}: top-1 {res.top1:.2%}",
    )
    reliability_png = plot_reliability(
        res.reliability(),
        out / "reliability.png",
        ece=res.ece,
        title=f"{lm.meta.model} on {data} ({subset})",
    )
    record = {
        "top1": res.top1,
        "top5": res.top5,
        "n": res.n,
        "loss": res.loss,
        "ece": res.ece,
        "nll": res.nll,
        "brier": res.brier,
        "temperature": res.temperature,
        "ten_crop": bool(ten_crop),
        "scales": scales,
        "tta": tta,
        "subset": subset,
        "data": data,
        "per_class": {c: (None if a != a else float(a)) for c, a in zip(lm.classes, per_class)},
        "confusion_png": str(confusion_png),
        "reliability_png": str(reliability_png),
        "reliability": res.reliability(),
    }
    atomic_write_text(out / "eval.json", json.dumps(record, indent=2))
    return record


def add_corruptions(
    record: dict[str, Any],
    lm: LoadedModel,
    out: Path,
    *,
    selection: ScoringSelection,
    names: list[str],
    severities: list[int],
    seed: int,
    images: int,
    batch_size: int,
    device: Any,
    progress: bool,
) -> dict[str, Any]:
    """Score the record's images (``selection``, as ``score`` returned them) under the common
    corruptions (regenerated with ``seed``), write ``corruptions.csv`` and ``corruptions.png``,
    and add the result to ``eval.json``."""
    if selection.decoded_size != lm.image_size:  # multi-scale testing decoded them larger
        selection = scoring_selection(lm, record["data"], subset=record["subset"])
    idx = spread_subset(selection.indices, images)
    clean_top1, scores = evaluate_corruptions(
        lm,
        np.asarray(selection.data.images[idx]),
        selection.labels[idx],
        names,
        severities,
        seed=seed,
        batch_size=batch_size,
        device=device,
        tta=record["tta"],
        progress=progress,
    )
    csv_text = "corruption,severity,top1,n\n" + "".join(
        f"{c.corruption},{c.severity},{c.top1:.6f},{c.n}\n" for c in scores
    )
    atomic_write_text(out / "corruptions.csv", csv_text)
    png = plot_corruptions(
        [(c.corruption, c.severity, c.top1) for c in scores],
        clean_top1,
        out / "corruptions.png",
        title=f"{lm.meta.model}: common corruptions (regenerated, seed {seed}), {len(idx)} images",
    )
    record["corruptions"] = {
        "regenerated": True,
        "seed": seed,
        "images": int(len(idx)),
        "mean_top1": float(np.mean([c.top1 for c in scores])),
        "clean_top1": clean_top1,
        "deviations": {k: v for k, v in DEVIATIONS.items() if k in names},
        "cells": [c.__dict__ for c in scores],
        "figure": str(png),
        "table": str(out / "corruptions.csv"),
    }
    atomic_write_text(out / "eval.json", json.dumps(record, indent=2))
    return record


def summary_line(record: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` view of an eval record: every field but the large ones."""
    line = {k: v for k, v in record.items() if k not in DETAIL_FIELDS}
    if "corruptions" in record:
        line["corruption_mean_top1"] = record["corruptions"]["mean_top1"]
    return line
