"""Error types raised for bad user input.

Every error a user can cause (a bad option, a missing file, a corrupt image, a weights file for
another model) is a :class:`ResnetsError`. The CLI prints these as one line and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ResnetsError(Exception):
    """Base class of every error caused by user input."""


class ConfigError(ResnetsError, ValueError):
    """An unknown key, a value of the wrong type or out of range, an unknown model name."""


class DataError(ResnetsError):
    """A data path that does not exist, an unreadable image, an empty class folder, ..."""


class WeightsError(ResnetsError):
    """A weights or checkpoint file that cannot be loaded safely or does not fit the model."""


class CheckpointError(WeightsError):
    """A checkpoint that is corrupt (checksum mismatch), truncated or of another run."""


class TrainingDiverged(ResnetsError):
    """The loss became NaN or infinite."""
