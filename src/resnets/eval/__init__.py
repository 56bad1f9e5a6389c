"""Evaluation and prediction."""

from .metrics import EvalResult, evaluate
from .predict import predict, score

__all__ = ["EvalResult", "evaluate", "predict", "score"]
