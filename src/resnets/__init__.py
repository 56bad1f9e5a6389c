"""resnets: Deep Residual Networks (He, Zhang, Ren, Sun, 2015) on PyTorch.

The public names load on first use (PEP 562), so that ``import resnets`` and ``resnets
--help`` cost nothing beyond what they use: ``resnets.create_model`` imports the models (and
torch) the first time it is looked up.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # before the imports: modules below read it

from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    ResnetsError,
    TrainingInterrupted,
    WeightsError,
)

#: public name -> the module that defines it, imported when the name is first used
_LAZY = {
    "LoadedModel": "resnets.inference",
    "load_weights": "resnets.inference",
    "ResNet": "resnets.models",
    "create_model": "resnets.models",
    "list_models": "resnets.models",
    "reproduce": "resnets.analysis.definitions",
}

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "LoadedModel",
    "ResNet",
    "ResnetsError",
    "TrainingInterrupted",
    "WeightsError",
    "__version__",
    "create_model",
    "list_models",
    "load_weights",
    "reproduce",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'resnets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
