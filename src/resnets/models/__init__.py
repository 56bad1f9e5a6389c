"""Models: one configurable :class:`ResNet`, a registry of named builders, summaries.

Importing this package registers every builder (``resnet.py``, ``fast.py``).
"""

from .base import FeatureInfo, StagedNet
from .factory import create_model, list_models
from .fast import FastResNet
from .hub import get_pretrained, list_pretrained, load_model
from .registry import ModelSpec, get_spec, is_model, register_model
from .resnet import (
    CIFAR_DEPTHS,
    IMAGENET_LAYERS,
    BasicBlock,
    Bottleneck,
    ResNet,
    ZeroPadShortcut,
    cifar_resnet,
    imagenet_resnet,
)
from .summary import count_macs, count_params, format_summary, summarize

__all__ = [
    "CIFAR_DEPTHS",
    "IMAGENET_LAYERS",
    "BasicBlock",
    "Bottleneck",
    "FastResNet",
    "FeatureInfo",
    "ModelSpec",
    "ResNet",
    "StagedNet",
    "ZeroPadShortcut",
    "cifar_resnet",
    "count_macs",
    "count_params",
    "create_model",
    "format_summary",
    "get_pretrained",
    "get_spec",
    "imagenet_resnet",
    "is_model",
    "list_models",
    "list_pretrained",
    "load_model",
    "register_model",
    "summarize",
]
