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
import sys
import warnings

from .. import __version__
from ..analysis import commands as analysis_commands
from ..errors import ResnetsError
from ..train import TrainingInterrupted
from . import bench, data, infer, models, train, weights

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (the prog and the problem) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"resnets: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every family registers its own subcommands."""
    parser = _Parser(
        prog="resnets",
        description="Deep Residual Networks (He et al., 2015): train, evaluate, predict, analyse.",
    )
    parser.add_argument("--version", action="version", version=f"resnets {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in (train, infer, weights, models, bench, data, analysis_commands):
        family.register(sub)
    return parser


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"resnets: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _warn_one_line
    parser = build_parser()
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
