"""Starting from trained weights: loading a backbone, replacing the head, freezing layers,
frozen BatchNorm, and a smaller learning rate for the backbone than for the new head."""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.catalogue import get_pretrained, is_weights_name, resolve_weights_path
from ..models.weights import WeightsMeta, load_state_dict_checked, read_weights, stored_dtype_of
from .config import TrainConfig
from .run_files import RunLog


def head_prefix(model: nn.Module) -> str:
    """Key prefix of the classifier: ``fc.``, or ``classifier.`` for DenseNet (torchvision's)."""
    return getattr(model, "head_name", "fc") + "."


def read_init(cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], WeightsMeta | None] | None:
    """The state_dict and record of ``cfg.init`` (None when training from scratch). A
    detector's weights give their backbone, as a classifier's without its head would."""
    if not cfg.init:
        return None
    path = resolve_weights_path(cfg.init)
    sd, meta = read_weights(path, task=None)
    if meta is None and is_weights_name(cfg.init):
        meta = get_pretrained(cfg.init).meta
    if meta is not None and meta.task == "detection":
        if meta.model != cfg.model:
            raise ConfigError(
                f"--init {cfg.init}: a detector on {meta.model}, not on --model {cfg.model}"
            )
        sd = {k.removeprefix("backbone."): v for k, v in sd.items() if k.startswith("backbone.")}
        meta = dataclasses.replace(meta, task="classification", classes=None, detector=None)
    return sd, meta


def with_init_settings(cfg: TrainConfig, meta: WeightsMeta | None) -> TrainConfig:
    """Input size and evaluation crop from the weights' record, unless the config gives them."""
    if meta is None:
        return cfg
    changes: dict[str, Any] = {}
    if not cfg.image_size and meta.image_size:
        changes["image_size"] = meta.image_size
    if not cfg.eval_size and meta.eval_size:
        changes["eval_size"] = meta.eval_size
    return dataclasses.replace(cfg, **changes) if changes else cfg


def load_backbone(
    raw_model: nn.Module,
    sd: dict[str, torch.Tensor],
    meta: WeightsMeta | None,
    classes: list[str],
    label: str,
    log: RunLog,
) -> None:
    """Copy the weights into ``raw_model``: everything when the classes are the same (by name,
    in order), else all but the classifier, which keeps its fresh initialisation."""
    head = head_prefix(raw_model)
    same_classes = (
        meta is not None
        and meta.classes == list(classes)
        and sd.get(head + "weight", torch.empty(0)).shape[:1] == (len(classes),)
    )
    if same_classes:
        load_state_dict_checked(raw_model, sd, label, stored_dtype_of(meta))
        log(f"initialised from {label} (every layer, the same {len(classes)} classes)")
        return
    # the fresh head joins the file's tensors in the file's dtype (the load casts all back)
    stored_as = next((v.dtype for v in sd.values() if v.is_floating_point()), torch.float32)
    own_head = {
        k: v.to(stored_as) if v.is_floating_point() else v
        for k, v in raw_model.state_dict().items()
        if k.startswith(head)
    }
    body = {k: v for k, v in sd.items() if not k.startswith(head)}
    load_state_dict_checked(raw_model, {**body, **own_head}, label, stored_dtype_of(meta))
    before = "unknown" if meta is None or meta.classes is None else len(meta.classes)
    n_old = sd[head + "weight"].shape[0] if head + "weight" in sd else before
    log(
        f"initialised the backbone from {label}; the classifier was replaced "
        f"({n_old} classes there, {len(classes)} here: {', '.join(classes[:5])}"
        f"{', ...' if len(classes) > 5 else ''})"
    )


def frozen_names(raw_model: nn.Module, spec: str) -> list[str]:
    """Parameter names the freeze spec keeps fixed; a spec naming no layer is an error."""
    if spec == "none":
        return []
    stages = list(getattr(raw_model, "stage_names", []))
    names = [n for n, _ in raw_model.named_parameters()]
    head = [n for n in names if n.startswith(head_prefix(raw_model))]
    in_stage = {s: [n for n in names if n.startswith(s + ".")] for s in stages}
    stem = [n for n in names if n not in head and not any(n in v for v in in_stage.values())]
    if spec == "stem":
        picked = stem
    elif spec == "backbone":
        picked = [n for n in names if n not in head]
    else:
        k = int(spec.split(":")[1])
        if k > len(stages):
            raise ConfigError(
                f"freeze={spec!r}: the model has {len(stages)} stages ({', '.join(stages)})"
            )
        picked = stem + [n for s in stages[:k] for n in in_stage[s]]
    if not picked:
        raise ConfigError(f"freeze={spec!r}: names no layer of this model")
    return picked


def apply_freeze(raw_model: nn.Module, cfg: TrainConfig) -> list[str]:
    """``requires_grad=False`` on the frozen parameters; BatchNorm kept in eval mode with
    ``freeze_bn``. Returns the frozen names."""
    frozen = frozen_names(raw_model, cfg.freeze)
    params = dict(raw_model.named_parameters())
    for n in frozen:
        params[n].requires_grad_(False)
    if cfg.freeze_bn:
        for m in raw_model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                # eval mode whatever model.train() says: running statistics used and kept
                m.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), m)
                m.eval()
    return frozen


def param_groups(
    raw_model: nn.Module, cfg: TrainConfig
) -> tuple[list[dict[str, Any]], list[float]]:
    """Trainable parameters with their lr scales: one group, or (with a backbone lr scale other
    than 1) two, backbone then classifier."""
    if cfg.backbone_lr_scale == 1.0:
        trainable = [p for p in raw_model.parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError(f"freeze={cfg.freeze!r}: leaves no parameter to train")
        return [{"params": trainable}], [1.0]
    body, head, prefix = [], [], head_prefix(raw_model)
    for n, p in raw_model.named_parameters():
        if p.requires_grad:
            (head if n.startswith(prefix) else body).append(p)
    if not body and not head:
        raise ConfigError(f"freeze={cfg.freeze!r}: leaves no parameter to train")
    groups, scales = [], []
    if body:
        groups.append({"params": body})
        scales.append(cfg.backbone_lr_scale)
    if head:
        groups.append({"params": head})
        scales.append(1.0)
    return groups, scales


def fixed_normalisation(
    init: tuple[dict, WeightsMeta | None] | None, ckpt: dict[str, Any] | None
) -> tuple[list[float], list[float]] | None:
    """The normalisation a run must use rather than compute: a resumed run's own (from its
    checkpoint), or that of the weights a transfer starts from."""
    if ckpt is not None:
        meta = ckpt.get("meta") or {}
        if isinstance(meta.get("mean"), list) and isinstance(meta.get("std"), list):
            return meta["mean"], meta["std"]
        return None
    if init is not None and init[1] is not None and init[1].mean and init[1].std:
        return init[1].mean, init[1].std
    return None
