"""A card for a set of weights: one Markdown page with the evidence a user needs to trust
them, every number measured when the card is written.

What the weights are and how they were trained; top-1 with a 95% confidence interval on the
held-out split; per-class accuracy and the confusion matrix; calibration before and after the
softmax temperature; accuracy under the 15 common corruptions by severity; int8's top-1 drop
and the share of predictions it changes; ONNX and OpenVINO parity at batch 1, 7 and 64; and,
for float16 files, the largest BatchNorm running variance against float16's limit.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..detection.coco import read_coco
from ..detection.draw import draw_detections, save_grid, top_detections
from ..detection.metrics import coco_per_class, evaluate_detector
from ..errors import DataError
from ..eval.calibration import fit_temperature, measure
from ..eval.corruptions import CORRUPTIONS, DEVIATIONS, evaluate_corruptions, spread_subset
from ..eval.metrics import Scoring, reliability_bins
from ..eval.predict import score
from ..inference import LoadedModel, TestTime, load_weights
from ..inference.loader import weights_task
from ..io import atomic_write_text, progress_bar, relative_paths
from ..plots import plot_confusion, plot_corruptions, plot_reliability
from ..runtime import machine_label
from .export import export_model

FLOAT16_MAX = float(torch.finfo(torch.float16).max)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (better than the normal one near 0 or
    1 and for small n)."""
    if n == 0:
        return math.nan, math.nan
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@dataclass
class CardEvidence:
    """Everything the card states, measured."""

    name: str
    lm: LoadedModel
    top1: float
    top5: float
    n: int
    interval: tuple[float, float]
    per_class: dict[str, float]
    calibration: dict[str, Any]
    corruption_clean: float
    corruptions: list[Any]
    corruption_images: int
    int8: dict[str, Any]
    parity: dict[str, dict[int, float]]
    float16: dict[str, Any] | None
    figures: dict[str, str] = field(default_factory=dict)
    #: every held-out image's (path relative to the data root, label, top-1 prediction), for
    #: tests on the same images (an exact McNemar test between two cards)
    predictions: list[tuple[str, str, str]] = field(default_factory=list)


def _float16_check(lm: LoadedModel) -> dict[str, Any] | None:
    stored = (lm.meta.final or {}).get("stored_dtype")
    if stored != "float16":
        return None
    variances = {
        k: float(v.max()) for k, v in lm.model.state_dict().items() if k.endswith("running_var")
    }
    worst = max(variances, key=variances.get)
    return {
        "largest_running_var": variances[worst],
        "tensor": worst,
        "limit": FLOAT16_MAX,
        "headroom": FLOAT16_MAX / max(variances[worst], 1e-30),
    }


def gather_evidence(
    weights: str, data: str, out: Path, *, corruption_images: int = 1000, progress: bool = True
) -> CardEvidence:
    """Measure everything a card states (exports go to a temporary folder)."""
    lm = load_weights(weights)
    steps = progress_bar(total=5, desc="card", unit="part", disable=not progress)
    # 1. accuracy on the held-out split, per class, and the logits for calibration
    res, held_out = score(
        lm, data, subset="val", test=TestTime(temperature=1.0), run=Scoring(keep_logits=True)
    )
    steps.update(1)
    correct = int(round(res.top1 * res.n))
    paths = held_out.data.paths or [f"#{i}" for i in range(len(held_out.data))]
    predictions = [
        (paths[int(i)], lm.classes[int(t)], lm.classes[int(p)])
        for i, t, p in zip(held_out.indices, res.targets, res.logits.argmax(1))
    ]
    per_class = dict(zip(lm.classes, (float(a) for a in res.per_class())))
    figures = {
        "confusion": str(
            plot_confusion(
                res.confusion,
                lm.classes,
                out / "confusion.png",
                title=f"{weights}: top-1 {res.top1:.2%}",
            )
        )
    }
    # 2. calibration: raw, and at the stored temperature (or one fitted now, said so)
    t = lm.meta.temperature or fit_temperature(res.logits, res.targets)
    before, after = measure(res.logits, res.targets, 1.0), measure(res.logits, res.targets, t)
    calibration = {
        "before": before.to_dict(),
        "after": after.to_dict(),
        "stored": lm.meta.temperature is not None,
    }
    probs = torch.as_tensor(res.logits).double().div(t).softmax(1)
    conf, pred = probs.max(1)
    bins = reliability_bins(conf.numpy(), (pred.numpy() == res.targets))
    figures["reliability"] = str(
        plot_reliability(
            bins, out / "reliability.png", title=f"{weights} at T={t:.3f}", ece=after.ece
        )
    )
    steps.update(1)
    # 3. common corruptions on N held-out images spread over the split (all classes)
    idx = spread_subset(held_out.indices, corruption_images)
    clean, scores = evaluate_corruptions(
        lm,
        np.asarray(held_out.data.images[idx]),
        held_out.labels[idx],
        list(CORRUPTIONS),
        [1, 2, 3, 4, 5],
        tta=lm.meta.tta,
    )
    rows = [(c.corruption, c.severity, c.top1) for c in scores]
    figures["corruptions"] = str(
        plot_corruptions(
            rows,
            clean,
            out / "corruptions.png",
            title=f"{weights}: common corruptions (regenerated), {len(idx)} images",
        )
    )
    steps.update(1)
    with tempfile.TemporaryDirectory() as tmp:
        # 4. int8 (ONNX Runtime, calibrated on training images) against fp32 on the same split
        int8_path = Path(tmp) / "int8.onnx"
        export_model(weights, "onnx", int8_path, int8=True, check_data=data, calib=data)
        q = load_weights(str(int8_path), backend="onnxruntime")
        q_res, _ = score(
            q, data, subset="val", test=TestTime(temperature=1.0), run=Scoring(keep_logits=True)
        )
        changed = float((q_res.logits.argmax(1) != res.logits.argmax(1)).mean())
        int8 = {
            "top1": q_res.top1,
            "drop": res.top1 - q_res.top1,
            "changed": changed,
            "tool": "ONNX Runtime static quantization",
        }
        steps.update(1)
        # 5. parity of the fp32 exports at batch 1, 7 and 64
        parity = {}
        for fmt, target in (("onnx", Path(tmp) / "fp32.onnx"), ("openvino", Path(tmp) / "ov")):
            parity[fmt] = export_model(weights, fmt, target, check_data=data).batch_diffs
        steps.update(1)
    steps.close()
    return CardEvidence(
        name=str(weights),
        lm=lm,
        top1=res.top1,
        top5=res.top5,
        n=res.n,
        interval=wilson_interval(correct, res.n),
        per_class=per_class,
        calibration=calibration,
        corruption_clean=clean,
        corruptions=scores,
        corruption_images=len(idx),
        int8=int8,
        parity=parity,
        float16=_float16_check(lm),
        figures=figures,
        predictions=predictions,
    )


def render_card(ev: CardEvidence, data: str, machine: str) -> str:
    """The Markdown of the card (figures referenced by file name, beside it)."""
    meta, lm = ev.lm.meta, ev.lm
    split = meta.split or {}
    lo, hi = ev.interval
    cal_b, cal_a = ev.calibration["before"], ev.calibration["after"]
    by_severity = {
        s: float(np.mean([c.top1 for c in ev.corruptions if c.severity == s])) for s in range(1, 6)
    }
    mean_c = float(np.mean([c.top1 for c in ev.corruptions]))
    final = meta.final or {}
    lines = [
        f"# Weights card: `{ev.name}`",
        "",
        f"Every number below was measured when this card was written, on {machine}, by "
        f"`resnets weights card {relative_paths(ev.name)} --data {relative_paths(data)}`.",
        "",
        "## What they are",
        "",
        f"- Model: `{meta.model}` ({meta.params or 0:,} parameters, "
        f"{(meta.macs or 0) / 1e6:.1f} M multiply-accumulates per image), "
        f"{len(lm.classes)} classes: {', '.join(lm.classes[:10])}"
        f"{' ...' if len(lm.classes) > 10 else ''}.",
        f"- Input: {lm.in_chans} channels, {lm.image_size or 'native'} px"
        f"{f', centre crop {lm.eval_size}' if lm.eval_size else ''}; test-time "
        f"augmentation: {meta.tta}.",
        f"- Trained by: `{relative_paths(meta.command or 'unknown')}`",
        f"- Data: `{relative_paths(meta.data or '')}`; split: {split.get('n_train', '?'):,} training / "
        f"{split.get('n_val', '?'):,} held-out images (stratified, seed {split.get('seed', '?')}).",
        f"- Training time: {(final.get('train_time_s') or 0) / 60:.1f} min of step time; "
        f"stored as {final.get('stored_dtype', 'float32')}; licence: {meta.license or 'unstated'}.",
        "",
        "## Accuracy on the held-out split",
        "",
        f"Top-1 **{ev.top1:.2%}** (95% Wilson interval {lo:.2%} - {hi:.2%}, n = {ev.n:,}); "
        f"top-5 {ev.top5:.2%}.",
        "",
        "| class | accuracy |",
        "| --- | ---: |",
        *[f"| {c} | {a:.2%} |" for c, a in ev.per_class.items()],
        "",
        "![confusion matrix](confusion.png)",
        "",
        f"Every held-out image's prediction is in `predictions.csv` ({ev.n:,} rows: path under "
        "the data root, label, predicted), so two cards can be compared on the same images "
        "(an exact McNemar test).",
        "",
        "## Calibration",
        "",
        f"Temperature {cal_a['temperature']:.4f} "
        f"({'stored with the weights' if ev.calibration['stored'] else 'fitted now on this split, not stored'}).",
        "",
        "| | ECE (15 bins) | NLL | Brier |",
        "| --- | ---: | ---: | ---: |",
        f"| before (T = 1) | {cal_b['ece']:.2%} | {cal_b['nll']:.4f} | {cal_b['brier']:.4f} |",
        f"| after | {cal_a['ece']:.2%} | {cal_a['nll']:.4f} | {cal_a['brier']:.4f} |",
        "",
        "The temperature was fitted on this same split: one parameter on "
        f"{ev.n:,} images, so the after-figures are not an independent test.",
        "",
        "![reliability](reliability.png)",
        "",
        "## Common corruptions (regenerated)",
        "",
        f"The 15 corruptions of Hendrycks & Dietterich (2019) at severities 1-5, regenerated "
        f"with seed 0 on {ev.corruption_images:,} held-out images spread evenly over the split (CIFAR-10-C itself "
        f"cannot be downloaded here). Clean accuracy on the same images: "
        f"{ev.corruption_clean:.2%}; mean over all 75: **{mean_c:.2%}**.",
        "",
        "| severity | 1 | 2 | 3 | 4 | 5 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| mean top-1 over the 15 | "
        + " | ".join(f"{by_severity[s]:.2%}" for s in range(1, 6))
        + " |",
        "",
        *[f"- {k}: {v}." for k, v in DEVIATIONS.items()],
        "",
        "![corruptions](corruptions.png)",
        "",
        "## int8",
        "",
        f"{ev.int8['tool']} (calibrated on training-split images only): top-1 "
        f"{ev.int8['top1']:.2%}, a drop of {100 * ev.int8['drop']:+.2f} points; int8 changes "
        f"{ev.int8['changed']:.2%} of the predicted classes.",
        "",
        "## Export parity (fp32, max |logit difference| against PyTorch)",
        "",
        "| runtime | batch 1 | batch 7 | batch 64 |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {fmt} | " + " | ".join(f"{d.get(b, math.nan):.1e}" for b in (1, 7, 64)) + " |"
            for fmt, d in ev.parity.items()
        ],
        "",
    ]
    if ev.float16:
        f = ev.float16
        lines += [
            "## float16 storage",
            "",
            f"Largest BatchNorm running variance: {f['largest_running_var']:.4g} "
            f"(`{f['tensor']}`), against float16's limit {f['limit']:.0f}: "
            f"{f['headroom']:.3g}x headroom.",
            "",
        ]
    return "\n".join(lines)


def write_card(
    weights: str,
    data: str,
    out: str | Path,
    *,
    corruption_images: int = 1000,
    progress: bool = True,
) -> Path:
    """Measure and write ``out/CARD.md`` with its figures; returns the Markdown file. A
    detector's card (:func:`write_detector_card`) is measured on ``data``, a COCO folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if weights_task(weights) == "detection":
        return write_detector_card(weights, data, out, progress=progress)
    ev = gather_evidence(weights, data, out, corruption_images=corruption_images, progress=progress)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["path", "label", "predicted"])
    writer.writerows(ev.predictions)
    atomic_write_text(out / "predictions.csv", table.getvalue())
    path = out / "CARD.md"
    atomic_write_text(path, render_card(ev, data, machine_label()))
    return path


#: the validation images drawn on a detector's card, each with its most confident detections
CARD_PICTURES, CARD_DRAWN = 8, 3


def write_detector_card(weights: str, data: str, out: Path, *, progress: bool = True) -> Path:
    """A detector's card, ``out/CARD.md``: what it is and how it was trained (its record),
    then COCO mAP overall, by object size and per class, measured now on ``data`` (a COCO
    folder of its classes), the time per image, and its detections drawn on the first images.
    What a classifier's card adds (calibration, corruptions, int8, exports) is not measured
    for a detector, and the card says so."""
    loaded = load_weights(weights, task="detection")
    coco = read_coco(data)
    if coco.category_names != loaded.classes:
        raise DataError(f"{data}: categories {coco.category_names}, not the detector's")
    started = time.perf_counter()
    scores, found = evaluate_detector(loaded.model, coco, progress=progress)
    seconds = time.perf_counter() - started
    per_class = coco_per_class(coco, found)
    shown = range(min(CARD_PICTURES, len(coco.images)))
    pictures = [
        draw_detections(coco.load(i)[0], top_detections(found[i], CARD_DRAWN), loaded.classes,
                        threshold=0.0, truth=coco.images[i].boxes)
        for i in shown
    ]  # fmt: skip
    save_grid(pictures, out / "detections.png")
    meta = loaded.meta
    train = (meta.final or {}).get("train_config") or {}
    stated = meta.metrics or {}
    objects = sum(len(rec.boxes) for rec in coco.images)

    def share(value: float) -> str:
        return "no such object" if value < 0 else f"{value:.3f}"

    lines = [
        f"# Weights card: `{weights}` (a detector)",
        "",
        f"Every number below was measured when this card was written, on {machine_label()}, by "
        f"`resnets weights card {relative_paths(str(weights))} --data {relative_paths(data)}`.",
        "",
        "## What it is",
        "",
        f"- Faster R-CNN + FPN on `{meta.model}` ({meta.params or 0:,} parameters), "
        f"{len(loaded.classes)} classes: {', '.join(loaded.classes[:10])}"
        f"{' ...' if len(loaded.classes) > 10 else ''}; detector settings changed from the "
        f"defaults: {meta.detector or 'none'}.",
        "- Input: images in [0, 1] of any size (up to the decoder's bound), padded and "
        f"normalised inside the detector (mean {[round(m / 255, 3) for m in meta.mean or []]}, "
        f"std {[round(v / 255, 3) for v in meta.std or []]}).",
        f"- Trained on `{relative_paths(meta.data or '?')}`: {train.get('epochs', '?')} epoch(s), "
        f"batch {train.get('batch_size', '?')}, lr {train.get('lr', '?')}, seed "
        f"{train.get('seed', '?')}, from {train.get('init') or 'scratch'}; licence: "
        f"{meta.license or 'unstated'}.",
        f"- Its record states box mAP@[.5:.95] {stated.get('box_map', float('nan')):.3f} on "
        f"{stated.get('split', 'an unstated split')}.",
        "",
        f"## COCO mAP on `{relative_paths(data)}`",
        "",
        f"{scores.images:,} images, {objects:,} true objects, {scores.detections:,} detections "
        f"kept (score >= {loaded.model.cfg.score_threshold}); "
        f"{1000 * seconds / max(scores.images, 1):.0f} ms per image on this machine.",
        "",
        "| mAP@[.5:.95] | mAP@.5 | mAP@.75 | small | medium | large |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| **{scores.map:.3f}** | {scores.map_50:.3f} | {scores.map_75:.3f} | "
        f"{share(scores.map_small)} | {share(scores.map_medium)} | {share(scores.map_large)} |",
        "",
        "| class | AP@[.5:.95] |",
        "| --- | ---: |",
        *[f"| {name} | {ap:.3f} |" for name, ap in per_class.items()],
        "",
        "mAP has no closed-form interval; compare two detectors with a test paired by seed "
        "(`resnets analyze detection`), not by these figures alone.",
        "",
        "![detections](detections.png)",
        "",
        f"The first {len(shown)} images, each with its {CARD_DRAWN} most confident detections "
        "(coloured, class and score written) and the true boxes (white).",
        "",
        "## Not measured for a detector",
        "",
        "Calibration of its scores, common corruptions, int8 and exported runtimes: the "
        "classifier's card measures them; resnets does not yet for detectors.",
        "",
    ]
    path = out / "CARD.md"
    atomic_write_text(path, "\n".join(lines))
    return path
