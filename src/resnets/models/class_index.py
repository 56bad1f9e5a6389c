"""Class names from a class index file (``{"0": ["n01440764", "tench"], ...}``): the ImageNet-1k
index Keras publishes, fetched into the weights cache beside the weights that need it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import WeightsError
from .download import RemoteFile, weights_cache

IMAGENET_CLASS_INDEX = RemoteFile(
    url="https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
    file="imagenet_class_index.json",
    # SHA-256 of the 35,363-byte file whose MD5 (c2c37ea517e94d9795004a39431a14cb) Keras checks
    sha256="a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc",
    about="the ImageNet-1k class index published with Keras (index -> WordNet ID, class name)",
)


_WNID = re.compile(r"n\d{8}")


def read_class_index(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(wordnet_ids, names)`` from a class index file (``{"0": ["n01440764", "tench"], ...}``).

    The file must list 1,000 classes under the keys 0..999 with WordNet IDs in ascending order:
    the order of torchvision's ImageNet heads (class folders sorted by name). A file in another
    order would label every prediction wrongly, so it is an error rather than a guess.
    """
    label = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{label}: not a readable class index ({e})") from None
    if not isinstance(raw, dict) or sorted(raw, key=lambda k: (len(k), k)) != [
        str(i) for i in range(len(raw))
    ]:
        raise WeightsError(f"{label}: a class index maps the keys 0..N-1 to [id, name]")
    ids, names = [], []
    for i in range(len(raw)):
        entry = raw[str(i)]
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(x, str) for x in entry)
            and _WNID.fullmatch(entry[0])
        ):
            raise WeightsError(f"{label}: entry {i} is {entry!r:.60}, not [WordNet ID, name]")
        ids.append(entry[0])
        names.append(entry[1].replace("_", " "))
    if len(ids) != 1000 or ids != sorted(ids) or len(set(ids)) != len(ids):
        raise WeightsError(
            f"{label}: expected the 1,000 ImageNet-1k classes in ascending WordNet-ID order"
        )
    return ids, names


def cached_class_index(rf: RemoteFile) -> tuple[list[str], list[str]] | None:
    """``(ids, names)`` from the cached copy of ``rf``; None when it is not downloaded."""
    path = weights_cache() / rf.file
    return read_class_index(path) if path.is_file() else None
