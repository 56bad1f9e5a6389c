"""Public names that load on first use (PEP 562), one helper for every package that has them.

A package's ``__init__`` lists its names in ``_LAZY`` (name -> the module that defines it, a
full ``resnets.`` path or one relative to the package), mirrors them under ``if
TYPE_CHECKING:`` for IDEs and type checkers (tests/test_layout.py keeps the two the same), and
gets its ``__getattr__`` and ``__dir__`` here. So importing a package, or one light module in
it (``resnets.train.config``), does not import the heavy modules beside it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` for the names of
    ``table``: a name is imported from its module when first looked up, then kept."""

    def module_of(name: str) -> str:
        where = table[name]
        return where if where.startswith("resnets.") else f"{package}.{where}"

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of(name)), name)
        setattr(sys.modules[package], name, value)  # looked up once
        return value

    def __dir__() -> list[str]:
        loaded = (n for n in vars(sys.modules[package]) if not n.startswith("_"))
        return sorted(set(table) | set(loaded))

    return __getattr__, __dir__
