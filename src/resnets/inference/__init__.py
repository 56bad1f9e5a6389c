"""Loading weights for inference, in one place: :func:`load_weights` -> :class:`LoadedModel`.

``runtimes.py`` runs an exported model (ONNX Runtime, OpenVINO) as a module; ``graph.py`` builds
the ONNX graph with the record inside; ``views.py`` is the preprocessing of every command; ``loader.py`` turns any source into a LoadedModel.
"""

from .loader import (
    PRECISIONS,
    LoadedModel,
    choose_backend,
    load_weights,
    model_from_weights,
    wrap_module,
)
from .runtimes import BACKENDS, ExternalModel, available_backends, is_exported, read_exported_meta
from .views import TestTime, TestViews

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "TestTime",
    "TestViews",
    "ExternalModel",
    "LoadedModel",
    "available_backends",
    "choose_backend",
    "is_exported",
    "load_weights",
    "model_from_weights",
    "read_exported_meta",
    "wrap_module",
]
