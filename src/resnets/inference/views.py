"""What a model is shown at test time, built from the record of its weights: the one place
where decoded images become the normalised tensors a model takes. ``predict``, ``serve``,
``explain``, ``eval``, ``calibrate``, ``weights card``, export and int8 calibration all call
:class:`TestViews` (through ``LoadedModel.views``), so a served image and a scored one are the
same tensor. Its test-time choices (one centre view, mirrored, ten crops, several scales) are a
:class:`TestTime`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.augment import center_crop, normalize_nchw, ten_crop, to_float_nchw
from ..data.images import resize_short_center_crop
from ..errors import ConfigError, DataError

# luminance weights (ITU-R BT.601), as Pillow's "L": a colour file for a grayscale model
LUMINANCE = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class TestTime:
    """How a model is tested: one centre view (``tta="flip"`` adds its mirror, averaging
    logits), the paper's 10-crop testing (section 3.4), or its fully-convolutional
    multi-scale testing over ``scales`` (Table 4). ``tta="auto"`` and ``temperature=None``
    take what the weights' record says."""

    __test__ = False  # a "Test..." name, not a test class: pytest's collector leaves it alone
    ten_crop: bool = False
    scales: tuple[int, ...] = ()
    tta: str = "auto"
    temperature: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
        if self.ten_crop and self.scales:
            raise ConfigError("ten_crop and scales are two different tests: pick one")
        if self.tta not in ("none", "flip", "auto"):
            raise ConfigError(f"tta={self.tta!r}: must be 'none', 'flip' or 'auto'")

    def for_record(self, tta: str, temperature: float | None) -> TestTime:
        """The choices with "auto" and None replaced by the record's ``tta``/``temperature``."""
        return TestTime(
            self.ten_crop,
            self.scales,
            tta if self.tta == "auto" else self.tta,
            (temperature or 1.0) if self.temperature is None else self.temperature,
        )


#: the largest side an image may have for weights that keep the native size (image_size 0):
#: the bound every size in resnets has (the paper's largest test scale is 640)
MAX_NATIVE_SIDE = 1024


def check_native_side(arr: np.ndarray, label: str, taker: str) -> None:
    """Refuse, in one line, a decoded ``(H, W, C)`` image over MAX_NATIVE_SIDE a side for a
    model that takes images at their own size (``taker`` says which, for the message)."""
    if max(arr.shape[:2]) > MAX_NATIVE_SIDE:
        raise DataError(
            f"{label}: {arr.shape[1]}x{arr.shape[0]} pixels, and {taker} images at their own "
            f"size, up to {MAX_NATIVE_SIDE} px a side; resize it first"
        )


@dataclass(frozen=True)
class TestViews:
    """The preprocessing a set of weights was trained with. Pixel statistics are in 0..255
    units; ``image_size`` is the short side an image file is resized to (0: as decoded),
    ``eval_size`` the centre crop (0: none), ``pad`` the training translation's padding (the
    ten crops of an image no larger than the view are taken from it padded)."""

    __test__ = False  # a "Test..." name, not a test class: pytest's collector leaves it alone
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int = 0
    eval_size: int = 0
    in_chans: int = 3
    pad: int = 4
    _stats: tuple[Tensor, Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stats = (torch.tensor(self.mean), torch.tensor(self.std))
        object.__setattr__(self, "_stats", stats)

    # -- one decoded image file (predict, serve, explain)
    def image(self, arr: np.ndarray, label: str = "<image>") -> tuple[np.ndarray, Tensor]:
        """A decoded ``(H, W, 3)`` uint8 image -> ``(view, x)``: the uint8 view the model sees
        (resized and centre-cropped as in training; ``(H, W, C)``) and its normalised
        ``(1, C, H, W)`` float tensor."""
        if self.image_size:
            arr = resize_short_center_crop(arr, self.image_size)
        else:  # a native-size model: the input is bounded
            check_native_side(arr, label, "these weights take")
        if self.in_chans == 1 and not (arr == arr[..., :1]).all():
            raise DataError(f"{label}: a colour image for a model of grayscale images (1 channel)")
        if self.in_chans == 1:
            arr = np.clip(np.rint(arr.astype(np.float32) @ LUMINANCE), 0, 255).astype(np.uint8)
            arr = arr[..., None]
        arr = np.require(arr, requirements=["C", "W"])  # torch wants a writable array
        x = to_float_nchw(torch.from_numpy(arr)[None], *self._stats)
        view = arr
        if self.eval_size:
            x = center_crop(x, self.eval_size)
            h, w = arr.shape[:2]
            s = self.eval_size
            view = (
                arr[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
                if min(h, w) >= s
                else resize_short_center_crop(arr, s)
            )
        return np.ascontiguousarray(view), x.contiguous()

    # -- a batch of a decoded data set (eval, calibrate, card, export checks, int8 calibration)
    def centre(self, x: Tensor, label: str = "the data") -> Tensor:
        """Decoded uint8 ``(N, H, W, C)`` images -> the normalised centre view ``(N, C, h, w)``
        (channels_last memory)."""
        if x.shape[-1] != self.in_chans:
            raise ConfigError(f"{label}: {x.shape[-1]} channels, the model takes {self.in_chans}")
        xf = to_float_nchw(x, *self._stats)
        if self.eval_size:
            xf = center_crop(xf, self.eval_size)
        return xf.contiguous(memory_format=torch.channels_last)

    def ten_crops(self, x: Tensor) -> list[Tensor]:
        """The ten views of the paper's 10-crop testing (corners, centre and their mirrors)."""
        size = self.eval_size or int(x.shape[1])
        views = ten_crop(x.permute(0, 3, 1, 2), size, pad=self.pad)  # uint8 (10, N, C, s, s)
        return [
            normalize_nchw(v, *self._stats).contiguous(memory_format=torch.channels_last)
            for v in views
        ]

    def scaled(self, x: Tensor, sides: Sequence[int]) -> list[Tensor]:
        """Each whole image resized to every side in ``sides``, and mirrored."""
        xf = to_float_nchw(x, *self._stats)
        out = []
        for side in sides:
            xs = F.interpolate(
                xf, size=(side, side), mode="bilinear", align_corners=False, antialias=True
            ).contiguous(memory_format=torch.channels_last)
            out += [xs, xs.flip(3)]
        return out
