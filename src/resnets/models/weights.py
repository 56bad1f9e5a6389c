"""Saving and loading weights safely: safetensors with metadata, or torchvision-style ``.pth``.

Nothing here executes code from a file: ``.safetensors`` holds only tensors and strings, and any
other file goes through ``torch.load(weights_only=True)``.

A resnets weights file carries, in its safetensors metadata under the key ``"resnets"``, one
:class:`WeightsMeta` record as JSON: what is needed to rebuild and use the model (architecture,
classes, preprocessing) and where it came from (metrics and the split they were measured on,
the command that trained it, licence). :meth:`WeightsMeta.from_dict` is the one reader (it
checks every field's type) and :func:`save_weights` the one writer.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import nn

from ..checkpoint import MAGIC, load_checkpoint, safe_torch_load
from ..errors import WeightsError
from ..io import MAX_WEIGHTS_BYTES, atomic_write_bytes
from .record import (  # noqa: F401 (the record's names, re-exported where they were)
    DETECTOR_KEY,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_CLASSES,
    MAX_SIDE,
    META_KEY,
    SCHEMA_VERSION,
    WEIGHTS_NAME,
    WeightsMeta,
    check_weights_name,
    meta_from_header,
    read_meta,
)


def save_weights(
    model: nn.Module,
    path: str | os.PathLike,
    meta: WeightsMeta,
    *,
    dtype: torch.dtype | None = None,
) -> None:
    """Write ``model``'s state_dict to a ``.safetensors`` file atomically, with ``meta``;
    ``dtype`` stores the floating-point tensors in another precision (loading casts back)."""
    if not isinstance(meta, WeightsMeta):
        raise TypeError("save_weights needs a WeightsMeta record")
    sd = {
        k: v.detach()
        .to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype)
        .contiguous()
        for k, v in model.state_dict().items()
    }
    if dtype is not None:  # a value the narrower type cannot hold would be stored as inf
        source = model.state_dict()
        for k, v in sd.items():
            if v.is_floating_point() and not torch.isfinite(v).all() and source[k].isfinite().all():
                top = float(source[k].abs().max())
                raise WeightsError(
                    f"{k}: holds {top:.4g}, beyond what {dtype} can store "
                    f"(max {torch.finfo(dtype).max:.4g}); keep float32"
                )
    metadata = {META_KEY: json.dumps(meta.to_dict(), sort_keys=True)}
    atomic_write_bytes(path, st_save(sd, metadata=metadata))


def check_weights_file(path: str | os.PathLike) -> Path:
    """The one check of a weights file before a byte of it is read (classification and
    detection alike): a regular file (no FIFO, no device), at most MAX_WEIGHTS_BYTES."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file (or not a regular file)")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{path}: {path.stat().st_size:,} bytes, over the weights limit")
    return path


def read_weights(
    path: str | os.PathLike, task: str | None = None
) -> tuple[dict[str, torch.Tensor], WeightsMeta | None]:
    """A state_dict and its metadata (None for foreign files) from any supported file.
    ``task`` (``classification`` or ``detection``): weights for another task are refused in
    one line before a tensor is read (a file without a record counts as a classifier's)."""
    path = check_weights_file(path)
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = meta_from_header(f.metadata() or {}, str(path))
                check_task(meta, task, str(path))
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{path}: not a valid safetensors file ({e})") from None
        return sd, meta
    check_task(None, task, str(path))
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC))
    if head == MAGIC:
        state = load_checkpoint(path)
        if not isinstance(state.get("model"), dict):
            raise WeightsError(f"{path}: checkpoint holds no model state_dict")
        raw = state.get("meta")
        return state["model"], None if raw is None else WeightsMeta.from_dict(raw, str(path))
    obj = safe_torch_load(path, str(path))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: does not hold a state_dict of tensors")
    sd = {_modern_key(k.removeprefix("module.")): v for k, v in obj.items()}
    return sd, None


def check_task(meta: WeightsMeta | None, task: str | None, label: str) -> None:
    """Weights of ``task`` (None: any), or a one-line error saying what they are and which
    commands take them."""
    found = meta.task if meta is not None else "classification"
    if task is None or found == task:
        return
    if found == "detection":
        assert meta is not None
        raise WeightsError(
            f"{label}: a resnets detector's weights (Faster R-CNN on {meta.model}), not a "
            "classifier's: `resnets detect eval/predict --weights` (in Python, "
            "load_weights(..., task='detection')) load it"
        )
    if meta is None:
        raise WeightsError(
            f"{label}: holds no resnets detector record (a finished detection run's "
            "model.safetensors does)"
        )
    raise WeightsError(
        f"{label}: a classifier's weights ({meta.model}), not a detector's: "
        "`resnets detect train --init` takes them as a backbone"
    )


# torchvision's DenseNet files keep the dotted names of its old layers ("denselayer1.norm.1")
_LEGACY_DENSE = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\..+)$")


def _modern_key(key: str) -> str:
    m = _LEGACY_DENSE.match(key)
    return m.group(1) + m.group(2) if m else key


def check_finite(state: dict[str, torch.Tensor], label: str) -> None:
    """Refuse weights with NaN or infinity in any floating-point tensor (classification and
    detection alike): such a file scores nothing and trains nothing."""
    bad = [n for n, t in state.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise WeightsError(f"{label}: non-finite values (NaN/inf) in {', '.join(bad[:3])}")


def stored_dtype_of(meta: WeightsMeta | None) -> str | None:
    """The floating-point dtype a weights record says its tensors were stored in
    (``weights package --half`` stores float16), or None when it says nothing."""
    stored = ((meta.final if meta is not None else None) or {}).get("stored_dtype")
    return stored if isinstance(stored, str) else None


def load_state_dict_checked(
    model: nn.Module, sd: dict[str, torch.Tensor], label: str, stored: str | None = None
) -> None:
    """``load_state_dict(strict=True)`` with an error that lists the mismatched keys. Every
    floating-point tensor must be in the dtype the architecture stores, or in ``stored`` where
    the weights' record says the file was stored in another (``float16``); integer buffers in
    an integer dtype. A file cast to another precision behind its record's back is refused."""
    own = model.state_dict()
    want = _STORED.get(stored or "", None)
    if stored is not None and want is None:
        raise WeightsError(
            f"{label}: the record's stored_dtype {stored!r} is not one of {sorted(_STORED)}"
        )
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    dtypes = [
        f"{k} {str(sd[k].dtype).removeprefix('torch.')} where "
        f"{str(want if want is not None and own[k].is_floating_point() else own[k].dtype).removeprefix('torch.')} belongs"
        for k in own
        if k in sd and not _dtype_fits(sd[k].dtype, own[k].dtype, want)
    ]
    if missing or unexpected or shapes or dtypes:

        def show(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" (+{len(xs) - 5} more)" if len(xs) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch (file vs model): {show(shapes)}")
        if dtypes:
            parts.append(f"wrong dtype: {show(dtypes)}")
        name = getattr(model, "model_name", type(model).__name__)
        raise WeightsError(f"{label}: weights do not fit {name}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)


#: the stored dtypes a model's tensor of each kind may be loaded from: floating-point weights
#: from floating-point values only (an int8 tensor is quantized data, not weights to cast),
#: integer buffers (BatchNorm's step count) from integers
_INTEGERS = (torch.int64, torch.int32)
#: the floating-point dtypes a record may say its file was stored in
_STORED = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype_fits(stored: torch.dtype, own: torch.dtype, want: torch.dtype | None) -> bool:
    if own.is_floating_point:
        return stored == (want or own)
    return stored in _INTEGERS


def check_state_fits_record(
    state: dict[str, torch.Tensor], kwargs: dict[str, Any], label: str
) -> None:
    """The sizes a record asks the model to be built with (classes, input channels) against the
    file's own tensors, before the model is allocated: a record cannot make a small file build
    a huge model."""
    for option, keys, dim in (
        ("num_classes", ("fc.weight", "classifier.weight", "head.fc.weight"), 0),
        ("in_chans", ("conv1.weight", "features.conv0.weight", "stem.0.weight"), 1),
    ):
        key = next((k for k in keys if k in state), None)
        if option in kwargs and key is not None and state[key].dim() > dim:
            if state[key].shape[dim] != kwargs[option]:
                raise WeightsError(
                    f"{label}: the record asks for {option}={kwargs[option]}, the file's "
                    f"{key} has {state[key].shape[dim]}"
                )
