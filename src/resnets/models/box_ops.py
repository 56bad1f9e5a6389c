"""Box operations of a two-stage detector, in plain PyTorch (differentiable where a loss needs it).

Conventions follow torchvision's ``ops`` and ``models.detection`` so its users recognise them:
boxes are ``(x1, y1, x2, y2)`` with area ``(x2 - x1) * (y2 - y1)`` (no +1); box deltas are
Faster R-CNN's parametrisation (Ren et al. 2015, eq. 2) scaled by ``weights``; RoIAlign
(He et al. 2017) samples with ``aligned=True`` half-pixel offsets.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

# the largest log-ratio a decoded box may grow by (torchvision's bbox_xform_clip): exp of it is
# 62.5, so one step cannot blow a box up to overflow
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def box_area(boxes: Tensor) -> Tensor:
    """Areas of ``(N, 4)`` boxes."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of every pair: ``(N, 4)`` and ``(M, 4)`` boxes give ``(N, M)``.
    A pair of empty boxes has IoU 0, not NaN."""
    top_left = torch.max(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(a.dtype).tiny), 0.0)


def clip_boxes(boxes: Tensor, height: int, width: int) -> Tensor:
    """Boxes clipped to an image of ``height`` x ``width``."""
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def encode_boxes(
    targets: Tensor, anchors: Tensor, weights: tuple[float, float, float, float]
) -> Tensor:
    """The deltas ``(dx, dy, dw, dh)`` that move each anchor onto its target box: centre shift in
    units of the anchor's size, log of the size ratio, each times its weight."""
    wx, wy, ww, wh = weights
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    tw, th = targets[:, 2] - targets[:, 0], targets[:, 3] - targets[:, 1]
    tx, ty = targets[:, 0] + 0.5 * tw, targets[:, 1] + 0.5 * th
    return torch.stack(
        (
            wx * (tx - ax) / aw,
            wy * (ty - ay) / ah,
            ww * torch.log(tw / aw),
            wh * torch.log(th / ah),
        ),
        dim=1,
    )


def decode_boxes(
    deltas: Tensor, anchors: Tensor, weights: tuple[float, float, float, float]
) -> Tensor:
    """The boxes that ``deltas`` (``(N, 4)``, or ``(N, 4k)`` for k boxes per anchor) make of the
    anchors: the inverse of :func:`encode_boxes`, with the size change clipped."""
    wx, wy, ww, wh = weights
    anchors = anchors.to(deltas.dtype)
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
    dw = (deltas[:, 2::4] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (deltas[:, 3::4] / wh).clamp(max=BBOX_XFORM_CLIP)
    cx, cy = dx * aw[:, None] + ax[:, None], dy * ah[:, None] + ay[:, None]
    w, h = torch.exp(dw) * aw[:, None], torch.exp(dh) * ah[:, None]
    boxes = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=2)
    return boxes.flatten(1)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, limit: int | None = None) -> Tensor:
    """Greedy non-maximum suppression: the indices of the kept boxes, highest score first.

    A box is dropped when its IoU with a higher-scoring kept box is above ``iou_threshold``;
    equal scores keep their input order (a stable sort). ``limit`` stops after that many kept
    boxes (the same as cutting the list after). Each kept box is compared with the boxes after
    it only: no ``N x N`` matrix (proposal NMS sees thousands of boxes), and in float64, so a
    pair at exactly the threshold is decided the same way on every CPU."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    ordered = boxes[order].detach().to("cpu", torch.float64).numpy()
    x1, y1, x2, y2 = ordered.T
    area = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(ordered), dtype=bool)
    kept: list[int] = []
    for i in range(len(ordered)):
        if suppressed[i]:
            continue
        kept.append(i)
        if limit is not None and len(kept) >= limit:
            break
        width = np.clip(np.minimum(x2[i], x2[i + 1 :]) - np.maximum(x1[i], x1[i + 1 :]), 0, None)
        height = np.clip(np.minimum(y2[i], y2[i + 1 :]) - np.maximum(y1[i], y1[i + 1 :]), 0, None)
        inter = width * height
        union = area[i] + area[i + 1 :] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        suppressed[i + 1 :] |= iou > iou_threshold
    return order[torch.as_tensor(kept, dtype=torch.int64, device=order.device)]


def batched_nms(
    boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float, limit: int | None = None
) -> Tensor:
    """NMS within each group (a class, an image) and never across: each group's boxes are
    shifted by a distinct offset larger than every box's extent, so no two groups overlap."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.detach().double()
    offsets = groups.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold, limit)


def _bilinear_weights(coords: Tensor, size: int, samples: int, bins: int) -> Tensor:
    """``(K, bins, size)`` weights: row ``b`` averages the bilinear interpolation weights of the
    ``samples`` sampling points of bin ``b`` along one axis (``coords``: ``(K, bins * samples)``
    sampling positions in feature-map pixels). A point beyond ``[-1, size]`` contributes zero,
    one in ``[-1, 0)`` reads the edge, as RoIAlign's reference kernel does."""
    valid = (coords >= -1.0) & (coords <= size)
    c = coords.clamp(min=0)
    low = c.floor().long().clamp(max=size - 1)
    at_edge = low >= size - 1
    c = torch.where(at_edge, low.to(c.dtype), c)
    high = torch.where(at_edge, low, low + 1)
    frac = c - low.to(c.dtype)
    weights = torch.zeros(*coords.shape, size, dtype=coords.dtype, device=coords.device)
    weights.scatter_add_(2, low[..., None], ((1 - frac) * valid)[..., None])
    weights.scatter_add_(2, high[..., None], (frac * valid)[..., None])
    k = coords.shape[0]
    return weights.view(k, bins, samples, size).mean(dim=2)


def roi_align(
    features: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> Tensor:
    """RoIAlign (He et al. 2017, Mask R-CNN section 3): each region of interest divided into
    ``output_size`` bins, each bin the mean of ``sampling_ratio``^2 bilinearly interpolated
    points. ``features``: ``(N, C, H, W)``; ``rois``: ``(K, 5)`` as ``(image index, x1, y1, x2,
    y2)`` in input pixels, scaled to the map by ``spatial_scale``. Returns ``(K, C, ph, pw)``.

    Bilinear interpolation is separable, so is the mean over a bin's grid of points, and so is
    the zero outside the map: each region's output is ``Wy @ F @ Wx^T`` with ``(ph, H)`` and
    ``(pw, W)`` weight matrices, differentiable in the features. ``sampling_ratio`` must be
    positive (the adaptive grid of ``sampling_ratio=0`` differs per region; torchvision's
    Faster R-CNN uses 2)."""
    if sampling_ratio <= 0:
        raise ValueError(f"sampling_ratio={sampling_ratio}: must be >= 1")
    ph, pw = output_size
    k = rois.shape[0]
    n, c, height, width = features.shape
    if k == 0:
        return features.new_zeros((0, c, ph, pw))
    offset = 0.5 if aligned else 0.0
    boxes = rois[:, 1:].to(features.dtype) * spatial_scale - offset
    x1, y1, x2, y2 = boxes.unbind(1)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # the original RoIAlign: regions at least one pixel wide
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    s = sampling_ratio
    # sampling positions: bin b, point i at start + b * bin + (i + 0.5) * bin / s
    steps_y = (torch.arange(ph * s, dtype=features.dtype, device=features.device) + 0.5) / s
    steps_x = (torch.arange(pw * s, dtype=features.dtype, device=features.device) + 0.5) / s
    ys = y1[:, None] + steps_y[None, :] * (roi_h / ph)[:, None]
    xs = x1[:, None] + steps_x[None, :] * (roi_w / pw)[:, None]
    wy = _bilinear_weights(ys, height, s, ph)  # (K, ph, H)
    wx = _bilinear_weights(xs, width, s, pw)  # (K, pw, W)
    out = features.new_empty((k, c, ph, pw))
    image = rois[:, 0].long()
    for i in range(n):
        pick = (image == i).nonzero().flatten()
        if pick.numel():
            out[pick] = torch.einsum("kph,chw,kqw->kcpq", wy[pick], features[i], wx[pick])
    return out
