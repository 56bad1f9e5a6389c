"""Evaluation: top-1/top-5 error, per-class accuracy, confusion matrix, 10-crop testing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import augment as A
from ..data.pipeline import IGNORE, BatchStream
from ..io import progress_bar
from ..runtime import autocast_ctx


@dataclass
class EvalResult:
    """Counts over one pass of a data set; rates are derived from them."""

    n: int = 0
    loss_sum: float = 0.0
    correct1: int = 0
    correct5: int = 0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.n, 1)

    @property
    def top1(self) -> float:
        return self.correct1 / max(self.n, 1)

    @property
    def top5(self) -> float:
        return self.correct5 / max(self.n, 1)

    @property
    def err(self) -> float:
        return 1.0 - self.top1

    def per_class(self) -> np.ndarray:
        totals = self.confusion.sum(1)
        return np.where(totals > 0, np.diag(self.confusion) / np.maximum(totals, 1), np.nan)


class Accumulator:
    """Per-batch counts kept on the device (no host synchronisation until :meth:`result`)."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.k = num_classes
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.c1 = torch.zeros((), dtype=torch.long, device=device)
        self.c5 = torch.zeros((), dtype=torch.long, device=device)
        self.conf = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        self.n = 0

    def update(self, logits: Tensor, y: Tensor) -> None:
        logits = logits.float()
        self.loss += F.cross_entropy(logits, y, reduction="sum").double()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit = top == y[:, None]
        self.c1 += hit[:, 0].sum()
        self.c5 += hit.any(1).sum()
        self.conf += torch.bincount(y * self.k + top[:, 0], minlength=self.k * self.k)
        self.n += int(y.shape[0])

    def result(self) -> EvalResult:
        return EvalResult(
            n=self.n,
            loss_sum=float(self.loss),
            correct1=int(self.c1),
            correct5=int(self.c5),
            confusion=self.conf.view(self.k, self.k).cpu().numpy(),
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images,
    labels,
    indices,
    *,
    mean: list[float],
    std: list[float],
    num_classes: int,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    eval_size: int = 0,
    ten_crop: bool = False,
    scales: Sequence[int] = (),
    pad: int = 4,
    tta: str = "none",
    progress: bool = False,
) -> EvalResult:
    """Score ``model`` on ``images[indices]`` (uint8 NHWC) in eval mode.

    With ``ten_crop`` the softmax outputs of the ten views (paper section 3.4/4.2 "10-crop
    testing") are averaged; otherwise one centre view of ``eval_size`` (0: the stored size).
    Images no larger than the view are padded by ``pad`` first (the training translation).
    ``tta="flip"`` averages the logits of the centre view and its mirror image (10-crop has
    the mirrors already). ``scales``: the paper's fully-convolutional multi-scale testing
    (section 3.4, Table 4): each whole image resized to every side in ``scales`` and mirrored,
    the softmax outputs averaged over all of them.
    """
    if ten_crop and scales:
        raise ValueError("ten_crop and scales are two different tests: pick one")
    if tta not in ("none", "flip"):
        raise ValueError(f"tta={tta!r}: must be 'none' or 'flip'")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    stream = BatchStream(
        images, labels, indices, batch_size, 0, mean, std, None, device, drop_last=False
    )
    acc = Accumulator(num_classes, device)
    size = eval_size or int(images.shape[1])
    bar = None
    if progress:
        bar = progress_bar(total=len(indices), desc="eval", unit="img", leave=False)
    order = stream.order(0)
    streamed = bool(getattr(images, "lazy", False))
    for step in range(len(stream)):
        idx = order[step * batch_size : (step + 1) * batch_size]
        x, y = stream._gather(idx, scoring=True)
        if scales:
            xf = A.to_float_nchw(x, stream.mean, stream.std)
            probs = 0
            for side in scales:
                xs = F.interpolate(
                    xf, size=(side, side), mode="bilinear", align_corners=False, antialias=True
                ).contiguous(memory_format=torch.channels_last)
                for view in (xs, xs.flip(3)):
                    with autocast_ctx(device, bf16):
                        probs = probs + model(view).float().softmax(1)
            logits = (probs / (2 * len(scales))).log()
        elif ten_crop:
            views = A.ten_crop(x.permute(0, 3, 1, 2), size, pad=pad)  # uint8 (10, N, C, s, s)
            probs = 0
            for v in views:
                xv = A.normalize_nchw(v, stream.mean, stream.std).contiguous(
                    memory_format=torch.channels_last
                )
                with autocast_ctx(device, bf16):
                    probs = probs + model(xv).float().softmax(1)
            logits = (probs / len(views)).log()
        else:
            xf = A.to_float_nchw(x, stream.mean, stream.std)
            xf = A.center_crop(xf, size).contiguous(memory_format=torch.channels_last)
            with autocast_ctx(device, bf16):
                logits = model(xf)
                if tta == "flip":
                    logits = 0.5 * (logits.float() + model(xf.flip(3)).float())
        if streamed:  # undecodable samples (skip_bad) are labelled IGNORE: not scored
            keep = y != IGNORE
            if not bool(keep.all()):
                logits, y = logits[keep], y[keep]
        acc.update(logits, y)
        if bar:
            bar.update(len(idx))
    if bar:
        bar.close()
    model.train(was_training)
    return acc.result()
