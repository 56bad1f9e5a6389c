"""Wide ResNets: ImageNet's Wide ResNet-50-2 / 101-2 (bottleneck inner widths doubled, built as
grouped ResNets with one group) and CIFAR's WRN-d-k (Zagoruyko & Komodakis 2016: pre-activation
basic blocks k times wider; ``wrn_28_10`` and any ``wrn_D_K`` with D = 6n+4)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from .preact import PreActResNet
from .registry import FAMILY_DEFAULTS, ModelSpec, check_depth, register_model, register_pattern
from .resnet import ResNet
from .resnext import imagenet_grouped


@register_model(family="imagenet", depth=50)
def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): inner widths doubled, 68.9 M parameters."""
    return imagenet_grouped(50, 1, 128, **kwargs)


@register_model(family="imagenet", depth=101)
def wide_resnet101_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-101-2: inner widths doubled, 126.9 M parameters."""
    return imagenet_grouped(101, 1, 128, **kwargs)


# ------------------------------------------------------------------------------------------
# Wide ResNets for CIFAR: WRN-d-k


def wide_resnet(depth: int, k: int, **kwargs: Any) -> PreActResNet:
    """WRN-``depth``-``k`` (the wide paper's Table 1): a 16-channel 3x3 stem, then (d-4)/6
    pre-act basic units per stage of widths 16k/32k/64k. ``dropout=0.3`` is that paper's
    dropout setting (default 0)."""
    check_depth(depth, step=6, offset=4, minimum=10, name="WRN-d-k")
    if k < 1:
        raise ConfigError(f"a wide ResNet's widening factor k is >= 1; got {k}")
    n = (depth - 4) // 6
    kwargs.setdefault("num_classes", 10)
    return PreActResNet(
        "basic", (n, n, n), widths=(16 * k, 32 * k, 64 * k), stem="cifar", stem_width=16, **kwargs
    )


@register_model(family="cifar", depth=28, kind="preact")
def wrn_28_10(**kwargs: Any) -> PreActResNet:
    """WRN-28-10 for CIFAR (Zagoruyko & Komodakis 2016): 36.5 M parameters."""
    return wide_resnet(28, 10, **kwargs)


@register_model(family="cifar", depth=16, kind="preact")
def wrn_16_8(**kwargs: Any) -> PreActResNet:
    """WRN-16-8 for CIFAR: 11.0 M parameters."""
    return wide_resnet(16, 8, **kwargs)


@register_model(family="cifar", depth=40, kind="preact")
def wrn_40_4(**kwargs: Any) -> PreActResNet:
    """WRN-40-4 for CIFAR: 8.9 M parameters."""
    return wide_resnet(40, 4, **kwargs)


def _resolve_wrn(m: re.Match[str]) -> ModelSpec:
    """``wrn_d_k``: any depth 6n+4 and widening factor k."""
    depth = check_depth(int(m.group(1)), step=6, offset=4, minimum=10, name="WRN-d-k")
    k = int(m.group(2))
    if not 1 <= k <= 32:  # WRN-28-10 is the paper's widest; k=32 is already 10x its parameters
        raise ConfigError(f"WRN-d-k needs a widening factor k from 1 to 32; got k={k}")

    def build(**kwargs: Any) -> PreActResNet:
        return wide_resnet(depth, k, **kwargs)

    build.__doc__ = f"WRN-{depth}-{k} for CIFAR (pre-act basic units, widths x{k})."
    classes, size = FAMILY_DEFAULTS["cifar"]
    return ModelSpec(m.group(0), "cifar", depth, True, build, classes, size, "preact")


register_pattern(r"wrn_(\d+)_(\d+)", _resolve_wrn)
