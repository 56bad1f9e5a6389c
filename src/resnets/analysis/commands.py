"""`resnets reproduce ...` and `resnets analyze ...`: the paper's experiments as commands.

Thin handlers: each parses its flags into the experiment's :class:`~.registry.Settings` and
calls the experiment's one function (definitions.py defines each experiment's runs and report;
experiments.py trains and measures them), which writes the figures (figures.py, plots.py), the
tables and verdicts (tables.py, reports.py) and RESULTS.md. Each command leaves a results
folder with the resolved config of every run (``runs/*/``), the metrics, CSV files, figures
and a RESULTS.md that puts the paper's numbers beside ours; the paper's numbers live in
paper.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..argtypes import add_device, add_no_progress, count, int_list
from ..data import data_fingerprints
from ..errors import ConfigError
from ..io import atomic_write_text, check_writable
from . import (
    definitions,  # noqa: F401  (importing it registers every experiment)
    whole_schedule,
)
from .detection import write_detection_report
from .paper_summary import run_paper
from .registry import EXPERIMENTS, Settings, get_experiment, run_experiment
from .rejudge import REJUDGED, SUMMARY_REPORTS, rejudge, write_rejudged
from .reports import (
    CLAIMS_BEGIN,
    CLAIMS_END,
    replace_block,
    summary_section,
)


def _ints(text: str, what: str) -> list[int]:
    return int_list(text, f"--{what}", 0, 10_000)


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument(
        "--data", default="cifar10", help="cifar10[:PATH], a CIFAR-layout folder, or digits"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="fraction of the paper's 64k iterations (1.0 = full)",
    )
    p.add_argument(
        "--seeds", type=count(1), default=1, help="runs per configuration (seeds 0..N-1)"
    )
    p.add_argument(
        "--out", default=default_out, help="results folder (re-running skips finished runs)"
    )
    add_device(p)
    p.add_argument(
        "--workers",
        type=count(0),
        default=0,
        help="threads preparing each run's next batches (0 = in the training loop)",
    )
    p.add_argument(
        "--runs-from",
        help="folder whose runs/ to use and add to (share trained runs between commands)",
    )
    add_no_progress(p)


def _settings(args: argparse.Namespace, **options: Any) -> Settings:
    """The command's flags as the experiment's Settings (checked once, there)."""
    return Settings(
        data=args.data,
        budget=args.budget,
        seeds=args.seeds,
        out=Path(args.out),
        device=args.device,
        workers=args.workers,
        runs_from=Path(args.runs_from) if args.runs_from else None,
        progress=not args.no_progress,
        command="resnets " + " ".join(sys.argv[1:]),
        options=options,
    )


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _add_option(p: argparse.ArgumentParser, option: str, default: Any, help_text: str) -> None:
    """An experiment's option as its flag, from its default (its type) and its help."""
    if isinstance(default, bool):
        p.add_argument(_flag(option), action="store_true", help=help_text)
    elif isinstance(default, list):  # comma-separated on the command line
        p.add_argument(_flag(option), default=",".join(map(str, default)), help=help_text)
    elif isinstance(default, int):
        p.add_argument(_flag(option), type=count(1), default=default, help=help_text)
    else:  # a float or a string
        p.add_argument(_flag(option), type=type(default), default=default, help=help_text)


def _option_value(args: argparse.Namespace, option: str, default: Any) -> Any:
    """The flag's value as the experiment's option (lists from their comma-separated text)."""
    value = getattr(args, option)
    if not isinstance(default, list):
        return value
    items = [item for item in value.split(",") if item]
    if default and isinstance(default[0], int):  # numbers; "all" is 0 (every labelled image)
        return _ints(",".join("0" if item == "all" else item for item in items), option)
    return items


def _experiment(args: argparse.Namespace) -> int:
    """``resnets reproduce NAME`` / ``analyze NAME``: the flags parsed into Settings, then the
    experiment's one function."""
    defaults = get_experiment(args.name).defaults
    options = {option: _option_value(args, option, d) for option, d in defaults.items()}
    path = run_experiment(args.name, _settings(args, **options))
    print(f"results: {path}")
    if args.name == "degradation":  # the paper's Fig. 6, the figure this command is for
        print(f"figure:  {path.parent / 'degradation.png'}")
    return 0


def _paper(args: argparse.Namespace) -> int:
    """``reproduce paper``: :func:`~.paper_summary.run_paper` with the command's flags (start
    the same command several times and the workers share the queue)."""
    outcome = run_paper(
        _settings(args),
        table_seeds=args.table_seeds,
        seeds_110=args.seeds_110,
        plain_32_44=args.plain_32_44,
        zoo_runs=args.zoo_runs or None,
        train=not args.report_only,
        report=not args.train_only,
    )
    done, total = outcome.finished, outcome.total
    if done < total and args.report_only:
        print(f"{done}/{total} runs finished: no report yet", file=sys.stderr)
        return 1
    if done < total:
        print(f"{done}/{total} runs finished; the rest are held by other workers", file=sys.stderr)
        return 0
    if outcome.summary is None:  # --train-only
        print(f"{done}/{total} runs finished", file=sys.stderr)
        return 0
    print(f"summary: {outcome.summary}")
    return 0


def _detection(args: argparse.Namespace) -> int:
    """Issue 34's claim from the detection runs: the report and its paired verdict."""
    runs = Path(args.runs)
    if not runs.is_dir():
        raise ConfigError(f"--runs {runs}: no such folder (detection run folders)")
    check_writable(args.out, "--out", folder=True, reading=(runs,))
    verdict = write_detection_report(runs, Path(args.out), args.residual, args.plain)
    print(verdict.line())
    print(f"results: {Path(args.out) / 'RESULTS.md'}", file=sys.stderr)
    return 0


def _verdicts(args: argparse.Namespace) -> int:
    """The budgeted reports' verdicts computed again from their CSV files, then the summary
    page's table of claims and its whole-schedule section; nothing else on the pages changes."""
    results = Path(args.results)
    summary = results / "RESULTS.md"
    if not summary.is_file():
        raise ConfigError(f"--results {results}: holds no RESULTS.md of `reproduce paper`")
    # everything is computed and checked first, then written: a report that cannot be judged
    # again leaves every page as it was
    judged = {}
    for folder in REJUDGED:
        if folder not in SUMMARY_REPORTS and not (results / folder / "RESULTS.md").is_file():
            continue  # a report not made (yet) in these results
        try:
            judged[folder] = rejudge(results / folder)
        except (OSError, ValueError) as e:
            raise ConfigError(str(e)) from e
    found = [(folder, judged[folder][0]) for folder in SUMMARY_REPORTS]
    text = summary.read_text()
    zoo_runs = Path(args.zoo_runs) if args.zoo_runs else None
    zoo = whole_schedule.score_zoo(args.data, data_fingerprints(args.data))
    figure = whole_schedule.responses_figure(zoo, results)  # written last
    curves = whole_schedule.zoo_curves(results, zoo_runs)
    fig6 = whole_schedule.curves_section(curves, whole_schedule.curves_figure(curves, results))
    whole = whole_schedule.table6_section(zoo, zoo_runs, figure, fig6)
    claims = summary_section(found)
    try:
        text = replace_block(text, CLAIMS_BEGIN, CLAIMS_END, claims[claims.index(CLAIMS_BEGIN) :])
        text = replace_block(text, whole_schedule.BEGIN, whole_schedule.END, whole)
    except ValueError as e:
        raise ConfigError(f"{summary}: {e}") from e
    for folder, (verdicts, page, looks) in judged.items():
        write_rejudged(results / folder, verdicts, page, looks)
    atomic_write_text(summary, text)
    whole_schedule.write_responses_figure(zoo, results)
    whole_schedule.write_curves_figure(curves, results)
    for folder, (verdicts, _, _) in judged.items():
        for v in verdicts:
            print(f"{folder}: {v.label} {v.word()}")
    print(f"summary: {summary}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add reproduce and analyze to ``resnets``."""
    # (the help of reproduce and analyze is the CLI's COMMANDS table's: --help imports nothing)
    rp = sub.add_parser(
        "reproduce",
        help="the paper's experiments: degradation, cifar-table, shortcuts, transfer, "
        "sum-vs-concat, preact",
    )
    rsub = rp.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    ap = sub.add_parser(
        "analyze", help="layer responses (Fig. 7), gradient flow, the detection claim, verdicts"
    )
    asub = ap.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    # every registered experiment, from its registration: its help, options and their help
    for experiment in EXPERIMENTS.values():
        parent = rsub if experiment.command == "reproduce" else asub
        p = parent.add_parser(experiment.name, help=experiment.help)
        _common(p, f"results/{experiment.name}")
        for option, default in experiment.defaults.items():
            _add_option(p, option, default, experiment.option_help[option])
        p.set_defaults(fn=_experiment, name=experiment.name)
    p = rsub.add_parser(
        "paper",
        help="Table 6, Fig. 6 and Fig. 7 from one resumable queue that several workers can share",
    )
    _common(p, "results/paper")
    p.set_defaults(seeds=2)
    p.add_argument(
        "--table-seeds", type=count(1), default=1, help="seeds of ResNet-32, -44 and -110"
    )
    p.add_argument("--seeds-110", type=count(1), default=1, help="seeds of ResNet-110")
    p.add_argument("--plain-32-44", action="store_true", help="also plain-32 and plain-44")
    p.add_argument(
        "--train-only", action="store_true", help="train this worker's share, write no report"
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing; write the reports if every run has finished (else exit 1)",
    )
    p.add_argument(
        "--zoo-runs",
        default="",
        help="where the zoo's whole-schedule runs train (docs/results/zoo_worker.sh: "
        ".bgtrain/zoo): Table 6 shows how far each unpackaged depth has got",
    )
    p.set_defaults(fn=_paper)
    p = asub.add_parser(
        "detection",
        help="residual against plain backbones in Faster R-CNN: the report and a paired verdict "
        "from the detection runs (`resnets detect train`)",
    )
    p.add_argument("--runs", required=True, help="a folder of detection run folders")
    p.add_argument("--out", default="results/detection", help="where RESULTS.md is written")
    p.add_argument("--residual", default="resnet18", help="the residual backbone's name")
    p.add_argument("--plain", default="plain18", help="its plain twin's name")
    p.set_defaults(fn=_detection)
    p = asub.add_parser(
        "verdicts",
        help="judge written reports again from their own CSV files (the run folders may be "
        "gone), and the summary page, Table 6 at the whole schedule included",
    )
    p.add_argument(
        "--results",
        required=True,
        help="the folder `reproduce paper` wrote (its RESULTS.md, degradation/, cifar-table/, "
        "responses/)",
    )
    p.add_argument("--data", required=True, help="the data the zoo's weights were trained on")
    p.add_argument("--zoo-runs", default="", help="as for `reproduce paper`")
    p.set_defaults(fn=_verdicts)
