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


class TrainingInterrupted(Exception):
    """Raised by callers that run several trainings (experiments) when one was interrupted:
    not a user error (the run resumes), so not a :class:`ResnetsError`; carries the stopped
    run's result and the exit code to leave with."""

    def __init__(self, result) -> None:  # a train.report.TrainResult
        self.result, self.exit_code = result, result.exit_code
        super().__init__(f"interrupted; resume with: resnets train --resume {result.run_dir}")
