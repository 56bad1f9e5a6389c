"""The sizes of a Faster R-CNN detector (:class:`DetectorConfig`), range-checked, without
torch: the training config (``resnets.train.config``) and a weights record check them before
anything is built."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import ConfigError


@dataclass
class DetectorConfig:
    """Sizes of the detector; torchvision's Faster R-CNN values where they carry over, and the
    counts scaled down with the images (its ``rpn_pre_nms_top_n_train`` 2000, ``..._test``
    1000, and so on, are for 800-pixel COCO images)."""

    backbone: str = "resnet18"
    num_classes: int = 11  # categories + background
    fpn_channels: int = 128  # torchvision: 256
    anchor_scale: float = 4.0  # anchor side = this x the level's stride
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_fg_iou: float = 0.7
    rpn_bg_iou: float = 0.3
    rpn_batch: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms: int = 1000
    rpn_post_nms_train: int = 500
    rpn_post_nms_test: int = 300
    rpn_nms: float = 0.7
    box_fg_iou: float = 0.5
    box_batch: int = 256  # torchvision: 512
    box_positive_fraction: float = 0.25
    roi_size: int = 7
    box_head_width: int = 512  # torchvision: 1024
    score_threshold: float = 0.05
    box_nms: float = 0.5
    detections_per_image: int = 100
    min_size: float = 1e-3  # boxes narrower than this (pixels) are dropped
    # the normalisation inside the detector (torchvision's image_mean and image_std, in 0..1
    # units of images in [0, 1]): ImageNet's, as its backbones were trained with
    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        """Every size and fraction range-checked in one line before anything is built: a
        record or a ``--detector`` setting cannot ask for terabytes."""
        for name, (low, high) in _BOUNDS.items():
            value = getattr(self, name)
            integral = isinstance(low, int)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (integral and not isinstance(value, int))
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                kind = "a whole number" if integral else "a number"
                raise ConfigError(f"detector setting {name}={value!r}: {kind} in {low}..{high}")
        ratios = self.aspect_ratios
        if (
            not isinstance(ratios, (tuple, list))
            or not 1 <= len(ratios) <= 8
            or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and 0.05 <= r <= 20
                for r in ratios
            )
        ):
            raise ConfigError(
                f"detector setting aspect_ratios={ratios!r}: 1 to 8 numbers in 0.05..20"
            )
        object.__setattr__(self, "aspect_ratios", tuple(float(r) for r in ratios))
        for name in ("image_mean", "image_std"):
            values = getattr(self, name)
            if (
                not isinstance(values, (tuple, list))
                or len(values) != 3
                or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                    for v in values
                )
                or (name == "image_std" and min(values) <= 0)
            ):
                raise ConfigError(
                    f"detector setting {name}={values!r}: 3 numbers in 0..1 (a channel's "
                    "statistic of images in [0, 1])"
                )
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if not isinstance(self.backbone, str):
            raise ConfigError(f"detector setting backbone={self.backbone!r}: a model name")
        if self.rpn_bg_iou > self.rpn_fg_iou:
            raise ConfigError(
                f"detector settings rpn_bg_iou={self.rpn_bg_iou} above rpn_fg_iou={self.rpn_fg_iou}"
            )


#: each size and fraction of :class:`DetectorConfig` and its range (ints: whole numbers); the
#: largest sizes keep the biggest detector under ~1 GB of weights
_BOUNDS: dict[str, tuple[int | float, int | float]] = {
    "num_classes": (2, 10_001),
    "fpn_channels": (8, 512),
    "anchor_scale": (0.5, 64.0),
    "rpn_fg_iou": (0.01, 1.0),
    "rpn_bg_iou": (0.0, 1.0),
    "rpn_batch": (1, 4096),
    "rpn_positive_fraction": (0.01, 1.0),
    "rpn_pre_nms": (1, 20_000),
    "rpn_post_nms_train": (1, 10_000),
    "rpn_post_nms_test": (1, 10_000),
    "rpn_nms": (0.01, 1.0),
    "box_fg_iou": (0.01, 1.0),
    "box_batch": (1, 4096),
    "box_positive_fraction": (0.01, 1.0),
    "roi_size": (1, 14),
    "box_head_width": (8, 2048),
    "score_threshold": (0.0, 1.0),
    "box_nms": (0.01, 1.0),
    "detections_per_image": (1, 1000),
    "min_size": (0.0, 1000.0),
}


#: the DetectorConfig fields a record's ``detector`` may set (the rest come from elsewhere in
#: the record: the backbone is ``model``, the classes and normalisation their own fields)
DETECTOR_FIELDS = {f.name for f in fields(DetectorConfig)} - {
    "backbone",
    "num_classes",
    "image_mean",
    "image_std",
}


def detector_weights_name(backbone: str) -> str:
    """The model part of a detector's weights name, torchvision's spelling:
    ``fasterrcnn_resnet18_fpn``."""
    return f"fasterrcnn_{backbone}_fpn"
