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
from .registry import Settings, run_experiment
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


# each experiment's own flags -> its options (the defaults live with the experiment)
OPTIONS = {
    "degradation": lambda a: {"depths": _ints(a.depths, "depths")},
    "cifar-table": lambda a: {"depths": _ints(a.depths, "depths"), "with_1202": a.with_1202},
    "shortcuts": lambda a: {"model": a.model},
    "sum-vs-concat": lambda a: {"depth": a.depth},
    "preact": lambda a: {"with_164": a.with_164, "with_1001": a.with_1001},
    "transfer": lambda a: {
        "model": a.model,
        "source": [c for c in a.source.split(",") if c],
        "labels": _ints(a.labels.replace("all", "0"), "labels"),
        "val_per_class": a.val_per_class,
        "pretrain_budget": a.pretrain_budget,
    },
    "responses": lambda a: {"depths": _ints(a.depths, "depths")},
    "gradients": lambda a: {"depths": _ints(a.depths, "depths")},
}


def _experiment(args: argparse.Namespace) -> int:
    """``resnets reproduce NAME`` / ``analyze NAME``: the flags parsed into Settings, then the
    experiment's one function."""
    path = run_experiment(args.name, _settings(args, **OPTIONS[args.name](args)))
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
    rp = sub.add_parser(
        "reproduce",
        help="the paper's experiments: degradation, cifar-table, shortcuts, transfer, "
        "sum-vs-concat, preact",
    )
    rsub = rp.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    p = rsub.add_parser("degradation", help="plain vs residual training curves (Fig. 6)")
    _common(p, "results/degradation")
    p.add_argument("--depths", default="20,56", help="comma-separated 6n+2 depths")
    p.set_defaults(fn=_experiment, name="degradation")
    p = rsub.add_parser("cifar-table", help="ResNet-20/32/44/56/110 beside the paper's Table 6")
    _common(p, "results/cifar-table")
    p.add_argument("--depths", default="20,32,44,56,110", help="comma-separated 6n+2 depths")
    p.add_argument("--with-1202", action="store_true", help="also ResNet-1202")
    p.set_defaults(fn=_experiment, name="cifar-table")
    p = rsub.add_parser(
        "transfer", help="pretrained vs from scratch with 10..all labelled images per class"
    )
    _common(p, "results/transfer")
    p.add_argument("--model", default="resnet20", help="registered CIFAR architecture")
    p.add_argument("--source", default="", help="pretraining classes (default: the first half)")
    p.add_argument("--labels", default="10,50,250,all", help="labelled images per class")
    p.add_argument("--val-per-class", type=count(1), default=500, help="held-out images per class")
    p.add_argument(
        "--pretrain-budget", type=float, default=1.0, help="fraction of 64k iterations to pretrain"
    )
    p.set_defaults(fn=_experiment, name="transfer")
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
    p = rsub.add_parser("shortcuts", help="shortcut options A, B, C on one network (Table 3)")
    _common(p, "results/shortcuts")
    p.add_argument(
        "--model", default="resnet20", help="CIFAR ResNet whose options A, B, C are compared"
    )
    p.set_defaults(fn=_experiment, name="shortcuts")
    p = rsub.add_parser(
        "sum-vs-concat", help="additive against concatenating shortcuts at matched parameters"
    )
    _common(p, "results/sum-vs-concat")
    p.add_argument("--depth", type=int, default=20, help="6n+2 layers (20, 32, 56, 110)")
    p.set_defaults(fn=_experiment, name="sum-vs-concat")
    p = rsub.add_parser("preact", help="original against pre-activation units (depth 110)")
    _common(p, "results/preact")
    p.add_argument("--with-164", action="store_true", help="also the bottleneck ResNet-164")
    p.add_argument("--with-1001", action="store_true", help="also ResNet-1001 (slow)")
    p.set_defaults(fn=_experiment, name="preact")

    ap = sub.add_parser(
        "analyze", help="layer responses (Fig. 7), gradient flow, the detection claim, verdicts"
    )
    asub = ap.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    p = asub.add_parser("responses", help="std of every 3x3 layer's response (Fig. 7)")
    _common(p, "results/responses")
    p.add_argument("--depths", default="20,56", help="comma-separated 6n+2 depths")
    p.set_defaults(fn=_experiment, name="responses")
    p = asub.add_parser(
        "gradients", help="per-layer gradient norms and shattered gradients, plain vs residual"
    )
    _common(p, "results/gradients")
    p.add_argument("--depths", default="20,56", help="comma-separated 6n+2 depths")
    p.set_defaults(fn=_experiment, name="gradients")
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
