"""The record that travels with a set of weights, and its validation: no torch.

A resnets weights file carries, in its safetensors metadata under the key ``"resnets"``, one
:class:`WeightsMeta` record as JSON: what is needed to rebuild and use the model (architecture,
classes, preprocessing) and where it came from (metrics and the split they were measured on,
the command that trained it, licence). :meth:`WeightsMeta.from_dict` is the one reader (it
checks every field's type and range: a file's record is untrusted input) and
:func:`resnets.models.weights.save_weights` the one writer. Reading a record never reads the
tensors, nor imports torch (``resnets weights list`` reads every shipped record).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from safetensors import SafetensorError, safe_open

from ..errors import ConfigError, WeightsError

META_KEY = "resnets"
#: where detectors trained before the one weights format kept their own record (``config`` and
#: ``classes``): such a file still loads, its record read by :func:`legacy_detector_meta`
DETECTOR_KEY = "resnets_detector"
#: what a set of weights does: its network and what ``metrics`` hold follow from it
TASKS = ("classification", "detection")
SCHEMA_VERSION = 1

# torchvision's ImageNet normalisation in 0..255 units: the preprocessing of its weights, and of
# any weights file that carries no resnets record
IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


@dataclass
class WeightsMeta:
    """The record that travels with a set of weights. Pixel statistics are in 0..255 units;
    ``image_size`` is the short side images are resized to (0: as stored) and ``eval_size``
    the centre crop taken from it (0: none); ``metrics`` holds fractions and the split.

    A detector's record (``task="detection"``) names its backbone as ``model``, its object
    classes (background not counted) as ``classes``, the :class:`~resnets.models.detector.
    DetectorConfig` fields it changes as ``detector``, and COCO mAP (``box_map``, ``box_map_50``)
    in ``metrics``; its ``mean`` and ``std`` are the normalisation inside the detector."""

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    classes: list[str] | None = None
    class_ids: list[str] | None = None  # e.g. WordNet IDs (ImageNet's folder names)
    mean: list[float] | None = None
    std: list[float] | None = None
    image_size: int = 0
    eval_size: int = 0
    interpolation: str = "bilinear"
    pad: int = 4
    tta: str = "none"
    metrics: dict[str, Any] | None = None  # {"top1": f, "top5": f, "split": "..."}
    params: int | None = None
    macs: int | None = None
    command: str | None = None  # the exact command that trained them
    source: str | None = None  # where they came from (a URL, or "resnets")
    license: str | None = None
    data: str | None = None
    data_fingerprint: str | None = None
    split: dict[str, Any] | None = None  # {"val_split", "seed", "n_train", "n_val"}
    final: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None  # exported int8: {"dtype", "tool", "calib_*"}
    # softmax temperature fitted on the held-out split (`resnets calibrate`): probabilities
    # are softmax(logits / temperature); the predicted class does not change
    temperature: float | None = None
    calibration: dict[str, Any] | None = None  # what the fit saw and measured, before/after
    task: str = "classification"  # one of TASKS
    detector: dict[str, Any] | None = None  # a detector's DetectorConfig changes (task detection)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, raw: Any, label: str = "weights metadata") -> WeightsMeta:
        """Validate a decoded record; a missing model or a field of the wrong type is a
        :class:`WeightsError` naming it. Unknown keys (from a newer writer) are ignored."""
        if not isinstance(raw, dict):
            raise WeightsError(f"{label}: metadata is a {type(raw).__name__}, not an object")
        if raw.get("schema_version", 1) != SCHEMA_VERSION and not isinstance(
            raw.get("schema_version"), int
        ):
            raise WeightsError(f"{label}: schema_version must be an integer")
        vals = {}
        for f in fields(cls):
            if f.name not in raw or (raw[f.name] is None and f.name != "model"):
                continue
            v = raw[f.name]
            ok = _TYPE_CHECKS[f.name](v)
            if not ok:
                raise WeightsError(
                    f"{label}: field {f.name!r} has the wrong type or is out of its range "
                    f"({v!r:.80})"
                )
            vals[f.name] = v
        if "model" not in vals:
            raise WeightsError(f"{label}: no 'model' (the architecture's registered name)")
        meta = cls(**vals)
        if meta.class_ids is not None and len(meta.class_ids) != len(meta.classes or []):
            raise WeightsError(f"{label}: class_ids and classes differ in length")
        if meta.split and not meta.data_fingerprint:
            raise WeightsError(
                f"{label}: records a held-out split but no data fingerprint: a split is claimed "
                "only with the fingerprint of the data it was drawn from"
            )
        if meta.task == "detection" and not meta.classes:
            raise WeightsError(f"{label}: a detector's record names no classes")
        if meta.classes is not None and "num_classes" in meta.model_kwargs:
            if len(meta.classes) != meta.model_kwargs["num_classes"]:
                raise WeightsError(
                    f"{label}: lists {len(meta.classes)} classes for a model of "
                    f"{meta.model_kwargs['num_classes']} outputs"
                )
        return meta

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: a weights name, MODEL.TAG: letters, digits, '_' and '-' in each dotted part; it becomes a
#: file name, so no '/', no '..', no leading dot, at most 100 characters
WEIGHTS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)+")


def check_weights_name(name: str, option: str = "--name") -> str:
    """``name`` if it is a valid MODEL.TAG that is safe as a file name; else a one-line error."""
    if len(name) > 100 or not WEIGHTS_NAME.fullmatch(name):
        raise ConfigError(
            f"{option} {name!r}: expected MODEL.TAG (letters, digits, '_' and '-' in each "
            "dotted part, e.g. resnet20.cifar10); it becomes a file name"
        )
    return name


#: the bounds of a record's fields: a file's record is untrusted input, and every size in it
#: becomes an allocation (a model's outputs, an image's side) before anything else is checked
MAX_CLASSES = 100_000  # ImageNet-21k has 21,841
MAX_SIDE = 4096  # pixels, of image_size and eval_size
MAX_PAD = 64
MAX_CHANNELS = 16
MAX_TEXT = 20_000  # characters of a free-text field (the training command)
MAX_NAME = 256  # characters of a class name, a model name, a short string
MAX_COUNT = 10**13  # parameters, MACs, images


def _is_num(v: Any, low: float = -math.inf, high: float = math.inf) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and low <= v <= high
    )


def _is_num_list(v: Any, low: float, high: float) -> bool:
    return (
        isinstance(v, list)
        and 1 <= len(v) <= MAX_CHANNELS
        and all(_is_num(x, low, high) for x in v)
    )


def _is_int(v: Any, high: int = MAX_COUNT) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= high


def _is_text(v: Any, limit: int = MAX_TEXT) -> bool:
    return isinstance(v, str) and len(v) <= limit


def _is_names(v: Any) -> bool:
    return (
        isinstance(v, list)
        and len(v) <= MAX_CLASSES
        and all(isinstance(c, str) and 0 < len(c) <= MAX_NAME for c in v)
    )


def _is_kwarg(key: str, v: Any) -> bool:
    """A model option: a short string, a bool, a bounded number; sizes within their bounds."""
    if key == "num_classes":
        return _is_int(v, MAX_CLASSES) and v >= 1
    if key == "in_chans":
        return _is_int(v, MAX_CHANNELS) and v >= 1
    if isinstance(v, (bool, type(None))):
        return True
    return _is_text(v, MAX_NAME) or _is_num(v, -1e6, 1e6)


def _is_small_dict(v: Any, checks: dict[str, Any]) -> bool:
    """A dict of at most 64 keys whose named entries, where present and not None, pass."""
    if not isinstance(v, dict) or len(v) > 64 or not all(isinstance(k, str) for k in v):
        return False
    if len(json.dumps(v, default=str)) > 100 * MAX_TEXT:
        return False
    return all(v.get(k) is None or check(v[k]) for k, check in checks.items())


_TYPE_CHECKS = {
    "model": lambda v: _is_text(v, MAX_NAME) and bool(v),
    "model_kwargs": lambda v: (
        isinstance(v, dict)
        and len(v) <= 64
        and all(isinstance(k, str) and _is_kwarg(k, x) for k, x in v.items())
    ),
    "classes": _is_names,
    "class_ids": _is_names,
    "mean": lambda v: _is_num_list(v, 0, 255),
    "std": lambda v: _is_num_list(v, 0, 255) and all(x > 0 for x in v),
    "image_size": lambda v: _is_int(v, MAX_SIDE),
    "eval_size": lambda v: _is_int(v, MAX_SIDE),
    "interpolation": lambda v: v in ("bilinear", "bicubic", "nearest"),
    "pad": lambda v: _is_int(v, MAX_PAD),
    "tta": lambda v: v in ("none", "flip"),
    "metrics": lambda v: _is_small_dict(
        v,
        {
            "top1": lambda x: _is_num(x, 0, 1),
            "top5": lambda x: _is_num(x, 0, 1),
            "box_map": lambda x: _is_num(x, 0, 1),
            "box_map_50": lambda x: _is_num(x, 0, 1),
            "n": _is_int,
            "split": _is_text,
        },
    ),
    "params": _is_int,
    "macs": _is_int,
    "command": _is_text,
    "source": _is_text,
    "license": _is_text,
    "data": _is_text,
    "data_fingerprint": lambda v: _is_text(v, MAX_NAME),
    "split": lambda v: _is_small_dict(
        v,
        {
            "val_split": lambda x: _is_num(x, 0, MAX_COUNT),
            "seed": lambda x: isinstance(x, int) and not isinstance(x, bool),
            "n_train": _is_int,
            "n_val": _is_int,
        },
    ),
    "final": lambda v: _is_small_dict(v, {}),
    "quantization": lambda v: _is_small_dict(v, {}),
    "temperature": lambda v: _is_num(v, 0.01, 100),
    "calibration": lambda v: _is_small_dict(v, {}),
    "task": lambda v: v in TASKS,
    "detector": lambda v: _is_small_dict(v, {}),
    "schema_version": lambda v: _is_int(v, 1000),
}


def read_meta(path: str | os.PathLike) -> WeightsMeta | None:
    """The record of a ``.safetensors`` file, without reading its tensors."""
    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no torch
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a valid safetensors file ({e})") from None
    return meta_from_header(header, str(path))


def meta_from_header(header: dict[str, str], label: str) -> WeightsMeta | None:
    """The record in a safetensors header (None: a file without one), a detector's record of
    the format before this one included."""
    try:
        if META_KEY in header:
            return WeightsMeta.from_dict(json.loads(header[META_KEY]), label)
        if DETECTOR_KEY in header:
            return legacy_detector_meta(json.loads(header[DETECTOR_KEY]), label)
    except json.JSONDecodeError:
        raise WeightsError(f"{label}: malformed resnets metadata (not JSON)") from None
    return None


def legacy_detector_meta(raw: Any, label: str) -> WeightsMeta:
    """The record of a detector written before the one weights format (under
    ``resnets_detector``: its training ``config`` and ``classes``), in today's form. Its
    images were normalised outside the network with ImageNet's statistics, which are the
    detector's own now, so the same tensors give the same detections."""
    try:
        config, classes = raw["config"], raw["classes"]
        detector, backbone = config.get("detector", {}), config["backbone"]
    except (KeyError, TypeError, AttributeError) as e:
        raise WeightsError(f"{label}: a malformed detector record ({e!r})") from None
    return WeightsMeta.from_dict(
        {
            "model": backbone,
            "task": "detection",
            "classes": classes,
            "detector": detector,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "data": config.get("train") if isinstance(config.get("train"), str) else None,
            "final": {"train_config": config},
            "source": "resnets",
        },
        label,
    )
