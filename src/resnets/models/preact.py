"""Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks") and
the wide ResNets built from them (Zagoruyko & Komodakis 2016, "Wide Residual Networks").

A pre-activation unit is BN-ReLU-conv, twice (basic) or three times (bottleneck), added to an
untouched identity: nothing follows the addition, so the signal of any unit reaches any later
one directly (that paper's Eq. 4 and Fig. 4e). Since no unit ends in a ReLU, the last stage is
followed by one more BN-ReLU (part of the final feature map, as in timm's ResNetV2).

Where the shape changes the shortcut is a 1x1 convolution (no BN) of the pre-activated input,
as in both papers' CIFAR code; ``shortcut="A"`` gives the zero-padding shortcut instead.

Parameter counts (tests/models/test_models.py): pre-act ResNet-110 1.7 M, ResNet-164 1.7 M,
ResNet-1001 10.3 M (the Identity Mappings paper's Table 2 and 3 say 1.7 M, 1.7 M, 10.2 M);
WRN-28-10 36.5 M (the wide paper's Table 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor, nn

from ..errors import ConfigError
from .base import StagedNet, check_input_and_classes
from .registry import register_model
from .resnet import IMAGENET_LAYERS, ZeroPadShortcut, conv1x1, conv3x3


def _preact_shortcut(option: str, in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    if option == "A":
        return ZeroPadShortcut(in_ch, out_ch, stride)
    return conv1x1(in_ch, out_ch, stride)


class PreActBasicBlock(nn.Module):
    """BN-ReLU-3x3, BN-ReLU-3x3, plus the identity (Identity Mappings, Fig. 4e). ``dropout``
    between the two convolutions is the wide ResNets' regularisation (their section 2.4)."""

    expansion = 1

    def __init__(
        self, in_ch: int, width: int, stride: int = 1, *, shortcut: str = "B", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv3x3(in_ch, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(width, width)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = _preact_shortcut(shortcut, in_ch, width, stride)

    def response_layers(self) -> list[nn.Module]:
        return [self.conv1, self.conv2]

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        # a projection sees the pre-activated input (both papers' code); an identity sees x
        short = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.drop(self.relu(self.bn2(out))))
        return out + short


class PreActBottleneck(nn.Module):
    """BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1 (4x wider), plus the identity."""

    expansion = 4

    def __init__(
        self, in_ch: int, width: int, stride: int = 1, *, shortcut: str = "B", dropout: float = 0.0
    ) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv1x1(in_ch, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn3 = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv3 = conv1x1(width, out_ch)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = _preact_shortcut(shortcut, in_ch, out_ch, stride)

    def response_layers(self) -> list[nn.Module]:
        return [self.conv2]

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        short = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.drop(self.relu(self.bn3(out))))
        return out + short


PREACT_BLOCKS: dict[str, type[PreActBasicBlock] | type[PreActBottleneck]] = {
    "basic": PreActBasicBlock,
    "bottleneck": PreActBottleneck,
}


class PreActResNet(StagedNet):
    """A pre-activation ResNet (also the wide ResNets' body).

    Args:
        block: ``"basic"`` or ``"bottleneck"``.
        layers: blocks per stage.
        widths: width of each stage (a bottleneck's output is 4x).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool; no BN-ReLU, the first unit
            pre-activates) or ``"cifar"`` (one 3x3 conv).
        stem_width: output channels of the stem (default: ``widths[0]``; WRN: 16).
        num_classes, in_chans: as :class:`~resnets.models.resnet.ResNet`.
        shortcut: ``"B"`` (1x1 projection where the shape changes) or ``"A"`` (zero-padding).
        dropout: probability inside every unit (the wide ResNets' option; 0 = none).
    """

    def __init__(
        self,
        block: str,
        layers: Sequence[int],
        *,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: Literal["imagenet", "cifar"] = "imagenet",
        stem_width: int | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        shortcut: str = "B",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if block not in PREACT_BLOCKS:
            raise ConfigError(f"block must be one of {sorted(PREACT_BLOCKS)}, got {block!r}")
        if shortcut not in ("A", "B"):
            raise ConfigError(f"pre-activation nets take shortcut 'A' or 'B', got {shortcut!r}")
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if len(layers) != len(widths) or any(n < 1 for n in layers):
            raise ConfigError(f"layers {list(layers)} must give >= 1 block to {len(widths)} stages")
        check_input_and_classes(in_chans, num_classes)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        block_cls = PREACT_BLOCKS[block]
        self.block_type, self.residual, self.shortcut = block, True, shortcut
        self.num_classes, self.in_chans, self.stem_type = num_classes, in_chans, stem

        stem_width = stem_width or widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_chans, stem_width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()

        in_ch = stem_width
        self.stage_names: list[str] = []
        for i, (n, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(
                    block_cls(in_ch, width, stride, shortcut=shortcut, dropout=float(dropout))
                )
                in_ch = width * block_cls.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.stage_names.append(f"layer{i + 1}")

        self.num_features = in_ch
        self.norm = nn.BatchNorm2d(in_ch)  # the BN-ReLU after the last unit
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = self.new_classifier(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.conv1(x))

    def forward_final(self, x: Tensor) -> Tensor:
        return self.relu(self.norm(x))

    def pool_features(self, x: Tensor) -> Tensor:
        return self.avgpool(x)


# ------------------------------------------------------------------------------------------
# Pre-activation ResNets


def cifar_preact(depth: int, block: str = "basic", **kwargs: Any) -> PreActResNet:
    """Pre-act CIFAR ResNet: 6n+2 layers of basic units (16/32/64) or 9n+2 of bottleneck units
    (inner 16/32/64, outputs 64/128/256), as in the Identity Mappings paper's section 4."""
    per = 6 if block == "basic" else 9
    if depth < per + 2 or (depth - 2) % per:
        raise ConfigError(f"a CIFAR pre-act {block} net has {per}n+2 layers; got {depth}")
    n = (depth - 2) // per
    kwargs.setdefault("num_classes", 10)
    return PreActResNet(block, (n, n, n), widths=(16, 32, 64), stem="cifar", **kwargs)


def imagenet_preact(depth: int, **kwargs: Any) -> PreActResNet:
    """Pre-act ImageNet ResNet with the layers of paper Table 1 (He et al. 2015)."""
    block, layers = IMAGENET_LAYERS[depth]
    return PreActResNet(block, layers, widths=(64, 128, 256, 512), stem="imagenet", **kwargs)


@register_model(family="cifar", depth=110, kind="preact")
def preact_resnet110(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-110 for CIFAR (Identity Mappings, Table 3: 6.37% error on CIFAR-10)."""
    return cifar_preact(110, "basic", **kwargs)


@register_model(family="cifar", depth=164, kind="preact")
def preact_resnet164(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-164 for CIFAR, bottleneck units (Table 3: 5.46%): 1.7 M parameters."""
    return cifar_preact(164, "bottleneck", **kwargs)


@register_model(family="cifar", depth=1001, kind="preact")
def preact_resnet1001(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-1001 for CIFAR, bottleneck units (Table 3: 4.92%): 10.3 M parameters."""
    return cifar_preact(1001, "bottleneck", **kwargs)


@register_model(family="imagenet", depth=18, kind="preact")
def preact_resnet18(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-18 (ImageNet): ResNet-18's layers with BN-ReLU-conv units."""
    return imagenet_preact(18, **kwargs)


@register_model(family="imagenet", depth=34, kind="preact")
def preact_resnet34(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-34 (ImageNet)."""
    return imagenet_preact(34, **kwargs)


@register_model(family="imagenet", depth=50, kind="preact")
def preact_resnet50(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-50 (ImageNet)."""
    return imagenet_preact(50, **kwargs)


@register_model(family="imagenet", depth=101, kind="preact")
def preact_resnet101(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-101 (ImageNet)."""
    return imagenet_preact(101, **kwargs)


@register_model(family="imagenet", depth=152, kind="preact")
def preact_resnet152(**kwargs: Any) -> PreActResNet:
    """Pre-act ResNet-152 (ImageNet; Identity Mappings, Table 5: 21.1% top-1 single crop)."""
    return imagenet_preact(152, **kwargs)
