"""Evaluation and prediction."""

from .metrics import EvalResult, Scoring, evaluate
from .predict import predict, score

__all__ = ["EvalResult", "Scoring", "evaluate", "predict", "score"]
