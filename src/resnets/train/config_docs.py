"""docs/config.md, generated from the config classes' field metadata (``resnets config
--markdown``): every field of :class:`~resnets.train.config.TrainConfig` and of
:class:`~resnets.train.config.DetectTrainConfig` with its type, default, meaning and unit, and
the recipes. A test fails when the file differs."""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import Any

from .config import DetectTrainConfig, TrainConfig, choices_of
from .recipes import RECIPES


def config_markdown() -> str:
    """``docs/config.md``: every field with its type, default, meaning and unit, then the
    recipes. Generated from the metadata; a test fails when the file differs."""
    lines = [
        "# Training configuration",
        "",
        "<!-- generated from TrainConfig's field metadata by `resnets config --markdown > docs/config.md`; do not edit -->",
        "",
        "Every field of `resnets.train.TrainConfig`, settable from a recipe, a `--config` JSON/TOML file,",
        "`--set KEY=VALUE`, or its own flag (`--batch-size 64`). Precedence: defaults < recipe < file <",
        "command line. Unknown keys, wrong types and out-of-range values are errors before any work starts.",
        "",
        *_field_table(TrainConfig),
    ]
    lines += ["", "## Recipes", ""]
    for k, v in RECIPES.items():
        lines.append(f"- `{k}`: " + ", ".join(f"`{a}={b!r}`" for a, b in v.items()))
    lines += [
        "",
        "## Detection (`resnets detect train`)",
        "",
        "Every field of `resnets.train.config.DetectTrainConfig`, settable the same ways (its own",
        "flag, `--config`, `--set KEY=VALUE`; `resnets config --detection` prints one resolved).",
        "",
        *_field_table(DetectTrainConfig),
    ]
    return "\n".join(lines) + "\n"


def _field_table(cls: type) -> list[str]:
    """The Markdown table of a config class's fields: type, default, meaning, unit."""
    lines = ["| field | type | default | meaning | unit |", "| --- | --- | --- | --- | --- |"]
    defaults = cls()
    for f in fields(cls):
        if f.metadata["group"]:
            lines.append(f"| **{f.metadata['group']}** | | | | |")
        choices = choices_of(f.name, cls)
        typ = (
            " / ".join(f"`{c}`" for c in choices if c)
            if choices
            else _type_name(typing.get_type_hints(cls)[f.name])
        )
        help_ = f.metadata["help"].replace("|", "/")
        lines.append(
            f"| `{f.name}` | {typ} | `{getattr(defaults, f.name)!r}` | {help_} | {f.metadata['unit']} |"
        )
    return lines


def _type_name(typ: Any) -> str:
    if typing.get_origin(typ) is list:
        return f"list[{typing.get_args(typ)[0].__name__}]"
    if typing.get_origin(typ) is dict:
        return "JSON object"
    return typ.__name__
