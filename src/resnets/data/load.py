"""The one dispatcher from a data spec to an :class:`ImageSet`.

``load_dataset(spec, split)`` understands:

* ``digits`` (or ``digits:``): scikit-learn's bundled 8x8 handwritten digits (1,797 images, no
  download). A bare name that is also a path here (a folder called ``digits``) is refused as
  ambiguous: ``./digits`` names the folder, ``digits:`` the bundled set.
* ``cifar10`` / ``cifar100``, or ``cifar10:PATH``: the official python-archive layout, from a
  ``.tar.gz`` archive or its extracted folder (see :mod:`resnets.data.cifar`).
* any other value: a folder of class subfolders (``ROOT/<class>/<image>``), or a folder of tar
  shards in the WebDataset layout (see :mod:`resnets.data.stream`).

Folder images are decoded once into a memory-mapped uint8 cache keyed by the files' contents
(see :mod:`resnets.data.folder`), so epochs never decode JPEGs again.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cifar import CIFAR_ARCHIVES, load_cifar
from .folder import RowChoice, folder_fingerprints, load_folder, scan_folder
from .images import resize_short_center_crop
from .imageset import ImageSet
from .stream import (
    STREAM_ABOVE_BYTES,
    estimated_decoded_bytes,
    is_shard_dir,
    stream_folder,
    stream_shards,
)


def _digits_file() -> Path:
    """scikit-learn's digits table (``sklearn/datasets/data/digits.csv.gz``), found without
    importing scikit-learn: its import takes 1.4 s, every training process started on digits
    paid it, and the table is all that is read from it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits data set needs scikit-learn: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DataError(f"{path}: scikit-learn's digits table is missing (reinstall it)")
    return path


def load_digits() -> ImageSet:
    """scikit-learn's digits: 8x8 grayscale, pixel values 0..16 scaled to 0..255. The table is
    read as ``sklearn.datasets.load_digits`` reads it (one row per image: 64 pixels, then the
    label; tests/data compares the two)."""
    path = _digits_file()
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable digits table ({e})") from e
    if table.shape[1] != 65:
        raise DataError(f"{path}: rows of {table.shape[1]} values, not 64 pixels and a label")
    pixels = table[:, :-1].reshape(-1, 8, 8)
    imgs = np.clip(np.rint(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    labels = table[:, -1].astype(np.int64)
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
    (digest,) = _sized_fingerprints(data, image_size)
    return replace(data, images=images, fingerprint=digest, aliases=())


def _sized_fingerprints(data: ImageSet, image_size: int) -> tuple[str, ...]:
    """The fingerprints of an in-memory set resized by :func:`_at_size` (nothing resized)."""
    if not image_size or image_size == data.image_size:
        return (data.fingerprint, *data.aliases)
    return (hashlib.sha256(f"{data.fingerprint}\0size {image_size}".encode()).hexdigest(),)


def spec_paths(spec: str) -> tuple[Path, ...]:
    """The files or folders a data spec reads (none for ``digits``, nor for a named CIFAR set
    in its default place): what no output may land inside."""
    try:
        kind, path = parse_spec(spec)
    except DataError:
        return ()
    if kind == "digits" or path is None:
        return ()
    return (Path(path).expanduser(),)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"cifar10:/p"`` -> ``("cifar10", "/p")``; ``"digits"``; anything else is a folder."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"--data must name a data set or a folder, got {spec!r}")
    head, sep, tail = spec.partition(":")
    named = head.lower() in CIFAR_ARCHIVES or head.lower() == "digits"
    if named and not sep and Path(spec).expanduser().exists():
        raise DataError(
            f"--data {spec}: names both the bundled data set and the path ./{spec} here; give "
            f"./{spec} for your folder, or {head.lower()}: for the bundled set"
        )
    if head.lower() in CIFAR_ARCHIVES:
        return head.lower(), (tail or None) if sep else None
    if head.lower() == "digits" and not tail:
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
    rows: RowChoice | None = None,
) -> ImageSet:
    """Load a data set by spec (see module docstring) as uint8 images.

    ``rows``: the only images the caller will read (see :func:`~resnets.data.folder.load_folder`):
    a folder not decoded before decodes just those. The other sources ignore it.

    ``mode``: ``memory`` decodes everything once (through the on-disk cache for folders);
    ``stream`` decodes per batch in worker processes (``images`` is then a
    :class:`~resnets.data.stream.LazyImages`); ``auto`` streams tar shards, and folders whose
    decoded size would exceed ``$RESNETS_STREAM_ABOVE_GB`` (default 32 GiB).
    """
    found = _locate(
        spec, split, image_size=image_size, skip_bad=skip_bad, mode=mode, workers=workers
    )
    if found.held is not None:
        data = _at_size(found.held, image_size) if found.resize else found.held
        if mode == "memory" and data.streamed:  # tar shards, decoded into memory now
            data.images = data.images[np.arange(len(data))]  # type: ignore[assignment]
        return data
    assert found.folder is not None and found.scanned is not None
    return load_folder(
        found.folder,
        image_size=image_size,
        skip_bad=skip_bad,
        workers=workers,
        cache=cache,
        progress=progress,
        scanned=found.scanned,
        rows=rows,
    )


@dataclass(frozen=True)
class _Located:
    """A data spec found, with nothing decoded: ``held`` is the set when it needs no decoding
    up front (digits and CIFAR at their own size, which ``resize`` says to bring to the size
    asked for; tar shards and streamed folders, decoded per batch); otherwise ``folder`` and
    its ``scanned`` files are to be decoded."""

    held: ImageSet | None = None
    resize: bool = False
    folder: Path | None = None
    scanned: tuple[list[str], list[tuple[Path, int]]] | None = None


def _locate(
    spec: str, split: str, *, image_size: int, skip_bad: bool, mode: str, workers: int | None
) -> _Located:
    """The one dispatch from a spec to its source, shared by the loader and the fingerprints."""
    if mode not in ("auto", "memory", "stream"):
        raise DataError(f"data mode {mode!r}: must be auto, memory or stream")
    kind, path = parse_spec(spec)
    if kind == "digits":
        return _Located(held=load_digits(), resize=True)
    if kind in CIFAR_ARCHIVES:
        return _Located(held=load_cifar(kind, path, split), resize=True)
    root = Path(path or spec)
    procs = workers or 0
    if is_shard_dir(root):
        shards = stream_shards(root, image_size=image_size, skip_bad=skip_bad, processes=procs)
        return _Located(held=shards)
    scanned = scan_folder(root.expanduser().resolve())  # once, for the choice and the loader
    if _streams_folder(mode, scanned[1], image_size):
        streamed = stream_folder(
            root, image_size=image_size, skip_bad=skip_bad, processes=procs, scanned=scanned
        )
        return _Located(held=streamed)
    return _Located(folder=root.expanduser().resolve(), scanned=scanned)


def _streams_folder(mode: str, files: list[tuple[Path, int]], image_size: int) -> bool:
    """Whether ``load_dataset`` streams a scanned folder rather than decoding it into memory."""
    return mode == "stream" or (
        mode == "auto" and estimated_decoded_bytes(files, image_size) > STREAM_ABOVE_BYTES
    )


def data_fingerprints(
    spec: str,
    split: str = "train",
    *,
    image_size: int = 0,
    skip_bad: bool = False,
    mode: str = "auto",
) -> tuple[str, ...]:
    """The fingerprints ``load_dataset`` gives these images at ``image_size`` (its
    ``fingerprint``, then its ``aliases``), found without decoding or resizing the images
    (tar shards that record no image size decode their first, as loading them does).

    Weights and runs record the fingerprint of the images at their training size: this tells
    whether data loaded at another size (multi-scale testing) holds the same images.
    """
    found = _locate(spec, split, image_size=image_size, skip_bad=skip_bad, mode=mode, workers=0)
    if found.held is not None:
        return _sized_fingerprints(found.held, image_size if found.resize else 0)
    assert found.folder is not None and found.scanned is not None
    key, aliases = folder_fingerprints(
        found.folder, found.scanned[1], image_size=image_size, skip_bad=skip_bad
    )
    return (key, *aliases)
