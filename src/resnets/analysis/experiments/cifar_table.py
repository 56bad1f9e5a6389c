"""Table 6: CIFAR-10 ResNets of increasing depth beside the paper's errors, and claim (d):
validation error falls with each step in depth. ``resnets reproduce cifar-table``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from ...plots import plot_curves
from ..claims import judged, paired, runs_missing, spreads, tested
from ..paper_numbers import PAPER_RESNET110_MEAN_STD, PAPER_TABLE6
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import report_depths, run_table_from_csv
from ..reports import (
    WORDS,
    RunTable,
    Seeds,
    Verdict,
    fmt_pct,
    group,
    judge_page,
    mean_curve,
    mean_std,
    per_run_csv,
    run_table,
    seeds_of,
    train_minutes,
    verdict_block,
)
from ..runs import RunSpec
from ..stats import Family, combine


def _cifar_table_depths(s: Settings) -> list[int]:
    return list(s["depths"]) + ([1202] if s["with_1202"] else [])


def _cifar_table_runs(s: Settings) -> list[RunSpec]:
    return [
        s.spec(f"resnet{d}", seed) for d in _cifar_table_depths(s) for seed in range(s.seeds_at(d))
    ]


def _cifar_table_report(s: Settings, records: Records) -> Report:
    depths = _cifar_table_depths(s)
    groups = group(records, lambda r: r["model"])
    plot_curves(
        {f"ResNet-{d}": mean_curve(groups[f"resnet{d}"]) for d in depths},
        s.out / "curves.png",
        title="CIFAR ResNets (mean over seeds)",
    )
    table = run_table(records)
    (verdict,) = judge_page(
        s.out, seeds_of(table), lambda looks: [ordering_verdict(table, depths, looks=looks)]
    )
    per_run_csv(s.out, records)
    return Report(
        "CIFAR-10 ResNets of increasing depth",
        cifar_table_sections(groups, depths, verdict),
    )


def cifar_table_sections(
    groups: dict[str, Records], depths: list[int], verdict: Verdict
) -> list[str]:
    """Table 6: each depth's validation error beside the paper's, and claim (d) (``verdict``,
    from :func:`ordering_verdict`)."""
    table = [
        "| model | params | paper error (%) | ours: validation error (%) | ours - paper | within paper spread | train time (min) |",
        "| --- | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    spread = PAPER_RESNET110_MEAN_STD[1]  # the one spread the paper reports (ResNet-110, 5 runs)
    for depth in depths:
        runs = groups[f"resnet{depth}"]
        val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
        paper, paper_params = PAPER_TABLE6.get(f"resnet{depth}", (math.nan, "-"))
        diff = 100 * val_mean - paper
        within = "yes" if abs(diff) <= 2 * spread else "no"
        table.append(
            f"| ResNet-{depth} | {runs[0]['params']:,} ({paper_params}) | {paper:.2f} | "
            f"{fmt_pct(val_mean, val_std, len(runs))} | {diff:+.2f} | {within} | "
            f"{train_minutes(runs)} |"
        )
    return [
        "## CIFAR-10 depth table (paper Table 6)",
        "",
        *table,
        "",
        f'"Within paper spread": |ours - paper| <= 2 x {spread} points, the standard deviation '
        f"the paper reports for ResNet-110 over 5 runs ({PAPER_RESNET110_MEAN_STD[0]} ± {spread}).",
        "",
        *verdict_block([verdict]),
        "",
        "![curves](curves.png)",
    ]


def ordering_verdict(
    table: RunTable, depths: Sequence[int], label: str = "(d)", looks: int = 1
) -> Verdict:
    """Claim (d): validation error falls with depth, ResNet-20 > 32 > 44 > 56 > 110. Each
    neighbouring step is tested paired by seed, the steps corrected together (Holm) at 5% /
    ``looks``; the claim holds when every step does."""
    return judged(lambda fam: [_ordering(table, depths, label, fam)], "cifar-table", looks)[0]


def _ordering(table: RunTable, depths: Sequence[int], label: str, family: Family) -> Verdict:
    models = [f"resnet{d}" for d in depths]
    claim = "the ordering " + " > ".join(str(d) for d in depths) + " in validation error"
    have = [m for m in models if table.get(m)]
    if len(have) < 2 or len(have) < len(models):
        return runs_missing(label, claim, *(m for m in models if m not in have))
    vals = [spreads(table, m)[1] for m in models]
    steps = [
        (a, b, paired(table, f"resnet{b}", f"resnet{a}", "val_err"))
        for a, b in zip(depths, depths[1:])
    ]
    outcomes = [family.outcome(test) for _, _, test in steps]
    evidence = "; ".join(f"ResNet-{d} {v.pct()}" for d, v in zip(depths, vals))
    evidence += "; each step, the shallower minus the deeper, paired by seed: " + "; ".join(
        f"{a}->{b} {tested(test, family)} ({WORDS[outcome]})"
        for (a, b, test), outcome in zip(steps, outcomes)
    )
    return Verdict(label, claim, combine(outcomes), evidence)


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    table = run_table_from_csv(folder / "runs.csv")
    depths, seeds = report_depths(folder), seeds_of(table)
    return [ordering_verdict(table, depths, looks=looks(seeds))], seeds


register_experiment(
    Experiment(
        "cifar-table",
        "ResNet-20/32/44/56/110 beside the paper's Table 6",
        runs=_cifar_table_runs,
        report=_cifar_table_report,
        defaults={"depths": [20, 32, 44, 56, 110], "with_1202": False},
        option_help={"depths": "comma-separated 6n+2 depths", "with_1202": "also ResNet-1202"},
        rejudge=_rejudge,
    )
)
