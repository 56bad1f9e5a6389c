"""Models: one configurable :class:`ResNet`, a registry of named builders, summaries.

The public names load on first use (PEP 562): importing this package imports no model and no
torch, so that ``resnets models`` can list them from ``index.py``. Looking a model up in the
registry imports every family's builders (``resnet.py``, ``fast.py``, ``resnext.py``,
``preact.py``, ``wide.py``, ``densenet.py``, ``concat.py``; see ``registry.FAMILIES``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes

if TYPE_CHECKING:  # the lazy names, seen by IDEs and type checkers (``X as X``: re-exported;
    # tests/test_layout.py keeps this block and _LAZY the same)
    from .base import FeatureInfo as FeatureInfo
    from .base import StagedNet as StagedNet
    from .catalogue import get_pretrained as get_pretrained
    from .catalogue import list_pretrained as list_pretrained
    from .concat import ConcatResNet as ConcatResNet
    from .densenet import DenseNet as DenseNet
    from .detector import DetectorConfig as DetectorConfig
    from .detector import FasterRCNN as FasterRCNN
    from .factory import create_model as create_model
    from .factory import list_models as list_models
    from .fast import FastResNet as FastResNet
    from .preact import PreActResNet as PreActResNet
    from .registry import ModelSpec as ModelSpec
    from .registry import get_spec as get_spec
    from .registry import is_model as is_model
    from .registry import register_model as register_model
    from .resnet import CIFAR_DEPTHS as CIFAR_DEPTHS
    from .resnet import IMAGENET_LAYERS as IMAGENET_LAYERS
    from .resnet import BasicBlock as BasicBlock
    from .resnet import Bottleneck as Bottleneck
    from .resnet import ResNet as ResNet
    from .resnet import ZeroPadShortcut as ZeroPadShortcut
    from .resnet import cifar_resnet as cifar_resnet
    from .resnet import imagenet_resnet as imagenet_resnet
    from .resnext import cifar_resnext as cifar_resnext
    from .resnext import imagenet_grouped as imagenet_grouped
    from .summary import count_macs as count_macs
    from .summary import count_params as count_params
    from .summary import format_summary as format_summary
    from .summary import summarize as summarize
    from .wide import wide_resnet as wide_resnet

#: public name -> the module of this package that defines it
_LAZY = {
    "FeatureInfo": "base",
    "StagedNet": "base",
    "get_pretrained": "catalogue",
    "list_pretrained": "catalogue",
    "ConcatResNet": "concat",
    "DenseNet": "densenet",
    "DetectorConfig": "detector",
    "FasterRCNN": "detector",
    "create_model": "factory",
    "list_models": "factory",
    "FastResNet": "fast",
    "PreActResNet": "preact",
    "ModelSpec": "registry",
    "get_spec": "registry",
    "is_model": "registry",
    "register_model": "registry",
    "CIFAR_DEPTHS": "resnet",
    "IMAGENET_LAYERS": "resnet",
    "BasicBlock": "resnet",
    "Bottleneck": "resnet",
    "ResNet": "resnet",
    "ZeroPadShortcut": "resnet",
    "cifar_resnet": "resnet",
    "imagenet_resnet": "resnet",
    "cifar_resnext": "resnext",
    "imagenet_grouped": "resnext",
    "count_macs": "summary",
    "count_params": "summary",
    "format_summary": "summary",
    "summarize": "summary",
    "wide_resnet": "wide",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
