"""Per-stage shapes, parameters and multiply-accumulates of a model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..io import atomic_write_text
from .factory import create_model, list_models
from .index import COSTS_FILE, ModelCost, human, recorded_costs
from .registry import get_spec
from .resnet import ResNet


@dataclass
class StageInfo:
    name: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


#: input sides above this are counted on the meta device (see :func:`measure_cost`)
META_ABOVE = 64


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and linear layers).

    ``torch.utils.flop_counter`` counts 2 FLOPs per multiply-accumulate; we report MACs, the unit
    of the paper's and torchvision's "FLOPs" (ResNet-50 at 224x224: 4.09 G).
    """
    was_training = model.training
    model.eval()
    x = torch.zeros(input_shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2


def summarize(model: ResNet, image_size: int, batch: int = 1) -> list[StageInfo]:
    """Shape, parameters and MACs of the stem, each stage and the head, for one input."""
    was_training = model.training
    model.eval()
    x = torch.zeros(batch, model.in_chans, image_size, image_size)
    rows: list[StageInfo] = []

    def run(name: str, modules: list[nn.Module], fn) -> None:
        nonlocal x
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            x = fn(x)
        params = sum(count_params(m) for m in modules)
        rows.append(StageInfo(name, tuple(x.shape), params, counter.get_total_flops() // 2))

    run("stem", [], model.forward_stem)
    for name, stage in zip(model.stage_names, model.stages()):
        # a DenseNet stage is a view over modules registered elsewhere (torchvision's keys)
        run(name, list(getattr(stage, "_parts", [stage])), stage)
    run("head", [getattr(model, model.head_name)], model.forward_head)
    # the stem: every parameter not in a stage or the head (conv1 + bn1, or a whitening stem)
    rows[0].params = count_params(model) - sum(r.params for r in rows[1:])
    model.train(was_training)
    return rows


def format_summary(name: str, rows: list[StageInfo], image_size: int) -> str:
    w = max([8, *(len(r.name) for r in rows)])
    lines = [
        f"{name} at {image_size}x{image_size}",
        f"{'stage':<{w}} {'output':<20} {'params':>12} {'MACs':>14}",
    ]
    for r in rows:
        shape = str(list(r.output_shape))
        lines.append(f"{r.name:<{w}} {shape:<20} {r.params:>12,} {r.macs:>14,}")
    total_p = sum(r.params for r in rows)
    total_m = sum(r.macs for r in rows)
    lines.append(f"{'total':<{w}} {'':<20} {total_p:>12,} {total_m:>14,}  ({human(total_m)}MACs)")
    return "\n".join(lines)


def activation_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Bytes of the tensors one training forward keeps for its backward (activations, the
    dominant part of training memory at a given batch), counted once per storage.

    Measured with autograd's saved-tensor hooks, so it is the same on every device and needs
    no allocator statistics; parameters saved by a layer are not counted.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    was_training = model.training
    model.train()
    x = torch.zeros(input_shape)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    model.train(was_training)
    return sum(seen.values())


def measure_cost(name: str) -> ModelCost:
    """Build ``name`` and count its params and MACs at its default input size.

    An ImageNet-sized model is built on the meta device: shapes propagate and every operation
    is counted, but no weight is allocated or initialised and no arithmetic is done. A
    CIFAR-sized one runs for real: its 32x32 forward pass costs less than the meta tensors'
    Python bookkeeping (ResNet-1202 on the AVX2-only Zen 3: 1.6 s against 5.3 s)."""
    size = get_spec(name).default_image_size
    # a real build draws its initial weights: the caller's random state is left as it was
    with torch.random.fork_rng(devices=[]), torch.device("meta" if size > META_ABOVE else "cpu"):
        model = create_model(name)
        return ModelCost(count_params(model), count_macs(model, (1, 3, size, size)))


def model_cost(name: str, recorded: dict[str, ModelCost] | None = None) -> ModelCost:
    """The recorded cost of ``name``, or a fresh measurement for a model not recorded."""
    table = recorded_costs() if recorded is None else recorded
    return table.get(name) or measure_cost(name)


def write_costs() -> Path:
    """Measure every registered model and write the table with its registry facts, what
    ``resnets models`` lists without building a model (run after adding a model)."""
    table = {}
    for n in list_models():
        spec = get_spec(n)
        table[n] = {
            **asdict(measure_cost(n)),
            "family": spec.family,
            "depth": spec.depth,
            "kind": spec.kind,
            "input": spec.default_image_size,
        }
    # in the registry's order, which `resnets models` lists
    atomic_write_text(COSTS_FILE, json.dumps(table, indent=1) + "\n")
    return COSTS_FILE
