"""resnets: Deep Residual Networks (He, Zhang, Ren, Sun, 2015) on PyTorch."""

from .errors import CheckpointError, ConfigError, DataError, ResnetsError, WeightsError
from .models import ResNet, create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ResNet",
    "ResnetsError",
    "WeightsError",
    "__version__",
    "create_model",
    "list_models",
]
