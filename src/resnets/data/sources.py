"""Datasets as decoded uint8 arrays: scikit-learn digits, CIFAR-10/100 archives, image folders.

``load_dataset(spec, split)`` understands:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download).
* ``cifar10`` / ``cifar100``, or ``cifar10:PATH``: the official python-archive layout, from a
  ``.tar.gz`` archive or its extracted folder. Without a path, the archive is looked for in the
  data root (``$RESNETS_DATA`` or ``~/.cache/resnets/data``) and downloaded there when missing,
  its MD5 checked. ``split`` picks ``train`` (the 50,000 training images) or ``test``.
* any other value: a folder of class subfolders (``ROOT/<class>/<image>``), or a folder of tar
  shards in the WebDataset layout (see :mod:`resnets.data.stream`).

Folder images are decoded once into a memory-mapped uint8 cache keyed by the files' contents
(see :mod:`resnets.data.cache`), so epochs never decode JPEGs again.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

DATA_ROOT_ENV = "RESNETS_DATA"


@dataclass
class ImageSet:
    """Images as one ``(N, H, W, C)`` uint8 array (possibly memory-mapped) with integer labels."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str
    fingerprint: str
    paths: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])


def data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, Path.home() / ".cache" / "resnets" / "data"))


# --------------------------------------------------------------------------------------------
# digits


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


# --------------------------------------------------------------------------------------------
# CIFAR


@dataclass(frozen=True)
class ArchiveInfo:
    url: str
    filename: str
    md5: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str


CIFAR_ARCHIVES = {
    "cifar10": ArchiveInfo(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": ArchiveInfo(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
        "fine_labels",
        "fine_label_names",
    ),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch dicts without running code: only numpy arrays are allowed."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2; only encodes text
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes, label: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:
        raise DataError(f"{label}: not a CIFAR python batch ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{label}: not a CIFAR python batch (got {type(obj).__name__})")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def md5sum(path: Path) -> str:
    return file_digest(path, "md5")


def download(
    url: str, dest: Path, md5: str, *, timeout: float = 30.0, progress: bool = True
) -> Path:
    """Download ``url`` to ``dest`` atomically and check its MD5; DataError on any failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(
                    total=total or None, unit="B", unit_scale=True, desc=f"download {dest.name}"
                )
            while chunk := r.read(1 << 20):
                f.write(chunk)
                if bar:
                    bar.update(len(chunk))
            if bar:
                bar.close()
            f.flush()
            os.fsync(f.fileno())
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"could not download {url} ({getattr(e, 'reason', e)}). Offline? Put {dest.name} "
            f"in {dest.parent} (or pass --data NAME:/path/to/{dest.name})"
        ) from None
    got = md5sum(tmp)
    if got != md5:
        tmp.unlink(missing_ok=True)
        raise DataError(f"downloaded {url}: MD5 {got} does not match the expected {md5}")
    os.replace(tmp, dest)
    return dest


def _read_cifar_members(path: Path, info: ArchiveInfo, names: tuple[str, ...]) -> dict[str, bytes]:
    """Raw bytes of the wanted batch files, from an archive or an extracted folder."""
    wanted = set(names) | {info.meta_file}
    out: dict[str, bytes] = {}
    if path.is_dir():
        base = path / info.folder if (path / info.folder).is_dir() else path
        for n in wanted:
            p = base / n
            if not p.is_file():
                raise DataError(f"{path}: missing {n} (expected the official {info.folder} layout)")
            out[n] = p.read_bytes()
        return out
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar.getmembers():
                base = m.name.rsplit("/", 1)[-1]
                if base in wanted and m.isfile():
                    f = tar.extractfile(m)
                    if f is not None:
                        out[base] = f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable tar archive ({e})") from None
    missing = wanted - set(out)
    if missing:
        raise DataError(
            f"{path}: archive lacks {sorted(missing)} (is it the official {info.filename}?)"
        )
    return out


def load_cifar(name: str, path: str | None, split: str, *, download_ok: bool = True) -> ImageSet:
    """CIFAR-10/100 from the official python archive (or its extracted folder)."""
    info = CIFAR_ARCHIVES[name]
    if split not in ("train", "test"):
        raise DataError(f"{name}: split must be 'train' or 'test', got {split!r}")
    if path is None:
        root = data_root()
        candidates = [root / info.filename, root / info.folder]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            if not download_ok:
                raise DataError(
                    f"{name} not found: put {info.filename} in {root} or pass --data {name}:/path"
                )
            found = download(info.url, root / info.filename, info.md5)
        src = found
    else:
        src = Path(path).expanduser()
        if not src.exists():
            raise DataError(
                f"{src}: no such file or folder (expected {info.filename} or {info.folder}/)"
            )
    names = info.train_files if split == "train" else info.test_files
    raw = _read_cifar_members(src, info, names)
    meta = _unpickle(raw[info.meta_file], f"{src}:{info.meta_file}")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta[info.names_key]]
    imgs, labels = [], []
    for n in names:
        d = _unpickle(raw[n], f"{src}:{n}")
        try:
            data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            lab = np.asarray(d[info.label_key], dtype=np.int64)
        except (KeyError, ValueError) as e:
            raise DataError(f"{src}:{n}: malformed CIFAR batch ({e})") from None
        imgs.append(data.transpose(0, 2, 3, 1))
        labels.append(lab)
    images = np.ascontiguousarray(np.concatenate(imgs))
    labels_arr = np.concatenate(labels)
    if labels_arr.min() < 0 or labels_arr.max() >= len(classes):
        raise DataError(f"{src}: labels out of range for {len(classes)} classes")
    fp = hashlib.sha256(b"".join(raw[n] for n in names)).hexdigest()
    return ImageSet(images, labels_arr, classes, f"{name}-{split}", fp)


# --------------------------------------------------------------------------------------------
# dispatch


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
        return load_digits()
    if kind in CIFAR_ARCHIVES:
        return load_cifar(kind, path, split)
    from . import stream as S
    from .folder import load_folder, scan_folder

    root = Path(path or spec)
    procs = workers or 0
    if S.is_shard_dir(root):
        data = S.stream_shards(root, image_size=image_size, skip_bad=skip_bad, processes=procs)
        if mode == "memory":
            data.images = data.images[np.arange(len(data))]  # type: ignore[assignment]
        return data
    scanned = scan_folder(root.expanduser().resolve())  # once, for the choice and the loader
    if mode == "stream" or (
        mode == "auto" and S.estimated_decoded_bytes(scanned[1], image_size) > S.STREAM_ABOVE_BYTES
    ):
        return S.stream_folder(
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
