"""One training step, and the model and optimizer it runs on.

:func:`build_for_training` and :class:`TrainStep` are what ``resnets train`` runs and what
``resnets benchmark train`` times, so the benchmark measures the trainer's own step.
"""

from __future__ import annotations

import functools
import gc
import operator
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data.pipeline import IGNORE
from ..models import create_model
from ..runtime import Dist, autocast_ctx
from .config import TrainConfig
from .syncbn import convert_global_bn
from .transfer import apply_freeze, param_groups

# torch.compile costs tens of seconds up front; below this many iterations it does not pay back
COMPILE_MIN_ITERS = 5000


def model_options(cfg: TrainConfig, num_classes: int, in_chans: int) -> dict[str, Any]:
    """The builder options a config asks for: the one place they are spelled out."""
    opts: dict[str, Any] = dict(num_classes=num_classes, in_chans=in_chans)
    if cfg.zero_init_residual:
        opts["zero_init_residual"] = True
    if cfg.stride_in_1x1:
        opts["stride_in_1x1"] = True
    if cfg.shortcut:
        opts["shortcut"] = cfg.shortcut
    if not cfg.batchnorm:
        opts["batchnorm"] = False
    if cfg.base_width:
        opts["base_width"] = cfg.base_width
    if cfg.dropout:
        opts["dropout"] = cfg.dropout
    return opts


def compile_enabled(cfg: TrainConfig, total_iters: int, device: torch.device) -> bool:
    """``compile``: on, off, or auto = on for long jobs where a compiler is at hand (CPU
    compilation needs a C++ compiler), so short jobs never wait for it."""
    if cfg.compile != "auto":
        return cfg.compile == "on"
    if total_iters < COMPILE_MIN_ITERS:
        return False
    return device.type == "cuda" or shutil.which("g++") is not None


@dataclass
class Trainee:
    """The network of a training run under its three names: ``raw_model`` (the module whose
    state_dict is saved), ``forward`` (what the step calls: compiled and/or DDP-wrapped) and
    ``optimizer``."""

    raw_model: nn.Module
    forward: nn.Module | Callable[[Tensor], Tensor]
    optimizer: torch.optim.SGD
    compiled: bool
    lr_scales: list[float]  # of each parameter group (backbone, classifier)
    # the weights' exponential moving average (cfg.ema > 0), updated after every step
    ema: AveragedModel | None = None

    @property
    def local_forward(self) -> nn.Module | Callable[[Tensor], Tensor]:
        """``forward`` without the DDP wrapper: what evaluation calls on each rank."""
        f = self.forward
        return f.module if isinstance(f, nn.parallel.DistributedDataParallel) else f

    def update(
        self,
        losses: dict[str, Tensor],
        step: int = 0,
        on_backward: Callable[[nn.Module, int], None] | None = None,
    ) -> Tensor:
        """One SGD update from a step's dict of losses, whatever the task (classification's
        ``{"loss": cross-entropy}``, a detector's four, as torchvision's and Detectron2's
        models return them): their sum, backward (averaged over the ranks under DDP),
        ``on_backward(raw_model, step)`` on the gradients, the optimizer's step, the weights'
        average. Returns the summed loss."""
        total = functools.reduce(operator.add, losses.values())  # (one loss: itself, no op)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if on_backward is not None:
            on_backward(self.raw_model, step)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.raw_model)
        return total

    def release_ddp(self) -> None:
        """Drop the DDP wrapper (its reducer and logger) while the process group is still
        registered, so the group's last reference is released later by
        ``destroy_process_group``, whose binding lets go of the GIL. Freed after it, the
        reducer would run gloo's destructor with the GIL held, and that destructor joins worker
        threads that may be waiting for the GIL to free a tensor: a deadlock (PyTorch's class
        of bug, pytorch/pytorch#56297), seen once in about 25 two-process stops."""
        if isinstance(self.forward, nn.parallel.DistributedDataParallel):
            self.forward = self.forward.module
            gc.collect()  # autograd's last graph may hold the wrapper in a reference cycle


def build_for_training(
    cfg: TrainConfig,
    *,
    num_classes: int,
    in_chans: int,
    device: torch.device,
    total_iters: int,
    dist: Dist | None = None,
) -> Trainee:
    """Model and SGD optimizer as the config asks: SGD with momentum and weight decay on every
    parameter (paper section 3.4); weights initialised from the global seed ``cfg.seed``."""
    dist = dist or Dist()
    torch.manual_seed(cfg.seed)  # the only use of global RNG: weight initialisation
    raw_model = create_model(cfg.model, **model_options(cfg, num_classes, in_chans)).to(device)
    if cfg.channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last)
    # one fused kernel for the whole SGD update where it pays (CUDA: fewer launches per step)
    fused = cfg.fused_optimizer == "on" or (cfg.fused_optimizer == "auto" and device.type == "cuda")
    apply_freeze(raw_model, cfg)  # transfer learning: fixed layers, frozen BatchNorm
    groups, lr_scales = param_groups(raw_model, cfg)
    optimizer = torch.optim.SGD(
        groups,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        fused=fused or None,
    )
    if cfg.sync_bn and dist.world > 1:
        # BatchNorm statistics over the global batch: PyTorch's kernel on CUDA, ours elsewhere
        raw_model = (
            nn.SyncBatchNorm.convert_sync_batchnorm(raw_model)
            if device.type == "cuda"
            else convert_global_bn(raw_model)
        )
    compiled = compile_enabled(cfg, total_iters, device)
    # reduce-overhead captures CUDA graphs: one launch per step instead of one per kernel
    forward: Any = torch.compile(raw_model, mode=cfg.compile_mode) if compiled else raw_model
    if dist.world > 1:
        # gradients are averaged over ranks: with equal shards, the mean of the shards' mean
        # losses is the global batch's mean loss, so the step equals the one-process step
        forward = nn.parallel.DistributedDataParallel(
            forward, device_ids=[device.index] if device.type == "cuda" else None
        )
    ema = None
    if cfg.ema:  # parameters and BatchNorm buffers alike (use_buffers): as timm's ModelEma
        ema = AveragedModel(raw_model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    return Trainee(raw_model, forward, optimizer, compiled, lr_scales, ema)


class TrainStep:
    """forward under autocast, cross-entropy, backward, SGD step. Loss and error are summed on
    the device; :meth:`take` reads (and resets) them, the only host synchronisation."""

    def __init__(
        self,
        trainee: Trainee,
        *,
        device: torch.device,
        bf16: bool,
        label_smoothing: float = 0.0,
        on_backward: Callable[[nn.Module, int], None] | None = None,
    ) -> None:
        self.t, self.device, self.bf16 = trainee, device, bf16
        self.label_smoothing = label_smoothing
        self.on_backward = on_backward
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.err_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.n_sum = torch.zeros((), dtype=torch.float64, device=device)

    def __call__(self, x: Tensor, y: Tensor, step: int = 0) -> None:
        with autocast_ctx(self.device, self.bf16):
            logits = self.t.forward(x)
            losses = {"loss": F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)}
        loss = self.t.update(losses, step, self.on_backward)
        with torch.no_grad():
            # samples labelled IGNORE (undecodable, skip_bad) count neither as seen nor wrong;
            # the count stays on the device so that no step waits for the host
            valid = y != IGNORE
            nb = valid.sum().double()
            self.loss_sum += loss.detach().double() * nb
            self.err_sum += ((logits.argmax(1) != y) & valid).sum().double()
            self.n_sum += nb

    def sums(self) -> Tensor:
        """(loss sum, error count, images) since the last :meth:`reset`, on the device."""
        return torch.stack([self.loss_sum, self.err_sum, self.n_sum])

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.err_sum.zero_()
        self.n_sum.zero_()

    def take_parts(self) -> dict[str, list[float]]:
        """The values of each of several losses since the last call: classification's step
        has one loss, summed above, so none."""
        return {}
