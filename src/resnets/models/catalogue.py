"""Weights by name: ``MODEL.TAG`` (``resnet50.tv2_in1k``, ``resnet20.cifar10``), where they come
from and how they are checked: the catalogue of named weights. (The download cache is
``download.py``, class names ``class_index.py``; weights are loaded by ``resnets.inference``.)

* ``tv_in1k`` / ``tv2_in1k``: torchvision's published ImageNet-1k weights (its V1 and V2
  recipes), downloaded from their real addresses into the cache (``$RESNETS_WEIGHTS`` or
  ``~/.cache/resnets/weights``) and checked against the SHA-256 prefix in the file name.
* ``cifar10``: weights trained by resnets with the paper's recipe, shipped inside the package
  (``resnets/weights/``), so they work offline.

The ImageNet weights' 1,000 class names are not written into this package: they come from the
class index Keras publishes (``imagenet_class_index.json``: index -> WordNet ID and name, in the
sorted-WordNet-ID order torchvision's heads use), downloaded beside the weights into the same
cache and checked against its SHA-256 (the file whose MD5 Keras itself checks).
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from ..io import file_digest
from ..rundir import RunDir
from .class_index import IMAGENET_CLASS_INDEX, read_class_index
from .download import RemoteFile, cached_download, remote_file
from .record import IMAGENET_MEAN, IMAGENET_STD, WeightsMeta, read_meta
from .registry import get_spec, is_model

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

TORCHVISION_LICENSE = (
    "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms of access apply"
)


@dataclass(frozen=True)
class Pretrained:
    """One named set of weights: where to get the file, how to check it, what it is."""

    name: str  # MODEL.TAG
    file: str  # file name in the cache or the package
    sha256: str  # the full hex digest, or its leading digits (torchvision's file names)
    meta: WeightsMeta
    url: str | None = None  # None: shipped inside the package
    size_mb: float | None = None
    classes_file: RemoteFile | None = None  # where the class names come from, if not in meta

    @property
    def model(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]


_PRETRAINED: dict[str, Pretrained] = {}
# the tag pretrained=True picks for each model
_DEFAULT_TAG: dict[str, str] = {}


def register_pretrained(p: Pretrained, *, default: bool = False) -> None:
    _PRETRAINED[p.name] = p
    if default or p.model not in _DEFAULT_TAG:
        _DEFAULT_TAG[p.model] = p.tag


def _torchvision(
    name: str,
    *,
    file: str,
    top1: float,
    top5: float,
    params: int,
    size_mb: float | None,
    resize: int,
    recipe: str,
) -> Pretrained:
    """The record of one row of :data:`TORCHVISION_WEIGHTS`."""
    model = name.split(".", 1)[0]
    meta = WeightsMeta(
        model=model,
        model_kwargs={"num_classes": 1000},
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        image_size=resize,
        eval_size=224,
        interpolation="bilinear",
        metrics={
            "top1": top1,
            "top5": top5,
            "split": "ImageNet-1k validation (50,000 images), "
            f"224 centre crop of the {resize} resize, as published by torchvision",
        },
        params=params,
        command=f"torchvision's recipe: {recipe}",
        source=f"https://download.pytorch.org/models/{file}",
        license=TORCHVISION_LICENSE,
        data="ImageNet-1k",
    )
    sha_prefix = file.rsplit("-", 1)[1].split(".")[0]
    return Pretrained(
        name,
        file,
        sha_prefix,
        meta,
        url=meta.source,
        size_mb=size_mb,
        classes_file=IMAGENET_CLASS_INDEX,
    )


_V1 = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_V2 = "https://github.com/pytorch/vision/issues/3995#new-recipe"
_V1X = "https://github.com/pytorch/vision/tree/main/references/classification#resnext"
_V1W = "https://github.com/pytorch/vision/pull/912"
_V1D = "https://github.com/pytorch/vision/tree/main/references/classification"
#: torchvision's ImageNet weights, one keyword row each (its published numbers; the file name
#: carries the leading digits of the SHA-256): ``file``, ``top1``/``top5`` on ImageNet-1k
#: validation, ``params``, ``size_mb`` (None: not published), ``resize`` (the 224 centre crop
#: is taken from this size), ``recipe`` (where torchvision documents how they were trained)
TORCHVISION_WEIGHTS: dict[str, dict[str, Any]] = {
    "resnet18.tv_in1k": dict(
        file="resnet18-f37072fd.pth",
        top1=0.69758,
        top5=0.89078,
        params=11_689_512,
        size_mb=44.661,
        resize=256,
        recipe=_V1,
    ),
    "resnet34.tv_in1k": dict(
        file="resnet34-b627a593.pth",
        top1=0.73314,
        top5=0.91420,
        params=21_797_672,
        size_mb=83.275,
        resize=256,
        recipe=_V1,
    ),
    "resnet50.tv_in1k": dict(
        file="resnet50-0676ba61.pth",
        top1=0.76130,
        top5=0.92862,
        params=25_557_032,
        size_mb=97.781,
        resize=256,
        recipe=_V1,
    ),
    "resnet50.tv2_in1k": dict(
        file="resnet50-11ad3fa6.pth",
        top1=0.80858,
        top5=0.95434,
        params=25_557_032,
        size_mb=97.790,
        resize=232,
        recipe=_V2,
    ),
    "resnet101.tv_in1k": dict(
        file="resnet101-63fe2227.pth",
        top1=0.77374,
        top5=0.93546,
        params=44_549_160,
        size_mb=170.511,
        resize=256,
        recipe=_V1,
    ),
    "resnet101.tv2_in1k": dict(
        file="resnet101-cd907fc2.pth",
        top1=0.81886,
        top5=0.95780,
        params=44_549_160,
        size_mb=170.530,
        resize=232,
        recipe=_V2,
    ),
    "resnet152.tv_in1k": dict(
        file="resnet152-394f9c45.pth",
        top1=0.78312,
        top5=0.94046,
        params=60_192_808,
        size_mb=230.434,
        resize=256,
        recipe=_V1,
    ),
    "resnet152.tv2_in1k": dict(
        file="resnet152-f82ba261.pth",
        top1=0.82284,
        top5=0.96002,
        params=60_192_808,
        size_mb=230.474,
        resize=232,
        recipe=_V2,
    ),
    "resnext50_32x4d.tv_in1k": dict(
        file="resnext50_32x4d-7cdf4587.pth",
        top1=0.77618,
        top5=0.93698,
        params=25_028_904,
        size_mb=None,
        resize=256,
        recipe=_V1X,
    ),
    "resnext50_32x4d.tv2_in1k": dict(
        file="resnext50_32x4d-1a0047aa.pth",
        top1=0.81198,
        top5=0.95340,
        params=25_028_904,
        size_mb=None,
        resize=232,
        recipe=_V2,
    ),
    "resnext101_32x8d.tv_in1k": dict(
        file="resnext101_32x8d-8ba56ff5.pth",
        top1=0.79312,
        top5=0.94526,
        params=88_791_336,
        size_mb=None,
        resize=256,
        recipe=_V1X,
    ),
    "resnext101_32x8d.tv2_in1k": dict(
        file="resnext101_32x8d-110c445d.pth",
        top1=0.82834,
        top5=0.96228,
        params=88_791_336,
        size_mb=None,
        resize=232,
        recipe=_V2,
    ),
    "resnext101_64x4d.tv2_in1k": dict(
        file="resnext101_64x4d-173b62eb.pth",
        top1=0.83246,
        top5=0.96454,
        params=83_455_272,
        size_mb=None,
        resize=232,
        recipe=_V2,
    ),
    "wide_resnet50_2.tv_in1k": dict(
        file="wide_resnet50_2-95faca4d.pth",
        top1=0.78468,
        top5=0.94086,
        params=68_883_240,
        size_mb=None,
        resize=256,
        recipe=_V1W,
    ),
    "wide_resnet50_2.tv2_in1k": dict(
        file="wide_resnet50_2-9ba9bcbe.pth",
        top1=0.81602,
        top5=0.95758,
        params=68_883_240,
        size_mb=None,
        resize=232,
        recipe=_V2,
    ),
    "wide_resnet101_2.tv_in1k": dict(
        file="wide_resnet101_2-32ee1156.pth",
        top1=0.78848,
        top5=0.94284,
        params=126_886_696,
        size_mb=None,
        resize=256,
        recipe=_V1W,
    ),
    "wide_resnet101_2.tv2_in1k": dict(
        file="wide_resnet101_2-d733dc28.pth",
        top1=0.82510,
        top5=0.96020,
        params=126_886_696,
        size_mb=None,
        resize=232,
        recipe=_V2,
    ),
    "densenet121.tv_in1k": dict(
        file="densenet121-a639ec97.pth",
        top1=0.74434,
        top5=0.91972,
        params=7_978_856,
        size_mb=None,
        resize=256,
        recipe=_V1D,
    ),
}
for _name, _row in TORCHVISION_WEIGHTS.items():
    register_pretrained(_torchvision(_name, **_row), default=_name.endswith(".tv2_in1k"))


def _register_shipped() -> None:
    """Weights files inside the package (``MODEL.TAG.safetensors``), with their metadata."""
    if not PACKAGE_WEIGHTS.is_dir():
        return
    for f in sorted(PACKAGE_WEIGHTS.glob("*.safetensors")):
        name = f.name.removesuffix(".safetensors")
        sha_file = f.with_suffix(".sha256")
        meta = read_meta(f)  # at import: the record only, not the tensors
        if meta is None or "." not in name or not sha_file.is_file():
            continue
        register_pretrained(Pretrained(name, f.name, sha_file.read_text().split()[0], meta))


_register_shipped()


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the known weights matching a glob (``resnet50.*``, ``*cifar10``)."""
    return [n for n in _PRETRAINED if fnmatch.fnmatch(n, pattern)]


def default_tag(model: str) -> str | None:
    return _DEFAULT_TAG.get(get_spec(model).name)


def get_pretrained(name: str) -> Pretrained:
    """The entry of a weights name; an unknown one is an error suggesting close names."""
    if name in _PRETRAINED:
        return _PRETRAINED[name]
    close = difflib.get_close_matches(name, list(_PRETRAINED), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `resnets weights list`"
    raise WeightsError(f"unknown weights {name!r}{hint}")


def weights_file(name: str, *, download_ok: bool = True, progress: bool = True) -> Path:
    """The local file of named weights: the package's, or the cache's (downloaded and checked
    when missing). Offline, the error says which file to put where."""
    p = get_pretrained(name)
    if p.url is None:
        return PACKAGE_WEIGHTS / p.file
    return cached_download(p.url, p.file, p.sha256, name, download_ok, progress)


def class_names(name: str, *, download_ok: bool = True) -> tuple[list[str], list[str]] | None:
    """``(ids, names)`` of named weights whose classes come from a separate file, else None."""
    rf = get_pretrained(name).classes_file
    if rf is None:
        return None
    return read_class_index(remote_file(rf, download_ok=download_ok))


def verify(name: str) -> str:
    """Check the local file of named weights against its SHA-256; returns the digest."""
    p = get_pretrained(name)
    f = weights_file(name, download_ok=False)
    digest = file_digest(f)
    if not digest.startswith(p.sha256):
        raise WeightsError(f"{f}: SHA-256 {digest[:16]}... is not the expected {p.sha256[:16]}...")
    return digest


def is_weights_name(spec: str) -> bool:
    """``MODEL.TAG`` of a registered model, or a catalogued name (a detector's
    ``fasterrcnn_BACKBONE_fpn.TAG``), that is not an existing path."""
    s = str(spec)
    if "." not in s or os.sep in s or Path(s).exists():
        return False
    if s in _PRETRAINED:
        return True
    return is_model(s.split(".", 1)[0]) and not s.endswith((".pth", ".pt", ".safetensors", ".ckpt"))


def resolve_weights_path(spec: str | os.PathLike) -> Path:
    """A weights name, a weights file, or a run directory (its final ``model.safetensors``,
    else its best or last checkpoint) -> the file to read."""
    if is_weights_name(str(spec)):
        return weights_file(str(spec))
    p = Path(spec).expanduser()
    if p.is_dir():
        found = RunDir(p).trained_weights()
        if found is None:
            raise WeightsError(
                f"{p}: run directory holds no model.safetensors, best.ckpt or last.ckpt"
            )
        return found
    if not p.exists():
        raise WeightsError(
            f"{p}: no such weights file or run directory (nor a weights name: see `resnets weights list`)"
        )
    return p
