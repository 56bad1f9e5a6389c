"""Saving and loading weights safely: safetensors with metadata, or torchvision-style ``.pth``.

Nothing here executes code from a file: ``.safetensors`` holds only tensors and strings, and any
other file goes through ``torch.load(weights_only=True)``.

A resnets weights file carries, in its safetensors metadata under the key ``"resnets"``, a JSON
object with what is needed to rebuild and use the model: ``model`` (registered name),
``model_kwargs``, ``classes``, ``mean``/``std`` (0..255 units), ``image_size``, ``eval_size`` and
the training config and split, so ``resnets eval``/``predict`` need nothing but the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import nn

from ..errors import WeightsError
from ..io import MAGIC, atomic_write_bytes, load_checkpoint, safe_torch_load
from .registry import create_model

META_KEY = "resnets"


def save_weights(
    model: nn.Module, path: str | os.PathLike, meta: dict[str, Any] | None = None
) -> None:
    """Write ``model``'s state_dict to a ``.safetensors`` file atomically, with ``meta``."""
    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {META_KEY: json.dumps(meta or {}, sort_keys=True)}
    atomic_write_bytes(path, st_save(sd, metadata=metadata))


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A state_dict and resnets metadata (empty for foreign files) from any supported file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                meta_raw = (f.metadata() or {}).get(META_KEY)
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{path}: not a valid safetensors file ({e})") from None
        try:
            meta = json.loads(meta_raw) if meta_raw else {}
        except json.JSONDecodeError:
            raise WeightsError(f"{path}: malformed resnets metadata") from None
        return sd, meta
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC))
    if head == MAGIC:
        state = load_checkpoint(path)
        return state["model"], state.get("meta", {})
    obj = safe_torch_load(path, str(path))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: does not hold a state_dict of tensors")
    sd = {k.removeprefix("module."): v for k, v in obj.items()}
    return sd, {}


def load_state_dict_checked(model: nn.Module, sd: dict[str, torch.Tensor], label: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists the mismatched keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:

        def show(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" (+{len(xs) - 5} more)" if len(xs) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch (file vs model): {show(shapes)}")
        name = getattr(model, "model_name", type(model).__name__)
        raise WeightsError(f"{label}: weights do not fit {name}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)


def resolve_weights_path(path: str | os.PathLike) -> Path:
    """A run directory resolves to its final ``model.safetensors`` (or best/last checkpoint)."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in ("model.safetensors", "best.ckpt", "last.ckpt"):
            if (p / name).is_file():
                return p / name
        raise WeightsError(f"{p}: run directory holds no model.safetensors, best.ckpt or last.ckpt")
    if not p.exists():
        raise WeightsError(f"{p}: no such weights file or run directory")
    return p


def load_model(
    path: str | os.PathLike, *, model: str | None = None, num_classes: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a weights file or run directory; returns ``(model, metadata)``.

    For a file without resnets metadata (e.g. torchvision's ``resnet50-0676ba61.pth``), name the
    architecture with ``model`` (and ``num_classes`` if not 1000).
    """
    p = resolve_weights_path(path)
    sd, meta = read_weights(p)
    name = model or meta.get("model")
    if not name:
        raise WeightsError(f"{p}: no resnets metadata in the file; name the architecture (--model)")
    kwargs = dict(meta.get("model_kwargs", {}))
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    elif "num_classes" not in kwargs and "fc.weight" in sd:
        kwargs["num_classes"] = int(sd["fc.weight"].shape[0])
    if "in_chans" not in kwargs and "conv1.weight" in sd:
        kwargs["in_chans"] = int(sd["conv1.weight"].shape[1])
    net = create_model(name, **kwargs)
    load_state_dict_checked(net, sd, str(p))
    meta.setdefault("model", name)
    return net, meta
