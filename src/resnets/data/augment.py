"""Augmentations on whole batches of tensors, so they run wherever the batch is (CPU or GPU).

Every random draw comes from a ``torch.Generator`` passed in (on the CPU, for reproducibility
across devices); global random state is never touched.

* :func:`cifar_train`: the paper's CIFAR augmentation (section 4.2): pad 4 pixels on each side,
  take a random 32x32 crop, flip horizontally with probability 1/2. Works on uint8 NHWC batches.
* :func:`resized_crop_train`: ImageNet-style random crops + flip via one batched ``grid_sample``:
  ``"scale"`` is the paper's scale augmentation (shorter side sampled in [256, 480], 224 crop,
  section 3.4), ``"rrc"`` the random-resized crop of Szegedy et al. (area 8%-100%, ratio 3/4-4/3).
* :func:`center_crop`, :func:`ten_crop`: evaluation views.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def to_float_nchw(
    x: Tensor, mean: Tensor, std: Tensor, dtype: torch.dtype = torch.float32
) -> Tensor:
    """uint8 ``(N, H, W, C)`` -> normalised float ``(N, C, H, W)`` in channels_last memory layout."""
    x = x.to(dtype)
    x = (x - mean.to(x.device, dtype)) / std.to(x.device, dtype)
    return x.permute(0, 3, 1, 2)  # a view: NHWC storage is channels_last for NCHW


def normalize_nchw(
    x: Tensor, mean: Tensor, std: Tensor, dtype: torch.dtype = torch.float32
) -> Tensor:
    """uint8 (or float 0..255) ``(..., C, H, W)`` -> normalised float."""
    m = mean.to(x.device, dtype)[:, None, None]
    s = std.to(x.device, dtype)[:, None, None]
    return (x.to(dtype) - m) / s


def _rows(t: Tensor, start: int, n: int) -> Tensor:
    return t[start : start + n]


def cifar_train(
    x: Tensor,
    gen: torch.Generator,
    pad: int = 4,
    flip: bool = True,
    *,
    total: int | None = None,
    start: int = 0,
) -> Tensor:
    """Pad ``pad`` zero pixels, random crop back to the original size, random horizontal flip.

    ``x`` is uint8 ``(N, H, W, C)``; returns the same shape and dtype. ``x`` may be rows
    ``start .. start + N`` of a batch of ``total`` (one rank's slice under torchrun): the random
    draws are made for the whole batch, so each row is augmented as in the one-process run.
    """
    n, h, w, _ = x.shape
    total = n if total is None else total
    dev = x.device
    if pad > 0:
        x = F.pad(x, (0, 0, pad, pad, pad, pad))
    oy = _rows(torch.randint(0, 2 * pad + 1, (total,), generator=gen), start, n).to(dev)
    ox = _rows(torch.randint(0, 2 * pad + 1, (total,), generator=gen), start, n).to(dev)
    rows = oy[:, None] + torch.arange(h, device=dev)[None]
    cols = torch.arange(w, device=dev)[None].expand(n, w)
    if flip:
        flipped = _rows(torch.rand(total, generator=gen) < 0.5, start, n).to(dev)
        cols = torch.where(flipped[:, None], w - 1 - cols, cols)
    cols = ox[:, None] + cols
    idx = torch.arange(n, device=dev)[:, None, None]
    return x[idx, rows[:, :, None], cols[:, None, :]]


def flip_only(
    x: Tensor, gen: torch.Generator, *, total: int | None = None, start: int = 0
) -> Tensor:
    return cifar_train(x, gen, pad=0, flip=True, total=total, start=start)


def resized_crop_train(
    x: Tensor,
    gen: torch.Generator,
    out_size: int,
    mode: str = "rrc",
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    short_side: tuple[int, int] = (256, 480),
    flip: bool = True,
    *,
    total: int | None = None,
    start: int = 0,
) -> Tensor:
    """Random crops resized to ``out_size`` with random flips, one ``grid_sample`` per batch.

    ``x`` is float ``(N, C, H, W)`` (square images, e.g. from the decoded cache).
    ``mode="scale"``: the paper's scale augmentation: the image is (virtually) resized so its side
    is ``S ~ U[short_side]`` and an ``out_size`` crop is taken at a random place, i.e. a crop of
    fraction ``out_size / S`` of the side. ``mode="rrc"``: random-resized crop.
    ``total``/``start``: ``x`` is a slice of a larger batch (see :func:`cifar_train`).
    """
    n = x.shape[0]
    m = n if total is None else total  # draws for the whole batch, then this slice's rows
    if mode == "scale":
        s = torch.randint(short_side[0], short_side[1] + 1, (m,), generator=gen).float()
        frac_w = frac_h = (out_size / s).clamp(max=1.0)
    elif mode == "rrc":
        area = torch.empty(m).uniform_(scale[0], scale[1], generator=gen)
        logr = torch.empty(m).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
        r = torch.exp(logr)
        frac_w = torch.sqrt(area * r).clamp(max=1.0)
        frac_h = torch.sqrt(area / r).clamp(max=1.0)
    else:
        raise ValueError(f"unknown crop mode {mode!r}")
    # centre of the crop, in [-1, 1] normalised coordinates, so that the crop stays inside
    cx = (torch.rand(m, generator=gen) * 2 - 1) * (1 - frac_w)
    cy = (torch.rand(m, generator=gen) * 2 - 1) * (1 - frac_h)
    sx = frac_w.clone()
    if flip:
        sx = torch.where(torch.rand(m, generator=gen) < 0.5, -sx, sx)
    sx, cx, cy, frac_h = (_rows(t, start, n) for t in (sx, cx, cy, frac_h))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = frac_h, cy
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, [n, x.shape[1], out_size, out_size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def center_crop(x: Tensor, size: int) -> Tensor:
    """Central ``size`` crop of a float ``(N, C, H, W)`` batch (no-op when already that size)."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h < size or w < size:
        return F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def ten_crop(x: Tensor, size: int, pad: int = 4) -> Tensor:
    """The ten views of the paper's 10-crop testing: 4 corners + centre, and their mirrors.

    ``x`` is ``(N, C, H, W)``, best uint8 before normalisation, so the padding is black as in
    training. Returns ``(10, N, C, size, size)``. When the images are no larger than ``size``
    (CIFAR), they are first zero-padded by ``pad`` so the corner crops are the training crops'
    extremes.
    """
    h, w = x.shape[-2:]
    if h <= size or w <= size:
        x = F.pad(x, (pad, pad, pad, pad))
        h, w = x.shape[-2:]
    tops = (0, 0, h - size, h - size, (h - size) // 2)
    lefts = (0, w - size, 0, w - size, (w - size) // 2)
    views = [x[..., t : t + size, left : left + size] for t, left in zip(tops, lefts)]
    views += [v.flip(-1) for v in views]
    return torch.stack(views)
