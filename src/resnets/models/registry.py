"""The one model registry: ``@register_model`` builders, looked up by ``get_spec`` and built by
``build`` (the public door is ``resnets.models.create_model``, which adds weights and backbones).

A builder is a plain function named after the model, taking keyword options only::

    @register_model(family="imagenet", depth=50)
    def resnet50(**kwargs) -> ResNet: ...

Parametric families (the CIFAR nets take any depth 6n+2) register a name pattern with
:func:`register_pattern`; ``create_model`` and ``list_models`` accept those names too.
This module imports no model at import: the builders register themselves when their module is
imported, and the first lookup (:func:`get_spec`, :func:`names`, :func:`is_model`) imports every
family of :data:`FAMILIES`.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # annotations only: looking a name up imports no torch
    from torch import nn

from ..errors import ConfigError

Family = Literal["imagenet", "cifar", "fast"]

# default classes and input size of each family
FAMILY_DEFAULTS: dict[str, tuple[int, int]] = {
    "imagenet": (1000, 224),
    "cifar": (10, 32),
    "fast": (10, 32),
}


@dataclass(frozen=True)
class ModelSpec:
    """What a registered name builds."""

    name: str
    family: str
    depth: int
    residual: bool
    builder: Callable[..., nn.Module]
    default_num_classes: int
    default_image_size: int
    # how blocks join: residual (sum), plain (none), preact (sum, BN-ReLU first), concat, dense
    connection: str = ""

    @property
    def kind(self) -> str:
        return self.connection or ("residual" if self.residual else "plain")

    @property
    def doc(self) -> str:
        lines = (self.builder.__doc__ or "").strip().splitlines()
        return lines[0] if lines else ""


_REGISTRY: dict[str, ModelSpec] = {}
#: the modules whose builders register themselves, imported by the first lookup
FAMILIES = ("resnet", "fast", "resnext", "preact", "wide", "densenet", "concat")
_loaded = False


def _load_families() -> None:
    """Import every family's builders once (they register as they are defined)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for family in FAMILIES:
            importlib.import_module(f"{__package__}.{family}")


_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], ModelSpec]]] = []


def register_model(
    *, family: Family, depth: int, residual: bool = True, kind: str = ""
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated builder under its function name (``kind``: how its blocks join,
    shown by ``resnets models``; default residual or plain)."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        classes, size = FAMILY_DEFAULTS[family]
        _REGISTRY[fn.__name__] = ModelSpec(
            fn.__name__, family, depth, residual, fn, classes, size, kind
        )
        return fn

    return deco


#: the deepest nets the patterns build: the paper's ResNet-1202 and Identity Mappings'
#: ResNet-1001 are the deepest published; beyond that a model only exhausts memory
MAX_CIFAR_DEPTH = 1202


def check_depth(
    depth: int, *, step: int, offset: int, minimum: int, name: str, maximum: int = MAX_CIFAR_DEPTH
) -> int:
    """``depth`` if it is ``step*n + offset`` within [minimum, maximum], else a one-line error
    naming the rule (6n+2 for the paper's CIFAR nets, 9n+2 for bottlenecks, 6n+4 for WRNs)."""
    if not minimum <= depth <= maximum or (depth - offset) % step:
        raise ConfigError(
            f"{name} networks have {step}n+{offset} layers, {minimum} to {maximum}: "
            f"{', '.join(str(minimum + step * i) for i in range(4))}, ...; got {depth}"
        )
    return depth


def register_pattern(pattern: str, resolve: Callable[[re.Match[str]], ModelSpec]) -> None:
    """Names matching ``pattern`` (a full-match regex) resolve to ``resolve(match)``, which
    returns a spec or raises :class:`ConfigError` (e.g. a depth that is not 6n+2)."""
    _PATTERNS.append((re.compile(pattern), resolve))


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered name or of a name a pattern accepts; ConfigError otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"model name must be a string, got {name!r}")
    _load_families()
    key = name.strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `resnets models`"
    for rx, resolve in _PATTERNS:
        m = rx.fullmatch(key)
        if m:
            try:
                return resolve(m)
            except ConfigError as e:
                raise ConfigError(f"unknown model {name!r}{hint} ({e})") from None
    raise ConfigError(f"unknown model {name!r}{hint}")


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: e.g. ``"resnet50"``, ``"plain56"``, ``"resnet20"``, ``"cifar_resnet50"``.
        **kwargs: the builder's options, passed through once: ``num_classes`` (None: the
            family's default, 1000 or 10), ``in_chans``, ``shortcut`` (``"A"``/``"B"``/``"C"``;
            default B for ImageNet nets, A for CIFAR ones), ``zero_init_residual``,
            ``stride_in_1x1``, ``batchnorm``. An option the model does not take is an error.
    """
    spec = get_spec(name)
    if kwargs.get("num_classes", 0) is None:
        del kwargs["num_classes"]
    if kwargs.get("shortcut") is None:
        kwargs.pop("shortcut", None)
    else:
        kwargs["shortcut"] = str(kwargs["shortcut"]).upper()
    try:
        model = spec.builder(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{spec.name}: {e}") from None
    model.model_name = spec.name  # type: ignore[attr-defined]
    return model


def names(pattern: str = "*", *, family: str | None = None, plain: bool | None = None) -> list[str]:
    """Registered names matching a glob ``pattern``, optionally of one family or kind.

    A pattern without wildcards that a parametric family accepts (``resnet8``) is listed too,
    so every name ``list_models`` returns builds, and every name that builds can be listed.
    """
    _load_families()
    specs = list(_REGISTRY.values())
    if not any(c in pattern for c in "*?[") and pattern.lower() not in _REGISTRY:
        try:
            specs = [get_spec(pattern)]
        except ConfigError:
            specs = []
    out = []
    for spec in specs:
        if not fnmatch.fnmatch(spec.name, pattern.lower()):
            continue
        if family is not None and spec.family != family:
            continue
        if plain is not None and spec.residual == plain:
            continue
        out.append(spec.name)
    return out


def is_model(name: str) -> bool:
    try:
        get_spec(name)
    except ConfigError:
        return False
    return True
