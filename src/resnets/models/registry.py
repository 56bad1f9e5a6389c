"""The model registry: ``create_model(name, ...)`` and ``list_models()``.

Registered names:

* ImageNet (paper Table 1): ``resnet18/34/50/101/152`` and plain twins ``plain18/34/50/101/152``.
  Default shortcut B, as torchvision.
* CIFAR (paper section 4.2, 6n+2 layers, 16/32/64 filters): ``resnet20/32/44/56/110/1202`` and
  ``plain20/32/44/56/110/1202``. Default shortcut A, as the paper's CIFAR experiments.

Any other 6n+2 depth builds a CIFAR net: ``resnet8``, ``plain14``, ``cifar_resnet50`` (the
``cifar_`` prefix resolves depths that collide with an ImageNet name, 50 and 152).

* Fast CIFAR training: ``fast_resnet8`` (a compact, wide residual net with a whitening stem, see
  :mod:`resnets.models.fast`) and its plain twin ``fast_plain8``.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import ConfigError
from .fast import FastResNet
from .resnet import ResNet

IMAGENET_LAYERS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


@dataclass(frozen=True)
class ModelSpec:
    """What a registered name builds, with the defaults it passes to :class:`ResNet`."""

    name: str
    family: str  # "imagenet", "cifar" or "fast"
    depth: int
    residual: bool
    builder: Callable[..., nn.Module]
    default_num_classes: int
    default_image_size: int


_REGISTRY: dict[str, ModelSpec] = {}


def _imagenet_builder(depth: int, residual: bool) -> Callable[..., ResNet]:
    block, layers = IMAGENET_LAYERS[depth]

    def build(
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        shortcut: str = "B",
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
        batchnorm: bool = True,
    ) -> ResNet:
        return ResNet(
            block,
            layers,
            widths=(64, 128, 256, 512),
            stem="imagenet",
            num_classes=num_classes,
            in_chans=in_chans,
            shortcut=shortcut,  # type: ignore[arg-type]
            residual=residual,
            zero_init_residual=zero_init_residual,
            stride_in_1x1=stride_in_1x1,
            batchnorm=batchnorm,
        )

    kind = "ResNet" if residual else "Plain net"
    build.__doc__ = f"{kind}-{depth} for ImageNet-sized inputs (paper Table 1)."
    return build


def _cifar_builder(depth: int, residual: bool) -> Callable[..., ResNet]:
    if depth < 8 or (depth - 2) % 6:
        raise ConfigError(f"a CIFAR network has 6n+2 layers (8, 14, 20, ...); got depth {depth}")
    n = (depth - 2) // 6

    def build(
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: str = "A",
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
        batchnorm: bool = True,
    ) -> ResNet:
        return ResNet(
            "basic",
            (n, n, n),
            widths=(16, 32, 64),
            stem="cifar",
            num_classes=num_classes,
            in_chans=in_chans,
            shortcut=shortcut,  # type: ignore[arg-type]
            residual=residual,
            zero_init_residual=zero_init_residual,
            batchnorm=batchnorm,
        )

    kind = "ResNet" if residual else "Plain net"
    build.__doc__ = f"{kind}-{depth} for CIFAR (paper section 4.2: 6n+2 layers, n={n})."
    return build


def _register(spec: ModelSpec) -> None:
    _REGISTRY[spec.name] = spec


for _d in IMAGENET_LAYERS:
    for _res, _prefix in ((True, "resnet"), (False, "plain")):
        _register(
            ModelSpec(
                f"{_prefix}{_d}", "imagenet", _d, _res, _imagenet_builder(_d, _res), 1000, 224
            )
        )
for _d in CIFAR_DEPTHS:
    for _res, _prefix in ((True, "resnet"), (False, "plain")):
        _register(ModelSpec(f"{_prefix}{_d}", "cifar", _d, _res, _cifar_builder(_d, _res), 10, 32))


def _fast_builder(residual: bool) -> Callable[..., FastResNet]:
    def build(
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: str = "A",
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
        batchnorm: bool = True,
    ) -> FastResNet:
        if stride_in_1x1:
            raise ConfigError("stride_in_1x1 applies to bottleneck nets, not fast_resnet8")
        return FastResNet(
            num_classes=num_classes,
            in_chans=in_chans,
            residual=residual,
            shortcut=shortcut,
            zero_init_residual=zero_init_residual,
            batchnorm=batchnorm,
        )

    kind = "Residual" if residual else "Plain"
    build.__doc__ = f"{kind} compact 8-layer CIFAR net with a whitening stem (fast-cifar recipe)."
    return build


for _res, _prefix in ((True, "fast_resnet"), (False, "fast_plain")):
    _register(ModelSpec(f"{_prefix}8", "fast", 8, _res, _fast_builder(_res), 10, 32))

_CIFAR_NAME = re.compile(r"^(?:cifar_)?(resnet|plain)(\d+)$")


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered name or of any 6n+2 CIFAR depth; ConfigError otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"model name must be a string, got {name!r}")
    key = name.strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `resnets models`"
    m = _CIFAR_NAME.match(key)
    if m and (key.startswith("cifar_") or int(m.group(2)) not in IMAGENET_LAYERS):
        depth = int(m.group(2))
        residual = m.group(1) == "resnet"
        if depth >= 8 and (depth - 2) % 6 == 0:
            return ModelSpec(key, "cifar", depth, residual, _cifar_builder(depth, residual), 10, 32)
        raise ConfigError(
            f"unknown model {name!r}{hint} (CIFAR networks have 6n+2 layers: 8, 14, 20, 26, ...; "
            f"ImageNet ones {sorted(IMAGENET_LAYERS)})"
        )
    raise ConfigError(f"unknown model {name!r}{hint}")


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int = 3,
    shortcut: str | None = None,
    zero_init_residual: bool = False,
    stride_in_1x1: bool = False,
    batchnorm: bool = True,
) -> nn.Module:
    """Build a registered model by name (a :class:`ResNet`, or a :class:`FastResNet`).

    Args:
        name: e.g. ``"resnet50"``, ``"plain56"``, ``"resnet20"``, ``"cifar_resnet50"``.
        num_classes: classifier outputs (default 1000 for ImageNet nets, 10 for CIFAR ones).
        in_chans: input channels.
        shortcut: ``"A"``, ``"B"`` or ``"C"``; default B for ImageNet nets, A for CIFAR nets.
            Ignored (must be None or the default) for plain nets, which have no shortcuts.
        zero_init_residual: zero-init the last BN of each block.
        stride_in_1x1: put the bottleneck stride in the first 1x1 (the original paper).
        batchnorm: False builds the variant without BatchNorm (for gradient-flow studies).
    """
    spec = get_spec(name)
    kwargs: dict[str, Any] = dict(
        num_classes=spec.default_num_classes if num_classes is None else num_classes,
        in_chans=in_chans,
        zero_init_residual=zero_init_residual,
        stride_in_1x1=stride_in_1x1,
    )
    if not batchnorm:
        kwargs["batchnorm"] = False
    if shortcut is not None:
        kwargs["shortcut"] = str(shortcut).upper()
    model = spec.builder(**kwargs)
    model.model_name = spec.name  # type: ignore[attr-defined]
    return model


def list_models(
    pattern: str = "*", *, family: str | None = None, plain: bool | None = None
) -> list[str]:
    """Registered model names matching a glob ``pattern``, optionally one family or kind."""
    out = []
    for name, spec in _REGISTRY.items():
        if not fnmatch.fnmatch(name, pattern):
            continue
        if family is not None and spec.family != family:
            continue
        if plain is not None and spec.residual == plain:
            continue
        out.append(name)
    return out


def is_model(name: str) -> bool:
    try:
        get_spec(name)
    except ConfigError:
        return False
    return True
