"""Class-folder data sets decoded once into a memory-mapped uint8 cache.

The cache key is a SHA-256 over every file's relative path and bytes plus the decode settings,
so a changed, added or removed image gives a new cache, and an unchanged folder is never decoded
again. The cache lives in ``$RESNETS_CACHE`` (default ``~/.cache/resnets/decoded``) as
``<key>/images.u8`` (raw ``N x H x W x 3``) and ``<key>/meta.json``; it is written to a temporary
folder and renamed into place, so an interrupted build leaves no half cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataError
from ..io import env_folder, file_digest, fsync_tree, progress_bar
from .images import decode_image, resize_short_center_crop
from .imageset import ImageSet

#: which rows of a folder a caller will read, from every file's label and the class names
RowChoice = Callable[[np.ndarray, list[str]], np.ndarray]

CACHE_ENV = "RESNETS_CACHE"
CACHE_VERSION = 1


def cache_root() -> Path:
    return env_folder(CACHE_ENV, Path.home() / ".cache" / "resnets" / "decoded")


def scan_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Sorted class names and ``(path, label)`` of every non-hidden file below each class folder.

    Links are followed, but an image is loaded once: a class folder that links to the root or
    above it, folders that link into each other (a loop), or two paths to one file are refused
    with one line naming them, rather than loading an image twice or under two labels."""
    if not root.exists():
        raise DataError(f"{root}: no such data folder")
    if not root.is_dir():
        raise DataError(
            f"{root}: not a folder (expected ROOT/<class>/<image> or a known data set name)"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class subfolders (expected ROOT/<class>/<image>)")
    real_root = root.resolve()
    files: list[tuple[Path, int]] = []
    seen: dict[str, str] = {}  # each file's real path -> the path it was first found at
    for label, c in enumerate(classes):
        real = (root / c).resolve()
        if real == real_root or real in real_root.parents:
            raise DataError(
                f"{root / c}: a link to {real}, which holds the data root: its images would "
                "load under two labels"
            )
        # paths as strings until the end: pathlib's per-path parsing was 2 of the 3.4 s that
        # scanning CIFAR-10's 50,000 files took on Zen 3
        found: list[tuple[str, str]] = []
        visited: set[str] = set()
        for folder, dirs, names in os.walk(root / c, followlinks=True):
            real_here = os.path.realpath(folder)
            if real_here in visited:
                raise DataError(
                    f"{folder}: a link to a folder already read ({real_here}): a loop, or a "
                    "second path to the same images"
                )
            visited.add(real_here)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for n in sorted(names):
                if n.startswith("."):
                    continue
                path = os.path.join(folder, n)
                # a file that is no link lies where its folder really is: only links need
                # resolving (resolving each of 50,000 paths took 5 s of a CIFAR-10 load)
                real = os.path.realpath(path) if os.path.islink(path) else f"{real_here}/{n}"
                found.append((path, real))
        found = [(path, real) for path, real in found if os.path.isfile(path)]
        if not found:
            raise DataError(f"{root / c}: empty class folder (class {c!r} has no files)")
        for path, real in found:
            first = seen.setdefault(real, path)
            if first != path:
                raise DataError(
                    f"{path}: the same file as {first} (a link): an image may appear once"
                )
        # in pathlib's order (part by part), which is not the strings' order ("a-b" < "a/b")
        found.sort(key=lambda pair: pair[0].split(os.sep))
        files.extend((Path(path), label) for path, _ in found)
    return classes, files


def relative_names(root: Path, paths: list[Path]) -> list[str]:
    """Each of ``paths`` (below ``root``) relative to it, with forward slashes: what
    ``p.relative_to(root).as_posix()`` gives, at a fraction of its cost on 50,000 files."""
    prefix = os.path.join(str(root), "")
    if os.sep == "/" and all(str(p).startswith(prefix) for p in paths):
        return [str(p)[len(prefix) :] for p in paths]
    return [p.relative_to(root).as_posix() for p in paths]


def _decode_one(args: tuple[str, int]) -> tuple[np.ndarray | None, str | None]:
    path, size = args
    try:
        arr = decode_image(path)
    except DataError as e:
        return None, str(e)
    if size:
        arr = resize_short_center_crop(arr, size)
    return arr, None


def _hash_files(root: Path, files: list[tuple[Path, int]], *settings: dict) -> list[str]:
    """One fingerprint per ``settings`` (each file's bytes are read once for all of them)."""
    hashes = [hashlib.sha256(json.dumps(x, sort_keys=True).encode()) for x in settings]
    names = relative_names(root, [p for p, _ in files])
    for (p, label), rel in zip(files, names):
        name = f"{rel}\0{label}\0".encode()
        try:
            digest = bytes.fromhex(file_digest(p))  # in chunks: a 3 GB file is not read whole
        except OSError as e:
            raise DataError(f"{p}: cannot read file ({e.strerror or e})") from None
        for h in hashes:
            h.update(name)
            h.update(digest)
    return [h.hexdigest() for h in hashes]


def _probe_size(files: list[tuple[Path, int]], sample: int = 64) -> int:
    """0 if the sampled images all have one square size (keep it), else 256 (resize)."""
    return 0 if _native_square(files, sample) else 256


def _native_square(files: list[tuple[Path, int]], sample: int = 64) -> int:
    """The side of the sampled images when they all have one square size, else 0."""
    sizes = Counter()
    step = max(1, len(files) // sample)
    for p, _ in files[::step]:
        try:
            with Image.open(p) as im:
                sizes[im.size] += 1
        except Exception:  # bad files are reported by the decode pass
            continue
    if len(sizes) == 1:
        ((w, h),) = sizes
        if w == h:
            return w
    return 0


def folder_fingerprints(
    root: Path, files: list[tuple[Path, int]], *, image_size: int = 0, skip_bad: bool = False
) -> tuple[str, tuple[str, ...]]:
    """The fingerprint (and cache key) of the scanned folder's images decoded at
    ``image_size``, and its aliases; the files are read and hashed, nothing is decoded.

    The fingerprint hashes the decode settings and every file's relative path, label and bytes,
    so the same files give another fingerprint at another size.
    """
    return _fingerprints(root, files, image_size, _native_square(files), skip_bad)


def _fingerprints(
    root: Path, files: list[tuple[Path, int]], image_size: int, native: int, skip_bad: bool
) -> tuple[str, tuple[str, ...]]:
    size = image_size or (0 if native else 256)
    settings = {"v": CACHE_VERSION, "size": size, "skip_bad": skip_bad}
    if native and size in (0, native):
        # the native size asked for by number (32) or by 0 decodes the same images: each
        # fingerprint is an alias of the other (weights trained with either match the data)
        other = {**settings, "size": native if size == 0 else 0}
        key, alias = _hash_files(root, files, settings, other)
        return key, (alias,)
    (key,) = _hash_files(root, files, settings)
    return key, ()


def load_folder(
    root: Path,
    *,
    image_size: int = 0,
    skip_bad: bool = False,
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
    scanned: tuple[list[str], list[tuple[Path, int]]] | None = None,
    rows: RowChoice | None = None,
) -> ImageSet:
    """Decode a class-folder data set (through the cache) to uint8 RGB.

    ``scanned``: the folder's ``scan_folder`` result, when the caller has it already.
    ``rows``: the only images the caller will read, as a function of every file's label and
    the class names (a held-out split). When the folder's decoded cache is not there (and
    ``skip_bad`` is off, so no file can drop out and move the others), only those images are
    decoded, and not cached: the set's ``images`` are then :class:`DecodedRows`, which refuse
    any other row. Scoring 5,000 held-out images of CIFAR-10's 50,000 decodes 5,000.

    Args:
        root: folder with one subfolder per class.
        image_size: resize the shorter side to this and center-crop a square; 0 keeps the native
            size when every image has the same square size, and uses 256 otherwise.
        skip_bad: skip unreadable files (and list them in ``ImageSet.skipped``) instead of failing.
        workers: decoding processes (default: all cores).
        cache: read/write the decoded cache.
    """
    root = Path(root).expanduser().resolve()
    classes, files = scanned or scan_folder(root)
    native = _native_square(files)
    key, aliases = _fingerprints(root, files, image_size, native, skip_bad)
    size = image_size or (0 if native else 256)
    cdir = cache_root() / key
    if cache and (cdir / "meta.json").is_file():
        try:
            return replace(_open_cache(cdir, root), aliases=aliases)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(cdir, ignore_errors=True)  # a damaged cache is rebuilt

    n = len(files)
    labels_all = np.array([label for _, label in files], dtype=np.int64)
    chosen = np.unique(np.asarray(rows(labels_all, classes), dtype=np.int64)) if rows else []
    if len(chosen) and not skip_bad:
        if chosen[0] < 0 or chosen[-1] >= n:
            raise IndexError(f"{root}: rows outside its {n} images")
        decoded, errors = _decode_files(root, [files[i] for i in chosen], size, workers, progress)
        if errors:
            _refuse_bad(errors)
        rel = relative_names(root, [p for p, _ in files])
        images = DecodedRows(n, chosen, np.stack(decoded))  # type: ignore[arg-type]
        return ImageSet(images, labels_all, classes, root.name, key, rel, [], aliases)
    decoded, errors = _decode_files(root, files, size, workers, progress)
    if errors and not skip_bad:
        _refuse_bad(errors)
    keep = [i for i in range(n) if decoded[i] is not None]
    if not keep:
        raise DataError(f"{root}: no readable images")
    shapes = Counter(decoded[i].shape for i in keep)  # type: ignore[union-attr]
    if len(shapes) > 1:
        raise DataError(
            f"{root}: images have different sizes {sorted(shapes)[:3]}; pass --image-size"
        )
    (shape,) = shapes
    labels = np.array([files[i][1] for i in keep], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(classes))
    for c, k in zip(classes, counts):
        if k == 0:
            raise DataError(f"{root / c}: no readable images in class {c!r}")
    rel = relative_names(root, [files[i][0] for i in keep])
    skipped = [e for e in errors]
    meta = {
        "version": CACHE_VERSION,
        "root": str(root),
        "shape": [len(keep), *shape],
        "classes": classes,
        "labels": labels.tolist(),
        "paths": rel,
        "skipped": skipped,
    }
    if not cache:
        images = np.stack([decoded[i] for i in keep])  # type: ignore[misc]
        return ImageSet(images, labels, classes, root.name, key, rel, skipped, aliases)

    cdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=cdir.parent))
    try:
        # written with plain writes, not through a memory map: a full disk is then an
        # OSError (one line), not a SIGBUS, and the half-built folder is removed below
        with open(tmp / "images.npy", "wb") as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": (len(keep), *shape)}
            np.lib.format.write_array_header_1_0(f, header)
            for i in keep:
                f.write(np.ascontiguousarray(decoded[i], dtype=np.uint8).tobytes())
            f.flush()
            os.fsync(f.fileno())
        (tmp / "meta.json").write_text(json.dumps(meta))
        fsync_tree(tmp)
        try:
            os.replace(tmp, cdir)
        except OSError:  # another process built the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return replace(_open_cache(cdir, root), aliases=aliases)


def _decode_files(
    root: Path, files: list[tuple[Path, int]], size: int, workers: int | None, progress: bool
) -> tuple[list[np.ndarray | None], list[str]]:
    """Every file decoded at ``size`` (None where it cannot be: its error is listed), by
    ``workers`` processes (default: all cores) when there are enough files to pay for them."""
    n = len(files)
    workers = max(1, workers or os.cpu_count() or 1)
    decoded: list[np.ndarray | None] = [None] * n
    errors: list[str] = []
    jobs = [(str(p), size) for p, _ in files]
    bar = None
    if progress:
        bar = progress_bar(total=n, desc=f"decode {root.name}", unit="img", leave=False)
    if workers > 1 and n > 256:
        with ProcessPoolExecutor(workers) as ex:
            results = ex.map(_decode_one, jobs, chunksize=256)
            for i, (arr, err) in enumerate(results):
                decoded[i] = arr
                if err:
                    errors.append(err)
                if bar:
                    bar.update(1)
    else:
        for i, job in enumerate(jobs):
            decoded[i], err = _decode_one(job)
            if err:
                errors.append(err)
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    return decoded, errors


def _refuse_bad(errors: list[str]) -> None:
    """One line: the first unreadable file, and how many more there are."""
    more = f" (and {len(errors) - 1} more bad files; --skip-bad skips them)" if errors[1:] else ""
    raise DataError(errors[0] + more)


class DecodedRows:
    """``(N, S, S, C)`` uint8 images of which only ``rows`` were decoded (see
    :func:`load_folder`'s ``rows``): indexable like the array it stands for, at those rows
    only; any other row is an error, never a black image."""

    def __init__(self, n: int, rows: np.ndarray, decoded: np.ndarray) -> None:
        if len(rows) != len(decoded):
            raise ValueError("one decoded image per row")
        self.rows = rows  # sorted, unique
        self.decoded = decoded
        self.shape = (n, *decoded.shape[1:])
        self.dtype = decoded.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, idx: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(images, bad)`` of the rows ``idx``, as ``LazyImages.take`` gives them (nothing
        is bad: the rows were decoded, or the load failed naming the file)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        at = np.searchsorted(self.rows, idx)
        ok = (at < len(self.rows)) & (self.rows[np.minimum(at, len(self.rows) - 1)] == idx)
        if not ok.all():
            raise IndexError(f"row {int(idx[~ok][0])} was not decoded (only the rows chosen)")
        return self.decoded[at], np.zeros(len(idx), bool)

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            return self.take([int(idx)])[0][0]
        if isinstance(idx, slice):
            idx = np.arange(self.shape[0])[idx]
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return self.take(idx)[0]


def _open_cache(cdir: Path, root: Path) -> ImageSet:
    meta = json.loads((cdir / "meta.json").read_text())
    images = np.load(cdir / "images.npy", mmap_mode="r")
    if list(images.shape) != meta["shape"]:
        raise ValueError("cache shape mismatch")
    labels = np.asarray(meta["labels"], dtype=np.int64)
    return ImageSet(
        images, labels, meta["classes"], root.name, cdir.name, meta["paths"], meta["skipped"]
    )
