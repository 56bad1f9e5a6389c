"""From a trained model to a deployed one: export (ONNX, OpenVINO, int8), a card of evidence,
and an HTTP server. (Loading a model on any runtime is ``resnets.inference``.)"""

from .export import ExportReport, export_model

__all__ = [
    "ExportReport",
    "export_model",
]
