"""Concatenating connections: DenseNet (Huang et al. 2017) and a concatenating twin of the
paper's CIFAR ResNets, so that a sum and a concatenation can be compared layer for layer.

**DenseNet.** Every layer of a dense block receives the concatenation of all earlier maps of
the block and adds ``growth_rate`` channels (BN-ReLU-1x1 to ``bn_size * k``, BN-ReLU-3x3 to
``k``: the "B" of DenseNet-BC); between blocks a transition (BN-ReLU-1x1, 2x2 average pool)
halves the resolution and, with ``compression`` 0.5 (the "C"), the channels. Key names are
torchvision's (``features.denseblock1.denselayer1.conv1``, ``features.transition1.conv``,
``features.norm5``, ``classifier``), so its ``densenet121`` file loads with ``strict=True``.

**ConcatResNet.** The CIFAR ResNet of He et al. (2015, section 4.2) with each block's output
``concat(x, relu(F(x)))`` instead of ``relu(x + F(x))``: a block's input is kept whole beside its
residual function, so widths grow by the stage width at every block. A transition at the start
of each later stage (1x1 conv + BN + ReLU to the stage width, 2x2 average pool) brings them back,
which keeps the cost bounded. ``base_width`` sets the widths (16/32/64 at 16) so that its
parameter count can be matched to a ResNet's (``resnets reproduce sum-vs-concat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .base import StagedNet, check_input_and_classes
from .registry import check_depth, register_model
from .resnet import conv3x3


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 (to ``bn_size * growth``), BN-ReLU-3x3 (to ``growth``)."""

    def __init__(self, in_ch: int, growth: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        inner = bn_size * growth
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, inner, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner, growth, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``n`` dense layers; each sees the concatenation of the block's input and all earlier
    layers' outputs, and the block returns the concatenation of all of them."""

    def __init__(self, n: int, in_ch: int, growth: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        for i in range(n):
            self[f"denselayer{i + 1}"] = DenseLayer(in_ch + i * growth, growth, bn_size, drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        maps = [x]
        for layer in self.values():
            maps.append(layer(torch.cat(maps, 1)))
        return torch.cat(maps, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv, 2x2 average pool: halves the resolution between dense blocks."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class _Stage(nn.Module):
    """A view of one DenseNet stage (transition, then dense block) over modules that stay
    registered under ``features`` (torchvision's keys); it owns no parameters."""

    def __init__(self, parts: list[nn.Module]) -> None:
        super().__init__()
        self._parts = parts  # a plain list: not registered again

    def forward(self, x: Tensor) -> Tensor:
        for p in self._parts:
            x = p(x)
        return x


class DenseNet(StagedNet):
    """DenseNet-BC.

    Args:
        block_config: dense layers in each block.
        growth_rate: channels each layer adds (k).
        num_init_features: channels of the stem.
        bn_size: the bottleneck's width in multiples of k (4 in DenseNet-BC; 0: no bottleneck).
        compression: channel factor of each transition (0.5 in DenseNet-BC).
        stem: ``"imagenet"`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) or ``"cifar"`` (one 3x3).
        dropout: dropout after each layer (torchvision's ``drop_rate``).
        num_classes, in_chans: as :class:`~resnets.models.resnet.ResNet`.
    """

    head_name = "classifier"

    def __init__(
        self,
        block_config: Sequence[int] = (6, 12, 24, 16),
        *,
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        stem: Literal["imagenet", "cifar"] = "imagenet",
        dropout: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if not block_config or any(n < 1 for n in block_config):
            raise ConfigError(f"block_config {list(block_config)}: >= 1 layer in each block")
        if not 0 < compression <= 1:
            raise ConfigError(f"compression must be in (0, 1], got {compression!r}")
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        check_input_and_classes(in_chans, num_classes)
        self.residual, self.block_type = True, "dense"
        self.num_classes, self.in_chans, self.stem_type = num_classes, in_chans, stem
        self.features = nn.Sequential()
        if stem == "imagenet":
            self.features.add_module(
                "conv0", nn.Conv2d(in_chans, num_init_features, 7, stride=2, padding=3, bias=False)
            )
            self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        else:
            self.features.add_module("conv0", conv3x3(in_chans, num_init_features))
        stem_parts = list(self.features.children())

        ch = num_init_features
        groups: list[list[nn.Module]] = []
        for i, n in enumerate(block_config):
            parts: list[nn.Module] = []
            if i > 0:
                out = int(ch * compression)
                trans = Transition(ch, out)
                self.features.add_module(f"transition{i}", trans)
                parts.append(trans)
                ch = out
            blk = DenseBlock(n, ch, growth_rate, bn_size, dropout)
            self.features.add_module(f"denseblock{i + 1}", blk)
            parts.append(blk)
            ch += n * growth_rate
            groups.append(parts)
        self.features.add_module("norm5", nn.BatchNorm2d(ch))
        self._stem = stem_parts
        self._stages = [_Stage(p) for p in groups]
        self.stage_names = [f"features.denseblock{i + 1}" for i in range(len(block_config))]
        self.num_features = ch
        self.classifier: nn.Module = self.new_classifier(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def stages(self) -> list[nn.Module]:
        return list(self._stages)

    def blocks(self) -> list[nn.Module]:
        return [layer for s in self._stages for p in s._parts for layer in p.children()]

    def forward_stem(self, x: Tensor) -> Tensor:
        for m in self._stem:
            x = m(x)
        return x

    def forward_final(self, x: Tensor) -> Tensor:
        return F.relu(self.features.norm5(x))

    def pool_features(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, 1)


def _densenet(growth: int, blocks: Sequence[int], init: int, **kwargs: Any) -> DenseNet:
    return DenseNet(blocks, growth_rate=growth, num_init_features=init, **kwargs)


@register_model(family="imagenet", depth=121, kind="dense")
def densenet121(**kwargs: Any) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017, Table 1; k=32): 8.0 M parameters, torchvision keys."""
    return _densenet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model(family="imagenet", depth=169, kind="dense")
def densenet169(**kwargs: Any) -> DenseNet:
    """DenseNet-169 (k=32): 14.1 M parameters."""
    return _densenet(32, (6, 12, 32, 32), 64, **kwargs)


@register_model(family="imagenet", depth=201, kind="dense")
def densenet201(**kwargs: Any) -> DenseNet:
    """DenseNet-201 (k=32): 20.0 M parameters."""
    return _densenet(32, (6, 12, 48, 32), 64, **kwargs)


def cifar_densenet_bc(depth: int, growth: int, **kwargs: Any) -> DenseNet:
    """DenseNet-BC for CIFAR: three blocks of (L-4)/6 bottleneck layers, a 2k-channel stem."""
    check_depth(depth, step=6, offset=4, minimum=10, name="DenseNet-BC for CIFAR")
    n = (depth - 4) // 6
    kwargs.setdefault("num_classes", 10)
    return _densenet(growth, (n, n, n), 2 * growth, stem="cifar", **kwargs)


@register_model(family="cifar", depth=100, kind="dense")
def densenet_bc_100_12(**kwargs: Any) -> DenseNet:
    """DenseNet-BC (L=100, k=12) for CIFAR (Huang et al. 2017, Table 2): 0.8 M parameters."""
    return cifar_densenet_bc(100, 12, **kwargs)
