"""The learning rate of every iteration: the schedules, the paper's ResNet-110 warm-up, and the
plateau rule, with the state they keep (it lives in :class:`~resnets.train.state.RunState`)."""

from __future__ import annotations

import math

import torch

from ..models import get_spec
from .config import TrainConfig
from .state import RunState


def total_iters(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Iterations of the whole run: ``iters``, or ``epochs`` worth of steps."""
    return cfg.iters if cfg.iters > 0 else max(1, math.ceil(cfg.epochs * steps_per_epoch))


def resolve_ramp(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The linear ramp's length in iterations (``ramp_iters``, else ``ramp_epochs``)."""
    if cfg.ramp_iters or not cfg.ramp_epochs:
        return cfg.ramp_iters
    return max(1, round(cfg.ramp_epochs * steps_per_epoch))


def warmup_enabled(cfg: TrainConfig) -> bool:
    """Paper section 4.2: only ResNet-110 (and 1202) need lr 0.01 to start converging."""
    if cfg.warmup == "auto":
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


def set_lr(optimizer: torch.optim.Optimizer, lr: float, scales: list[float] | None = None) -> None:
    """Every parameter group's lr (times its scale, where groups have one)."""
    for i, g in enumerate(optimizer.param_groups):
        g["lr"] = lr * (scales[i] if scales else 1.0)


def warmup_due(cfg: TrainConfig, st: RunState, warmup: bool) -> bool:
    """Whether iteration ``st.step`` ends a warm-up window (the loop syncs there)."""
    return (
        warmup
        and not st.warmup_done
        and (st.step % cfg.warmup_window == 0 or st.step >= cfg.warmup_max_iters)
    )


def warmup_update(
    cfg: TrainConfig, st: RunState, warmup: bool, err_sum: float, n: int
) -> float | None:
    """Fold the training errors since the last host sync into the warm-up window; at the end
    of a window decide whether warm-up is over.

    Paper 4.2: ResNet-110 trains at lr 0.01 "until the training error is below 80% (about 400
    iterations)", then goes back to 0.1. The check uses the mean error of the last
    ``warmup_window`` iterations and is capped at ``warmup_max_iters``, so warm-up always
    ends. The window's sums live in the run state, so a resumed run decides as an
    uninterrupted one. Returns the window's error when warm-up ends here, else None.
    """
    if not warmup or st.warmup_done:
        return None
    st.warmup_err_sum += err_sum
    st.warmup_n += n
    if not warmup_due(cfg, st, warmup):
        return None
    mean_err = st.warmup_err_sum / max(st.warmup_n, 1)
    st.warmup_err_sum, st.warmup_n = 0.0, 0
    if mean_err < cfg.warmup_until_err or st.step >= cfg.warmup_max_iters:
        st.warmup_done = True
        return mean_err
    return None


def plateau_update(cfg: TrainConfig, st: RunState, val_err: float) -> bool:
    """After an evaluation: True when the validation error has stalled ``plateau_patience``
    times and the plateau schedule multiplies lr by ``lr_decay``."""
    if cfg.schedule != "plateau":
        return False
    if val_err < st.plateau_best - 1e-4:
        st.plateau_best, st.plateau_bad = val_err, 0
        return False
    st.plateau_bad += 1
    if st.plateau_bad >= cfg.plateau_patience:
        st.plateau_factor *= cfg.lr_decay
        st.plateau_bad = 0
        return True
    return False
