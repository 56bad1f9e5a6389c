"""Models: one configurable :class:`ResNet`, a registry of named builders, summaries.

The public names load on first use (PEP 562): importing this package imports no model and no
torch, so that ``resnets models`` can list them from ``index.py``. Looking a model up in the
registry imports every family's builders (``resnet.py``, ``fast.py``, ``resnext.py``,
``preact.py``, ``wide.py``, ``densenet.py``, ``concat.py``; see ``registry.FAMILIES``).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_LAZY = {
    "FeatureInfo": "base",
    "StagedNet": "base",
    "get_pretrained": "catalogue",
    "list_pretrained": "catalogue",
    "ConcatResNet": "concat",
    "DenseNet": "densenet",
    "create_model": "factory",
    "list_models": "factory",
    "FastResNet": "fast",
    "PreActResNet": "preact",
    "ModelSpec": "registry",
    "get_spec": "registry",
    "is_model": "registry",
    "register_model": "registry",
    "CIFAR_DEPTHS": "resnet",
    "IMAGENET_LAYERS": "resnet",
    "BasicBlock": "resnet",
    "Bottleneck": "resnet",
    "ResNet": "resnet",
    "ZeroPadShortcut": "resnet",
    "cifar_resnet": "resnet",
    "imagenet_resnet": "resnet",
    "cifar_resnext": "resnext",
    "imagenet_grouped": "resnext",
    "count_macs": "summary",
    "count_params": "summary",
    "format_summary": "summary",
    "summarize": "summary",
    "wide_resnet": "wide",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
