"""Faster R-CNN + FPN on a resnets backbone: torchvision's calling conventions, and it learns."""

from __future__ import annotations

import pytest
import torch

from resnets.models.box_ops import box_iou
from resnets.models.detector import DetectorConfig, FasterRCNN, _anchors, _match

TARGETS = [
    {
        "boxes": torch.tensor([[4.0, 6.0, 30.0, 34.0], [36.0, 30.0, 60.0, 60.0]]),
        "labels": torch.tensor([1, 3]),
    },
    {"boxes": torch.tensor([[16.0, 16.0, 40.0, 44.0]]), "labels": torch.tensor([2])},
]


def _images() -> torch.Tensor:
    """Two 64 x 64 images in [0, 1] with a bright patch per object, a colour per class."""
    images = torch.zeros(2, 3, 64, 64)
    for i, target in enumerate(TARGETS):
        for (x1, y1, x2, y2), label in zip(
            target["boxes"].long().tolist(), target["labels"].tolist()
        ):
            images[i, label - 1, y1:y2, x1:x2] = 1.0
    return images


def test_it_learns_two_images_and_detects_their_objects():
    torch.manual_seed(0)
    cfg = DetectorConfig(backbone="resnet18", num_classes=4, fpn_channels=32, box_head_width=64)
    model = FasterRCNN(cfg)
    images = _images()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    model.train()
    first = None
    for _ in range(40):
        losses = model(images, TARGETS)
        assert set(losses) == {"loss_objectness", "loss_rpn_box", "loss_classifier", "loss_box_reg"}
        total = sum(losses.values())
        first = first if first is not None else float(total.detach())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert float(total.detach()) < first / 4
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for det, target in zip(detections, TARGETS):
        assert det["boxes"].shape[1] == 4 and det["scores"].shape == det["labels"].shape
        assert bool((det["scores"][:-1] >= det["scores"][1:]).all())  # best first
        # every object is found, with its class, by a detection that overlaps it well
        iou = box_iou(target["boxes"], det["boxes"])
        for k, label in enumerate(target["labels"].tolist()):
            hits = (iou[k] > 0.5) & (det["labels"] == label)
            assert hits.any(), (k, det)


def test_conventions_and_images_without_objects():
    cfg = DetectorConfig(backbone="resnet18", num_classes=3, fpn_channels=16, box_head_width=32)
    model = FasterRCNN(cfg).train()
    with pytest.raises(ValueError, match="training needs targets"):
        model(torch.zeros(1, 3, 64, 64))
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = model(torch.randn(1, 3, 64, 64), empty)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_box_reg"] == 0
    sum(losses.values()).backward()
    # the pyramid: one level per backbone stage (strides 4-32) and the pooled one (64)
    assert model.strides == [4, 8, 16, 32, 64]


def test_anchors_and_matching_by_hand():
    cfg = DetectorConfig(anchor_scale=4.0, aspect_ratios=(1.0,))
    (level,) = _anchors([(2, 3)], [8], cfg, "cpu")
    # side 4 x 8 = 32, centred on each position's corner (x = 0, 8, 16; y = 0, 8)
    assert level.tolist()[:4] == [
        [-16, -16, 16, 16],
        [-8, -16, 24, 16],
        [0, -16, 32, 16],
        [-16, -8, 16, 24],
    ]
    iou = torch.tensor([[0.9, 0.5, 0.1, 0.35], [0.2, 0.6, 0.05, 0.1]])
    # column-wise best: 0.9 -> row 0 (fg), 0.6 -> ignored (between), 0.1 -> background,
    # 0.35 -> ignored
    assert _match(iou, 0.7, 0.3, low_quality=False).tolist() == [0, -2, -1, -2]
    # low-quality matches: row 1's best column (0.6) is kept as row 1's positive
    assert _match(iou, 0.7, 0.3, low_quality=True).tolist() == [0, 1, -1, -2]
