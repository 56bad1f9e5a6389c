"""Everything the training loop needs before its first step: the run directory (new or
resumed), the data with its split, normalisation and batch stream, and the weights metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..data import AugmentSpec, BatchStream, channel_stats, load_dataset, seed_for
from ..data.augment import to_float_nchw
from ..data.imageset import ImageSet
from ..data.load import spec_paths
from ..data.select import select_samples
from ..errors import CheckpointError, ConfigError, WeightsError
from ..models import count_macs, count_params, create_model, get_spec
from ..models.weights import WeightsMeta
from ..rundir import RunDir, RunStatus
from ..runtime import Dist, use_bf16
from .config import TrainConfig, config_from_dict
from .run_files import RunLog, default_run_dir, write_run_config
from .schedule import warmup_enabled


def open_run(
    cfg: TrainConfig, run_dir: RunDir | None, resume: bool | str, dist: Dist
) -> tuple[RunDir, TrainConfig, dict[str, Any] | None]:
    """The claimed run directory and the config to train with, plus the checkpoint when
    resuming (``resume``: True, False, or "auto": resume an interrupted run, else start one).

    A resumed run keeps its own config except where to run (device, CPU threads when given)
    and how many data threads. Under torchrun, rank 0 claims the folder and alone writes
    files; all ranks read.
    """
    if run_dir is None:  # (rank 0's name: the time in it may differ between ranks)
        run_dir = RunDir(dist.share(default_run_dir(cfg.model, cfg.data) if dist.main else None))
    if resume == "auto":  # rank 0 decides, so every rank takes the same way
        resume = dist.share(run_dir.status is RunStatus.INTERRUPTED if dist.main else None)
    # one process per run: a second --resume, or a second --out, is refused
    claim_on_rank_0(dist, run_dir, resume, reading=spec_paths(cfg.data))
    if not resume:
        return run_dir, cfg, None
    try:
        ckpt = load_checkpoint(run_dir.last)
        saved = ckpt.get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"{run_dir.last}: holds no training config")
    except BaseException:
        run_dir.release()  # claimed above: a checkpoint that cannot be read gives it back
        raise
    moved = {"device": cfg.device, "workers": cfg.workers, "log_every": cfg.log_every}
    if cfg.threads:  # --threads N moves the run to N CPU threads; 0 (unset) keeps its count
        moved["threads"] = cfg.threads
    return run_dir, config_from_dict(dict(saved, **moved)), ckpt


def claim_on_rank_0(dist: Dist, run_dir: RunDir, resume: bool, reading: Any) -> None:
    """Rank 0 claims ``run_dir`` (resumed, or created where it reads nothing in ``reading``)
    and alone writes it; every rank stops with rank 0's one-line error, for either task."""
    failed: Any = None
    if dist.main:
        try:
            run_dir.open_for_resume() if resume else run_dir.create(reading)
        except (ConfigError, CheckpointError) as e:
            failed = e
    failed = dist.share(failed)
    if isinstance(failed, Exception):
        raise failed


@dataclass
class TrainData:
    """The decoded data, its split, the normalisation and the training batch stream."""

    data: ImageSet
    classes: list[str]  # the classes trained on (all of the data's, or cfg.classes)
    images: Any  # uint8 NHWC: a tensor in memory (on the GPU there), or a lazy streamed set
    labels: torch.Tensor
    train_idx: np.ndarray
    val_idx: np.ndarray
    mean: list[float]
    std: list[float]
    stream: BatchStream
    streamed: bool

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_train_data(
    cfg: TrainConfig,
    dist: Dist,
    device: torch.device,
    progress: bool,
    log: RunLog,
    norm: tuple[list[float], list[float]] | None = None,
) -> TrainData:
    """Decode once (cached), hold out a stratified validation split, and compute the
    normalisation from the training split only (paper section 4.2: per-pixel mean
    subtraction; we use per-channel mean and std), unless ``norm`` fixes it (the weights a
    transfer starts from were trained with theirs; a resumed run keeps its own)."""
    if not dist.main:
        dist.barrier()  # rank 0 builds the decoded cache first
    data = load_dataset(
        cfg.data,
        "train",
        image_size=cfg.image_size,
        skip_bad=cfg.skip_bad,
        progress=progress and dist.main,
        mode=cfg.data_mode,
        workers=cfg.decode_workers or None,
    )
    streamed = data.streamed
    if dist.main:
        dist.barrier()
    if data.skipped:
        log(f"skipped {len(data.skipped)} unreadable files:\n  " + "\n  ".join(data.skipped))
    sel = select_samples(
        data.labels,
        data.classes,
        val_split=cfg.val_split,
        seed=cfg.held_out_seed,
        classes=cfg.classes,
        per_class=cfg.per_class,
    )
    train_idx, val_idx = sel.train_idx, sel.val_idx
    stats_idx = train_idx
    if streamed and len(train_idx) > 10000:
        # decoding a whole streamed training set for two numbers is too dear: 10,000 samples
        g = torch.Generator().manual_seed(seed_for(cfg.seed, 0x57A7))
        stats_idx = train_idx[torch.randperm(len(train_idx), generator=g)[:10000].numpy()]
    if norm is not None:
        mean, std = list(norm[0]), list(norm[1])
        if len(mean) != data.channels:
            raise WeightsError(
                f"{cfg.init or 'the run'}: weights for {len(mean)}-channel images, the data has "
                f"{data.channels}"
            )
    else:
        mean, std = channel_stats(data.images, stats_idx)
    images = data.images
    if streamed:
        log(
            f"streaming {len(data)} images from {cfg.data}: decoded per batch at "
            f"{data.image_size}px by {images.processes} processes ({images.decoder} for JPEG)"
        )
    elif len(data) * images[0].size <= 4 << 30:  # small enough: hold decoded data in memory
        images = torch.from_numpy(np.array(images))  # a writable in-memory copy of the cache
        if device.type == "cuda":
            images = images.to(device)  # GPU-resident uint8 data; augmentation runs there too
    labels = torch.from_numpy(sel.labels).to(device if device.type == "cuda" else "cpu")
    stream = BatchStream(
        images,
        labels,
        train_idx,
        cfg.batch_size,
        cfg.seed,
        mean,
        std,
        AugmentSpec(cfg.augment, cfg.pad, cfg.crop_size),
        device,
        drop_last=True,
        # streamed data: threads overlap the decoding processes with the training step
        workers=max(cfg.workers, 2 if streamed else 0) if device.type == "cpu" or streamed else 0,
        shard=(dist.rank, dist.world),
    )
    return TrainData(
        data, sel.classes, images, labels, train_idx, val_idx, mean, std, stream, streamed
    )


def init_from_data(raw_model: nn.Module, td: TrainData, seed: int, device: torch.device) -> None:
    """Data-dependent initialisation (the whitening stem of fast_resnet8) from up to 5,000
    training images chosen by the seed; a resumed run restores it from the checkpoint."""
    if not hasattr(raw_model, "init_from_data"):
        return
    g = torch.Generator().manual_seed(seed_for(seed, 0x1D17))
    pick = td.train_idx[torch.randperm(len(td.train_idx), generator=g)[:5000].numpy()]
    if isinstance(td.images, torch.Tensor):
        sample = td.images[torch.as_tensor(pick, device=td.images.device)]
    else:
        sample = torch.from_numpy(np.asarray(td.images[np.sort(pick)]))
    raw_model.init_from_data(
        to_float_nchw(sample, torch.tensor(td.mean), torch.tensor(td.std)).to(device)
    )


def weights_meta(
    cfg: TrainConfig, td: TrainData, raw_model: nn.Module, model_opts: dict[str, Any], macs: Any
) -> WeightsMeta:
    """What ``model.safetensors`` and the checkpoints carry to rebuild and use the model: the
    typed record the trainer carries from here to the final weights."""
    return WeightsMeta(
        model=get_spec(cfg.model).name,
        model_kwargs=model_opts,
        classes=list(td.classes),
        mean=list(td.mean),
        std=list(td.std),
        image_size=td.data.image_size,
        eval_size=cfg.eval_size or (cfg.crop_size or 0),
        pad=cfg.pad if cfg.augment in ("cifar", "crop") else 0,
        tta=cfg.tta,
        data=cfg.data,
        data_fingerprint=td.data.fingerprint,
        split={
            "val_split": cfg.val_split,
            "seed": cfg.held_out_seed,  # the split's own seed (a scorer recomputes it from this)
            "classes": cfg.classes,
            "per_class": cfg.per_class,
            "n_train": len(td.train_idx),
            "n_val": len(td.val_idx),
        },
        params=count_params(raw_model),
        macs=macs,
    )


def count_model_macs(cfg: TrainConfig, model_opts: dict[str, Any], td: TrainData) -> int:
    """Multiply-accumulates of one image at the training size (a fresh model: the counter
    must not touch the trained one)."""
    size = cfg.crop_size or td.data.image_size
    return count_macs(create_model(cfg.model, **model_opts), (1, td.data.channels, size, size))


def record_start(
    run_dir: Path,
    cfg: TrainConfig,
    command: str | None,
    meta: WeightsMeta,
    train_data: TrainData,
    trainable: Any,
    device: torch.device,
    total: int,
    dist: Dist,
) -> str:
    """Write a new run's config.json (on the main process) with what the config resolved to
    on this machine; returns the log line that opens the run."""
    steps_per_epoch = len(train_data.stream)
    bf16, warmup = use_bf16(cfg.precision, device), warmup_enabled(cfg)
    if dist.main:
        resolved = {
            "device": str(device),
            "bf16": bf16,
            "compile": trainable.compiled,
            "steps_per_epoch": steps_per_epoch,
            "total_iters": total,
            "warmup": warmup,
            "num_classes": train_data.num_classes,
            "in_chans": train_data.data.channels,
            "train_size": len(train_data.train_idx),
            "val_size": len(train_data.val_idx),
            "mean": train_data.mean,
            "std": train_data.std,
        }
        write_run_config(run_dir, cfg.to_dict(), command, resolved, meta.to_dict())
    return (
        f"run {run_dir}: {cfg.model} ({meta.params:,} params) on {cfg.data} "
        f"[{len(train_data.train_idx)} train / {len(train_data.val_idx)} val, "
        f"{train_data.num_classes} classes], {total} iterations ({steps_per_epoch}/epoch), "
        f"{device}, {'bf16' if bf16 else 'fp32'}{', compiled' if trainable.compiled else ''}"
    )


def check_resumed_data(meta: WeightsMeta, train_data: TrainData, run_dir: Path) -> None:
    """A resumed run continues on the images it started on: a data folder whose files
    changed since (added, removed, edited) would silently change its split and its result."""
    recorded = meta.data_fingerprint
    if recorded and not train_data.data.is_data(recorded):
        raise ConfigError(
            f"--resume {run_dir}: the data {meta.data or ''!r} changed since this run "
            "started (its fingerprint differs); restore it, or start a new run"
        )
