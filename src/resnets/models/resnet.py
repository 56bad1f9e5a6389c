"""One configurable ResNet: the ImageNet and CIFAR networks of He et al. (2015) and their plain twins.

Parameter names follow torchvision (``conv1``, ``bn1``, ``layer1..4``, ``fc``, ``downsample.0/1``),
so a torchvision ``state_dict`` loads with ``strict=True`` into the models built with shortcut B.

Shortcut options (paper, section 3.3 and Table 3):

* ``"A"``: identity shortcuts; where the shape changes, the input is subsampled by the stride and
  zero-padded with extra channels. Parameter-free.
* ``"B"``: identity shortcuts, projection (1x1 conv + BN) where the shape changes.
* ``"C"``: projection shortcuts on every block.

A *plain* network (``residual=False``) is the same stack of layers without any shortcut: the
paper's baseline that shows the degradation problem (Fig. 1, Fig. 4, Fig. 6).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .base import StagedNet, check_input_and_classes
from .registry import FAMILY_DEFAULTS, ModelSpec, check_depth, register_model, register_pattern

Shortcut = Literal["A", "B", "C"]
Stem = Literal["imagenet", "cifar"]


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels (no parameters)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_ch - self.in_ch
        if extra > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_ch}->{self.out_ch}, stride={self.stride}"


def norm2d(channels: int, batchnorm: bool = True) -> nn.Module:
    """BatchNorm, or an identity for the no-BN variants used to study gradient flow."""
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


def make_shortcut(
    option: str, residual: bool, in_ch: int, out_ch: int, stride: int, batchnorm: bool = True
) -> nn.Module | None:
    """The shortcut module of one block, or None for an identity (or no) shortcut."""
    if not residual:
        return None
    shape_changes = stride != 1 or in_ch != out_ch
    if option == "A":
        return ZeroPadShortcut(in_ch, out_ch, stride) if shape_changes else None
    if option == "C" or (option == "B" and shape_changes):
        return nn.Sequential(conv1x1(in_ch, out_ch, stride), norm2d(out_ch, batchnorm))
    return None


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (paper Fig. 5, left)."""

    expansion = 1

    def __init__(
        self,
        in_ch: int,
        width: int,
        stride: int = 1,
        *,
        shortcut: str = "B",
        residual: bool = True,
        stride_in_1x1: bool = False,
        batchnorm: bool = True,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ConfigError("basic blocks take no groups or width_per_group (bottleneck only)")
        out_ch = width * self.expansion
        self.residual = residual
        self.conv1 = conv3x3(in_ch, width, stride)
        self.bn1 = norm2d(width, batchnorm)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, out_ch)
        self.bn2 = norm2d(out_ch, batchnorm)
        self.downsample = make_shortcut(shortcut, residual, in_ch, out_ch, stride, batchnorm)

    def last_bn(self) -> nn.Module:
        return self.bn2

    def response_layers(self) -> list[nn.Module]:
        """The BN (or identity) after each 3x3 convolution: the responses of the paper's Fig. 7."""
        return [self.bn1, self.bn2]

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (paper Fig. 5, right).

    ``stride_in_1x1=False`` puts the stride in the 3x3 convolution (torchvision's "ResNet v1.5",
    slightly more accurate); ``True`` puts it in the first 1x1 as in the original paper.

    ``groups`` and ``base_width`` give ResNeXt's grouped 3x3 (Xie et al. 2017, Fig. 3c: cardinality
    ``groups``, ``base_width`` channels per group at the first stage) and the wide ResNets' wider
    inner layers: the inner width is ``int(width * base_width / 64) * groups``, the output stays
    ``4 * width`` (torchvision's rule, so its ResNeXt and wide weights load).
    """

    expansion = 4

    def __init__(
        self,
        in_ch: int,
        width: int,
        stride: int = 1,
        *,
        shortcut: str = "B",
        residual: bool = True,
        stride_in_1x1: bool = False,
        batchnorm: bool = True,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        out_ch = width * self.expansion
        inner = int(width * base_width / 64) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.residual = residual
        self.conv1 = conv1x1(in_ch, inner, s1)
        self.bn1 = norm2d(inner, batchnorm)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=s3, padding=1, groups=groups, bias=False)
        self.bn2 = norm2d(inner, batchnorm)
        self.conv3 = conv1x1(inner, out_ch)
        self.bn3 = norm2d(out_ch, batchnorm)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, residual, in_ch, out_ch, stride, batchnorm)

    def last_bn(self) -> nn.Module:
        return self.bn3

    def response_layers(self) -> list[nn.Module]:
        return [self.bn2]

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(StagedNet):
    """A residual (or plain) network.

    Args:
        block: ``"basic"`` or ``"bottleneck"``.
        layers: number of blocks in each stage.
        widths: width of each stage (the bottleneck's inner width; its output is 4x).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool) or ``"cifar"`` (3x3 conv, paper 4.2).
        num_classes: outputs of the final fully connected layer (0: no classifier, features only).
        in_chans: input channels.
        shortcut: ``"A"``, ``"B"`` or ``"C"`` (see module docstring).
        residual: False builds the plain twin (no shortcuts at all).
        zero_init_residual: start every block's last BN at gamma = 0, so each block is an identity
            at initialisation (Goyal et al., 2017).
        stride_in_1x1: bottleneck stride placement (see :class:`Bottleneck`).
        batchnorm: False replaces every BatchNorm by an identity (to study gradient flow
            without normalisation; not a training configuration of the paper).
        groups: cardinality of the bottleneck's 3x3 convolution (ResNeXt; 1: ResNet).
        width_per_group: channels per group at the first stage (64: ResNet; 128 with
            groups=1: the wide ResNet-50-2; see :class:`Bottleneck`).
    """

    def __init__(
        self,
        block: str,
        layers: Sequence[int],
        *,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: Stem = "imagenet",
        num_classes: int = 1000,
        in_chans: int = 3,
        shortcut: Shortcut = "B",
        residual: bool = True,
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
        batchnorm: bool = True,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        for key, v in (("groups", groups), ("width_per_group", width_per_group)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{key} must be a positive integer, got {v!r}")
        if block not in BLOCKS:
            raise ConfigError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
        if shortcut not in ("A", "B", "C"):
            raise ConfigError(f"shortcut must be 'A', 'B' or 'C', got {shortcut!r}")
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if len(layers) != len(widths) or any(n < 1 for n in layers):
            raise ConfigError(
                f"layers {list(layers)} must give >= 1 block to each of {len(widths)} stages"
            )
        check_input_and_classes(in_chans, num_classes)
        block_cls = BLOCKS[block]
        self.block_type = block
        self.residual = residual
        self.shortcut = shortcut if residual else None
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.stem_type = stem

        stem_width = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_chans, stem_width)
        self.bn1 = norm2d(stem_width, batchnorm)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()

        in_ch = stem_width
        self.stage_names: list[str] = []
        for i, (n, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(
                    block_cls(
                        in_ch,
                        width,
                        stride if j == 0 else 1,
                        shortcut=shortcut,
                        residual=residual,
                        stride_in_1x1=stride_in_1x1,
                        batchnorm=batchnorm,
                        groups=groups,
                        base_width=width_per_group,
                    )
                )
                in_ch = width * block_cls.expansion
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)

        self.num_features = in_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = self.new_classifier(num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. (2015, "Delving deep into rectifiers") initialisation, as section 3.4 states.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)) and isinstance(
                    m.last_bn(), nn.BatchNorm2d
                ):
                    nn.init.zeros_(m.last_bn().weight)

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def pool_features(self, x: Tensor) -> Tensor:
        return self.avgpool(x)


# ------------------------------------------------------------------------------------------
# Registered builders. Options pass through once, to ResNet (see its docstring).

IMAGENET_LAYERS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def imagenet_resnet(depth: int, *, residual: bool = True, **kwargs: Any) -> ResNet:
    """The ImageNet network of paper Table 1 of ``depth`` layers; shortcut B by default."""
    block, layers = IMAGENET_LAYERS[depth]
    kwargs.setdefault("shortcut", "B")
    return ResNet(
        block, layers, widths=(64, 128, 256, 512), stem="imagenet", residual=residual, **kwargs
    )


def cifar_resnet(depth: int, *, residual: bool = True, **kwargs: Any) -> ResNet:
    """The CIFAR network of paper section 4.2: 6n+2 layers, 16/32/64 filters; shortcut A."""
    check_depth(depth, step=6, offset=2, minimum=8, name="CIFAR")
    n = (depth - 2) // 6
    kwargs.setdefault("shortcut", "A")
    kwargs.setdefault("num_classes", 10)
    return ResNet(
        "basic", (n, n, n), widths=(16, 32, 64), stem="cifar", residual=residual, **kwargs
    )


def cifar_bottleneck(depth: int, **kwargs: Any) -> ResNet:
    """CIFAR ResNet of bottleneck blocks (9n+2 layers; inner widths 16/32/64, outputs
    64/128/256; projection shortcuts where the shape changes), as in He et al. (2016)."""
    check_depth(depth, step=9, offset=2, minimum=11, name="CIFAR bottleneck")
    n = (depth - 2) // 9
    kwargs.setdefault("shortcut", "B")
    kwargs.setdefault("num_classes", 10)
    return ResNet("bottleneck", (n, n, n), widths=(16, 32, 64), stem="cifar", **kwargs)


@register_model(family="imagenet", depth=18)
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (paper Table 1): basic blocks 2-2-2-2, 11.7 M parameters."""
    return imagenet_resnet(18, **kwargs)


@register_model(family="imagenet", depth=34)
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (paper Table 1): basic blocks 3-4-6-3, 21.8 M parameters."""
    return imagenet_resnet(34, **kwargs)


@register_model(family="imagenet", depth=50)
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (paper Table 1): bottleneck blocks 3-4-6-3, 25.6 M parameters."""
    return imagenet_resnet(50, **kwargs)


@register_model(family="imagenet", depth=101)
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 (paper Table 1): bottleneck blocks 3-4-23-3, 44.5 M parameters."""
    return imagenet_resnet(101, **kwargs)


@register_model(family="imagenet", depth=152)
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152 (paper Table 1): bottleneck blocks 3-8-36-3, 60.2 M parameters."""
    return imagenet_resnet(152, **kwargs)


@register_model(family="imagenet", depth=18, residual=False)
def plain18(**kwargs: Any) -> ResNet:
    """Plain-18: ResNet-18's layers without shortcuts (paper Fig. 4, left)."""
    return imagenet_resnet(18, residual=False, **kwargs)


@register_model(family="imagenet", depth=34, residual=False)
def plain34(**kwargs: Any) -> ResNet:
    """Plain-34: ResNet-34's layers without shortcuts (paper Fig. 3 middle, Fig. 4)."""
    return imagenet_resnet(34, residual=False, **kwargs)


@register_model(family="imagenet", depth=50, residual=False)
def plain50(**kwargs: Any) -> ResNet:
    """Plain-50: ResNet-50's layers without shortcuts."""
    return imagenet_resnet(50, residual=False, **kwargs)


@register_model(family="imagenet", depth=101, residual=False)
def plain101(**kwargs: Any) -> ResNet:
    """Plain-101: ResNet-101's layers without shortcuts."""
    return imagenet_resnet(101, residual=False, **kwargs)


@register_model(family="imagenet", depth=152, residual=False)
def plain152(**kwargs: Any) -> ResNet:
    """Plain-152: ResNet-152's layers without shortcuts."""
    return imagenet_resnet(152, residual=False, **kwargs)


@register_model(family="cifar", depth=20)
def resnet20(**kwargs: Any) -> ResNet:
    """ResNet-20 for CIFAR (paper section 4.2, n=3): 0.27 M parameters."""
    return cifar_resnet(20, **kwargs)


@register_model(family="cifar", depth=32)
def resnet32(**kwargs: Any) -> ResNet:
    """ResNet-32 for CIFAR (n=5): 0.46 M parameters."""
    return cifar_resnet(32, **kwargs)


@register_model(family="cifar", depth=44)
def resnet44(**kwargs: Any) -> ResNet:
    """ResNet-44 for CIFAR (n=7): 0.66 M parameters."""
    return cifar_resnet(44, **kwargs)


@register_model(family="cifar", depth=56)
def resnet56(**kwargs: Any) -> ResNet:
    """ResNet-56 for CIFAR (n=9): 0.85 M parameters."""
    return cifar_resnet(56, **kwargs)


@register_model(family="cifar", depth=110)
def resnet110(**kwargs: Any) -> ResNet:
    """ResNet-110 for CIFAR (n=18): 1.7 M parameters; trained with the lr-0.01 warm-up."""
    return cifar_resnet(110, **kwargs)


@register_model(family="cifar", depth=1202)
def resnet1202(**kwargs: Any) -> ResNet:
    """ResNet-1202 for CIFAR (n=200): 19.4 M parameters."""
    return cifar_resnet(1202, **kwargs)


@register_model(family="cifar", depth=20, residual=False)
def plain20(**kwargs: Any) -> ResNet:
    """Plain-20 for CIFAR: ResNet-20 without shortcuts (paper Fig. 6, left)."""
    return cifar_resnet(20, residual=False, **kwargs)


@register_model(family="cifar", depth=32, residual=False)
def plain32(**kwargs: Any) -> ResNet:
    """Plain-32 for CIFAR."""
    return cifar_resnet(32, residual=False, **kwargs)


@register_model(family="cifar", depth=44, residual=False)
def plain44(**kwargs: Any) -> ResNet:
    """Plain-44 for CIFAR."""
    return cifar_resnet(44, residual=False, **kwargs)


@register_model(family="cifar", depth=56, residual=False)
def plain56(**kwargs: Any) -> ResNet:
    """Plain-56 for CIFAR: deeper than Plain-20 and worse (the degradation problem, Fig. 6)."""
    return cifar_resnet(56, residual=False, **kwargs)


@register_model(family="cifar", depth=110, residual=False)
def plain110(**kwargs: Any) -> ResNet:
    """Plain-110 for CIFAR."""
    return cifar_resnet(110, residual=False, **kwargs)


@register_model(family="cifar", depth=1202, residual=False)
def plain1202(**kwargs: Any) -> ResNet:
    """Plain-1202 for CIFAR."""
    return cifar_resnet(1202, residual=False, **kwargs)


@register_model(family="cifar", depth=164)
def resnet164(**kwargs: Any) -> ResNet:
    """ResNet-164 for CIFAR with bottleneck blocks (He et al. 2016, "Identity Mappings", the
    original units of its Table 3: 5.93% error): 9n+2 layers, n=18, 1.7 M parameters."""
    return cifar_bottleneck(164, **kwargs)


@register_model(family="cifar", depth=1001)
def resnet1001(**kwargs: Any) -> ResNet:
    """ResNet-1001 for CIFAR, bottleneck blocks (Identity Mappings, Table 3: 7.61%): 10.3 M."""
    return cifar_bottleneck(1001, **kwargs)


def _resolve_cifar_name(m: re.Match[str]) -> ModelSpec:
    """``resnet8``, ``plain14``, ``cifar_resnet50``: any CIFAR depth 6n+2 (the ``cifar_``
    prefix reaches the depths whose plain name is an ImageNet net, 50 and 152)."""
    kind = m.group(1)
    depth = check_depth(int(m.group(2)), step=6, offset=2, minimum=8, name="CIFAR")
    residual = kind == "resnet"

    def build(**kwargs: Any) -> ResNet:
        return cifar_resnet(depth, residual=residual, **kwargs)

    build.__doc__ = f"{'ResNet' if residual else 'Plain net'}-{depth} for CIFAR (6n+2 layers)."
    classes, size = FAMILY_DEFAULTS["cifar"]
    return ModelSpec(m.group(0), "cifar", depth, residual, build, classes, size)


register_pattern(r"(?:cifar_)?(resnet|plain)(\d+)", _resolve_cifar_name)
