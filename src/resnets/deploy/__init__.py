"""From a trained model to a deployed one: export (ONNX, OpenVINO) and inference backends."""

from .backends import BACKENDS, ExternalModel, available_backends, load_for_backend
from .export import ExportReport, export_model

__all__ = [
    "BACKENDS",
    "ExportReport",
    "ExternalModel",
    "available_backends",
    "export_model",
    "load_for_backend",
]
