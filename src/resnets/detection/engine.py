"""Training and scoring a detector: torchvision's reference split into ``train_one_epoch``,
``evaluate_detector`` and ``train_detector`` (named apart from classification's ``train`` and
``evaluate``, whose contracts differ), with resnets' run folders (a lock, ``config.json``, ``train.log``,
``metrics.jsonl``, checkpoints that resume exactly, ``model.safetensors`` at the end).

Recipe: SGD with momentum 0.9 and weight decay 1e-4, a linear warm-up, the learning rate
divided by 10 at two milestones (torchvision's detection reference: lr 0.02 for 16 images,
warm-up 1,000 iterations, divided at epochs 16 and 22 of 26), horizontal flips; scaled to the
images and batches a CPU trains (``DetectTrainConfig``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
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
from ..inference import load_weights, model_from_weights
from ..inference.views import check_native_side
from ..io import atomic_write_json, progress_bar
from ..models.detector import DetectorConfig, FasterRCNN
from ..models.summary import count_params
from ..models.weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsMeta,
    load_state_dict_checked,
    save_weights,
)
from ..rundir import RunDir
from ..runtime import StopSignals
from ..train.config import DetectTrainConfig, build_detect_config
from ..train.run_files import MetricsLog, RunLog, truncate_metrics
from .coco import CocoSet, read_coco
from .metrics import CocoEvaluator


def config_from_record(saved: dict[str, Any]) -> DetectTrainConfig:
    """The config a run stored (``config.json`` or the weights record), every key and value
    checked as a ``--config`` file's are."""
    return build_detect_config(file_values=saved)


def collate(data: CocoSet, indices: list[int], flips: list[bool] | None = None):
    """The images (``(3, H, W)`` in [0, 1], sizes as stored: the detector pads and normalises
    them) and their targets, each flipped left to right where ``flips`` says."""
    images, targets = [], []
    for k, (img, target) in enumerate(data.load(i) for i in indices):
        boxes = target["boxes"].clone()
        if flips and flips[k]:
            img = img.flip(2)
            width = img.shape[2]
            boxes = torch.stack(
                (width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]), dim=1
            )
        images.append(img)
        targets.append({**target, "boxes": boxes})
    return images, targets


def new_detector(cfg: DetectTrainConfig, classes: list[str]) -> FasterRCNN:
    """The detector of ``cfg`` for ``classes``, started from ``cfg.init`` when given: a
    classifier's weights give its backbone; a detector's give every layer (fine-tuning, as
    torchvision's reference does), less the two class-specific output layers when its
    classes are not these (by name, in order)."""
    dcfg = DetectorConfig(backbone=cfg.backbone, num_classes=len(classes) + 1, **cfg.detector)
    if not cfg.init:
        return FasterRCNN(dcfg)
    net, meta = model_from_weights(cfg.init, task=None)
    if meta.model != cfg.backbone:
        raise ConfigError(
            f"--init {cfg.init}: weights of {meta.model}, not of --backbone {cfg.backbone}"
        )
    if meta.task == "classification":
        net.set_features_only()
        return FasterRCNN(dcfg, backbone=net)
    model = FasterRCNN(dcfg)
    state = net.state_dict()
    if meta.classes != classes:  # a new set of classes: fresh output layers for them
        own = model.state_dict()
        state.update({k: own[k] for k in own if k.startswith(("cls_score.", "bbox_pred."))})
    load_state_dict_checked(model, state, f"--init {cfg.init}")
    return model


def detector_lr(cfg: DetectTrainConfig, step: int, epoch: int) -> float:
    """Warm-up, then the step schedule."""
    decay = 0.1 ** sum(epoch >= m for m in cfg.milestones)
    if step < cfg.warmup_iters:
        start = 1e-3
        return cfg.lr * decay * (start + (1 - start) * step / cfg.warmup_iters)
    return cfg.lr * decay


def train_one_epoch(
    model, optimizer, data: CocoSet, cfg: DetectTrainConfig, state: dict, signals, bar
) -> dict[str, float]:
    """One pass over the training set in the epoch's fixed random order, from the batch the
    state says (a resumed epoch continues where it stopped). Returns the mean losses."""
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + state["epoch"])
    order = torch.randperm(len(data.images), generator=gen).tolist()
    flips = (torch.rand(len(order), generator=gen) < 0.5).tolist() if cfg.flip else None
    sums: dict[str, float] = state.setdefault("loss_sums", {})
    model.train()
    starts = range(state["batch"] * cfg.batch_size, len(order), cfg.batch_size)
    for start in starts:
        idx = order[start : start + cfg.batch_size]
        images, targets = collate(data, idx, [flips[i] for i in idx] if flips else None)
        lr = detector_lr(cfg, state["step"], state["epoch"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses = model(images, targets)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise DataError(f"non-finite detection loss at step {state['step']}: lower --lr")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        state["step"] += 1
        state["batch"] += 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(total.detach()):.3f}", lr=f"{lr:.3g}")
        if signals.requested is not None:
            return {}
    batches = max(state["batch"], 1)
    return {k: v / batches for k, v in sums.items()}


@torch.no_grad()
def evaluate_detector(model, data: CocoSet, batch_size: int = 8, progress: bool = False):
    """COCO mAP of ``model`` on every image of ``data``, and the detections."""
    model.eval()
    evaluator = CocoEvaluator(data)  # the evaluator interface classification's scoring has
    bar = progress_bar(
        total=len(data.images), desc="detect", unit="img", leave=False, disable=not progress
    )
    for start in range(0, len(data.images), batch_size):
        idx = list(range(start, min(start + batch_size, len(data.images))))
        images, _ = collate(data, idx)
        evaluator.process([data.images[i].id for i in idx], model(images))
        bar.update(len(idx))
    bar.close()
    return evaluator.evaluate()


def _same_categories(train: CocoSet, val: CocoSet) -> None:
    if (train.category_ids, train.category_names) != (val.category_ids, val.category_names):
        raise DataError(
            f"{val.root}: its categories {val.category_names} are not the training set's "
            f"{train.category_names}"
        )


def train_detector(
    cfg: DetectTrainConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train (or, with ``resume``, continue the run in ``out``) and return its summary: the
    final mAP numbers on the validation folder, or ``{"stopped": ...}`` after a signal or
    ``stop_after`` steps, with a checkpoint to resume from."""
    out = RunDir(out)
    if resume:
        out.open_for_resume()
    else:
        assert cfg is not None
        cfg.check()
        if not (cfg.train and cfg.val):
            raise ConfigError("detect train: give --train and --val (COCO-format folders)")
        out.create(reading=(cfg.train, cfg.val))
    try:
        if resume:
            cfg = config_from_record(out.read_config()["config"])
        else:
            atomic_write_json(out.config, {"kind": "detection", "config": asdict(cfg)})
        return _run(cfg, out, resume, progress, stop_after)
    finally:
        out.release()


def _run(cfg, out: RunDir, resume: bool, progress: bool, stop_after: int | None) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_set, val_set = read_coco(cfg.train), read_coco(cfg.val)
    _same_categories(train_set, val_set)
    torch.manual_seed(cfg.seed)
    model = new_detector(cfg, train_set.category_names)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    state = {"epoch": 0, "batch": 0, "step": 0, "loss_sums": {}}
    log = RunLog(out.log, echo=progress)
    if resume:
        ckpt = load_checkpoint(out.last)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        torch.set_rng_state(ckpt["rng"])  # the proposal sampling draws from it
        truncate_metrics(out, state["step"])
        log(f"resumed {out} at epoch {state['epoch']}, batch {state['batch']}")
    else:
        log(
            f"detection run {out}: Faster R-CNN + FPN on {cfg.backbone}"
            f"{' from ' + cfg.init if cfg.init else ' from scratch'}, "
            f"{len(train_set.images)} training / {len(val_set.images)} validation images, "
            f"{train_set.num_classes - 1} classes, {cfg.epochs} epochs"
        )
    metrics = MetricsLog(out, enabled=True, tensorboard=False)
    per_epoch = math.ceil(len(train_set.images) / cfg.batch_size)
    bar = progress_bar(
        total=per_epoch * cfg.epochs,
        initial=state["step"],
        desc="detect train",
        unit="step",
        disable=not progress,
    )
    session_start = state["step"]
    started = time.perf_counter()

    def save() -> None:
        save_checkpoint(
            out.last,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "state": state,
                "rng": torch.get_rng_state(),
            },
        )

    with StopSignals() as signals:
        while state["epoch"] < cfg.epochs:
            limit = signals
            if stop_after is not None:
                limit = _StepLimit(signals, state, session_start + stop_after)
            losses = train_one_epoch(model, optimizer, train_set, cfg, state, limit, bar)
            if limit.requested is not None:  # a signal or the step limit: checkpoint, stop
                save()
                bar.close()
                log(f"stopped at step {state['step']}: resume with --resume {out}")
                return {"stopped": state["step"]}
            scores, _ = evaluate_detector(model, val_set)
            row = {"epoch": state["epoch"] + 1, "step": state["step"], **losses, **scores.to_dict()}
            metrics.append(row)
            log(
                f"epoch {state['epoch'] + 1}/{cfg.epochs}: loss "
                f"{sum(losses.values()):.3f}, val mAP {scores.map:.3f}, mAP@.5 {scores.map_50:.3f}"
            )
            state.update(epoch=state["epoch"] + 1, batch=0, loss_sums={})
            save()
    bar.close()
    metrics.close()
    last = out.read_metrics()[-1]
    save_weights(model, out.weights, detector_record(cfg, train_set, val_set, last, model))
    summary = {**last, "seconds": time.perf_counter() - started}
    atomic_write_json(out.summary, summary)
    log(f"done: val mAP {summary['map']:.3f} (mAP@.5 {summary['map_50']:.3f})")
    return summary


def detector_record(
    cfg: DetectTrainConfig, train: CocoSet, val: CocoSet, scores: dict[str, Any], model
) -> WeightsMeta:
    """The weights record of a trained detector (``task="detection"``): what rebuilds it (its
    backbone, classes, settings and normalisation), its COCO mAP on the validation folder, and
    the training config it came from."""
    return WeightsMeta(
        model=cfg.backbone,
        task="detection",
        classes=list(train.category_names),
        detector=dict(cfg.detector),
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
        metrics={
            "box_map": scores["map"],
            "box_map_50": scores["map_50"],
            "n": len(val.images),
            "split": f"validation folder {Path(cfg.val).name}",
        },
        params=count_params(model),
        source="resnets",
        data=cfg.train,
        final={"train_config": asdict(cfg), "epoch": scores["epoch"], "step": scores["step"]},
    )


class _StepLimit:
    """Signals, plus a stop request once the step count reaches ``last``."""

    def __init__(self, signals: StopSignals, state: dict, last: int) -> None:
        self._signals, self._state, self._last = signals, state, last

    @property
    def requested(self):
        if self._signals.requested is not None:
            return self._signals.requested
        return "stop_after" if self._state["step"] >= self._last else None


@torch.no_grad()
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


def detector_weights_name(backbone: str) -> str:
    """The model part of a detector's weights name, torchvision's spelling:
    ``fasterrcnn_resnet18_fpn``."""
    return f"fasterrcnn_{backbone}_fpn"


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
    folder = data or config_from_record(run.read_config()["config"]).val
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
