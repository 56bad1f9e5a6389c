"""ResNeXt (Xie et al. 2017, "Aggregated Residual Transformations") and the wide bottleneck
ResNets (Zagoruyko & Komodakis 2016): the same :class:`ResNet`, with a grouped or wider 3x3.

Both are bottleneck ResNets whose inner width is ``int(width * width_per_group / 64) * groups``
(see :class:`~resnets.models.resnet.Bottleneck`): ResNeXt-50 32x4d has 32 groups of 4 channels
at its first stage (128 in all, against ResNet-50's 64), and Wide ResNet-50-2 doubles every inner
width (``width_per_group=128``). Key names and parameter counts equal torchvision's, so its
``resnext*`` and ``wide_resnet*`` files load with ``strict=True``.

The CIFAR ResNeXt-29 of the paper (section 5.3, Table 7): a 3x3 stem of 64 channels and three
stages of three bottleneck blocks (9 x 3 + 2 = 29 layers) with outputs 256/512/1024 and
cardinality x width ``C x 64d`` at the first stage.
"""

from __future__ import annotations

from typing import Any

from .registry import check_depth, register_model
from .resnet import IMAGENET_LAYERS, ResNet


def imagenet_grouped(depth: int, groups: int, width_per_group: int, **kwargs: Any) -> ResNet:
    """A bottleneck ImageNet ResNet of ``depth`` (50, 101, 152) with grouped/wider 3x3s."""
    block, layers = IMAGENET_LAYERS[depth]
    kwargs.setdefault("shortcut", "B")
    return ResNet(
        block,
        layers,
        widths=(64, 128, 256, 512),
        stem="imagenet",
        groups=groups,
        width_per_group=width_per_group,
        **kwargs,
    )


def cifar_resnext(depth: int, cardinality: int, width: int, **kwargs: Any) -> ResNet:
    """ResNeXt-``depth`` for CIFAR, ``cardinality x width d`` (paper Table 7): 9n+2 layers."""
    n = (check_depth(depth, step=9, offset=2, minimum=11, name="ResNeXt for CIFAR") - 2) // 9
    kwargs.setdefault("shortcut", "B")
    kwargs.setdefault("num_classes", 10)
    return ResNet(
        "bottleneck",
        (n, n, n),
        widths=(64, 128, 256),
        stem="cifar",
        groups=cardinality,
        width_per_group=width,
        **kwargs,
    )


@register_model(family="imagenet", depth=50)
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d (Xie et al. 2017, Table 1): 25.0 M parameters, ResNet-50's cost."""
    return imagenet_grouped(50, 32, 4, **kwargs)


@register_model(family="imagenet", depth=101)
def resnext101_32x8d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 32x8d: 88.8 M parameters."""
    return imagenet_grouped(101, 32, 8, **kwargs)


@register_model(family="imagenet", depth=101)
def resnext101_64x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 64x4d (Xie et al. 2017, Table 5): 83.5 M parameters."""
    return imagenet_grouped(101, 64, 4, **kwargs)


@register_model(family="cifar", depth=29)
def resnext29_8x64d(**kwargs: Any) -> ResNet:
    """ResNeXt-29 8x64d for CIFAR (Xie et al. 2017, Table 7): 34.4 M parameters."""
    return cifar_resnext(29, 8, 64, **kwargs)


@register_model(family="cifar", depth=29)
def resnext29_16x64d(**kwargs: Any) -> ResNet:
    """ResNeXt-29 16x64d for CIFAR (Xie et al. 2017, Table 7): 68.1 M parameters."""
    return cifar_resnext(29, 16, 64, **kwargs)
