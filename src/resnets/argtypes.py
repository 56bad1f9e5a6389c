"""Command-line value types and the options shared by every command, defined once here
(imports nothing of resnets but its errors): ``--weights``, ``--model``, ``--backend``,
``--device``, ``--batch-size``, ``--json``, ``--no-progress``."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from .errors import ConfigError

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


# ---------------------------------------------------------------------------------------------
# shared options: each declared once, added to a parser by the commands that take it

#: the runtimes a loaded model runs on (``auto``: the fastest installed, see
#: :func:`resnets.inference.choose_backend`)
BACKEND_CHOICES = ("torch", "onnxruntime", "openvino", "auto")


def add_weights(
    parser: argparse.ArgumentParser, *, positional: bool = False, exported: bool = False
) -> None:
    """``--weights``: a weights name, file or run folder (``exported``: or an exported model)."""
    what = "NAME|RUN_DIR|FILE" + ("|EXPORT" if exported else "")
    doc = "MODEL.TAG (see `resnets weights list`), a weights file or a run directory" + (
        "; or an exported model (an .onnx file or an OpenVINO folder)" if exported else ""
    )
    if positional:
        parser.add_argument("weights", metavar=what, help=doc)
    else:
        parser.add_argument("--weights", required=True, metavar=what, help=doc)


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model``: the architecture of a weights file that carries no resnets record."""
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="architecture, for weights files without resnets metadata (torchvision's)",
    )


def add_backend(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """``--backend``: the inference runtime (CPU)."""
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=default,
        help="inference runtime (CPU; auto: the fastest installed"
        + ("; default: torch for weights, auto for an exported model)" if default is None else ")"),
    )


def add_device(parser: argparse.ArgumentParser, *, default: str = "auto") -> None:
    """``--device``: ``auto`` (a GPU if there is one), ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    parser.add_argument(
        "--device", default=default, help=f"auto, cpu, cuda, cuda:N or mps (default {default})"
    )


def add_batch_size(parser: argparse.ArgumentParser, *, default: int) -> None:
    parser.add_argument(
        "--batch-size",
        type=bounded(1, MAX_BATCH),
        default=default,
        metavar="N",
        help=f"images per forward pass (default {default})",
    )


def add_json(parser: argparse.ArgumentParser, *, what: str = "one JSON object") -> None:
    parser.add_argument("--json", action="store_true", help=f"last line: {what}")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------------------------
# list values checked after parsing (an error names the option and the value)


def int_list(text: str, option: str, low: int, high: int, *, most: int = 10_000) -> list[int]:
    """A comma list of integers from ``low`` to ``high`` (at most ``most`` of them), in order."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated integers") from None
    if not values or len(values) > most or any(v < low or v > high for v in values):
        raise ConfigError(f"{option} {text!r}: up to {most} integers from {low} to {high}")
    return values


def image_sides(text: str, option: str) -> list[int]:
    """Image sides in pixels, e.g. ``224,256,384`` (up to 16, each at most MAX_IMAGE_SIDE)."""
    return int_list(text, option, 1, MAX_IMAGE_SIDE, most=16)


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN or infinite number replaced by None, through dicts, lists and
    tuples: what strict JSON can hold."""
    if isinstance(obj, float) or (hasattr(obj, "dtype") and getattr(obj, "ndim", 1) == 0):
        value = float(obj) if not isinstance(obj, bool) else obj
        return value if isinstance(value, bool) or math.isfinite(value) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def json_line(obj: Any, **kwargs: Any) -> str:
    """Strict JSON for ``--json``: a missing or non-finite number is ``null``, never ``NaN``
    (which strict parsers reject)."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)
