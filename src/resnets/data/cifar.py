"""CIFAR-10/100 from the official python archives: found in the data root or downloaded there
(MD5 checked, written atomically), unpickled without running code.

Without a path, the archive is looked for in the data root (``$RESNETS_DATA`` or
``~/.cache/resnets/data``) and downloaded there when missing. ``split`` picks ``train`` (the
50,000 training images) or ``test``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import DownloadError, download
from .imageset import ImageSet

DATA_ROOT_ENV = "RESNETS_DATA"


def data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, Path.home() / ".cache" / "resnets" / "data"))


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
            try:
                found = download(
                    info.url,
                    root / info.filename,
                    md5=info.md5,
                    offline_hint=f"Offline? Put {info.filename} in {root} (or pass --data {name}:/path/to/{info.filename})",
                )
            except DownloadError as e:
                raise DataError(str(e)) from None
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
