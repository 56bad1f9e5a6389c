"""resnets: Deep Residual Networks (He, Zhang, Ren, Sun, 2015) on PyTorch."""

__version__ = "0.1.0"  # before the imports: modules below read it

from .errors import CheckpointError, ConfigError, DataError, ResnetsError, WeightsError  # noqa: E402
from .inference import LoadedModel, load_weights  # noqa: E402
from .models import ResNet, create_model, list_models  # noqa: E402

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "LoadedModel",
    "ResNet",
    "ResnetsError",
    "WeightsError",
    "__version__",
    "create_model",
    "list_models",
    "load_weights",
]
