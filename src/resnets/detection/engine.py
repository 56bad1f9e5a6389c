"""A detector's run and file, end to end: :func:`train_detector` (training goes through the
one loop, :func:`resnets.train.train`; what detection adds to it is
:mod:`resnets.train.detection`), :func:`detect_file` (an image file in, its detections out)
and :func:`package_detector_run` (a finished run as named weights)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..data.images import decode_image
from ..errors import ConfigError, DataError
from ..eval.zoo import (
    CIFAR_LICENSE,
    check_package_target,
    finished_summary,
    packaging_facts,
    round_to_half,
    write_named_weights,
)
from ..inference import load_weights
from ..inference.views import check_native_side
from ..models.detector import FasterRCNN
from ..models.detector_config import detector_weights_name
from ..rundir import RunDir
from ..train.config import DetectTrainConfig, build_detect_config
from ..train.loop import train
from .coco import read_coco
from .metrics import evaluate_detector


def train_detector(
    cfg: DetectTrainConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train (or, with ``resume``, continue the run in ``out``, with its own config) through
    the one training loop (:func:`resnets.train.train`, which a :class:`DetectTrainConfig`
    sends to :mod:`resnets.train.detection`) and return the run's summary: the final mAP
    numbers on the validation folder, or ``{"stopped": ITERATION, "by": "signal" or
    "stop_after", "exit_code": ...}`` (the command's exit status, as ``resnets train``'s: 130
    or 143 after a signal, 0 as asked), with a checkpoint to resume from."""
    if cfg is None and not resume:
        raise ConfigError("detect train: a config, or resume=True")
    run = RunDir(out)
    result = train(
        cfg or DetectTrainConfig(), run, resume=resume, progress=progress, stop_after=stop_after
    )
    if result.stopped is not None:
        return {"stopped": result.iters, "by": result.stopped, "exit_code": result.exit_code}
    return run.read_summary()


def detect_file(
    model: FasterRCNN, path: str | Path
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """An image file (decoded as every resnets command decodes, one-line errors for a bad
    file) as a ``(3, H, W)`` tensor in [0, 1], and what ``model`` detects in it."""
    pixels = decode_image(path)
    check_native_side(pixels, str(path), "the detector takes")  # the bound every path has
    image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    model.eval()
    (found,) = model([image])
    return image, found


def package_detector_run(
    run_dir: str | Path,
    name: str,
    out_dir: str | Path,
    *,
    license: str = CIFAR_LICENSE,
    data: str | None = None,
    half: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """A finished detection run as named weights (``fasterrcnn_BACKBONE_fpn.TAG``), as
    :func:`resnets.eval.zoo.package_run` does a classifier's: its COCO mAP measured again in
    fp32 on the run's validation folder (``data``: where it is now) from the values the file
    stores, the training facts in ``final``, a ``.sha256`` beside it."""
    run = RunDir(run_dir)
    model_part = check_package_target(name, out_dir, overwrite)
    summary = finished_summary(run)
    loaded = load_weights(run, task="detection")
    if model_part != detector_weights_name(loaded.meta.model):
        raise ConfigError(
            f"--name {name!r}: the run trained a detector on {loaded.meta.model}, so its name "
            f"starts {detector_weights_name(loaded.meta.model)}."
        )
    if half:
        round_to_half(loaded.model)
    folder = data or build_detect_config(file_values=run.read_config()["config"]).val
    val_set = read_coco(folder)
    if val_set.category_names != loaded.classes:
        raise DataError(f"{folder}: categories {val_set.category_names}, not the detector's")
    scores, _ = evaluate_detector(loaded.model, val_set)
    meta = replace(
        loaded.meta,
        metrics={
            "box_map": scores.map,
            "box_map_50": scores.map_50,
            "n": scores.images,
            "split": f"validation folder {Path(folder).name}: {scores.images} images of objects "
            "from files the training folder did not use; COCO mAP@[.5:.95] in fp32",
        },
        license=license,
        final={**(loaded.meta.final or {}), **packaging_facts(run, summary, half)},
    )
    written = write_named_weights(loaded.model, meta, name, out_dir, half)
    return {**written, "box_map": scores.map, "box_map_50": scores.map_50, "n": scores.images}
