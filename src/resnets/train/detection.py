"""Detection in the one training loop: what :func:`resnets.train.loop.train` needs to train
Faster R-CNN + FPN (``resnets detect train``), the loop itself being classification's.

The detector's step returns a dict of losses (torchvision's and Detectron2's convention: the
RPN's objectness and box losses, the box head's classification and box losses); the loop sums
them for the backward pass and keeps each one's mean per batch for the metrics line. The batch
stream is a pure function of (seed, epoch, step), as classification's is, so a run stopped
anywhere resumes bit-identically from its checkpoint (the same ``RunState`` file as every run).

Recipe: SGD with momentum 0.9 and weight decay 1e-4, a linear warm-up, the learning rate
divided by 10 at two milestones (torchvision's detection reference: lr 0.02 for 16 images,
warm-up 1,000 iterations, divided at epochs 16 and 22 of 26), horizontal flips; scaled to the
images and batches a CPU trains (:class:`~resnets.train.config.DetectTrainConfig`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checkpoint import load_checkpoint
from ..detection.coco import CocoSet, collate, read_coco
from ..detection.metrics import evaluate_detector
from ..errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from ..inference import model_from_weights
from ..io import atomic_write_json
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
from ..runtime import (
    Dist,
    autocast_ctx,
    hold_freed_memory,
    init_distributed,
    pick_device,
    use_bf16,
)
from . import report, run_files
from .config import DetectTrainConfig, build_detect_config
from .report import TrainResult
from .session import Session, TaskHooks
from .setup import claim_on_rank_0
from .state import RunState, restore_train_state
from .step import Trainee


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
    """Warm-up (linear from lr / 1000 over ``warmup_iters``), then the step schedule."""
    decay = 0.1 ** sum(epoch >= m for m in cfg.milestones)
    if step < cfg.warmup_iters:
        start = 1e-3
        return cfg.lr * decay * (start + (1 - start) * step / cfg.warmup_iters)
    return cfg.lr * decay


def detector_record(
    cfg: DetectTrainConfig,
    train: CocoSet,
    val: CocoSet,
    scores: dict[str, Any] | None,
    model: FasterRCNN,
) -> WeightsMeta:
    """The weights record of a detector (``task="detection"``): what rebuilds it (its backbone,
    classes, settings and normalisation), its COCO mAP on the validation folder once measured
    (``scores``: the last metrics line), and the training config it came from."""
    metrics = None
    if scores is not None:
        metrics = {
            "box_map": scores["map"],
            "box_map_50": scores["map_50"],
            "n": len(val.images),
            "split": f"validation folder {Path(cfg.val).name}",
        }
    position = {"epoch": scores["epoch"], "step": scores["step"]} if scores else {}
    return WeightsMeta(
        model=cfg.backbone,
        task="detection",
        classes=list(train.category_names),
        detector=dict(cfg.detector),
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
        metrics=metrics,
        params=count_params(model),
        source="resnets",
        data=cfg.train,
        final={"train_config": cfg.to_dict(), **position},
    )


class DetectionStream:
    """The training batches of each epoch: the images in a fixed random order (and, with
    ``flip``, each flipped or not) drawn from a generator seeded by (seed, epoch), so a batch
    is a pure function of (seed, epoch, step) and an epoch resumes at any step. Under torchrun
    every rank draws the same global batch and keeps its slice of it (``dist``), and an epoch
    is its full batches only: a rank with no image would leave the others waiting."""

    def __init__(self, data: CocoSet, cfg: DetectTrainConfig, dist: Dist | None = None) -> None:
        self.data, self.cfg, self.dist = data, cfg, dist or Dist()
        if cfg.batch_size % self.dist.world:
            raise ConfigError(
                f"batch_size={cfg.batch_size} must be divisible by the {self.dist.world} processes"
            )

    def __len__(self) -> int:
        n, batch = len(self.data.images), self.cfg.batch_size
        return n // batch if self.dist.world > 1 else math.ceil(n / batch)

    def epoch(self, epoch: int, start_step: int) -> Iterator[tuple[list, list]]:
        cfg, n = self.cfg, len(self.data.images)
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=gen).tolist()
        flips = (torch.rand(n, generator=gen) < 0.5).tolist() if cfg.flip else None
        per, rank = cfg.batch_size // self.dist.world, self.dist.rank
        for step in range(start_step, len(self)):
            batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            idx = batch[rank * per : (rank + 1) * per]  # (one process: all of it)
            yield collate(self.data, idx, [flips[i] for i in idx] if flips else None)


class DetectionStep:
    """forward (the detector returns its dict of losses), then the update every task's step
    makes (:meth:`~resnets.train.step.Trainee.update`: their sum, backward, SGD step). The
    summed loss and the image count stay on the device until :meth:`sums` is read, as
    classification's :class:`~resnets.train.step.TrainStep` keeps them; each loss's values
    wait for :meth:`take_parts`.

    The detector samples anchors and proposals at random, from the global generator. In one
    process that generator runs on through the run and the checkpoint holds its state. A
    checkpoint holds rank 0's state alone, so under torchrun each step seeds it from (seed,
    step, rank) instead: a step is then a pure function of where it is, and the run resumes
    bit-identically on every rank."""

    def __init__(
        self, trainee: Trainee, device: torch.device, bf16: bool, seed: int, dist: Dist
    ) -> None:
        self.t, self.device, self.bf16, self.seed, self.dist = trainee, device, bf16, seed, dist
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.n_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.parts: dict[str, list[torch.Tensor]] = {}

    def __call__(self, images: list, targets: list, step: int = 0) -> None:
        images = [im.to(self.device) for im in images]
        targets = [{k: v.to(self.device) for k, v in t.items()} for t in targets]
        if self.dist.world > 1:
            torch.manual_seed(((self.seed * 2**24 + step) * 256 + self.dist.rank) % 2**63)
        with autocast_ctx(self.device, self.bf16):
            losses = self.t.forward(images, targets)
        total = self.t.update(losses, step)
        with torch.no_grad():
            self.loss_sum += total.detach().double() * len(images)
            self.n_sum += len(images)
            for name, value in losses.items():
                self.parts.setdefault(name, []).append(value.detach().double())

    def sums(self) -> torch.Tensor:
        """(loss sum, error count, images): a detector counts no errors."""
        return torch.stack([self.loss_sum, torch.zeros_like(self.loss_sum), self.n_sum])

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.n_sum.zero_()

    def take_parts(self) -> dict[str, list[float]]:
        """Each loss's value at every step since the last call, the mean over the ranks (one
        host sync; every rank has the same losses by name, and calls this at the same step)."""
        parts = {}
        for name, values in self.parts.items():
            stacked = self.dist.all_sum(torch.stack(values)) / self.dist.world
            parts[name] = stacked.tolist()
        self.parts = {}
        return parts


@dataclass
class DetectionData:
    """The two COCO folders of a run, and the stream of training batches."""

    train: CocoSet
    val: CocoSet
    stream: DetectionStream


def start_detection_session(
    cfg: DetectTrainConfig,
    run_dir: RunDir | None,
    resume: bool | str,
    *,
    progress: bool,
    echo: bool,
    command: str | None = None,
    on_backward: Any = None,
) -> Session:
    """Open the run folder (new: claimed and ``config.json`` written; resumed: its own
    config and checkpoint) and build what the loop needs to train a detector. (``command``
    and ``on_backward`` are classification's :func:`~resnets.train.session.start_session`'s:
    taken so that the loop starts either task with one call, unused here.)"""
    if run_dir is None:
        raise ConfigError("detect train: give --out (or --resume RUN)")
    if resume == "auto":
        raise ConfigError("a detection run resumes with resume=True")
    if not resume:
        cfg.check()
        if not (cfg.train and cfg.val):
            raise ConfigError("detect train: give --train and --val (COCO-format folders)")
    dist = init_distributed(cfg.device)
    claim_on_rank_0(dist, run_dir, bool(resume), reading=(cfg.train, cfg.val))
    try:
        ckpt = None
        if resume:
            cfg = build_detect_config(file_values=run_dir.read_config()["config"])
            ckpt = _detection_checkpoint(run_dir)
        elif dist.main:
            atomic_write_json(run_dir.config, {"kind": "detection", "config": cfg.to_dict()})
        dist.barrier()  # (config.json is written by rank 0 alone)
        return _build(cfg, dist, run_dir, ckpt, progress and echo)
    except BaseException:
        run_dir.release()  # a failed start leaves the run to a later --resume
        raise


def _detection_checkpoint(run_dir: RunDir) -> dict[str, Any]:
    """The run's checkpoint; one written before detection joined the one loop is named so."""
    ckpt = load_checkpoint(run_dir.last)
    if "run_state" not in ckpt and "state" in ckpt:
        raise CheckpointError(
            f"{run_dir.last}: a detection checkpoint of the format before the one training "
            "loop (written by resnets up to commit f3186da): finish it with that version, or "
            "train it again"
        )
    return ckpt


def _build(
    cfg: DetectTrainConfig, dist: Dist, run_dir: RunDir, ckpt: dict | None, echo: bool
) -> Session:
    log = run_files.RunLog(run_dir.log, echo and dist.main, enabled=dist.main)
    metrics = run_files.MetricsLog(run_dir, enabled=dist.main, tensorboard=False)
    device = pick_device(cfg.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    bf16 = use_bf16(cfg.precision, device)
    if device.type == "cpu":
        hold_freed_memory()  # each step's buffers reused, not faulted in again from the kernel
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_set, val_set = read_coco(cfg.train), read_coco(cfg.val)
    if (train_set.category_ids, train_set.category_names) != (
        val_set.category_ids,
        val_set.category_names,
    ):
        raise DataError(
            f"{val_set.root}: its categories {val_set.category_names} are not the training "
            f"set's {train_set.category_names}"
        )
    torch.manual_seed(cfg.seed)  # the weights' initialisation; the proposals' sampling draws on
    model = new_detector(cfg, train_set.category_names).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    ema = None
    if cfg.ema:  # parameters and BatchNorm buffers alike, as classification's (timm's ModelEma)
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    forward: Any = model
    if dist.world > 1:  # each rank's slice of the batch; the gradients averaged over the ranks
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    trainee = Trainee(model, forward, optimizer, compiled=False, lr_scales=[], ema=ema)
    stream = DetectionStream(train_set, cfg, dist)
    if ckpt is None:
        state = RunState()
        log(
            f"detection run {run_dir}: Faster R-CNN + FPN on {cfg.backbone}"
            f"{' from ' + cfg.init if cfg.init else ' from scratch'}, "
            f"{len(train_set.images)} training / {len(val_set.images)} validation images, "
            f"{train_set.num_classes - 1} classes, {cfg.epochs} epochs"
            + (f", {dist.world} processes" if dist.world > 1 else "")
        )
    else:
        state = restore_train_state(run_dir.last, model, optimizer, ckpt, ema)
        if dist.main:
            run_files.truncate_metrics(run_dir, state.step)
        log(f"resumed {run_dir} at iteration {state.step} (epoch {state.epoch}, batch "
            f"{state.epoch_step})")  # fmt: skip
    session = Session(
        cfg=cfg,  # type: ignore[arg-type]  (the loop reads the fields both configs have)
        dist=dist,
        run_dir=run_dir,
        log=log,
        metrics=metrics,
        device=device,
        data=DetectionData(train_set, val_set, stream),
        total=len(stream) * cfg.epochs,
        steps_per_epoch=len(stream),
        trainable=trainee,
        step=DetectionStep(trainee, device, bf16, cfg.seed, dist),  # type: ignore[arg-type]
        bf16=bf16,
        warmup=False,
        state=state,
        meta=detector_record(cfg, train_set, val_set, None, model),
    )
    session.hooks = _detection_hooks(session, cfg)
    return session


def _detection_hooks(session: Session, cfg: DetectTrainConfig) -> TaskHooks:
    """Detection in the one loop: the warm-up and step schedule, COCO mAP on the validation
    folder with each loss's mean per batch, no best checkpoint (the last is the result), the
    weights with their detection record."""
    data: DetectionData = session.data
    model = session.trainable.raw_model

    ema = session.trainable.ema

    dist = session.dist

    def evaluate(forward: Any, state: RunState, lr: float) -> dict[str, Any]:
        losses = state.take_part_means()
        if not dist.main:  # rank 0 scores the validation folder; every rank gets its row
            return dist.share(None)
        scores, _ = evaluate_detector(forward, data.val)
        averaged = {}
        if ema is not None:  # the averaged weights, scored beside the raw ones
            ema_scores, _ = evaluate_detector(ema.module, data.val)
            averaged = {"ema_map": ema_scores.map, "ema_map_50": ema_scores.map_50}
        model.train()
        return dist.share({"epoch": state.epoch + 1, "step": state.step, **losses,
                           **scores.to_dict(), **averaged})  # fmt: skip

    def message(row: dict[str, Any]) -> str:
        loss = sum(v for k, v in row.items() if k.startswith("loss_"))
        return (
            f"epoch {row['epoch']}/{cfg.epochs}: loss {loss:.3f}, val mAP {row['map']:.3f}, "
            f"mAP@.5 {row['map_50']:.3f}"
        ) + (f" (EMA {row['ema_map']:.3f})" if "ema_map" in row else "")

    def finish(state: RunState, row: dict[str, Any] | None, wall: float) -> TrainResult:
        if not report.params_finite(model):
            raise TrainingDiverged("final weights are not finite; not saving model.safetensors")
        if dist.main:  # rank 0 alone writes the run's files
            last = session.run_dir.read_metrics()[-1]
            final = model
            if ema is not None and cfg.ema_final:  # the final weights are the average
                final = ema.module
                last = {**last, "map": last["ema_map"], "map_50": last["ema_map_50"]}
            record = detector_record(cfg, data.train, data.val, last, final)
            save_weights(final, session.run_dir.weights, record)
            summary = {**last, "seconds": wall, "train_time": state.elapsed}
            atomic_write_json(session.run_dir.summary, summary)
            session.log(f"done: val mAP {last['map']:.3f} (mAP@.5 {last['map_50']:.3f})")
        return TrainResult(
            run_dir=Path(session.run_dir),
            final_val_err=None,
            best_val_err=None,
            final_train_err=math.nan,
            iters=state.step,
            wall_time=wall,
            images_per_sec=state.step * cfg.batch_size / state.elapsed if state.elapsed else 0.0,
        )

    def lr_at(state: RunState) -> float:
        return detector_lr(cfg, state.step, state.epoch)

    return TaskHooks(cfg.model, lr_at, evaluate, lambda row, state: False, message, finish)
