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

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

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
    ) -> None:
        super().__init__()
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
    ) -> None:
        super().__init__()
        out_ch = width * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.residual = residual
        self.conv1 = conv1x1(in_ch, width, s1)
        self.bn1 = norm2d(width, batchnorm)
        self.conv2 = conv3x3(width, width, s3)
        self.bn2 = norm2d(width, batchnorm)
        self.conv3 = conv1x1(width, out_ch)
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


class ResNet(nn.Module):
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
    ) -> None:
        super().__init__()
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
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(f"num_classes must be a non-negative integer, got {num_classes!r}")
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
                    )
                )
                in_ch = width * block_cls.expansion
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)

        self.num_features = in_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Linear(in_ch, num_classes) if num_classes > 0 else nn.Identity()
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

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, n) for n in self.stage_names]

    def blocks(self) -> list[BasicBlock | Bottleneck]:
        return [b for s in self.stages() for b in s]

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The output of every stage (for detection/segmentation backbones and analysis)."""
        x = self.forward_stem(x)
        feats = []
        for stage in self.stages():
            x = stage(x)
            feats.append(x)
        return feats

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_stem(x)
        for stage in self.stages():
            x = stage(x)
        return self.forward_head(x)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer, e.g. for transfer learning to ``num_classes`` classes."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
