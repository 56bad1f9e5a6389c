"""The one dispatcher from a data spec to an :class:`ImageSet`.

``load_dataset(spec, split)`` understands:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download).
* ``cifar10`` / ``cifar100``, or ``cifar10:PATH``: the official python-archive layout, from a
  ``.tar.gz`` archive or its extracted folder (see :mod:`resnets.data.cifar`).
* any other value: a folder of class subfolders (``ROOT/<class>/<image>``), or a folder of tar
  shards in the WebDataset layout (see :mod:`resnets.data.stream`).

Folder images are decoded once into a memory-mapped uint8 cache keyed by the files' contents
(see :mod:`resnets.data.folder`), so epochs never decode JPEGs again.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cifar import CIFAR_ARCHIVES, load_cifar
from .folder import load_folder, scan_folder
from .images import resize_short_center_crop
from .imageset import ImageSet
from .stream import (
    STREAM_ABOVE_BYTES,
    estimated_decoded_bytes,
    is_shard_dir,
    stream_folder,
    stream_shards,
)


def load_digits() -> ImageSet:
    """scikit-learn's digits: 8x8 grayscale, pixel values 0..16 scaled to 0..255."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise DataError("the digits data set needs scikit-learn: pip install scikit-learn") from e
    d = _load()
    imgs = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int64)
    fp = hashlib.sha256(imgs.tobytes() + labels.tobytes()).hexdigest()
    return ImageSet(imgs, labels, [str(i) for i in range(10)], "digits", fp)


def _at_size(data: ImageSet, image_size: int) -> ImageSet:
    """The in-memory sets (digits, CIFAR) at ``image_size`` when one is asked for: the option is
    applied to every source, never silently ignored (short side resized, centre crop)."""
    if not image_size or image_size == data.image_size:
        return data

    def resized(image: np.ndarray) -> np.ndarray:
        if image.shape[2] == 1:  # grayscale (digits): resized as one plane
            return resize_short_center_crop(image[:, :, 0], image_size)[:, :, None]
        return resize_short_center_crop(image, image_size)

    images = np.stack([resized(np.asarray(im)) for im in data.images])
    digest = hashlib.sha256(f"{data.fingerprint}\0size {image_size}".encode()).hexdigest()
    return replace(data, images=images, fingerprint=digest, aliases=())


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"cifar10:/p"`` -> ``("cifar10", "/p")``; ``"digits"``; anything else is a folder."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"--data must name a data set or a folder, got {spec!r}")
    head, sep, tail = spec.partition(":")
    if head.lower() in CIFAR_ARCHIVES:
        return head.lower(), (tail or None) if sep else None
    if spec.lower() == "digits":
        return "digits", None
    return "folder", spec


def load_dataset(
    spec: str,
    split: str = "train",
    *,
    image_size: int = 0,
    skip_bad: bool = False,
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
    mode: str = "auto",
) -> ImageSet:
    """Load a data set by spec (see module docstring) as uint8 images.

    ``mode``: ``memory`` decodes everything once (through the on-disk cache for folders);
    ``stream`` decodes per batch in worker processes (``images`` is then a
    :class:`~resnets.data.stream.LazyImages`); ``auto`` streams tar shards, and folders whose
    decoded size would exceed ``$RESNETS_STREAM_ABOVE_GB`` (default 32 GiB).
    """
    if mode not in ("auto", "memory", "stream"):
        raise DataError(f"data mode {mode!r}: must be auto, memory or stream")
    kind, path = parse_spec(spec)
    if kind == "digits":
        return _at_size(load_digits(), image_size)
    if kind in CIFAR_ARCHIVES:
        return _at_size(load_cifar(kind, path, split), image_size)
    root = Path(path or spec)
    procs = workers or 0
    if is_shard_dir(root):
        data = stream_shards(root, image_size=image_size, skip_bad=skip_bad, processes=procs)
        if mode == "memory":
            data.images = data.images[np.arange(len(data))]  # type: ignore[assignment]
        return data
    scanned = scan_folder(root.expanduser().resolve())  # once, for the choice and the loader
    if mode == "stream" or (
        mode == "auto" and estimated_decoded_bytes(scanned[1], image_size) > STREAM_ABOVE_BYTES
    ):
        return stream_folder(
            root, image_size=image_size, skip_bad=skip_bad, processes=procs, scanned=scanned
        )

    return load_folder(
        Path(path or spec),
        image_size=image_size,
        skip_bad=skip_bad,
        workers=workers,
        cache=cache,
        progress=progress,
        scanned=scanned,
    )
