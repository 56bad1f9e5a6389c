"""``create_model``: a registered architecture, optionally with named weights and as a backbone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..errors import ConfigError, WeightsError
from . import registry
from .base import StagedNet
from .catalogue import default_tag, get_pretrained, list_pretrained, weights_file
from .weights import load_state_dict_checked, read_weights, stored_dtype_of


def create_model(
    name: str,
    *,
    pretrained: bool | str = False,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: e.g. ``"resnet50"``, ``"plain56"``, ``"resnet20"``, ``"cifar_resnet50"``.
        pretrained: ``True`` loads the model's default named weights (``resnets weights
            list``), a string names the tag (``"tv_in1k"``) or the whole name
            (``"resnet50.tv_in1k"``). With another ``num_classes`` than the weights', the
            classifier is replaced by a fresh one (transfer learning).
        features_only: a backbone whose ``forward`` returns the maps at ``out_indices``
            (0 = stem, 1..S = stages; default every stage), with ``feature_info``.
        **kwargs: the builder's options (see :func:`resnets.models.registry.build`).
    """
    if not pretrained:
        model = registry.build(name, **kwargs)
    else:
        model = _pretrained(name, pretrained, kwargs)
    if features_only:
        if not isinstance(model, StagedNet):
            raise ConfigError(f"{name}: features_only needs a staged network")
        model.set_features_only(out_indices)
    elif out_indices is not None:
        raise ConfigError("out_indices applies with features_only=True")
    return model


def _pretrained(name: str, pretrained: bool | str, kwargs: dict[str, Any]) -> nn.Module:
    arch = registry.get_spec(name).name
    if isinstance(pretrained, str):
        wname = pretrained if "." in pretrained else f"{arch}.{pretrained}"
    else:
        tag = default_tag(arch)
        if tag is None:
            raise WeightsError(f"{arch}: no pretrained weights known (see `resnets weights list`)")
        wname = f"{arch}.{tag}"
    entry = get_pretrained(wname)
    if entry.model != arch:
        raise WeightsError(f"weights {wname} are for {entry.model}, not {arch}")
    want_classes = kwargs.pop("num_classes", None)
    opts = {**entry.meta.model_kwargs, **kwargs}
    model = registry.build(arch, **opts)
    sd, _ = read_weights(weights_file(wname))
    load_state_dict_checked(model, sd, wname, stored_dtype_of(entry.meta))
    if want_classes is not None and want_classes != model.num_classes:
        model.reset_classifier(want_classes)  # a new head; the backbone keeps the weights
    return model


def list_models(
    pattern: str = "*",
    *,
    family: str | None = None,
    plain: bool | None = None,
    pretrained: bool = False,
) -> list[str]:
    """Registered names matching a glob (see :func:`resnets.models.registry.names`);
    ``pretrained=True``: only those with named weights (``resnets weights list``)."""
    names = registry.names(pattern, family=family, plain=plain)
    if pretrained:
        have = {n.split(".", 1)[0] for n in list_pretrained()}
        names = [n for n in names if n in have]
    return names
