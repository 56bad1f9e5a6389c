"""Box IoU, box coding, NMS and RoIAlign against hand-computed cases and a direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from resnets.models.box_ops import (
    BBOX_XFORM_CLIP,
    batched_nms,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    nms,
    roi_align,
)


def test_iou_of_hand_drawn_boxes():
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1]])
    b = torch.tensor([[1.0, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 0, 0]])
    iou = box_iou(a, b)
    # [0,0,2,2] and [1,1,3,3]: intersection 1, union 4 + 4 - 1 = 7
    assert iou[0, 0].item() == pytest.approx(1 / 7)
    assert iou[0, 1].item() == 1.0 and iou[0, 2].item() == 0.0
    # [0,0,1,1] inside [0,0,2,2]: 1 / 4; touching [1,1,3,3] at a corner only: 0
    assert iou[1, 1].item() == pytest.approx(0.25) and iou[1, 0].item() == 0.0
    # an empty box against anything: 0, not NaN
    assert iou[:, 3].tolist() == [0.0, 0.0]
    assert box_iou(torch.zeros(0, 4), b).shape == (0, 4)


def test_box_coding_by_hand_and_back():
    anchors = torch.tensor([[0.0, 0, 10, 20]])  # centre (5, 10), 10 x 20
    target = torch.tensor([[2.0, 4, 22, 24]])  # centre (12, 14), 20 x 20
    deltas = encode_boxes(target, anchors, (1.0, 1.0, 1.0, 1.0))
    expected = [7 / 10, 4 / 20, math.log(2.0), math.log(1.0)]
    assert deltas[0].tolist() == pytest.approx(expected)
    # the weights of Fast R-CNN's box head (10, 10, 5, 5) scale each coordinate
    weighted = encode_boxes(target, anchors, (10.0, 10.0, 5.0, 5.0))
    assert weighted[0].tolist() == pytest.approx([7.0, 2.0, 5 * math.log(2.0), 0.0])
    assert decode_boxes(weighted, anchors, (10.0, 10.0, 5.0, 5.0))[0].tolist() == pytest.approx(
        target[0].tolist()
    )
    # round trip over random boxes, and k boxes per anchor side by side (4k columns)
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(50, 2, generator=gen) * 100
    a = torch.cat((a, a + 1 + torch.rand(50, 2, generator=gen) * 50), 1)
    t = torch.rand(50, 2, generator=gen) * 100
    t = torch.cat((t, t + 1 + torch.rand(50, 2, generator=gen) * 50), 1)
    d = encode_boxes(t, a, (1.0, 1.0, 1.0, 1.0))
    assert torch.allclose(decode_boxes(d, a, (1.0, 1.0, 1.0, 1.0)), t, atol=1e-4)
    two = decode_boxes(torch.cat((d, d), 1), a, (1.0, 1.0, 1.0, 1.0))
    assert two.shape == (50, 8) and torch.allclose(two[:, 4:], t, atol=1e-4)
    # a huge size delta is clipped: the box grows by at most exp(log(1000/16)) = 62.5 times
    huge = decode_boxes(torch.tensor([[0.0, 0, 100, 0]]), anchors, (1.0, 1.0, 1.0, 1.0))
    assert (huge[0, 2] - huge[0, 0]).item() == pytest.approx(10 * math.exp(BBOX_XFORM_CLIP))


def test_clip_boxes_to_the_image():
    boxes = torch.tensor([[-5.0, -1, 50, 8], [3, 4, 5, 6]])
    assert clip_boxes(boxes, height=7, width=40).tolist() == [[0, 0, 40, 7], [3, 4, 5, 6]]


def test_nms_keeps_the_best_and_drops_what_it_covers():
    boxes = torch.tensor(
        [
            [0.0, 0, 10, 10],  # 0: score 0.8
            [1.0, 0, 11, 10],  # 1: score 0.9, IoU with 0 = 90 / 110 = 0.818
            [20.0, 20, 30, 30],  # 2: apart, score 0.1
            [0.0, 5, 10, 15],  # 3: IoU with 1 = 45 / 155 = 0.29, with 0 = 50/150
        ]
    )
    scores = torch.tensor([0.8, 0.9, 0.1, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3, 2]  # by falling score; 0 suppressed by 1
    assert nms(boxes, scores, 0.85).tolist() == [1, 0, 3, 2]  # 0.818 is under 0.85: kept
    # 3 overlaps 0 by 1/3, which is suppressed (by 1) before it could suppress 3: at a
    # threshold of 0.3, only 1's own overlap with 3 (0.29) counts, and 3 stays
    assert nms(boxes, scores, 0.3).tolist() == [1, 3, 2]
    assert nms(boxes, scores, 0.2).tolist() == [1, 2]
    # equal scores: the earlier box wins
    assert nms(boxes[:2], torch.tensor([0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_batched_nms_never_suppresses_across_groups():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [1.0, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([0, 0, 0]), 0.5).tolist() == [0]


def _direct_roi_align(feat, roi, ph, pw, scale, ratio, aligned):
    """RoIAlign point by point, as its reference kernel computes it (torchvision's
    roi_align_kernel.cpp, read as a specification): one bilinear lookup per sampling point."""
    _, height, width = feat.shape
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * scale - off for v in roi)
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)

    def lookup(y, x):
        if y < -1.0 or y > height or x < -1.0 or x > width:
            return torch.zeros(feat.shape[0], dtype=feat.dtype)
        y, x = max(y, 0.0), max(x, 0.0)
        yl, xl = int(y), int(x)
        if yl >= height - 1:
            yh = yl = height - 1
            y = float(yl)
        else:
            yh = yl + 1
        if xl >= width - 1:
            xh = xl = width - 1
            x = float(xl)
        else:
            xh = xl + 1
        ly, lx = y - yl, x - xl
        hy, hx = 1 - ly, 1 - lx
        return (
            hy * hx * feat[:, yl, xl]
            + hy * lx * feat[:, yl, xh]
            + ly * hx * feat[:, yh, xl]
            + ly * lx * feat[:, yh, xh]
        )

    out = torch.zeros(feat.shape[0], ph, pw, dtype=feat.dtype)
    for i in range(ph):
        for j in range(pw):
            acc = 0
            for iy in range(ratio):
                for ix in range(ratio):
                    y = y1 + i * rh / ph + (iy + 0.5) * rh / ph / ratio
                    x = x1 + j * rw / pw + (ix + 0.5) * rw / pw / ratio
                    acc = acc + lookup(y, x)
            out[:, i, j] = acc / (ratio * ratio)
    return out


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_matches_the_direct_bilinear_computation(aligned):
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    rois = torch.tensor(
        [
            [0, 4.0, 6.0, 30.0, 20.0],  # inside
            [1, -6.0, -3.0, 10.0, 12.0],  # over the top-left edge
            [1, 30.0, 20.0, 60.0, 50.0],  # partly beyond the bottom-right: zeros there
            [0, 10.0, 10.0, 10.5, 10.2],  # smaller than a pixel
            [1, 43.0, 35.0, 44.0, 36.0],  # on the last row and column
        ],
        dtype=torch.float64,
    )
    for ratio in (1, 2, 3):
        got = roi_align(feats, rois, (3, 4), 0.25, ratio, aligned)
        for k, roi in enumerate(rois):
            want = _direct_roi_align(feats[int(roi[0])], roi[1:], 3, 4, 0.25, ratio, aligned)
            assert torch.allclose(got[k], want, atol=1e-12), (ratio, k)


def test_roi_align_by_hand_and_its_gradient():
    # a ramp f(y, x) = x: bilinear interpolation is exact on it, so each bin's value is the
    # mean x of its sampling points: the bin's centre in map pixels, less the half-pixel offset
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # (1, 1, 8, 8)
    out = roi_align(ramp, torch.tensor([[0, 2.0, 2.0, 6.0, 6.0]]), (2, 2), 1.0, 2, True)
    # the region [1.5, 5.5) in aligned coordinates: bins [1.5, 3.5) and [3.5, 5.5)
    assert out[0, 0].tolist() == [[2.5, 4.5], [2.5, 4.5]]
    constant = torch.full((1, 2, 5, 5), 3.0)
    inside = roi_align(constant, torch.tensor([[0, 1.0, 1.0, 4.0, 4.0]]), (2, 2), 1.0, 2, True)
    assert torch.equal(inside, torch.full((1, 2, 2, 2), 3.0))
    # the features get a gradient: RoIAlign sits inside the detector's loss
    feats = torch.randn(1, 2, 6, 6, requires_grad=True)
    roi_align(feats, torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]]), (2, 2)).sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(feats, torch.zeros(1, 5), (2, 2), sampling_ratio=0)
    assert roi_align(feats, torch.zeros(0, 5), (2, 2)).shape == (0, 2, 2, 2)


def test_nms_agrees_with_the_matrix_definition_on_random_boxes():
    """Greedy NMS by its definition (the whole IoU matrix, in order) on 300 random boxes with
    many overlaps: the same kept list, and ``limit`` is the same list cut short."""
    gen = torch.Generator().manual_seed(5)
    corner = torch.rand(300, 2, generator=gen) * 50
    boxes = torch.cat((corner, corner + 2 + torch.rand(300, 2, generator=gen) * 20), 1)
    scores = torch.rand(300, generator=gen)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order].double(), boxes[order].double())
    alive, expected = torch.ones(300, dtype=torch.bool), []
    for i in range(300):
        if alive[i]:
            expected.append(int(order[i]))
            alive &= iou[i] <= 0.5
    kept = nms(boxes, scores, 0.5)
    assert kept.tolist() == expected and 20 < len(expected) < 300
    assert nms(boxes, scores, 0.5, limit=7).tolist() == expected[:7]
