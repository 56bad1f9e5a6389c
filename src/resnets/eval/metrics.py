"""Evaluation: top-1/top-5 error, per-class accuracy, confusion matrix, 10-crop testing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.imageset import is_streamed
from ..data.pipeline import IGNORE, BatchStream
from ..inference.views import TestTime, TestViews
from ..io import progress_bar
from ..runtime import autocast_ctx

#: confidence bins of the expected calibration error and the reliability diagram (Guo et al.)
ECE_BINS = 15


@dataclass
class EvalResult:
    """Counts over one pass of a data set; rates are derived from them."""

    n: int = 0
    loss_sum: float = 0.0
    correct1: int = 0
    correct5: int = 0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    # calibration, with the softmax temperature applied (1.0: none): each scored image's
    # confidence (its top probability) and whether the top class was right, the Brier sum
    temperature: float = 1.0
    confidences: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    brier_sum: float = 0.0
    nll_sum: float = 0.0
    logits: np.ndarray | None = None  # every scored row, when asked (temperature fitting)
    targets: np.ndarray | None = None
    nonfinite: int = 0  # images whose scores held NaN or +inf (see TopOneEvaluator)

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

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood of the true class at this temperature."""
        return self.nll_sum / max(self.n, 1)

    @property
    def brier(self) -> float:
        """Mean Brier score: squared distance of the probabilities from the one-hot truth."""
        return self.brier_sum / max(self.n, 1)

    @property
    def ece(self) -> float:
        """Expected calibration error over 15 equal-width confidence bins (Guo et al. 2017),
        computed by the project's reliability bins from each image's top probability and
        correctness."""
        return expected_calibration_error(self.confidences, self.hits)

    def reliability(self, bins: int = ECE_BINS) -> list[dict[str, float]]:
        """Per confidence bin: its range, image count, mean confidence and accuracy."""
        return reliability_bins(self.confidences, self.hits, bins)

    def per_class(self) -> np.ndarray:
        totals = self.confusion.sum(1)
        return np.where(totals > 0, np.diag(self.confusion) / np.maximum(totals, 1), np.nan)


def reliability_bins(
    confidences: np.ndarray, hits: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """The reliability diagram's rows: per equal-width confidence bin, its range, the images
    in it, their mean confidence and their accuracy (nan for an empty bin)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = which == b
        count = int(m.sum())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidences[m].mean()) if count else float("nan"),
                "accuracy": float(hits[m].mean()) if count else float("nan"),
            }
        )
    return rows


def expected_calibration_error(confidences: np.ndarray, hits: np.ndarray) -> float:
    """Top-label ECE with 15 equal-width bins: the sum over the bins of
    :func:`reliability_bins` of |accuracy - confidence| weighted by the bin's share of images
    (Guo et al. 2017, eq. 3). The figure and the number come from the same bins."""
    if len(confidences) == 0:
        return float("nan")
    n = len(confidences)
    return float(
        sum(
            row["count"] / n * abs(row["accuracy"] - row["confidence"])
            for row in reliability_bins(np.asarray(confidences), np.asarray(hits, dtype=float))
            if row["count"]
        )
    )


@runtime_checkable
class Evaluator(Protocol):
    """The one evaluator interface of resnets, for every task (Detectron2's
    ``DatasetEvaluator``): :meth:`reset` before a pass, :meth:`process` after each batch with
    its inputs' targets and the model's outputs, :meth:`evaluate` at the end for the pass's
    result. :class:`TopOneEvaluator` scores classification (top-1/5, loss, calibration);
    ``resnets.detection.metrics.CocoEvaluator`` scores detection (COCO mAP)."""

    def reset(self) -> None: ...

    def process(self, targets: Any, outputs: Any) -> None: ...

    def evaluate(self) -> Any: ...


class TopOneEvaluator:
    """Classification's :class:`Evaluator`: per-batch counts kept on the device (no host
    synchronisation until :meth:`evaluate`), whose result is an :class:`EvalResult`."""

    def __init__(
        self,
        num_classes: int,
        device: torch.device,
        temperature: float = 1.0,
        keep_logits: bool = False,
    ) -> None:
        self.k, self.device = num_classes, device
        self.temperature, self.keep_logits = temperature, keep_logits
        self.reset()

    def reset(self) -> None:
        """Forget every batch processed: the next pass starts from zero."""
        device = self.device
        self.conf_parts: list[Tensor] = []
        self.hit_parts: list[Tensor] = []
        self.logit_parts: list[Tensor] = []
        self.target_parts: list[Tensor] = []
        self.brier = torch.zeros((), dtype=torch.float64, device=device)
        self.nll = torch.zeros((), dtype=torch.float64, device=device)
        num_classes = self.k
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.c1 = torch.zeros((), dtype=torch.long, device=device)
        self.c5 = torch.zeros((), dtype=torch.long, device=device)
        self.conf = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        # images whose scores hold NaN or +inf: a broken model, never a result
        # (-inf alone is log(0) of an averaged probability, as ten-crop testing gives)
        self.broken = torch.zeros((), dtype=torch.long, device=device)
        self.n = 0

    def process(self, targets: Tensor, outputs: Tensor) -> None:
        """Count one batch: ``targets`` its class indices, ``outputs`` the model's logits."""
        logits, y = outputs.float(), targets
        self.broken += (logits.isnan() | logits.isposinf()).any(1).sum()
        self.loss += F.cross_entropy(logits, y, reduction="sum").double()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit = top == y[:, None]
        self.c1 += hit[:, 0].sum()
        self.c5 += hit.any(1).sum()
        self.conf += torch.bincount(y * self.k + top[:, 0], minlength=self.k * self.k)
        self.n += int(y.shape[0])
        scaled = logits / self.temperature
        probs = scaled.softmax(1)
        self.nll += F.cross_entropy(scaled, y, reduction="sum").double()
        self.brier += ((probs - F.one_hot(y, self.k).float()) ** 2).sum().double()
        confidence, predicted = probs.max(1)
        self.conf_parts.append(confidence)
        self.hit_parts.append(predicted == y)
        if self.keep_logits:
            self.logit_parts.append(logits)
            self.target_parts.append(y)

    def evaluate(self) -> EvalResult:
        """The pass's counts and rates."""
        return EvalResult(
            n=self.n,
            loss_sum=float(self.loss),
            correct1=int(self.c1),
            correct5=int(self.c5),
            confusion=self.conf.view(self.k, self.k).cpu().numpy(),
            temperature=self.temperature,
            confidences=torch.cat(self.conf_parts).cpu().numpy()
            if self.conf_parts
            else np.zeros(0, np.float32),
            hits=torch.cat(self.hit_parts).cpu().numpy() if self.hit_parts else np.zeros(0, bool),
            brier_sum=float(self.brier),
            nll_sum=float(self.nll),
            logits=torch.cat(self.logit_parts).cpu().numpy() if self.logit_parts else None,
            targets=torch.cat(self.target_parts).cpu().numpy() if self.target_parts else None,
            nonfinite=int(self.broken),
        )


@dataclass(frozen=True)
class Scoring:
    """How a scoring pass runs (not what it measures): batch size, device, bf16 autocast, a
    progress bar, and whether to keep every image's logits."""

    batch_size: int = 256
    device: torch.device | str = "cpu"
    bf16: bool = False
    progress: bool = False
    keep_logits: bool = False


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images,
    labels,
    indices,
    *,
    views: TestViews,
    num_classes: int,
    test: TestTime = TestTime(tta="none"),
    run: Scoring = Scoring(),
) -> EvalResult:
    """Score ``model`` on ``images[indices]`` (uint8 NHWC) in eval mode, shown the ``views``
    of its weights' preprocessing as ``test`` says (``tta="auto"`` counts as none here; the
    loaded-model door, :func:`resnets.eval.predict.score`, reads it from the record).

    With ``test.ten_crop`` the softmax outputs of the ten views (paper section 3.4/4.2
    "10-crop testing") are averaged; otherwise one centre view. ``tta="flip"`` averages the
    logits of the centre view and its mirror image (10-crop has the mirrors already).
    ``test.scales``: the paper's fully-convolutional multi-scale testing (section 3.4, Table
    4): each whole image resized to every side and mirrored, the softmax outputs averaged.
    """
    device = torch.device(run.device)
    was_training = model.training
    model.eval()
    stream = BatchStream(
        images,
        labels,
        indices,
        run.batch_size,
        0,
        views.mean,
        views.std,
        None,
        device,
        drop_last=False,
    )
    evaluator = TopOneEvaluator(num_classes, device, test.temperature or 1.0, run.keep_logits)
    bar = None
    if run.progress:
        bar = progress_bar(total=len(indices), desc="eval", unit="img", leave=False)
    streamed = is_streamed(images)
    for x, y in stream.scoring_batches():
        if test.scales or test.ten_crop:  # the softmax outputs of every view, averaged
            many = views.scaled(x, test.scales) if test.scales else views.ten_crops(x)
            probs = 0
            for view in many:
                with autocast_ctx(device, run.bf16):
                    probs = probs + model(view).float().softmax(1)
            logits = (probs / len(many)).log()
        else:
            xf = views.centre(x)
            with autocast_ctx(device, run.bf16):
                logits = model(xf)
                if test.tta == "flip":
                    logits = 0.5 * (logits.float() + model(xf.flip(3)).float())
        seen = len(y)
        if streamed:  # undecodable samples (skip_bad) are labelled IGNORE: not scored
            keep = y != IGNORE
            if not bool(keep.all()):
                logits, y = logits[keep], y[keep]
        evaluator.process(y, logits)
        if bar:
            bar.update(seen)
    if bar:
        bar.close()
    model.train(was_training)
    return evaluator.evaluate()
