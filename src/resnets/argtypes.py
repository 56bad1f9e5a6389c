"""Command-line value types shared by every command (imports nothing of resnets)."""

from __future__ import annotations

import argparse


def count(minimum: int):
    """An argparse type: an integer >= ``minimum`` (and < 2**31), else a one-line error."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= v < 2**31:
            raise argparse.ArgumentTypeError(f"{v}: must be >= {minimum}")
        return v

    parse.__name__ = f"integer >= {minimum}"
    return parse
