"""Models: one configurable :class:`ResNet`, a registry of named builders, summaries.

Importing this package registers every builder (``resnet.py``, ``fast.py``, ``resnext.py``,
``preact.py``, ``wide.py``, ``densenet.py``, ``concat.py``).
"""

from .base import FeatureInfo, StagedNet
from .catalogue import get_pretrained, list_pretrained
from .concat import ConcatResNet
from .densenet import DenseNet
from .factory import create_model, list_models
from .fast import FastResNet
from .preact import PreActResNet
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
from .resnext import cifar_resnext, imagenet_grouped
from .summary import count_macs, count_params, format_summary, summarize
from .wide import wide_resnet

__all__ = [
    "CIFAR_DEPTHS",
    "IMAGENET_LAYERS",
    "BasicBlock",
    "Bottleneck",
    "ConcatResNet",
    "DenseNet",
    "FastResNet",
    "FeatureInfo",
    "ModelSpec",
    "PreActResNet",
    "ResNet",
    "StagedNet",
    "ZeroPadShortcut",
    "cifar_resnet",
    "cifar_resnext",
    "count_macs",
    "count_params",
    "create_model",
    "format_summary",
    "get_pretrained",
    "get_spec",
    "imagenet_grouped",
    "imagenet_resnet",
    "is_model",
    "list_models",
    "list_pretrained",
    "register_model",
    "summarize",
    "wide_resnet",
]
