"""What a training run carries from step to step, and the checkpoint that holds all of it.

A checkpoint (``last.ckpt``, ``best.ckpt``) is one atomic, checksummed file (see
:mod:`resnets.io`) holding ``model``, ``optimizer``, ``run_state`` (this module's
:class:`RunState`), ``torch_rng``, ``config`` and ``meta``: everything a resumed run needs to
continue bit-identically on the CPU, since batches are a pure function of (seed, epoch, step).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError, TrainingDiverged
from ..models.weights import WeightsMeta, load_state_dict_checked
from ..rundir import RunDir
from .config import TrainConfig
from .run_files import RunLog


@dataclass
class RunState:
    """Everything that changes during training besides model and optimizer tensors."""

    step: int = 0  # iterations done
    epoch: int = 0
    epoch_step: int = 0  # next batch within the epoch
    warmup_done: bool = False
    warmup_err_sum: float = 0.0  # wrong predictions in the current warm-up window
    warmup_n: int = 0  # images in the current warm-up window
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
    last_eval: dict[str, Any] | None = None  # the latest metrics line (the final one at the end)
    # a task whose step returns several losses (detection): each one's sum over the batches
    # since the last evaluation, and those batches, so a resumed run reports the same means
    loss_parts: dict[str, float] = dataclasses.field(default_factory=dict)
    loss_parts_batches: int = 0

    def add_interval(
        self, loss_sum: float, err_sum: float, n: int, seconds: float, wait: float
    ) -> None:
        """Fold the sums of the steps since the last host sync into the interval."""
        self.interval_loss += loss_sum
        self.interval_err += err_sum
        self.interval_n += n
        self.interval_time += seconds
        self.interval_wait += wait
        self.elapsed += seconds

    def add_parts(self, parts: dict[str, list[float]]) -> None:
        """Fold each loss's values of the steps since the last host sync into ``loss_parts``,
        one step after another (so the sums do not depend on where the syncs fell)."""
        for name, values in parts.items():
            total = self.loss_parts.get(name, 0.0)
            for value in values:
                total += value
            self.loss_parts[name] = total
        self.loss_parts_batches += max((len(v) for v in parts.values()), default=0)

    def take_part_means(self) -> dict[str, float]:
        """Each loss's mean per batch since the last evaluation; the sums start again."""
        batches = max(self.loss_parts_batches, 1)
        means = {name: total / batches for name, total in self.loss_parts.items()}
        self.loss_parts, self.loss_parts_batches = {}, 0
        return means

    def reset_interval(self) -> None:
        self.interval_loss = self.interval_err = 0.0
        self.interval_n = 0
        self.interval_time = self.interval_wait = 0.0


def save_train_state(
    path: Path,
    raw_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    st: RunState,
    config: dict[str, Any],
    meta: WeightsMeta,
    ema: nn.Module | None = None,
) -> None:
    """Write a checkpoint; an OS error (full disk, I/O) leaves the previous one intact and is
    reported as a :class:`CheckpointError` that says how to go on."""
    state = {
        "model": raw_model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "run_state": dataclasses.asdict(st),
        "torch_rng": torch.get_rng_state(),
        "config": config,
        "meta": meta.to_dict(),
        "ema": ema.state_dict() if ema is not None else None,
    }
    try:
        save_checkpoint(path, state)
    except OSError as e:
        raise CheckpointError(
            f"could not write {path} ({e.strerror or e}); the previous checkpoint is intact: "
            f"free space, then resume with --resume {path.parent}"
        ) from None


def restore_train_state(
    path: Path,
    raw_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict | None = None,
    ema: nn.Module | None = None,
) -> RunState:
    """Load a checkpoint (or the already-read ``state``) into the model and optimizer, restore
    the global RNG and return the run state."""
    state = load_checkpoint(path) if state is None else state
    try:
        load_state_dict_checked(raw_model, state["model"], str(path))
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            if state.get("ema") is None:
                raise CheckpointError(f"{path}: holds no weight average (ema) to resume")
            ema.load_state_dict(state["ema"])
        st = RunState(**state["run_state"])
        torch.set_rng_state(state["torch_rng"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a training checkpoint of this run ({e})") from None
    return st


def roll_back(
    cfg: TrainConfig,
    st: RunState,
    run_dir: Path,
    raw_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_sum: float,
    lr: float,
    log: RunLog,
    ema: nn.Module | None = None,
) -> RunState:
    """After a non-finite loss: the last checkpoint's state with lr halved, when
    ``on_nonfinite=rollback`` allows another roll-back; otherwise TrainingDiverged."""
    last = RunDir(run_dir).last
    if cfg.on_nonfinite != "rollback" or st.rollbacks >= cfg.max_rollbacks or not last.is_file():
        raise TrainingDiverged(
            f"loss became {loss_sum} before iteration {st.step} (lr {lr:g}); stopped. Lower --lr, "
            f"or set on_nonfinite=rollback. Last good checkpoint: {last}"
        )
    rb, scale, at = st.rollbacks + 1, st.lr_scale * 0.5, st.step
    new = restore_train_state(last, raw_model, optimizer, load_checkpoint(last), ema)
    new.rollbacks, new.lr_scale = rb, scale
    log(
        f"non-finite loss near iteration {at}: rolled back to iteration {new.step}, "
        f"lr x{scale:g} (roll-back {rb})"
    )
    return new
