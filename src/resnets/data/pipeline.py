"""From decoded images to training and evaluation batches.

The training batch of step ``k`` of epoch ``e`` is a pure function of ``(seed, e, k)``: the epoch's
sample order comes from a generator seeded with ``(seed, e)`` and each batch's augmentation from
one seeded with ``(seed, e, k)``. Nothing reads global random state, so resuming in the middle
of an epoch, or computing batches in any number of worker threads, gives the same batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .augment import center_crop, cifar_train, flip_only, resized_crop_train, to_float_nchw
from .imageset import is_streamed

# label of a sample to leave out of the loss and the error count (F.cross_entropy's default
# ignore_index): streamed images that could not be decoded under skip_bad
IGNORE = -100

AUGMENTS = ("cifar", "crop", "flip", "none", "scale", "rrc")


def seed_for(*parts: int) -> int:
    """A 63-bit seed mixed from integers (no collisions between nearby tuples)."""
    h = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def stratified_split(
    labels: np.ndarray, val_size: int | float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``val_size`` samples (a count, or a fraction if < 1) with the class proportions.

    Returns sorted ``(train_indices, val_indices)``. The same labels and seed give the same split.
    """
    n = len(labels)
    k = int(round(val_size * n)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if k < 0 or k >= n:
        raise ConfigError(
            f"val_split={val_size} must hold out between 0 and {n - 1} of {n} samples"
        )
    if k == 0:
        return np.arange(n), np.arange(0)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * k / n
    take = np.floor(quota).astype(int)
    # largest remainders get the leftover samples, ties broken by class order
    rest = k - take.sum()
    order = np.argsort(-(quota - take), kind="stable")
    take[order[:rest]] += 1
    g = torch.Generator().manual_seed(seed_for(seed, 0xA11))
    val = []
    for c, t in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        perm = torch.randperm(len(idx), generator=g).numpy()
        val.append(idx[perm[:t]])
    val_idx = np.sort(np.concatenate(val))
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


def channel_stats(
    images: np.ndarray, indices: np.ndarray, chunk: int = 4096
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..255 units) over ``images[indices]``."""
    c = images.shape[-1]
    s = np.zeros(c)
    s2 = np.zeros(c)
    count = 0
    for i in range(0, len(indices), chunk):
        x = np.asarray(images[np.sort(indices[i : i + chunk])], dtype=np.float64).reshape(-1, c)
        s += x.sum(0)
        s2 += (x * x).sum(0)
        count += x.shape[0]
    if count == 0:
        raise DataError("cannot compute channel statistics of an empty training split")
    mean = s / count
    std = np.sqrt(np.maximum(s2 / count - mean**2, 1e-12))
    std = np.maximum(std, 1.0)  # a constant channel (e.g. an all-black border) must not blow up
    return mean.tolist(), std.tolist()


@dataclass
class AugmentSpec:
    """What the training pipeline does to each batch (see :mod:`resnets.data.augment`)."""

    kind: str = "cifar"
    pad: int = 4
    crop_size: int = 0  # output size for "scale"/"rrc" (0: the stored size)

    def __post_init__(self) -> None:
        if self.kind not in AUGMENTS:
            raise ConfigError(f"augment must be one of {AUGMENTS}, got {self.kind!r}")


class BatchStream:
    """Seeded, resumable batches over a subset of a uint8 ``(N, H, W, C)`` image array.

    Args:
        images, labels: the whole data set; ``images`` may be a numpy memmap or a tensor (on the
            training device, for the GPU-resident path).
        indices: the subset to draw from (e.g. the training split).
        batch_size: samples per batch; the last incomplete batch of an epoch is dropped when
            ``drop_last`` (the training default, so every step has the same batch statistics).
        seed: the run's seed.
        mean, std: per-channel normalisation (0..255 units).
        augment: training augmentation, or None for evaluation batches (in order, no randomness).
        device: where batches are made.
        workers: threads that prepare the next batches while the model trains on this one.
    """

    def __init__(
        self,
        images: np.ndarray | Tensor,
        labels: np.ndarray | Tensor,
        indices: np.ndarray,
        batch_size: int,
        seed: int,
        mean: list[float],
        std: list[float],
        augment: AugmentSpec | None,
        device: torch.device | str = "cpu",
        drop_last: bool = True,
        workers: int = 0,
        eval_size: int = 0,
        dtype: torch.dtype = torch.float32,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.device = torch.device(device)
        # numpy (possibly memory-mapped) images stay numpy: fancy indexing reads only those rows
        self.images = images
        self.labels = labels if isinstance(labels, Tensor) else torch.from_numpy(np.asarray(labels))
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.augment = augment
        self.drop_last = drop_last and len(self.indices) >= self.batch_size
        self.workers = int(workers)
        self.eval_size = eval_size
        self.dtype = dtype
        # distributed training: this process's rank and the world size. Every rank computes the
        # same global batch (same order, same augmentation draws) and keeps its own equal slice,
        # so a run means the same thing, sample for sample, on any number of processes.
        self.rank, self.world = shard
        if self.batch_size % self.world:
            raise ConfigError(
                f"batch_size={batch_size} must be divisible by the {self.world} processes"
            )

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> Tensor:
        if self.augment is None:
            return self.indices
        g = torch.Generator().manual_seed(seed_for(self.seed, epoch))
        return self.indices[torch.randperm(len(self.indices), generator=g)]

    def _gather(self, idx: Tensor, *, scoring: bool = False) -> tuple[Tensor, Tensor]:
        bad = None
        if isinstance(self.images, Tensor):
            x = self.images[idx.to(self.images.device)]
        else:
            if is_streamed(self.images):  # undecodable ones are masked
                arr, bad = self.images.take(idx.numpy())
            else:
                arr, bad = self.images[idx.numpy()], None
            x = torch.from_numpy(np.ascontiguousarray(arr))
        y = self.labels[idx.to(self.labels.device)]
        if bad is not None and bad.all() and not scoring:
            raise DataError(
                f"none of the {len(bad)} images of this batch could be decoded (skip_bad): "
                f"{', '.join(self.images.bad_names[-3:])} ..."
            )
        if bad is not None and bad.any():
            # the loss and the error count leave these out (cross-entropy's ignore_index)
            y = y.clone()
            y[torch.from_numpy(bad).to(y.device)] = IGNORE
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def scoring_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Every sample once, in order, as ``(uint8 NHWC images, labels)`` on the stream's
        device, for scoring: no augmentation and no normalisation (the weights' test views
        do that). An undecodable streamed image's label is IGNORE instead of an error."""
        order = self.order(0)
        for step in range(len(self)):
            yield self._gather(
                order[step * self.batch_size : (step + 1) * self.batch_size], scoring=True
            )

    def make_batch(
        self, epoch: int, step: int, order: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Normalised float NCHW batch and labels of ``(epoch, step)``.

        Under torchrun only this rank's slice of the global batch is read (and, for streamed
        data, decoded); augmentation draws are made for the global batch, so every sample is
        transformed exactly as in a one-process run.
        """
        order = self.order(epoch) if order is None else order
        idx = order[step * self.batch_size : (step + 1) * self.batch_size]
        total, start = len(idx), 0
        if self.world > 1 and self.augment is not None:
            per = total // self.world
            start = self.rank * per
            idx = idx[start : start + per]
        x, y = self._gather(idx)
        aug = self.augment
        if aug is None:
            xf = to_float_nchw(x, self.mean, self.std, self.dtype)
            if self.eval_size:
                xf = center_crop(xf, self.eval_size)
            return xf.contiguous(memory_format=torch.channels_last), y
        g = torch.Generator().manual_seed(seed_for(self.seed, epoch, step))
        rows = dict(total=total, start=start)
        if aug.kind == "cifar":
            x = cifar_train(x, g, pad=aug.pad, flip=True, **rows)
        elif aug.kind == "crop":
            x = cifar_train(x, g, pad=aug.pad, flip=False, **rows)
        elif aug.kind == "flip":
            x = flip_only(x, g, **rows)
        xf = to_float_nchw(x, self.mean, self.std, self.dtype)
        if aug.kind in ("scale", "rrc"):
            xf = resized_crop_train(xf, g, aug.crop_size or xf.shape[-1], mode=aug.kind, **rows)
        return xf.contiguous(memory_format=torch.channels_last), y

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches ``start_step ..`` of ``epoch``; worker threads prefetch when ``workers > 0``."""
        order = self.order(epoch)
        steps = range(start_step, len(self))
        if self.workers <= 0:
            for k in steps:
                yield self.make_batch(epoch, k, order)
            return
        depth = 2 * self.workers
        with ThreadPoolExecutor(self.workers, thread_name_prefix="resnets-data") as ex:
            pending = []
            it = iter(steps)
            for k in it:
                pending.append(ex.submit(self.make_batch, epoch, k, order))
                if len(pending) >= depth:
                    break
            while pending:
                fut = pending.pop(0)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(ex.submit(self.make_batch, epoch, nxt, order))
                yield fut.result()
