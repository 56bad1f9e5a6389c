"""Training: config and recipes, the step, the loop, run directories and checkpoints."""

from ..errors import TrainingInterrupted
from .config import TrainConfig, build_config
from .loop import train
from .recipes import RECIPES, list_recipes
from .report import TrainResult
from .state import RunState

__all__ = [
    "RECIPES",
    "RunState",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "build_config",
    "list_recipes",
    "train",
]
