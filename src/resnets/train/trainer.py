"""The training loop, in execution order.

``train(cfg, out=...)`` runs one training job and leaves a run directory::

    RUN_DIR/config.json       the resolved config (+ command, versions, data split)
    RUN_DIR/metrics.jsonl     one JSON line per evaluation
    RUN_DIR/last.ckpt         everything needed to resume (atomic, SHA-256 checked)
    RUN_DIR/best.ckpt         the best weights by validation error
    RUN_DIR/model.safetensors the final weights with metadata (classes, normalisation, ...)
    RUN_DIR/curves.png        training (thin dashed) and validation (bold) error vs iterations
    RUN_DIR/train.log         the log

Resuming (``train(cfg, resume=RUN_DIR)``) restores the model, optimizer, schedule, warm-up and
plateau state, metric accumulators and the position in the data order; batches and their
augmentation are a pure function of (seed, epoch, step), so on the CPU an interrupted and resumed
run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis.plots import plot_curves, read_metrics
from ..data import (
    AugmentSpec,
    BatchStream,
    channel_stats,
    load_dataset,
    seed_for,
    stratified_split,
)
from ..data.augment import to_float_nchw
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..eval.metrics import autocast_ctx, evaluate
from ..models import count_macs, count_params, create_model, get_spec
from ..models.weights import load_state_dict_checked, save_weights
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint was written. ``exit_code`` is 143 or 130."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        self.run_dir = run_dir
        super().__init__(
            f"interrupted by signal {signum}; resume with: resnets train --resume {run_dir}"
        )


class _StopAfter(Exception):
    pass


@dataclass
class RunState:
    """Everything that changes during training besides model and optimizer tensors."""

    step: int = 0  # iterations done
    epoch: int = 0
    epoch_step: int = 0  # next batch within the epoch
    warmup_done: bool = False
    warmup_err_sum: float = 0.0
    warmup_n: int = 0
    lr_scale: float = 1.0  # halved at each roll-back after a non-finite loss
    rollbacks: int = 0
    plateau_factor: float = 1.0
    plateau_best: float = math.inf
    plateau_bad: int = 0
    best_val_err: float = math.inf
    best_step: int = -1
    interval_loss: float = 0.0  # sums since the last evaluation
    interval_err: float = 0.0
    interval_n: int = 0
    interval_time: float = 0.0
    interval_wait: float = 0.0
    elapsed: float = 0.0  # training seconds, over all sessions of this run


# ------------------------------------------------------------------------------------------
# helpers


@dataclass
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def init_distributed(device: str) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist = torch.distributed
    use_cuda = device != "cpu" and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
        created = True
    return Dist(dist.get_rank(), dist.get_world_size(), local, created)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available on this machine")
    return dev


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def total_iters(cfg: TrainConfig, steps_per_epoch: int) -> int:
    return cfg.iters if cfg.iters > 0 else max(1, math.ceil(cfg.epochs * steps_per_epoch))


def warmup_enabled(cfg: TrainConfig) -> bool:
    if cfg.warmup == "auto":
        # paper section 4.2: only ResNet-110 (and 1202) need lr 0.01 to start converging
        spec = get_spec(cfg.model)
        return spec.family == "cifar" and spec.depth >= 110
    return cfg.warmup == "on"


def lr_at(cfg: TrainConfig, step: int, total: int, st: RunState, warmup: bool) -> float:
    """The learning rate of iteration ``step`` (0-based)."""
    if warmup and not st.warmup_done:
        return cfg.warmup_lr * st.lr_scale
    lr = cfg.lr * st.lr_scale
    if cfg.ramp_iters and step < cfg.ramp_iters:
        lr *= (step + 1) / cfg.ramp_iters
    if cfg.schedule == "step":
        marks = [m if m >= 1 else m * total for m in cfg.milestones]
        lr *= cfg.lr_decay ** sum(step >= m for m in marks)
    elif cfg.schedule == "cosine":
        lr *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    elif cfg.schedule == "linear":
        lr *= max(0.0, 1 - step / total)
    elif cfg.schedule == "plateau":
        lr *= st.plateau_factor
    return lr


def params_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def make_run_dir(out: Path) -> Path:
    """Claim a new run directory; never reuse one that holds files (use --resume for that)."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out}: exists and is not a folder")
        if any(out.iterdir()):
            raise ConfigError(
                f"--out {out}: already holds a run; resume it with --resume {out} or pick another --out"
            )
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            out.mkdir()  # atomic: of two runs started into one folder, one fails here
        except FileExistsError:
            raise ConfigError(f"--out {out}: created by another process just now") from None
    # a lock file, created exclusively, so two processes never share a run directory
    try:
        fd = os.open(out / ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    except FileExistsError:
        raise ConfigError(f"--out {out}: in use by another process") from None
    return out


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = Path(cfg.data.split(":")[0]).name or "data"
    base = Path("runs") / f"{cfg.model}-{data}-{stamp}"
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    return p


class _Log:
    def __init__(self, path: Path, echo: bool, enabled: bool = True) -> None:
        self.path, self.echo, self.enabled = path, echo, enabled

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a") as f:
            f.write(line + "\n")
        if self.echo:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)


@dataclass
class TrainResult:
    run_dir: Path
    final_val_err: float | None
    best_val_err: float | None
    final_train_err: float
    iters: int
    wall_time: float
    images_per_sec: float
    extras: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# the job


def train(
    cfg: TrainConfig,
    out: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    echo: bool = True,
    stop_after: int | None = None,
    command: str | None = None,
    on_backward: Callable[[torch.nn.Module, int], None] | None = None,
) -> TrainResult:
    """Train ``cfg`` into a new run directory ``out``, or continue the run in ``resume``.

    ``stop_after`` (iterations) ends this session early with a checkpoint, as an interruption
    would (used by tests and by time-sliced jobs); the run can then be resumed.
    ``on_backward(model, step)`` is called after each backward pass, before the SGD step, with
    the gradients in place (used by ``resnets analyze gradients``).
    """
    t_start = time.perf_counter()

    # 1. The run directory: a new one, or the one to resume (its config wins over ``cfg``,
    #    except where to run and how many data threads).
    #    Under torchrun, rank 0 claims the folder and alone writes files; all ranks read.
    dist = init_distributed(cfg.device)
    if resume is not None:
        run_dir = Path(resume)
        ckpt_path = run_dir / "last.ckpt"
        if not ckpt_path.is_file():
            raise CheckpointError(f"--resume {run_dir}: no last.ckpt there (nothing to resume)")
        ckpt = load_checkpoint(ckpt_path)
        saved = dict(ckpt["config"])
        saved.update(device=cfg.device, workers=cfg.workers, log_every=cfg.log_every)
        cfg = TrainConfig(**saved).validate()
    else:
        ckpt = None
        claimed: Any = None
        if dist.main:
            try:
                claimed = make_run_dir(Path(out) if out is not None else default_run_dir(cfg))
            except ConfigError as e:
                claimed = e
        claimed = dist.share(claimed)
        if isinstance(claimed, Exception):
            raise claimed
        run_dir = Path(claimed)
    log = _Log(run_dir / "train.log", echo and dist.main, enabled=dist.main)

    # 2. Data: decode once (cached), hold out a stratified validation split, and compute the
    #    normalisation from the training split only (paper section 4.2: per-pixel mean
    #    subtraction; we use per-channel mean and std).
    device = pick_device(cfg.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
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
    streamed = bool(getattr(data.images, "lazy", False))
    if dist.main:
        dist.barrier()
    if data.skipped:
        log(f"skipped {len(data.skipped)} unreadable files:\n  " + "\n  ".join(data.skipped))
    train_idx, val_idx = stratified_split(data.labels, cfg.val_split, cfg.seed)
    if len(train_idx) == 0:
        raise ConfigError("no training samples left after the validation split")
    stats_idx = train_idx
    if streamed and len(train_idx) > 10000:
        # decoding a whole streamed training set for two numbers is too dear: 10,000 samples
        g = torch.Generator().manual_seed(seed_for(cfg.seed, 0x57A7))
        stats_idx = train_idx[torch.randperm(len(train_idx), generator=g)[:10000].numpy()]
    mean, std = channel_stats(data.images, stats_idx)
    num_classes = len(data.classes)
    images = data.images
    if streamed:
        log(
            f"streaming {len(data)} images from {cfg.data}: decoded per batch at "
            f"{data.image_size}px by {images.processes} processes "
            f"({images.decoder} for JPEG)"
        )
    elif len(data) * images[0].size <= 4 << 30:  # small enough: hold decoded data in memory
        images = torch.from_numpy(np.array(images))  # a writable in-memory copy of the cache
        if device.type == "cuda":
            images = images.to(device)  # GPU-resident uint8 data; augmentation runs there too
    labels = torch.from_numpy(data.labels).to(device if device.type == "cuda" else "cpu")
    bf16 = use_bf16(cfg.precision, device)
    aug = AugmentSpec(cfg.augment, cfg.pad, cfg.crop_size)
    stream = BatchStream(
        images,
        labels,
        train_idx,
        cfg.batch_size,
        cfg.seed,
        mean,
        std,
        aug,
        device,
        drop_last=True,
        # streamed data: threads overlap the decoding processes with the training step
        workers=max(cfg.workers, 2 if streamed else 0) if device.type == "cpu" or streamed else 0,
        shard=(dist.rank, dist.world),
    )
    steps_per_epoch = len(stream)
    total = total_iters(cfg, steps_per_epoch)
    if cfg.ramp_epochs and not cfg.ramp_iters:
        cfg = dataclasses.replace(cfg, ramp_iters=max(1, round(cfg.ramp_epochs * steps_per_epoch)))

    # 3. Model and optimizer: SGD with momentum and weight decay on every parameter (section 3.4).
    model_kwargs: dict[str, Any] = dict(
        num_classes=num_classes,
        in_chans=data.channels,
        zero_init_residual=cfg.zero_init_residual,
        stride_in_1x1=cfg.stride_in_1x1,
    )
    if cfg.shortcut:
        model_kwargs["shortcut"] = cfg.shortcut
    if not cfg.batchnorm:
        model_kwargs["batchnorm"] = False
    torch.manual_seed(cfg.seed)  # the only use of global RNG: weight initialisation
    model = create_model(cfg.model, **model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # one fused kernel for the whole SGD update where it pays (CUDA: fewer launches per step)
    fused = cfg.fused_optimizer == "on" or (cfg.fused_optimizer == "auto" and device.type == "cuda")
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        fused=fused or None,
    )
    if cfg.sync_bn and dist.world > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # reduce-overhead captures CUDA graphs: one launch per step instead of one per kernel
    core = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    forward = core
    if dist.world > 1:
        # gradients are averaged over ranks: with equal shards, the mean of the shards' mean
        # losses is the global batch's mean loss, so the step equals the one-process step
        forward = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if device.type == "cuda" else None
        )
    warmup = warmup_enabled(cfg)
    st = RunState()
    if ckpt is None and hasattr(model, "init_from_data"):
        # data-dependent initialisation (the whitening stem of fast_resnet8) from up to 5,000
        # training images chosen by the seed; a resumed run restores it from the checkpoint
        g = torch.Generator().manual_seed(seed_for(cfg.seed, 0x1D17))
        pick = train_idx[torch.randperm(len(train_idx), generator=g)[:5000].numpy()]
        if isinstance(images, torch.Tensor):
            sample = images[torch.as_tensor(pick, device=images.device)]
        else:
            sample = torch.from_numpy(np.asarray(images[np.sort(pick)]))
        model.init_from_data(
            to_float_nchw(sample, torch.tensor(mean), torch.tensor(std)).to(device)
        )

    # 4. Restore everything from the checkpoint when resuming.
    def restore(state: dict[str, Any]) -> None:
        nonlocal st
        load_state_dict_checked(model, state["model"], str(run_dir / "last.ckpt"))
        optimizer.load_state_dict(state["optimizer"])
        st = RunState(**state["run_state"])
        torch.set_rng_state(state["torch_rng"])

    if ckpt is not None:
        restore(ckpt)
        if dist.main:
            _truncate_metrics(run_dir / "metrics.jsonl", st.step)
        log(f"resumed {run_dir} at iteration {st.step} (epoch {st.epoch}, batch {st.epoch_step})")

    n_params = count_params(model)
    size = cfg.crop_size or data.image_size
    meta = {
        "model": get_spec(cfg.model).name,
        "model_kwargs": model_kwargs,
        "classes": data.classes,
        "mean": mean,
        "std": std,
        "image_size": data.image_size,
        "eval_size": cfg.eval_size or (cfg.crop_size or 0),
        "pad": cfg.pad if cfg.augment in ("cifar", "crop") else 0,
        "tta": cfg.tta,
        "data": cfg.data,
        "data_fingerprint": data.fingerprint,
        "split": {
            "val_split": cfg.val_split,
            "seed": cfg.seed,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
        },
        "params": n_params,
    }
    if ckpt is None:
        meta["macs"] = count_macs(
            create_model(cfg.model, **model_kwargs), (1, data.channels, size, size)
        )
        resolved = {
            "config": cfg.to_dict(),
            "command": command or " ".join(sys.argv),
            "resolved": {
                "device": str(device),
                "bf16": bf16,
                "steps_per_epoch": steps_per_epoch,
                "total_iters": total,
                "warmup": warmup,
                "num_classes": num_classes,
                "in_chans": data.channels,
                "train_size": len(train_idx),
                "val_size": len(val_idx),
                "mean": mean,
                "std": std,
            },
            "meta": meta,
            "versions": _versions(),
        }
        if dist.main:
            (run_dir / "config.json").write_text(json.dumps(resolved, indent=2))
        dist.barrier()
        log(
            f"run {run_dir}: {cfg.model} ({n_params:,} params) on {cfg.data} "
            f"[{len(train_idx)} train / {len(val_idx)} val, {num_classes} classes], "
            f"{total} iterations ({steps_per_epoch}/epoch), {device}, {'bf16' if bf16 else 'fp32'}"
        )
    else:
        meta["macs"] = json.loads((run_dir / "config.json").read_text())["meta"].get("macs")

    # 5. Checkpointing, and the signals that ask for one.
    def checkpoint(name: str = "last.ckpt") -> None:
        if not dist.main:
            return
        try:
            _save(name)
        except OSError as e:  # full disk, I/O error: the previous checkpoint is still intact
            raise CheckpointError(
                f"could not write {run_dir / name} ({e.strerror or e}); the previous checkpoint is "
                f"intact: free space, then resume with --resume {run_dir}"
            ) from None

    def _save(name: str) -> None:
        save_checkpoint(
            run_dir / name,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "run_state": dataclasses.asdict(st),
                "torch_rng": torch.get_rng_state(),
                "config": cfg.to_dict(),
                "meta": meta,
            },
        )

    stop_signal: list[int] = []

    def on_signal(signum, _frame):
        stop_signal.append(signum)

    old_handlers = {}
    if _in_main_thread():
        for s in (signal.SIGTERM, signal.SIGINT):
            old_handlers[s] = signal.signal(s, on_signal)

    bar = None
    if progress and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=st.step, desc=cfg.model, unit="it", dynamic_ncols=True)

    def run_evaluation() -> dict[str, Any]:
        """Validation pass, one metrics line, best checkpoint; resets the interval sums."""
        val = None
        if len(val_idx):
            val = evaluate(
                core,
                images,
                labels,
                val_idx,
                mean=mean,
                std=std,
                num_classes=num_classes,
                batch_size=max(256, cfg.batch_size),
                device=device,
                bf16=bf16,
                eval_size=cfg.eval_size or cfg.crop_size,
                tta=cfg.tta,
            )
        row = {
            "epoch": round(st.step / steps_per_epoch, 4),
            "step": st.step,
            "train_loss": st.interval_loss / max(st.interval_n, 1),
            "train_err": st.interval_err / max(st.interval_n, 1),
            "val_loss": val.loss if val else None,
            "val_err": val.err if val else None,
            "val_top5_err": (1 - val.top5) if val else None,
            "lr": lr_at(cfg, max(st.step - 1, 0), total, st, warmup),
            "images_per_sec": st.interval_n / max(st.interval_time, 1e-9),
            "data_wait": st.interval_wait / max(st.interval_time, 1e-9),
            "time": round(st.elapsed, 3),
        }
        if dist.main:
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        if val is not None:
            if cfg.schedule == "plateau":
                if val.err < st.plateau_best - 1e-4:
                    st.plateau_best, st.plateau_bad = val.err, 0
                else:
                    st.plateau_bad += 1
                    if st.plateau_bad >= cfg.plateau_patience:
                        st.plateau_factor *= cfg.lr_decay
                        st.plateau_bad = 0
                        log(f"validation error plateaued: lr x{cfg.lr_decay}")
            if math.isfinite(val.loss) and val.err < st.best_val_err and params_finite(model):
                st.best_val_err, st.best_step = val.err, st.step
                checkpoint("best.ckpt")
        st.interval_loss = st.interval_err = 0.0
        st.interval_n = 0
        st.interval_time = st.interval_wait = 0.0
        return row

    # 6. The loop. Per step: lr from the schedule, forward under autocast, backward, SGD step.
    #    Loss and error are summed on the device; the host reads them every ``log_every`` steps.
    model.train()
    eval_every = cfg.eval_every or steps_per_epoch
    ckpt_every = cfg.checkpoint_every or eval_every
    session_start_step = st.step
    row: dict[str, Any] | None = None
    try:
        while st.step < total:
            dev_loss = torch.zeros((), dtype=torch.float64, device=device)
            dev_err = torch.zeros((), dtype=torch.float64, device=device)
            win_err = torch.zeros((), dtype=torch.float64, device=device)
            n_since, t_sync = 0, time.perf_counter()
            wait = 0.0
            batches = stream.epoch(st.epoch, st.epoch_step)
            rolled_back = False
            while st.step < total:
                t0 = time.perf_counter()
                batch = next(batches, None)
                wait += time.perf_counter() - t0
                if batch is None:  # end of epoch
                    st.epoch, st.epoch_step = st.epoch + 1, 0
                    batches = stream.epoch(st.epoch, 0)
                    continue
                x, y = batch
                lr = lr_at(cfg, st.step, total, st, warmup)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                with autocast_ctx(device, bf16):
                    logits = forward(x)
                    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if on_backward is not None:
                    on_backward(model, st.step)
                optimizer.step()
                with torch.no_grad():
                    nb = y.shape[0]
                    wrong = (logits.argmax(1) != y).sum().double()
                    dev_loss += loss.detach().double() * nb
                    dev_err += wrong
                    win_err += wrong
                n_since += nb
                st.step += 1
                st.epoch_step += 1

                # paper 4.2: ResNet-110 trains at lr 0.01 "until the training error is below 80%
                # (about 400 iterations)", then goes back to 0.1. The check uses the mean error
                # of the last ``warmup_window`` iterations and is capped, so warm-up always ends.
                if warmup and not st.warmup_done:
                    st.warmup_n += nb
                    if st.step % cfg.warmup_window == 0 or st.step >= cfg.warmup_max_iters:
                        w = dist.all_sum(
                            torch.stack(
                                [
                                    win_err,
                                    torch.tensor(
                                        float(st.warmup_n), dtype=torch.float64, device=device
                                    ),
                                ]
                            )
                        )
                        st.warmup_err_sum, st.warmup_n = float(w[0]), int(w[1])
                        win_err.zero_()
                        mean_err = st.warmup_err_sum / max(st.warmup_n, 1)
                        st.warmup_n = 0
                        if mean_err < cfg.warmup_until_err or st.step >= cfg.warmup_max_iters:
                            st.warmup_done = True
                            log(
                                f"warm-up done at iteration {st.step} (training error {mean_err:.1%}); lr -> {cfg.lr}"
                            )

                do_eval = st.step % eval_every == 0 or st.step == total
                do_ckpt = (
                    do_eval
                    or st.step % ckpt_every == 0
                    or (bool(stop_signal) and dist.world == 1)
                    or (stop_after is not None and st.step - session_start_step >= stop_after)
                )
                if do_eval or do_ckpt or st.step % cfg.log_every == 0:
                    # host sync: fold the device sums (of every rank) into the run state. Under
                    # torchrun, a signal is acted on here, at a step all ranks agree on.
                    f64 = dict(dtype=torch.float64, device=device)
                    sums = torch.stack(
                        [
                            dev_loss,
                            dev_err,
                            torch.tensor(float(n_since), **f64),
                            torch.tensor(float(bool(stop_signal)), **f64),
                        ]
                    )
                    loss_sum, err_sum, n_since_f, stop_any = dist.all_sum(sums).tolist()
                    n_since = int(n_since_f)
                    if stop_any and not stop_signal:
                        stop_signal.append(signal.SIGTERM)
                    do_ckpt = do_ckpt or bool(stop_any)
                    now = time.perf_counter()
                    if not math.isfinite(loss_sum):
                        if (
                            cfg.on_nonfinite == "rollback"
                            and st.rollbacks < cfg.max_rollbacks
                            and (run_dir / "last.ckpt").is_file()
                        ):
                            rb = st.rollbacks + 1
                            restore(load_checkpoint(run_dir / "last.ckpt"))
                            st.rollbacks, st.lr_scale = rb, st.lr_scale * 0.5
                            log(
                                f"non-finite loss near iteration {st.step}: rolled back to the last checkpoint, lr x0.5 (roll-back {rb})"
                            )
                            rolled_back = True
                            break
                        raise TrainingDiverged(
                            f"loss became {loss_sum} before iteration {st.step} (lr {lr:g}); stopped. "
                            f"Lower --lr, or set on_nonfinite=rollback. Last good checkpoint: {run_dir / 'last.ckpt'}"
                        )
                    st.interval_loss += loss_sum
                    st.interval_err += err_sum
                    st.interval_n += n_since
                    st.interval_time += now - t_sync
                    st.interval_wait += wait
                    st.elapsed += now - t_sync
                    if bar is not None:
                        bar.update(st.step - bar.n)
                        bar.set_postfix(
                            loss=f"{loss_sum / max(n_since, 1):.3f}",
                            err=f"{err_sum / max(n_since, 1):.1%}",
                            lr=f"{lr:.3g}",
                            ips=f"{n_since / max(now - t_sync, 1e-9):.0f}",
                        )
                    dev_loss.zero_()
                    dev_err.zero_()
                    n_since, wait = 0, 0.0
                    if do_eval:
                        row = run_evaluation()
                        msg = f"iter {st.step}/{total} epoch {row['epoch']:.2f}: train err {row['train_err']:.2%}"
                        if row["val_err"] is not None:
                            msg += f", val err {row['val_err']:.2%}"
                        log(msg + f", lr {row['lr']:.3g}, {row['images_per_sec']:.0f} img/s")
                    if do_ckpt:
                        checkpoint()
                    t_sync = time.perf_counter()
                    if stop_signal:
                        raise TrainingInterrupted(stop_signal[0], run_dir)
                    if stop_after is not None and st.step - session_start_step >= stop_after:
                        raise _StopAfter
            if not rolled_back:
                break
    except TrainingInterrupted:
        dist.barrier()  # after rank 0's checkpoint; a rank leaving early aborts its peers' gloo
        if dist.initialized_here:
            torch.distributed.destroy_process_group()
        raise
    except _StopAfter:
        dist.barrier()  # every rank leaves together, after rank 0 has written the checkpoint
        if dist.initialized_here:
            torch.distributed.destroy_process_group()
        log(
            f"stopped after {stop_after} iterations at iteration {st.step}; resume with --resume {run_dir}"
        )
        return TrainResult(
            run_dir,
            None,
            None,
            float("nan"),
            st.step,
            time.perf_counter() - t_start,
            0.0,
            extras={"stopped": True},
        )
    finally:
        if bar is not None:
            bar.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)

    # 7. Final weights (with everything needed to use them), curves, summary.
    if not params_finite(model):
        raise TrainingDiverged("final weights are not finite; not saving model.safetensors")
    meta["final"] = {
        "val_err": row["val_err"] if row else None,
        "train_err": row["train_err"] if row else None,
        "iters": st.step,
    }
    if dist.main:
        save_weights(model, run_dir / "model.safetensors", meta)
        rows = read_metrics(run_dir / "metrics.jsonl")
        try:
            plot_curves(
                {cfg.model: rows}, run_dir / "curves.png", title=f"{cfg.model} on {cfg.data}"
            )
        except Exception as e:  # a plotting problem must not lose a finished run
            log(f"could not draw curves.png: {e}")
    wall = time.perf_counter() - t_start
    done_imgs = (st.step - session_start_step) * cfg.batch_size
    ips = done_imgs / max(st.elapsed, 1e-9) if st.elapsed else 0.0
    result = TrainResult(
        run_dir=run_dir,
        final_val_err=row["val_err"] if row else None,
        best_val_err=st.best_val_err if math.isfinite(st.best_val_err) else None,
        final_train_err=row["train_err"] if row else float("nan"),
        iters=st.step,
        wall_time=wall,
        images_per_sec=ips,
    )
    summary = dataclasses.asdict(result)
    summary["run_dir"] = str(run_dir)
    summary["train_time"] = st.elapsed
    summary["world_size"] = dist.world
    if dist.main:
        summary["time_to_accuracy"] = time_to_accuracy(read_metrics(run_dir / "metrics.jsonl"))
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        (run_dir / ".lock").unlink(missing_ok=True)
    dist.barrier()
    if dist.initialized_here:
        torch.distributed.destroy_process_group()
    log(
        f"done in {wall:.1f}s: final val err {_pct(result.final_val_err)}, best {_pct(result.best_val_err)}"
    )
    log(
        f"run directory: {run_dir}\n  weights: {run_dir / 'model.safetensors'}\n  curves:  {run_dir / 'curves.png'}\n  metrics: {run_dir / 'metrics.jsonl'}"
    )
    return result


def time_to_accuracy(
    rows: list[dict[str, Any]], targets: tuple[float, ...] = (0.8, 0.9, 0.93, 0.94)
) -> dict[str, dict[str, float] | None]:
    """For each validation-accuracy target, the first evaluation reaching it: its training time
    in seconds (evaluations excluded), iteration and epoch; None where never reached."""
    out: dict[str, dict[str, float] | None] = {}
    for t in targets:
        hit = next(
            (r for r in rows if r.get("val_err") is not None and 1 - r["val_err"] >= t - 1e-12),
            None,
        )
        out[f"{t:.2f}"] = (
            None
            if hit is None
            else {"seconds": hit["time"], "step": hit["step"], "epoch": hit["epoch"]}
        )
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics lines written after the checkpoint we resume from (they will be redone)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    from .checkpoint import atomic_write_bytes

    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _versions() -> dict[str, str]:
    import numpy
    import PIL

    from .. import __version__

    return {
        "resnets": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "threads": str(torch.get_num_threads()),
    }
