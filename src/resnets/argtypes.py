"""Command-line value types shared by every command (imports nothing of resnets)."""

from __future__ import annotations

import argparse

#: the largest image side any command decodes, resizes to or runs a model at: the paper's
#: largest test scale is 640; a side of 1024 is 2.6x its pixels. Beyond it one image's
#: activations outgrow the machine (a fuzzed --image-size of 90,000 asked for 89 GB).
MAX_IMAGE_SIDE = 1024
#: the largest batch any command takes
MAX_BATCH = 4096


def bounded(minimum: int, maximum: int):
    """An argparse type: an integer from ``minimum`` to ``maximum``, else a one-line error."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= v <= maximum:
            raise argparse.ArgumentTypeError(f"{v}: must be from {minimum} to {maximum}")
        return v

    parse.__name__ = f"integer from {minimum} to {maximum}"
    return parse


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
