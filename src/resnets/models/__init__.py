"""Models: one configurable :class:`ResNet`, a registry of named builders, summaries."""

from .fast import FastResNet
from .registry import (
    CIFAR_DEPTHS,
    IMAGENET_LAYERS,
    ModelSpec,
    create_model,
    get_spec,
    is_model,
    list_models,
)
from .resnet import BasicBlock, Bottleneck, ResNet, ZeroPadShortcut
from .summary import count_macs, count_params, format_summary, summarize

__all__ = [
    "CIFAR_DEPTHS",
    "IMAGENET_LAYERS",
    "BasicBlock",
    "FastResNet",
    "Bottleneck",
    "ModelSpec",
    "ResNet",
    "ZeroPadShortcut",
    "count_macs",
    "count_params",
    "create_model",
    "format_summary",
    "get_spec",
    "is_model",
    "list_models",
    "summarize",
]
