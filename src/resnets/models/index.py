"""What ``resnets models`` lists, without building or importing a model (no torch): every
registered model's family, depth, kind, input side, parameters and MACs, recorded in
``costs.json`` by :func:`resnets.models.summary.write_costs` and checked against the registry
and a fresh count by the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: ``python -c "from resnets.models.summary import write_costs; write_costs()"`` after adding
#: or changing a model
COSTS_FILE = Path(__file__).with_name("costs.json")


@dataclass(frozen=True)
class ModelCost:
    params: int
    macs: int


@dataclass(frozen=True)
class IndexEntry:
    """One registered model as recorded (``input``: the default image side)."""

    name: str
    family: str
    depth: int
    kind: str
    input: int
    cost: ModelCost


def _read() -> dict[str, dict]:
    try:
        raw = json.loads(COSTS_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def recorded_costs() -> dict[str, ModelCost]:
    """The recorded costs, by model name (empty if the file is missing)."""
    return {name: ModelCost(int(v["params"]), int(v["macs"])) for name, v in _read().items()}


def model_index() -> dict[str, IndexEntry]:
    """Every recorded model with its registry facts, by name (empty if the file is missing
    or was written before it held them)."""
    found = {}
    for name, v in _read().items():
        if not {"family", "depth", "kind", "input"} <= set(v):
            return {}
        cost = ModelCost(int(v["params"]), int(v["macs"]))
        found[name] = IndexEntry(
            name, str(v["family"]), int(v["depth"]), str(v["kind"]), int(v["input"]), cost
        )
    return found


def human(n: float) -> str:
    """``4.09 G``: a count in thousands, millions or billions."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} "
