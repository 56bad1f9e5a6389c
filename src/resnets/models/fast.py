"""A compact residual network for fast CIFAR training (the ``fast-cifar`` recipe).

The paper's CIFAR nets are deep and thin (16-64 filters); on modern hardware they are bound by
launch overhead, not arithmetic. The speed-record nets for CIFAR-10 go the other way: few wide
layers. ``fast_resnet8`` is such a net built from the paper's ingredients, 8 weighted layers:

* a 2x2 *whitening* stem (Coates & Ng 2012; used by the airbench speed runs): its 24 filters are
  the eigenvectors of the covariance of 2x2 training-image patches, scaled to unit variance, and
  their negatives; set once from data (:meth:`FastResNet.init_from_data`) and not trained;
* three groups of ``conv3x3 -> 2x2 max-pool -> BN -> GELU`` (64, 256, 256 filters), each followed
  by one residual block ``relu(x + BN(conv3x3(x)))``-style with GELU: an identity shortcut around
  a 3x3 layer (option A/B: the shape never changes inside a block, so the shortcut is the
  identity; option C puts a 1x1 projection there, as the paper's Table 3);
* a global max-pool and a bias-free linear classifier whose logits are scaled by 1/8, so the
  softmax starts near uniform at a large learning rate.

``fast_plain8`` is the plain twin (the same layers, no shortcuts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .base import StagedNet, check_input_and_classes
from .registry import register_model
from .resnet import conv1x1, conv3x3, norm2d


class Whiten(nn.Module):
    """A fixed 2x2 patch-whitening convolution (weights are a buffer) with a trained bias."""

    def __init__(self, in_chans: int, patch: int = 2) -> None:
        super().__init__()
        self.in_chans, self.patch = in_chans, patch
        d = in_chans * patch * patch
        self.out_chans = 2 * d
        w = torch.empty(d, in_chans, patch, patch)
        nn.init.kaiming_normal_(w, nonlinearity="linear")
        self.register_buffer("weight", torch.cat([w, -w]))
        self.bias = nn.Parameter(torch.zeros(2 * d))

    @torch.no_grad()
    def init_from_data(self, x: Tensor, eps: float = 5e-4) -> None:
        """Set the filters from the patches of ``x`` (N, C, H, W), normalised training images."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ConfigError(
                f"whitening needs images of shape (N, {self.in_chans}, H, W), got {tuple(x.shape)}"
            )
        p = self.patch
        patches = x.float().unfold(2, p, 1).unfold(3, p, 1)  # N C H' W' p p
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.in_chans * p * p).double()
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / max(len(patches) - 1, 1)
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0), evecs.flip(1)  # largest first
        w = (evecs.T / torch.sqrt(evals.clamp_min(0) + eps)[:, None]).float()
        w = w.reshape(-1, self.in_chans, p, p)
        self.weight.copy_(torch.cat([w, -w]).to(self.weight))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class ConvGroup(nn.Module):
    """conv3x3 -> max-pool 2 -> BN -> GELU, then one residual (or plain) 3x3 block."""

    def __init__(
        self, in_ch: int, width: int, *, residual: bool, shortcut: str, batchnorm: bool
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = conv3x3(in_ch, width)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)  # 31 -> 16 -> 8 -> 4; small inputs work
        self.bn1 = norm2d(width, batchnorm)
        self.conv2 = conv3x3(width, width)
        self.bn2 = norm2d(width, batchnorm)
        self.act = nn.GELU()
        self.downsample = (
            nn.Sequential(conv1x1(width, width), norm2d(width, batchnorm))
            if residual and shortcut == "C"
            else None
        )

    def last_bn(self) -> nn.Module:
        return self.bn2

    def response_layers(self) -> list[nn.Module]:
        return [self.bn1, self.bn2]

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        out = self.bn2(self.conv2(x))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.act(out)


class FastResNet(StagedNet):
    """The compact residual network of the ``fast-cifar`` recipe (see the module docstring).

    Shares :class:`~resnets.models.base.StagedNet` with :class:`~resnets.models.ResNet`.
    """

    def __init__(
        self,
        widths: Sequence[int] = (64, 256, 256),
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        residual: bool = True,
        shortcut: str = "A",
        zero_init_residual: bool = False,
        batchnorm: bool = True,
        stride_in_1x1: bool = False,
        logit_scale: float = 1 / 8,
    ) -> None:
        super().__init__()
        if stride_in_1x1:
            raise ConfigError("stride_in_1x1 applies to bottleneck nets, not fast_resnet8")
        if shortcut not in ("A", "B", "C"):
            raise ConfigError(f"shortcut must be 'A', 'B' or 'C', got {shortcut!r}")
        check_input_and_classes(in_chans, num_classes)
        self.residual = residual
        self.shortcut = shortcut if residual else None
        self.num_classes, self.in_chans = num_classes, in_chans
        self.logit_scale = logit_scale
        self.stem = Whiten(in_chans)
        self.act = nn.GELU()
        in_ch = self.stem.out_chans
        self.stage_names = []
        for i, w in enumerate(widths):
            name = f"layer{i + 1}"
            self.add_module(
                name,
                ConvGroup(in_ch, w, residual=residual, shortcut=shortcut, batchnorm=batchnorm),
            )
            self.stage_names.append(name)
            in_ch = w
        self.num_features = in_ch
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc: nn.Module = self.new_classifier(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual and residual:
            for b in self.blocks():
                if isinstance(b.bn2, nn.BatchNorm2d):
                    nn.init.zeros_(b.bn2.weight)

    def init_from_data(self, x: Tensor) -> None:
        """Data-dependent initialisation: the whitening stem from training images."""
        self.stem.init_from_data(x)

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.act(self.stem(x))

    def pool_features(self, x: Tensor) -> Tensor:
        return self.max_pool(x)

    def classify(self, pooled: Tensor) -> Tensor:
        return self.fc(pooled) * self.logit_scale

    def new_classifier(self, num_classes: int) -> nn.Module:
        return (
            nn.Linear(self.num_features, num_classes, bias=False)
            if num_classes > 0
            else nn.Identity()
        )


@register_model(family="fast", depth=8)
def fast_resnet8(**kwargs: Any) -> FastResNet:
    """Residual compact 8-layer CIFAR net with a whitening stem (fast-cifar recipe)."""
    return FastResNet(**kwargs)


@register_model(family="fast", depth=8, residual=False)
def fast_plain8(**kwargs: Any) -> FastResNet:
    """Plain twin of fast_resnet8 (the same layers, no shortcuts)."""
    return FastResNet(residual=False, **kwargs)
