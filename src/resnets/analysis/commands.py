"""`resnets reproduce ...` and `resnets analyze ...`: the paper's experiments as commands.

Thin handlers: each builds the runs it needs (experiments.py trains and measures them), then
writes the figures (figures.py, plots.py), the tables and verdicts (tables.py, reports.py) and
RESULTS.md. Each command leaves a results folder with the resolved config of every run
(``runs/*/``), the metrics, CSV files, figures and a RESULTS.md that puts the paper's numbers
beside ours; the paper's numbers live in paper.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..argtypes import add_device, add_no_progress, count, int_list
from ..data import data_fingerprints, load_dataset
from ..errors import ConfigError
from ..io import atomic_write_text, check_writable
from ..plots import plot_curves, plot_label_curves, plot_panels
from . import experiments, tables, whole_schedule
from .detection import write_detection_report
from .figures import plot_gradients, plot_responses
from .paper import PAPER_ITERS
from .reports import (
    CLAIMS_BEGIN,
    CLAIMS_END,
    REJUDGED,
    degradation_verdicts,
    group,
    mean_curve,
    ordering_verdict,
    per_run_csv,
    read_verdicts,
    rejudge,
    replace_block,
    response_verdict,
    run_table,
    summary_section,
    write_csv,
    write_rejudged,
    write_results,
    write_verdicts,
)


def _ints(text: str, what: str) -> list[int]:
    return int_list(text, f"--{what}", 0, 10_000)


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.set_defaults(depth_seeds=None)  # set per depth by `reproduce paper` only
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


def _command() -> str:
    return "resnets " + " ".join(sys.argv[1:])


def _check(args: argparse.Namespace) -> Path:
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: must be >= 1")
    if not (args.budget > 0 and math.isfinite(args.budget)):
        raise ConfigError(f"--budget {args.budget}: must be > 0")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    this = args.fn.__name__.strip("_").replace("_", "-")  # e.g. "transfer"
    prev = out / "experiment.json"
    if prev.is_file():
        try:
            saved = json.loads(prev.read_text())
            # (folders written before the field existed: the command's fourth word)
            other = saved.get("experiment") or saved["command"].split()[2]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            other = "another experiment (unreadable experiment.json)"
        if other != this:
            raise ConfigError(
                f"--out {out}: holds the results of {other!r}, not {this!r}; give this "
                "experiment its own folder"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create the folder ({e.strerror or e})") from None
    (out / "experiment.json").write_text(
        json.dumps(
            {
                "experiment": this,
                "command": _command(),
                "args": {k: v for k, v in vars(args).items() if k != "fn"},
            },
            indent=2,
        )
    )
    return out


def _finish(
    out: Path,
    title: str,
    args: argparse.Namespace,
    sections: list[str],
    wall: float,
    records: list[dict[str, Any]] | None = None,
) -> Path:
    train_s = sum(r.get("train_time") or 0 for r in records) if records else None
    machines = [r["machine"] for r in records] if records else None
    return write_results(
        out, title, _command(), args.budget, sections, wall, args.data, train_s, machines
    )


def _runs_root(args: argparse.Namespace, out: Path) -> Path:
    return Path(args.runs_from) if args.runs_from else out


def _spec(
    model: str, seed: int, args: argparse.Namespace, tag: str = "", **kw: Any
) -> experiments.RunSpec:
    cfg = experiments.budget_config(
        model, args.data, args.budget, seed, args.device, workers=args.workers, **kw
    )
    return experiments.RunSpec(
        f"{model}{tag}-s{seed}", cfg, {"model": model, "seed": seed, "tag": tag}
    )


def _seeds_at(args: argparse.Namespace, depth: int) -> int:
    """Seeds of the nets of this depth: --seeds, unless `reproduce paper` set them per depth."""
    return args.depth_seeds.get(depth, args.seeds) if args.depth_seeds else args.seeds


def _run(args: argparse.Namespace, out: Path, specs: list) -> tuple[list[dict[str, Any]], float]:
    """Train (or find finished) every run of ``specs``; their records and the wall time."""
    started = time.perf_counter()
    records = experiments.run_all(specs, _runs_root(args, out), progress=not args.no_progress)
    return records, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# reproduce


def _degradation(args: argparse.Namespace) -> int:
    out = _check(args)
    depths = _ints(args.depths, "depths")
    kinds = ("plain", "resnet")
    specs = [
        _spec(f"{kind}{d}", s, args)
        for kind in kinds
        for d in depths
        for s in range(_seeds_at(args, d))
    ]
    records, wall = _run(args, out, specs)
    groups = group(records, lambda r: r["model"])
    panels = [
        (title, {f"{kind}-{d}": mean_curve(groups[f"{kind}{d}"]) for d in depths})
        for kind, title in (("plain", "plain networks"), ("resnet", "ResNets"))
    ]
    plot_panels(panels, out / "degradation.png")
    verdicts = degradation_verdicts(run_table(records), min(depths), max(depths))
    sections = tables.degradation_sections(groups, depths, verdicts)
    write_verdicts(out, verdicts)
    per_run_csv(out, records)
    title = "Plain vs residual networks: the degradation problem"
    path = _finish(out, title, args, sections, wall, records)
    print(f"results: {path}\nfigure:  {out / 'degradation.png'}")
    return 0


def _cifar_table(args: argparse.Namespace) -> int:
    out = _check(args)
    depths = _ints(args.depths, "depths") + ([1202] if args.with_1202 else [])
    specs = [_spec(f"resnet{d}", s, args) for d in depths for s in range(_seeds_at(args, d))]
    records, wall = _run(args, out, specs)
    groups = group(records, lambda r: r["model"])
    plot_curves(
        {f"ResNet-{d}": mean_curve(groups[f"resnet{d}"]) for d in depths},
        out / "curves.png",
        title="CIFAR ResNets (mean over seeds)",
    )
    verdict = ordering_verdict(run_table(records), depths)
    sections = tables.cifar_table_sections(groups, depths, verdict)
    write_verdicts(out, [verdict])
    per_run_csv(out, records)
    path = _finish(out, "CIFAR-10 ResNets of increasing depth", args, sections, wall, records)
    print(f"results: {path}")
    return 0


def _shortcuts(args: argparse.Namespace) -> int:
    out = _check(args)
    specs = [
        _spec(args.model, s, args, tag=f"-{option}", shortcut=option)
        for option in ("A", "B", "C")
        for s in range(args.seeds)
    ]
    plain = args.model.replace("resnet", "plain")
    specs += [_spec(plain, s, args) for s in range(args.seeds)]
    records, wall = _run(args, out, specs)
    groups = group(records, lambda r: (r["model"], r["tag"]))
    sections = tables.shortcuts_sections(groups)
    per_run_csv(out, records)
    path = _finish(out, f"Shortcut options on {args.model}", args, sections, wall, records)
    print(f"results: {path}")
    return 0


def _sum_vs_concat(args: argparse.Namespace) -> int:
    """Additive against concatenating shortcuts on CIFAR: at the same widths and at matched
    parameter budgets."""
    out = _check(args)
    depth = args.depth
    width = experiments.matched_concat_width(
        depth, experiments.model_costs(f"resnet{depth}")["params"]
    )
    variants = [  # (label, model, builder options = config overrides)
        ("sum (ResNet)", f"resnet{depth}", {}),
        ("concat, same widths", f"concat{depth}", {}),
        (f"concat, matched params (width {width})", f"concat{depth}", {"base_width": width}),
    ]
    specs = [
        experiments.RunSpec(
            f"{model}{'-w' + str(options['base_width']) if options else ''}-s{seed}",
            experiments.budget_config(
                model, args.data, args.budget, seed, args.device, workers=args.workers, **options
            ),
            {"model": model, "seed": seed, "tag": label},
        )
        for label, model, options in variants
        for seed in range(args.seeds)
    ]
    records, wall = _run(args, out, specs)
    groups = group(records, lambda r: r["tag"])
    labels = [label for label, *_ in variants]
    plot_curves(
        {label: mean_curve(groups[label]) for label in labels},
        out / "curves.png",
        title=f"sum vs concat, {depth} layers (mean over seeds)",
    )
    costs = {label: experiments.model_costs(model, **options) for label, model, options in variants}
    sections, rows = tables.sum_vs_concat_sections(depth, labels, groups, costs, args.seeds)
    write_csv(out / "variants.csv", rows)
    per_run_csv(out, records)
    path = _finish(
        out, f"Sum against concatenation ({depth} layers)", args, sections, wall, records
    )
    print(f"results: {path}")
    return 0


def _preact(args: argparse.Namespace) -> int:
    """Original against pre-activation units at depth 110 (and 164, 1001 with flags)."""
    out = _check(args)
    depths = [110] + ([164] if args.with_164 else []) + ([1001] if args.with_1001 else [])
    pairs = [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]
    specs = [_spec(m, s, args) for _d, a, b in pairs for m in (a, b) for s in range(args.seeds)]
    records, wall = _run(args, out, specs)
    groups = group(records, lambda r: r["model"])
    plot_panels(
        [
            ("original units", {f"ResNet-{d}": mean_curve(groups[a]) for d, a, _b in pairs}),
            ("pre-activation units", {f"ResNet-{d}": mean_curve(groups[b]) for d, _a, b in pairs}),
        ],
        out / "curves.png",
    )
    sections = tables.preact_sections(pairs, groups)
    per_run_csv(out, records)
    path = _finish(out, "Pre-activation residual units", args, sections, wall, records)
    print(f"results: {path}")
    return 0


def _transfer_specs(args, target: list[str], counts: list[int], modes: dict, per_val: int) -> list:
    # the final accuracy is what this experiment compares: 5 evaluations per run, not 40
    eval_every = max(1, round(PAPER_ITERS * args.budget) // 5)
    specs = []
    for n in counts:
        for mode, options in modes.items():
            for seed in range(args.seeds):
                n_train = n * len(target) if n else None
                cfg = experiments.budget_config(
                    args.model,
                    args.data,
                    args.budget,
                    seed,
                    args.device,
                    workers=args.workers,
                    classes=target,
                    per_class=n,
                    val_split=per_val * len(target),
                    batch_size=min(128, n_train) if n_train else 128,
                    eval_every=eval_every,
                    **options,
                )
                tag = mode.split()[-1] if mode != "from scratch" else "scratch"
                name = f"{tag}-n{n or 'all'}-s{seed}"
                specs.append(
                    experiments.RunSpec(name, cfg, {"mode": mode, "labels": n, "seed": seed})
                )
    return specs


def _transfer(args: argparse.Namespace) -> int:
    """Does a network pretrained on some classes help on others when labels are scarce?"""
    out = _check(args)
    data = load_dataset(args.data, progress=not args.no_progress)
    names = list(data.classes)
    source = args.source.split(",") if args.source else names[: len(names) // 2]
    target = [c for c in names if c not in source]
    if not target:
        raise ConfigError(f"--source {args.source}: leaves no class to transfer to")
    counts = _ints(args.labels.replace("all", "0"), "labels")
    per_val = args.val_per_class
    pretrain = experiments.budget_config(
        args.model,
        args.data,
        args.pretrain_budget,
        0,
        args.device,
        workers=args.workers,
        classes=source,
        val_split=per_val * len(source),
    )
    started = time.perf_counter()
    (pretrained,), _ = _run(
        args, out, [experiments.RunSpec("pretrain", pretrain, {"mode": "pretrain"})]
    )
    pretrained_dir = str(Path(pretrained["run_dir"]).resolve())
    modes = {
        "from scratch": {},
        "linear probe": {"init": pretrained_dir, "freeze": "backbone", "freeze_bn": True},
        "fine-tuned": {"init": pretrained_dir},
    }
    records, _ = _run(args, out, _transfer_specs(args, target, counts, modes, per_val))
    wall = time.perf_counter() - started
    full = min(np.bincount(data.labels)[[names.index(c) for c in target]]) - per_val
    sections, curves = tables.transfer_sections(
        model=args.model,
        source=source,
        target=target,
        per_val=per_val,
        pretrain_acc=1 - pretrained["final_val_err"],
        pretrain_budget=args.pretrain_budget,
        budget=args.budget,
        modes=list(modes),
        counts=counts,
        records=records,
        full=full,
        seeds=args.seeds,
    )
    plot_label_curves(
        curves,
        out / "transfer.png",
        title=f"{args.model}: {len(target)} new classes, pretrained on {len(source)} others",
    )
    write_csv(
        out / "transfer.csv",
        [
            {
                "mode": r["mode"],
                "labels_per_class": r["labels"],
                "seed": r["seed"],
                "val_acc": 1 - r["final_val_err"],
                "train_time": r["train_time"],
            }
            for r in records
        ],
    )
    path = _finish(
        out, "Transfer learning with few labels", args, sections, wall, [pretrained, *records]
    )
    print(f"results: {path}")
    return 0


# ---------------------------------------------------------------------------------------------
# analyze


def _responses(args: argparse.Namespace) -> int:
    out = _check(args)
    depths = _ints(args.depths, "depths")
    # every seed of the degradation runs: claim (e) is tested paired by seed
    specs = [
        _spec(f"{kind}{d}", s, args)
        for kind in ("plain", "resnet")
        for d in depths
        for s in range(_seeds_at(args, d))
    ]
    records, _ = _run(args, out, specs)
    started = time.perf_counter()
    rows, curves = experiments.response_curves(specs, _runs_root(args, out))
    write_csv(out / "responses.csv", rows)
    first = {model: curve for (model, seed), curve in curves.items() if seed == 0}
    plot_responses(first, out / "responses.png")  # the figure: seed 0, as the paper shows one
    means: dict[str, dict[int, float]] = {}
    for (model, seed), (layer_order, _) in curves.items():
        means.setdefault(model, {})[seed] = float(np.mean(layer_order))
    verdict = response_verdict(means, sorted(depths))
    sections = tables.responses_sections(first, verdict)
    write_verdicts(out, [verdict])
    wall = time.perf_counter() - started
    path = _finish(out, "Layer response statistics", args, sections, wall, records)
    print(f"results: {path}")
    return 0


def _gradients(args: argparse.Namespace) -> int:
    out = _check(args)
    depths = _ints(args.depths, "depths")
    started = time.perf_counter()
    found = experiments.gradients_at_init(args.data, args.budget, args.device, depths)
    # during training (BN nets, the paper's recipe at this budget): norms at a few iterations
    specs = [
        experiments.RunSpec(
            f"grad-{kind}{d}",
            experiments.budget_config(
                f"{kind}{d}", args.data, args.budget, 0, args.device, workers=args.workers
            ),
            {},
        )
        for kind in ("plain", "resnet")
        for d in depths
    ]
    experiments.gradients_in_training(found, specs, _runs_root(args, out), not args.no_progress)
    wall = time.perf_counter() - started
    write_csv(out / "gradients.csv", found.rows)
    write_csv(out / "shattered.csv", found.shattered)
    plot_gradients(found.init_curves, found.train_curves, out / "gradients.png")
    sections = tables.gradients_sections(found.init_curves, found.shattered, depths)
    path = _finish(out, "Gradient flow in plain and residual networks", args, sections, wall)
    print(f"results: {path}")
    return 0


def _paper(args: argparse.Namespace) -> int:
    """The paper's CIFAR result in one resumable queue: the runs behind Table 6 (cifar-table),
    Fig. 6 (degradation) and Fig. 7 (responses), trained in the order that decides the claims
    soonest, shared by any number of worker processes (start the same command several times),
    then the three reports once every run has finished."""
    if min(args.seeds, args.table_seeds, args.seeds_110) < 1:
        raise ConfigError("--seeds, --table-seeds and --seeds-110 must be >= 1")
    started = time.perf_counter()
    root = Path(args.runs_from or Path(args.out) / "runs-store")
    names = experiments.paper_queue(args.seeds, args.table_seeds, args.plain_32_44, args.seeds_110)
    specs = []
    for name in names:
        model, seed = name.rsplit("-s", 1)
        specs.append(_spec(model, int(seed), args))
    if args.report_only:  # train nothing: report if every run has finished
        runs = root / "runs"
        done, total = sum((runs / s.name / "summary.json").is_file() for s in specs), len(specs)
    else:
        done, total = experiments.run_queue(specs, root, progress=not args.no_progress)
    if done < total and args.report_only:
        print(f"{done}/{total} runs finished: no report yet", file=sys.stderr)
        return 1
    if done < total:
        print(f"{done}/{total} runs finished; the rest are held by other workers", file=sys.stderr)
        return 0
    if args.train_only:
        print(f"{done}/{total} runs finished", file=sys.stderr)
        return 0
    plain = "20,32,44,56" if args.plain_32_44 else "20,56"
    reports = [
        (_cifar_table, "cifar-table", {"depths": "20,32,44,56,110", "with_1202": False}),
        (_degradation, "degradation", {"depths": plain}),
        (_responses, "responses", {"depths": "20,56"}),
    ]
    per_depth = {
        20: args.seeds,
        56: args.seeds,
        32: args.table_seeds,
        44: args.table_seeds,
        110: args.seeds_110,
    }
    for fn, folder, extra in reports:
        sub = argparse.Namespace(**{**vars(args), **extra, "depth_seeds": per_depth})
        sub.fn, sub.out, sub.runs_from = fn, str(Path(args.out) / folder), str(root)
        fn(sub)
    # one page of every claim, (a)-(e), copied from the verdicts the three reports computed
    out = Path(args.out)
    found = [(folder, read_verdicts(out / folder / "verdicts.json")) for _, folder, _ in reports]
    records = experiments.run_all(specs, root, progress=False, echo=False)  # finished: read only
    seeds = group(records, lambda r: r["model"])
    sections = [
        *summary_section(found),
        "",
        "Runs behind it: "
        + ", ".join(
            f"{name} ({len(runs)} seed{'s' * (len(runs) > 1)})" for name, runs in seeds.items()
        )
        + ".",
        "",
        # claims (a)-(d) where no budget cuts the schedule: the zoo's weights trained on this data
        *whole_schedule.table6_section(
            whole_schedule.score_zoo(args.data, data_fingerprints(args.data)),
            Path(args.zoo_runs) if args.zoo_runs else None,
        ),
    ]
    title = "The paper's result: deeper residual nets against deeper plain nets"
    path = _finish(out, title, args, sections, time.perf_counter() - started, records)
    print(f"summary: {path}")
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
        try:
            judged[folder] = rejudge(results / folder)
        except (OSError, ValueError) as e:
            raise ConfigError(str(e)) from e
    found = [(folder, verdicts) for folder, (verdicts, _) in judged.items()]
    text = summary.read_text()
    zoo_runs = Path(args.zoo_runs) if args.zoo_runs else None
    whole = whole_schedule.table6_section(
        whole_schedule.score_zoo(args.data, data_fingerprints(args.data)), zoo_runs
    )
    claims = summary_section(found)
    try:
        text = replace_block(text, CLAIMS_BEGIN, CLAIMS_END, claims[claims.index(CLAIMS_BEGIN) :])
        text = replace_block(text, whole_schedule.BEGIN, whole_schedule.END, whole)
    except ValueError as e:
        raise ConfigError(f"{summary}: {e}") from e
    for folder, (verdicts, page) in judged.items():
        write_rejudged(results / folder, verdicts, page)
    atomic_write_text(summary, text)
    for folder, verdicts in found:
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
    p.set_defaults(fn=_degradation)
    p = rsub.add_parser("cifar-table", help="ResNet-20/32/44/56/110 beside the paper's Table 6")
    _common(p, "results/cifar-table")
    p.add_argument("--depths", default="20,32,44,56,110", help="comma-separated 6n+2 depths")
    p.add_argument("--with-1202", action="store_true", help="also ResNet-1202")
    p.set_defaults(fn=_cifar_table)
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
    p.set_defaults(fn=_transfer)
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
    p.set_defaults(fn=_shortcuts)
    p = rsub.add_parser(
        "sum-vs-concat", help="additive against concatenating shortcuts at matched parameters"
    )
    _common(p, "results/sum-vs-concat")
    p.add_argument("--depth", type=int, default=20, help="6n+2 layers (20, 32, 56, 110)")
    p.set_defaults(fn=_sum_vs_concat)
    p = rsub.add_parser("preact", help="original against pre-activation units (depth 110)")
    _common(p, "results/preact")
    p.add_argument("--with-164", action="store_true", help="also the bottleneck ResNet-164")
    p.add_argument("--with-1001", action="store_true", help="also ResNet-1001 (slow)")
    p.set_defaults(fn=_preact)

    ap = sub.add_parser(
        "analyze", help="layer responses (Fig. 7), gradient flow, the detection claim, verdicts"
    )
    asub = ap.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    p = asub.add_parser("responses", help="std of every 3x3 layer's response (Fig. 7)")
    _common(p, "results/responses")
    p.add_argument("--depths", default="20,56", help="comma-separated 6n+2 depths")
    p.set_defaults(fn=_responses)
    p = asub.add_parser(
        "gradients", help="per-layer gradient norms and shattered gradients, plain vs residual"
    )
    _common(p, "results/gradients")
    p.add_argument("--depths", default="20,56", help="comma-separated 6n+2 depths")
    p.set_defaults(fn=_gradients)
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
