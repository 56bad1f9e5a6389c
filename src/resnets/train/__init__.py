"""Training: config and recipes, the step, the loop, run directories and checkpoints.

The public names load on first use (:mod:`resnets.lazy`): ``import resnets.train.config``
imports the config and recipes, not the loop, evaluation and data beside them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import TrainingInterrupted as TrainingInterrupted
from ..lazy import lazy_attributes

if TYPE_CHECKING:  # the lazy names, seen by IDEs and type checkers (``X as X``: re-exported;
    # tests/test_layout.py keeps this block and _LAZY the same)
    from .config import TrainConfig as TrainConfig
    from .config import build_config as build_config
    from .loop import train as train
    from .recipes import RECIPES as RECIPES
    from .recipes import list_recipes as list_recipes
    from .report import TrainResult as TrainResult
    from .state import RunState as RunState

#: public name -> the module of this package that defines it
_LAZY = {
    "TrainConfig": "config",
    "build_config": "config",
    "train": "loop",
    "RECIPES": "recipes",
    "list_recipes": "recipes",
    "TrainResult": "report",
    "RunState": "state",
}

__all__ = sorted([*_LAZY, "TrainingInterrupted"])
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
