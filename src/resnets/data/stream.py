"""Data too large to decode into memory: images decoded on demand, per batch, by worker processes.

Two sources, both read without decoding everything first:

* a folder of class folders (``ROOT/<class>/<image>``), streamed instead of cached
  (``data_mode=stream``, or automatically when its decoded size would exceed
  :data:`STREAM_ABOVE_BYTES`);
* tar shards in the WebDataset layout (``DIR/*.tar``; each sample is a group of members sharing a
  key: ``<key>.jpg`` (or png/webp/...) and ``<key>.cls``, the label as decimal text), as written
  by :func:`write_shards` (``resnets data shard``) or by the ``webdataset`` library's
  ``ShardWriter``. Shards are indexed once (member offsets, read from the tar headers only) and
  read by offset, so each rank of a multi-node job reads just the samples of its batches, and
  batches keep the seeded (seed, epoch, step) order that makes resumption exact.

:class:`LazyImages` is the array-like both return: ``images[idx]`` decodes those images in a pool
of processes, JPEGs with the fastest installed decoder (simplejpeg, else PyTurboJPEG, else
Pillow; anything the fast decoders cannot do exactly - EXIF orientation, CMYK, progressive
oddities - falls back to Pillow's full path in :func:`~resnets.data.images.decode_image`).
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import shutil
import tarfile
import tempfile
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataError
from ..io import atomic_write_bytes, file_digest, partial_folder, progress_bar, replace_folder
from .folder import _probe_size, relative_names, scan_folder
from .images import decode_image, resize_short_center_crop
from .imageset import ImageSet

#: Folders whose decoded size would exceed this are streamed by ``data_mode=auto``.
STREAM_ABOVE_BYTES = int(os.environ.get("RESNETS_STREAM_ABOVE_GB", "32")) << 30
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "ppm", "tif", "tiff", "gif")

# ------------------------------------------------------------------------------------------
# decoding


DECODERS = ("simplejpeg", "turbojpeg", "pillow")


def _load_decoder(name: str) -> Any:
    if name == "simplejpeg":
        import simplejpeg

        return simplejpeg
    if name == "turbojpeg":
        from turbojpeg import TJPF_RGB, TurboJPEG

        return (TurboJPEG(), TJPF_RGB)  # raises when the libturbojpeg library is missing
    return None


_LOADED: dict[str, Any] = {}


def _decoder(name: str) -> Any:
    if name not in _LOADED:
        _LOADED[name] = _load_decoder(name)
    return _LOADED[name]


def jpeg_decoder() -> str:
    """The JPEG decoder to use: ``$RESNETS_JPEG_DECODER`` if set (simplejpeg, turbojpeg or
    pillow), else the first of simplejpeg, PyTurboJPEG that is installed, else Pillow."""
    want = os.environ.get("RESNETS_JPEG_DECODER", "").strip().lower()
    if want:
        if want not in DECODERS:
            raise DataError(f"RESNETS_JPEG_DECODER={want!r}: must be one of {list(DECODERS)}")
        try:
            _decoder(want)
        except Exception as e:
            raise DataError(f"RESNETS_JPEG_DECODER={want}: not usable here ({e})") from None
        return want
    for name in DECODERS[:2]:
        try:
            _decoder(name)
            return name
        except Exception:
            continue
    return "pillow"


def _needs_pillow(data: bytes) -> bool:
    # EXIF (orientation) and Adobe (CMYK/YCCK) segments sit in the header; Pillow handles them
    head = data[:65536]
    return b"Exif\x00\x00" in head or b"Adobe" in head


def decode_bytes(data: bytes, name: str, size: int = 0, decoder: str | None = None) -> np.ndarray:
    """Decode one image's bytes to uint8 RGB ``(H, W, 3)``, resized/cropped to ``size`` if > 0.

    JPEGs go through ``decoder`` (default :func:`jpeg_decoder`); every other format, and every
    JPEG the fast decoder refuses or that carries EXIF/Adobe segments, through
    :func:`decode_image` (which raises :class:`DataError` naming ``name``).
    """
    arr = None
    kind = decoder or jpeg_decoder()
    if kind != "pillow" and data[:3] == b"\xff\xd8\xff" and not _needs_pillow(data):
        try:
            if kind == "simplejpeg":
                arr = _decoder("simplejpeg").decode_jpeg(data, colorspace="RGB")
            elif kind == "turbojpeg":
                tj, fmt = _decoder("turbojpeg")
                arr = tj.decode(data, pixel_format=fmt)
        except Exception:
            arr = None  # corrupt or unusual: Pillow decides, with a proper error
        if arr is not None and (arr.ndim != 3 or arr.shape[2] != 3):
            arr = None
    if arr is None:
        arr = decode_image(data, name)
    if size:
        arr = resize_short_center_crop(arr, size)
    return np.ascontiguousarray(arr)


# ------------------------------------------------------------------------------------------
# records: where each sample's bytes are


@dataclass(frozen=True)
class Record:
    """One sample's bytes: a whole file (``offset < 0``) or a slice of a tar shard."""

    path: str
    offset: int = -1
    length: int = -1
    name: str = ""  # for error messages (shard:member)

    def read(self) -> bytes:
        try:
            if self.offset < 0:
                return Path(self.path).read_bytes()
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(self.length)
        except OSError as e:
            raise DataError(f"{self.name or self.path}: cannot read ({e.strerror or e})") from None
        if len(data) != self.length:
            raise DataError(
                f"{self.name}: shard truncated (read {len(data)} of {self.length} bytes)"
            )
        return data


def _decode_record(args: tuple[Record, int, bool, str]) -> np.ndarray | None:
    rec, size, skip_bad, decoder = args
    try:
        return decode_bytes(rec.read(), rec.name or rec.path, size, decoder)
    except DataError:
        if skip_bad:
            return None
        raise


class LazyImages:
    """A read-only uint8 ``(N, S, S, 3)`` array-like that decodes on indexing.

    ``images[i]`` gives one image, ``images[idx]`` (an integer array) a batch, decoded by
    ``processes`` worker processes (0: one per core) when the batch is large enough to pay for
    them. Unreadable samples raise :class:`DataError` naming them, or with ``skip_bad`` come
    back black, are listed in ``bad_names`` (found only when first decoded) and are marked in
    :meth:`take` with their positions in the batch, so that training can leave them out of
    the loss (see ``BatchStream``).
    """

    lazy = True
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(
        self,
        records: list[Record],
        size: int,
        *,
        processes: int = 0,
        skip_bad: bool = False,
        decoder: str | None = None,
    ) -> None:
        if size <= 0:
            raise DataError("streamed images need a fixed decoded size (set image_size)")
        self.records = records
        self.size = int(size)
        self.processes = processes or os.cpu_count() or 1
        self.skip_bad = skip_bad
        self.decoder = decoder or jpeg_decoder()
        self.bad = 0
        self.bad_names: list[str] = []
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # the data threads share one pool

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.records), self.size, self.size, 3)

    def __len__(self) -> int:
        return len(self.records)

    def _decode_many(self, recs: list[Record]) -> list[np.ndarray | None]:
        jobs = [(r, self.size, self.skip_bad, self.decoder) for r in recs]
        if self.processes <= 1 or len(jobs) < 8:
            return [_decode_record(j) for j in jobs]
        with self._lock:
            if self._pool is None:
                # forkserver/spawn: safe with the training process's threads (fork is not)
                ctx = mp.get_context("forkserver" if os.name == "posix" else "spawn")
                self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx)
        chunk = max(1, len(jobs) // (4 * self.processes))
        return list(self._pool.map(_decode_record, jobs, chunksize=chunk))

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            return self[np.array([int(idx)])][0]
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return self.take(idx)[0]

    def take(self, idx: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(images, bad)``: the decoded batch of ``idx`` and a boolean mask of the samples
        that could not be decoded (black in ``images``; only possible with ``skip_bad``)."""
        idx = np.asarray(idx)
        out = np.zeros((len(idx), self.size, self.size, 3), np.uint8)
        bad = np.zeros(len(idx), bool)
        recs = [self.records[int(i)] for i in idx]
        for j, arr in enumerate(self._decode_many(recs)):
            if arr is None:
                bad[j] = True
                self.bad += 1
                name = recs[j].name or str(recs[j].path)
                if name not in self.bad_names:
                    self.bad_names.append(name)
            else:
                out[j] = arr
        return out, bad

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass


# ------------------------------------------------------------------------------------------
# folders


def stream_folder(
    root: str | Path,
    *,
    image_size: int = 0,
    skip_bad: bool = False,
    processes: int = 0,
    scanned: tuple[list[str], list[tuple[Path, int]]] | None = None,
) -> ImageSet:
    """A class-folder data set whose images are decoded per batch (nothing decoded up front).

    The fingerprint covers the relative paths, sizes and modification times (not the bytes:
    reading every byte is what streaming avoids).
    """

    root = Path(root).expanduser().resolve()
    classes, files = scanned or scan_folder(root)
    size = image_size or _probe_size(files)
    if size == 0:  # uniform square images: their native size
        with Image.open(files[0][0]) as im:
            size = im.size[0]
    h = hashlib.sha256(f"stream\0{size}".encode())
    rel = relative_names(root, [p for p, _ in files])
    for (p, label), name in zip(files, rel):
        st = p.stat()
        h.update(f"{name}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    recs = [Record(str(p), name=str(p)) for p, _ in files]
    labels = np.array([lab for _, lab in files], dtype=np.int64)
    images = LazyImages(recs, size, processes=processes, skip_bad=skip_bad)
    return ImageSet(images, labels, classes, root.name, h.hexdigest(), rel, [])


def estimated_decoded_bytes(files: list[tuple[Path, int]], image_size: int) -> int:
    """Bytes the decoded cache of scanned folder files would take (count x size x size x 3)."""

    size = image_size or _probe_size(files) or 256
    return len(files) * size * size * 3


# ------------------------------------------------------------------------------------------
# WebDataset-layout tar shards

SHARD_META = "dataset.json"


def is_shard_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any(p.glob("*.tar"))


def _split_key(member: str) -> tuple[str, str]:
    """WebDataset convention: the key is the path up to the first dot of the last component."""
    d, _, base = member.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{d}/{stem}" if d else stem), ext.lower()


def index_shard(path: Path) -> list[tuple[str, Record | None, int | None]]:
    """(key, image record, label) of every sample of one shard, from its tar headers."""
    samples: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    try:
        with tarfile.open(path, mode="r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                key, ext = _split_key(m.name)
                if key not in samples:
                    samples[key] = {}
                    order.append(key)
                s = samples[key]
                if ext in IMAGE_EXTS:
                    s["image"] = Record(str(path), m.offset_data, m.size, f"{path.name}:{m.name}")
                elif ext in ("cls", "label", "cls.txt"):
                    f = tf.extractfile(m)
                    try:
                        text = f.read(64).decode().strip() if f else ""
                    except UnicodeDecodeError:
                        raise DataError(f"{path.name}:{m.name}: label is not UTF-8 text") from None
                    try:
                        s["label"] = int(text)
                    except ValueError:
                        raise DataError(
                            f"{path.name}:{m.name}: label {text!r} is not an integer"
                        ) from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable tar shard ({e})") from None
    return [(k, samples[k].get("image"), samples[k].get("label")) for k in order]


def stream_shards(
    root: str | Path, *, image_size: int = 0, skip_bad: bool = False, processes: int = 0
) -> ImageSet:
    """A data set of WebDataset-layout tar shards in ``root`` (``*.tar``, sorted by name).

    Class names come from ``root/dataset.json`` (written by :func:`write_shards`) when present,
    else they are the label numbers. Samples without an image or a label are an error naming them.
    """
    root = Path(root).expanduser().resolve()
    shards = sorted(root.glob("*.tar"))
    if not shards:
        raise DataError(f"{root}: no .tar shards")
    meta: dict[str, Any] = read_shard_meta(root) if (root / SHARD_META).is_file() else {}
    recs: list[Record] = []
    labels: list[int] = []
    names: list[str] = []
    h = hashlib.sha256(b"shards")
    for sp in shards:
        st = sp.stat()
        h.update(f"{sp.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        for key, rec, label in index_shard(sp):
            if rec is None or label is None:
                what = "image" if rec is None else "label (.cls)"
                raise DataError(f"{sp.name}: sample {key!r} has no {what}")
            recs.append(rec)
            labels.append(label)
            names.append(f"{sp.name}:{key}")
    if not labels:
        empty = ", ".join(sp.name for sp in shards[:3]) + (" ..." if len(shards) > 3 else "")
        raise DataError(f"{root}: the shards hold no sample ({empty})")
    lab = np.array(labels, dtype=np.int64)
    classes = meta.get("classes") or [str(i) for i in range(int(lab.max()) + 1)]
    if lab.min() < 0 or lab.max() >= len(classes):
        raise DataError(f"{root}: labels outside 0..{len(classes) - 1}")
    counts = Counter(lab.tolist())
    for i, c in enumerate(classes):
        if counts.get(i, 0) == 0:
            raise DataError(f"{root}: no samples of class {c!r}")
    size = image_size or int(meta.get("image_size", 0))
    if not size:
        first = decode_bytes(recs[0].read(), recs[0].name)
        size = first.shape[0] if first.shape[0] == first.shape[1] else 256
    h.update(f"{size}".encode())
    images = LazyImages(recs, size, processes=processes, skip_bad=skip_bad)
    return ImageSet(images, lab, list(classes), root.name, h.hexdigest(), names, [])


def write_shards(
    src: str | Path,
    out: str | Path,
    *,
    shard_size: int = 10000,
    seed: int | None = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Pack a class-folder data set into WebDataset tar shards (the original file bytes).

    Samples are shuffled with ``seed`` (None keeps folder order) so that sequential readers of
    the shards see mixed classes. Each shard is written to a temporary file and renamed, and
    ``dataset.json`` (classes, counts, each shard's SHA-256) is written last: a folder with a
    ``dataset.json`` is complete.
    """

    src = Path(src).expanduser().resolve()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: not empty; shards are written into a new folder")
    if shard_size < 1:
        raise DataError(f"shard_size={shard_size}: must be >= 1")
    classes, files = scan_folder(src)
    order = np.arange(len(files))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(files))
    final, out = out, partial_folder(out)  # built aside, renamed whole at the end
    try:
        meta = _write_shards(src, out, classes, files, order, shard_size, seed, progress)
        replace_folder(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return meta


def _write_shards(
    src: Path,
    out: Path,
    classes: list[str],
    files: list[tuple[Path, int]],
    order: np.ndarray,
    shard_size: int,
    seed: int | None,
    progress: bool,
) -> dict[str, Any]:
    """The shards and ``dataset.json`` of :func:`write_shards`, into the folder ``out``."""
    shard_info = []
    bar = None
    if progress:
        bar = progress_bar(total=len(files), desc=f"shard {src.name}", unit="img", leave=False)
    for s, start in enumerate(range(0, len(files), shard_size)):
        name = f"shard-{s:06d}.tar"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        os.close(fd)
        try:
            with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
                for j in order[start : start + shard_size]:
                    path, label = files[int(j)]
                    key = f"{int(j):09d}"
                    ext = path.suffix.lower().lstrip(".") or "jpg"
                    ext = "jpg" if ext == "jpeg" else ext
                    for member, data in (
                        (f"{key}.{ext}", path.read_bytes()),
                        (f"{key}.cls", str(label).encode()),
                    ):
                        ti = tarfile.TarInfo(member)
                        ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
                        tf.addfile(ti, io.BytesIO(data))
                    if bar:
                        bar.update(1)
            digest = file_digest(Path(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, out / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        shard_info.append(
            {"name": name, "samples": int(min(shard_size, len(files) - start)), "sha256": digest}
        )
    if bar:
        bar.close()
    meta = {
        "format": "webdataset",
        "source": str(src),
        "classes": classes,
        "samples": len(files),
        "shards": shard_info,
        "seed": seed,
    }

    atomic_write_bytes(out / SHARD_META, json.dumps(meta, indent=2).encode())
    return meta


_SHARD_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.tar")
_MAX_META_BYTES = 64 * 2**20


def read_shard_meta(root: str | Path) -> dict[str, Any]:
    """``dataset.json`` of a shard folder, checked field by field: a missing, truncated or
    malformed index is a one-line error naming the file and the field."""
    path = Path(root) / SHARD_META
    if not path.is_file():
        raise DataError(f"{path}: missing (not a folder written by `resnets data shard`)")
    if path.stat().st_size > _MAX_META_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes, not an index")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid UTF-8 JSON ({e})") from None

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise DataError(f"{path}: {what}")

    need(isinstance(meta, dict), "not a JSON object")
    classes, shards = meta.get("classes"), meta.get("shards")
    need(
        isinstance(classes, list)
        and bool(classes)
        and all(isinstance(c, str) and c for c in classes),
        "'classes': a list of names",
    )
    need(isinstance(shards, list), "'shards': a list")
    for i, sh in enumerate(shards):
        need(isinstance(sh, dict), f"shards[{i}]: not an object")
        name, samples, digest = sh.get("name"), sh.get("samples"), sh.get("sha256")
        need(
            isinstance(name, str) and _SHARD_NAME.fullmatch(name) is not None,
            f"shards[{i}].name {name!r}: a .tar file name in this folder",
        )
        need(
            isinstance(samples, int) and not isinstance(samples, bool) and samples >= 0,
            f"shards[{i}].samples {samples!r}: a count",
        )
        need(
            isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) is not None,
            f"shards[{i}].sha256: 64 hex digits",
        )
    names = [sh["name"] for sh in shards]
    need(len(set(names)) == len(names), "a shard is listed twice")
    total = meta.get("samples")
    need(total == sum(sh["samples"] for sh in shards), f"'samples' {total!r}: not the shards' sum")
    return meta


def verify_shards(root: str | Path) -> list[str]:
    """Every difference between a shard folder and its ``dataset.json``, both ways (empty:
    intact): shards missing or unlisted, bytes that differ from the SHA-256, sample counts,
    samples without an image or a label, labels outside the classes."""
    root = Path(root)
    meta = read_shard_meta(root)
    problems = []
    listed = {sh["name"] for sh in meta["shards"]}
    present = {p.name for p in root.glob("*.tar")}
    if not listed:
        problems.append("the index lists no shards")
    problems += [f"{n}: not listed in {SHARD_META}" for n in sorted(present - listed)]
    for sh in meta["shards"]:
        p = root / sh["name"]
        if not p.is_file():
            problems.append(f"{sh['name']}: missing")
            continue
        try:
            if file_digest(p) != sh["sha256"]:
                problems.append(f"{sh['name']}: bytes differ from its SHA-256")
                continue
            samples = index_shard(p)
        except (OSError, DataError) as e:
            problems.append(f"{sh['name']}: {e}")
            continue
        if len(samples) != sh["samples"]:
            problems.append(f"{sh['name']}: {len(samples)} samples, the index says {sh['samples']}")
        for key, rec, label in samples:
            if rec is None or label is None:
                problems.append(
                    f"{sh['name']}: sample {key!r} has no {'image' if rec is None else 'label'}"
                )
            elif not 0 <= label < len(meta["classes"]):
                problems.append(
                    f"{sh['name']}: sample {key!r} has label {label}, outside 0..{len(meta['classes']) - 1}"
                )
    return problems
