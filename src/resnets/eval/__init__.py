"""Evaluation and prediction."""

from .metrics import EvalResult, evaluate
from .predict import LoadedModel, load_for_inference, predict, score

__all__ = ["EvalResult", "LoadedModel", "evaluate", "load_for_inference", "predict", "score"]
