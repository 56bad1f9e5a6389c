"""`resnets reproduce ...` and `resnets analyze ...`: the paper's experiments as commands.

Every subcommand is generated from the registry (:mod:`.experiments`, one file per
experiment): its help, the flags of the Settings fields it takes, and a flag per option of its
own, each with the help and default its registration gives. One thin handler parses the flags
into the experiment's :class:`~.registry.Settings` and calls :func:`~.registry.run_experiment`,
the function ``resnets.reproduce`` calls. Each command leaves a results folder with the
resolved config of every run (``runs/*/``), the metrics, CSV files, figures and a RESULTS.md
that puts the paper's numbers beside ours; the paper's numbers live in paper_numbers.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..argtypes import add_device, add_no_progress, count, int_list
from . import experiments  # noqa: F401  (importing it registers every experiment)
from .registry import EXPERIMENTS, Experiment, NoReportYet, Settings, get_experiment, run_experiment
from .reports import read_verdicts

#: each Settings field's flag: (flag, its help); --device and --no-progress have their own
_FLAG_HELP = {
    "data": ("--data", "cifar10[:PATH], a CIFAR-layout folder, or digits"),
    "budget": ("--budget", "fraction of the paper's 64k iterations (1.0 = full)"),
    "seeds": ("--seeds", "runs per configuration (seeds 0..N-1)"),
    "out": ("--out", "results folder"),
    "workers": (
        "--workers",
        "threads preparing each run's next batches (0 = in the training loop)",
    ),
    "runs_from": (
        "--runs-from",
        "folder whose runs/ to use and add to (share trained runs between commands)",
    ),
}


def _add_flags(p: argparse.ArgumentParser, experiment: Experiment) -> None:
    """The flags of the Settings fields ``experiment`` takes, with Settings' defaults (its own
    for ``--seeds`` and ``--out``)."""
    defaults = Settings()
    for name in experiment.flags:
        if name == "device":
            add_device(p)
        elif name == "progress":
            add_no_progress(p)
        else:
            flag, help_text = _FLAG_HELP[name]
            if name == "out" and "runs_from" in experiment.flags:  # it trains runs there
                help_text += " (re-running skips finished runs)"
            kind = {"budget": float, "seeds": count(1), "workers": count(0)}.get(name, str)
            default = {"seeds": experiment.seeds, "out": f"results/{experiment.name}"}.get(
                name, getattr(defaults, name)
            )
            if name in experiment.required:
                p.add_argument(flag, type=kind, required=True, help=help_text)
            else:
                p.add_argument(flag, type=kind, default=default, help=help_text)


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _add_option(
    p: argparse.ArgumentParser, option: str, default: Any, help_text: str, required: bool
) -> None:
    """An experiment's option as its flag, from its default (its type) and its help."""
    if isinstance(default, bool):
        p.add_argument(_flag(option), action="store_true", help=help_text)
    elif isinstance(default, list):  # comma-separated on the command line
        p.add_argument(_flag(option), default=",".join(map(str, default)), help=help_text)
    elif isinstance(default, int):
        p.add_argument(_flag(option), type=count(1), default=default, help=help_text)
    elif required:
        p.add_argument(_flag(option), type=type(default), required=True, help=help_text)
    else:  # a float or a string
        p.add_argument(_flag(option), type=type(default), default=default, help=help_text)


def _option_value(args: argparse.Namespace, option: str, default: Any) -> Any:
    """The flag's value as the experiment's option (lists from their comma-separated text)."""
    value = getattr(args, option)
    if not isinstance(default, list):
        return value
    items = [item for item in value.split(",") if item]
    if default and isinstance(default[0], int):  # numbers; "all" is 0 (every labelled image)
        return int_list(
            ",".join("0" if item == "all" else item for item in items), _flag(option), 0, 10_000
        )
    return items


def _experiment(args: argparse.Namespace) -> int:
    """``resnets reproduce NAME`` / ``analyze NAME``: the flags parsed into Settings, then the
    experiment's one function; prints where its page is and the verdicts it holds."""
    experiment = get_experiment(args.name)
    options = {o: _option_value(args, o, d) for o, d in experiment.defaults.items()}
    # (Settings makes the paths Paths, and checks the budget and the seeds)
    given = {name: getattr(args, name) for name in experiment.flags if name != "progress"}
    if "progress" in experiment.flags:
        given["progress"] = not args.no_progress
    settings = Settings(**given, command="resnets " + " ".join(sys.argv[1:]), options=options)
    try:
        path = run_experiment(args.name, settings)
    except NoReportYet as e:
        print(e, file=sys.stderr)
        return e.exit_code
    print(f"results: {path}")
    if args.name == "degradation":  # the paper's Fig. 6, the figure this command is for
        print(f"figure:  {path.parent / 'degradation.png'}")
    verdicts = path.parent / "verdicts.json"
    if verdicts.is_file():
        for verdict in read_verdicts(verdicts):
            print(verdict.line())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add reproduce and analyze to ``resnets``: a subcommand per registered experiment."""
    # (the help of reproduce and analyze is the CLI's COMMANDS table's: --help imports nothing)
    parents = {
        "reproduce": sub.add_parser(
            "reproduce",
            help="the paper's experiments: "
            + ", ".join(e.name for e in EXPERIMENTS.values() if e.command == "reproduce"),
        ).add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True),
        "analyze": sub.add_parser(
            "analyze", help="layer responses (Fig. 7), gradient flow, the detection claim, verdicts"
        ).add_subparsers(dest="analysis", metavar="ANALYSIS", required=True),
    }
    for experiment in EXPERIMENTS.values():
        p = parents[experiment.command].add_parser(experiment.name, help=experiment.help)
        _add_flags(p, experiment)
        for option, default in experiment.defaults.items():
            _add_option(
                p, option, default, experiment.option_help[option], option in experiment.required
            )
        p.set_defaults(fn=_experiment, name=experiment.name)
