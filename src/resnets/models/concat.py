"""The concatenating twin of the paper's CIFAR ResNets: each block's ``relu(x + F(x))`` becomes
``concat(x, relu(F(x)))`` (``concat20`` .. ``concat110``, any 6n+2 depth), for the sum-vs-concat
experiment."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .base import StagedNet, check_input_and_classes
from .registry import FAMILY_DEFAULTS, ModelSpec, check_depth, register_model, register_pattern
from .resnet import conv1x1, conv3x3

# ------------------------------------------------------------------------------------------
# The concatenating twin of the paper's CIFAR ResNets


class ConcatBlock(nn.Module):
    """``concat(x, relu(F(x)))`` with F the basic block's 3x3-BN-ReLU-3x3-BN; ``growth``
    channels are added. Same layers as a :class:`~resnets.models.resnet.BasicBlock` whose
    sum is replaced by a concatenation."""

    def __init__(self, in_ch: int, growth: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, growth)
        self.bn1 = nn.BatchNorm2d(growth)
        self.conv2 = conv3x3(growth, growth)
        self.bn2 = nn.BatchNorm2d(growth)
        self.relu = nn.ReLU(inplace=True)

    def response_layers(self) -> list[nn.Module]:
        return [self.bn1, self.bn2]

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return torch.cat([x, out], 1)


class ConcatTransition(nn.Sequential):
    """1x1 conv + BN + ReLU back to the stage width, then a 2x2 average pool."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = conv1x1(in_ch, out_ch)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(2, stride=2)


class ConcatResNet(StagedNet):
    """The paper's CIFAR ResNet (6n+2 layers) with concatenation in place of the sum.

    Args:
        depth: 6n+2 (n blocks per stage, as the ResNet it is compared with).
        base_width: the first stage's width (16 in the paper's nets); stage widths are 1x, 2x, 4x.
        num_classes, in_chans: as :class:`~resnets.models.resnet.ResNet`.
    """

    def __init__(
        self, depth: int, *, base_width: int = 16, num_classes: int = 10, in_chans: int = 3
    ) -> None:
        super().__init__()
        check_depth(depth, step=6, offset=2, minimum=8, maximum=110, name="Concatenating CIFAR")
        if not isinstance(base_width, int) or base_width < 1:
            raise ConfigError(f"base_width must be a positive integer, got {base_width!r}")
        check_input_and_classes(in_chans, num_classes)
        n = (depth - 2) // 6
        self.residual, self.block_type, self.stem_type = True, "concat", "cifar"
        self.num_classes, self.in_chans = num_classes, in_chans
        w = base_width
        self.conv1 = conv3x3(in_chans, w)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        ch = w
        self.stage_names = []
        for i, width in enumerate((w, 2 * w, 4 * w)):
            mods: list[nn.Module] = []
            if i > 0:
                mods.append(ConcatTransition(ch, width))
                ch = width
            for _ in range(n):
                mods.append(ConcatBlock(ch, width))
                ch += width
            self.add_module(f"layer{i + 1}", nn.Sequential(*mods))
            self.stage_names.append(f"layer{i + 1}")
        self.num_features = ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = self.new_classifier(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def pool_features(self, x: Tensor) -> Tensor:
        return self.avgpool(x)


@register_model(family="cifar", depth=20, kind="concat")
def concat20(**kwargs: Any) -> ConcatResNet:
    """ResNet-20 for CIFAR with concatenating shortcuts (see ConcatResNet)."""
    return ConcatResNet(20, **kwargs)


@register_model(family="cifar", depth=32, kind="concat")
def concat32(**kwargs: Any) -> ConcatResNet:
    """ResNet-32 for CIFAR with concatenating shortcuts."""
    return ConcatResNet(32, **kwargs)


@register_model(family="cifar", depth=56, kind="concat")
def concat56(**kwargs: Any) -> ConcatResNet:
    """ResNet-56 for CIFAR with concatenating shortcuts."""
    return ConcatResNet(56, **kwargs)


@register_model(family="cifar", depth=110, kind="concat")
def concat110(**kwargs: Any) -> ConcatResNet:
    """ResNet-110 for CIFAR with concatenating shortcuts."""
    return ConcatResNet(110, **kwargs)


def _resolve_concat(m: re.Match[str]) -> ModelSpec:
    """``concat8``, ``concat44``, ...: any CIFAR depth 6n+2 with concatenating shortcuts."""
    # concatenation widens the features with every block: 110 layers is already 7x ResNet-110
    depth = check_depth(
        int(m.group(1)), step=6, offset=2, minimum=8, maximum=110, name="Concatenating CIFAR"
    )

    def build(**kwargs: Any) -> ConcatResNet:
        return ConcatResNet(depth, **kwargs)

    build.__doc__ = f"ResNet-{depth} for CIFAR with concatenating shortcuts."
    classes, size = FAMILY_DEFAULTS["cifar"]
    return ModelSpec(m.group(0), "cifar", depth, True, build, classes, size, "concat")


register_pattern(r"concat(\d+)", _resolve_concat)
