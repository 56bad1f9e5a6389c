"""The in-memory data set every loader returns. Imports nothing of resnets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class DecodedOnDemand(Protocol):
    """Images decoded per batch (``resnets.data.stream.LazyImages``): indexable like the
    array it stands for, with its ``shape``."""

    shape: tuple[int, ...]

    def __getitem__(self, index: Any) -> np.ndarray: ...


def is_streamed(images: np.ndarray | DecodedOnDemand) -> bool:
    """Whether ``images`` are decoded per batch rather than held decoded in memory."""
    return not isinstance(images, np.ndarray)


@dataclass
class ImageSet:
    """Images as one ``(N, H, W, C)`` uint8 array (possibly memory-mapped), or decoded per
    batch when streamed (:attr:`streamed`), with integer labels."""

    images: np.ndarray | DecodedOnDemand
    labels: np.ndarray
    classes: list[str]
    name: str
    fingerprint: str
    paths: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: other fingerprints of these very images (the native size named by number or by 0)
    aliases: tuple[str, ...] = ()

    def is_data(self, fingerprint: str | None) -> bool:
        """Whether ``fingerprint`` (recorded by weights or a run) names these images."""
        return fingerprint is not None and fingerprint in (self.fingerprint, *self.aliases)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def streamed(self) -> bool:
        """True when the images are decoded per batch (tar shards, large folders)."""
        return is_streamed(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])
