"""resnets: Deep Residual Networks (He, Zhang, Ren, Sun, 2015) on PyTorch.

The public names load on first use (PEP 562), so that ``import resnets`` and ``resnets
--help`` cost nothing beyond what they use: ``resnets.create_model`` imports the models (and
torch) the first time it is looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"  # before the imports: modules below read it

from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    ResnetsError,
    TrainingInterrupted,
    WeightsError,
)
from .lazy import lazy_attributes  # noqa: E402

if TYPE_CHECKING:  # the lazy names, seen by IDEs and type checkers (tests/test_layout.py
    # keeps this block and _LAZY the same)
    from .analysis.reproduce import reproduce
    from .inference import LoadedModel, load_weights
    from .models import ResNet, create_model, list_models

#: public name -> the module that defines it, imported when the name is first used
_LAZY = {
    "LoadedModel": "resnets.inference",
    "load_weights": "resnets.inference",
    "ResNet": "resnets.models",
    "create_model": "resnets.models",
    "list_models": "resnets.models",
    "reproduce": "resnets.analysis.reproduce",
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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
