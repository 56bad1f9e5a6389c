"""Training: config and recipes, the trainer, checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import RECIPES, TrainConfig, build_config, list_recipes
from .trainer import TrainingInterrupted, TrainResult, train

__all__ = [
    "RECIPES",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "build_config",
    "list_recipes",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]
