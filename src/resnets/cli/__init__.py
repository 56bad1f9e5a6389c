"""The ``resnets`` command line. One module per command family, each with ``register(sub)``
beside its handlers; parsing and printing only:

- ``train.py``: train, config
- ``infer.py``: eval, calibrate, predict, explain, export, serve
- ``weights.py``: weights list|info|package|card|download
- ``data.py``: data info|shard|verify
- ``bench.py``: benchmark train|infer|data
- ``models.py``: models, summary
- ``resnets.analysis.commands``: reproduce ..., analyze ... (the paper's experiments)

The options several commands share (``--weights``, ``--model``, ``--backend``, ``--device``,
...) are defined once, in ``resnets/argtypes.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .. import __version__
from ..errors import ResnetsError, TrainingInterrupted

EXIT_USER_ERROR = 2

#: every command: the module that registers it (with its handlers) and its one-line help.
#: ``resnets --help`` is printed from this table alone, and a command imports only its own
#: family's machinery (torch among it) when it runs; a test keeps the table equal to what the
#: families register.
COMMANDS = {
    "train": (
        "resnets.cli.train",
        "train a model (default: ResNet-20 on the bundled digits, ~15 s)",
    ),
    "config": (
        "resnets.cli.train",
        "print a resolved training config (JSON), or every field's documentation",
    ),
    "eval": ("resnets.cli.infer", "top-1/top-5, per-class accuracy and a confusion matrix"),
    "calibrate": (
        "resnets.cli.infer",
        "fit a softmax temperature on the held-out split; store it with the weights",
    ),
    "predict": ("resnets.cli.infer", "top-k classes of image files"),
    "explain": (
        "resnets.cli.infer",
        "Grad-CAM and integrated-gradients heat maps of image files, beside the top-k classes",
    ),
    "export": (
        "resnets.cli.infer",
        "ONNX or OpenVINO, classes and preprocessing inside, parity checked",
    ),
    "serve": (
        "resnets.cli.infer",
        "an HTTP API (predict, explain) with dynamic batching and a web page",
    ),
    "weights": ("resnets.cli.weights", "named weights: list, info, package, card, download"),
    "models": ("resnets.cli.models", "list the models with parameters and MACs"),
    "summary": ("resnets.cli.models", "per-stage output shapes, parameters and MACs of a model"),
    "benchmark": (
        "resnets.cli.bench",
        "images/s against plain fp32 and bf16 loops, fraction of a matmul's rate, memory",
    ),
    "data": (
        "resnets.cli.data",
        "data sets: info, pack a folder into WebDataset tar shards, verify shards",
    ),
    "detect": (
        "resnets.cli.detect",
        "object detection: Faster R-CNN + FPN on a resnets backbone (data, train, eval, predict)",
    ),
    "reproduce": (
        "resnets.analysis.commands",
        "the paper's experiments: cifar-table, degradation, paper, preact, shortcuts, "
        "sum-vs-concat, transfer",
    ),
    "analyze": (
        "resnets.analysis.commands",
        "layer responses (Fig. 7), gradient flow, the detection claim, verdicts",
    ),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (the prog and the problem) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"resnets: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line. Every family registers its own subcommands; with ``command``, only
    that command's family is imported and registered, the others are listed by name and help
    (enough for ``resnets --help`` and for the error on a mistyped command)."""
    parser = _Parser(
        prog="resnets",
        description="Deep Residual Networks (He et al., 2015): train, evaluate, predict, analyse.",
    )
    parser.add_argument("--version", action="version", version=f"resnets {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    families = list(dict.fromkeys(module for module, _ in COMMANDS.values()))
    wanted = families if command is None else [COMMANDS[command][0]] if command in COMMANDS else []
    loaded = []
    for name, (module, help_) in COMMANDS.items():
        if module in wanted:
            if module not in loaded:  # a family registers all of its commands at once
                importlib.import_module(module).register(sub)
                loaded.append(module)
        else:
            sub.add_parser(name, help=help_, add_help=False)
    return parser


def _command_word(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"resnets: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _warn_one_line
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_word(argv) or "")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2, one line) and --help / --version (0)
        return e.code if isinstance(e.code, int) else EXIT_USER_ERROR
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.fn(args) or 0)
    except ResnetsError as e:
        print(f"resnets: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except TrainingInterrupted as e:  # an experiment's training run was interrupted
        print(f"resnets: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("resnets: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `resnets models | head`
        return 0
    except OSError as e:  # a full disk, a read-only folder, a missing permission: one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"resnets: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USER_ERROR


def _entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
