"""Fig. 6: plain against residual networks of two depths (the degradation problem), and
claims (a)-(c): deeper plain nets train and validate worse, deeper ResNets validate better,
and the deeper ResNet beats its plain twin. ``resnets reproduce degradation``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ...plots import plot_panels
from ..claims import judged, lower_val_error, paired, runs_missing, spreads, tested
from ..paper_numbers import PAPER_TABLE6
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import report_depths, run_table_from_csv
from ..reports import (
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


def plain_and_residual(s: Settings) -> list[RunSpec]:
    return [
        s.spec(f"{kind}{d}", seed)
        for kind in ("plain", "resnet")
        for d in s["depths"]
        for seed in range(s.seeds_at(d))
    ]


def _degradation_report(s: Settings, records: Records) -> Report:
    depths = s["depths"]
    groups = group(records, lambda r: r["model"])
    panels = [
        (title, {f"{kind}-{d}": mean_curve(groups[f"{kind}{d}"]) for d in depths})
        for kind, title in (("plain", "plain networks"), ("resnet", "ResNets"))
    ]
    plot_panels(panels, s.out / "degradation.png")
    table = run_table(records)
    verdicts = judge_page(
        s.out,
        seeds_of(table),
        lambda looks: degradation_verdicts(table, min(depths), max(depths), looks),
    )
    per_run_csv(s.out, records)
    return Report(
        "Plain vs residual networks: the degradation problem",
        degradation_sections(groups, depths, verdicts),
    )


def degradation_sections(
    groups: dict[str, Records], depths: list[int], verdicts: Sequence[Verdict]
) -> list[str]:
    """Fig. 6: final errors of plain and residual nets per depth, and claims (a)-(c)
    (``verdicts``, from :func:`degradation_verdicts`)."""
    table = [
        "| network | depth | params | final training error (%) | final validation error (%) | train time (min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in ("plain", "resnet"):
        for depth in depths:
            runs = groups[f"{kind}{depth}"]
            train_mean, train_std = mean_std([r["final_train_err"] for r in runs])
            val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
            table.append(
                f"| {kind}-{depth} | {depth} | {runs[0]['params']:,} | "
                f"{fmt_pct(train_mean, train_std, len(runs))} | "
                f"{fmt_pct(val_mean, val_std, len(runs))} | {train_minutes(runs)} |"
            )
    return [
        "## Degradation (paper Fig. 6)",
        "",
        "![degradation](degradation.png)",
        "",
        "Dashed: training error (on augmented batches, averaged between evaluations); bold: "
        "validation error. Curves are the mean over seeds.",
        "",
        *table,
        "",
        *verdict_block(verdicts),
        "",
        "The paper (Fig. 6, CIFAR-10): plain-56 has higher training *and* test error than "
        f"plain-20, while ResNet-56 is better than ResNet-20 (test error "
        f"{PAPER_TABLE6['resnet56'][0]}% vs {PAPER_TABLE6['resnet20'][0]}%, Table 6).",
    ]


def degradation_verdicts(
    table: RunTable, shallow: int = 20, deep: int = 56, looks: int = 1
) -> list[Verdict]:
    """Claims (a)-(c) of Fig. 6 and Table 6 from a table with plain and residual runs, each
    decided by the difference paired by seed; the page's tests are one family (Holm) tested
    at 5% / ``looks``."""
    return judged(lambda fam: _degradation(table, shallow, deep, fam), "degradation", looks)


def _degradation(table: RunTable, shallow: int, deep: int, family: Family) -> list[Verdict]:
    p_lo, p_hi, r_lo, r_hi = (
        f"plain{shallow}",
        f"plain{deep}",
        f"resnet{shallow}",
        f"resnet{deep}",
    )
    out = []
    claim = f"plain-{deep} has higher training and validation error than plain-{shallow}"
    if not (table.get(p_lo) and table.get(p_hi)):
        out.append(runs_missing("(a)", claim, p_lo, p_hi))
    else:
        (lo_t, lo_v), (hi_t, hi_v) = spreads(table, p_lo), spreads(table, p_hi)
        train = paired(table, p_lo, p_hi, "train_err")
        val = paired(table, p_lo, p_hi, "val_err")
        out.append(
            Verdict(
                "(a)",
                claim,
                combine([family.outcome(train), family.outcome(val)]),
                f"training: {p_hi} {hi_t.pct()} against {p_lo} {lo_t.pct()}, paired difference "
                f"{tested(train, family)}; validation: {p_hi} {hi_v.pct()} against {p_lo} "
                f"{lo_v.pct()}, paired difference {tested(val, family)}",
            )
        )
    for label, claim, better, worse in (
        ("(b)", f"ResNet-{deep} has lower validation error than ResNet-{shallow}", r_hi, r_lo),
        ("(c)", f"ResNet-{deep} has lower validation error than plain-{deep}", r_hi, p_hi),
    ):
        out.append(lower_val_error(table, label, claim, better, worse, family))
    return out


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    table = run_table_from_csv(folder / "runs.csv")
    depths, seeds = report_depths(folder), seeds_of(table)
    return degradation_verdicts(table, min(depths), max(depths), looks(seeds)), seeds


register_experiment(
    Experiment(
        "degradation",
        "plain vs residual training curves (Fig. 6)",
        runs=plain_and_residual,
        report=_degradation_report,
        defaults={"depths": [20, 56]},
        option_help={"depths": "comma-separated 6n+2 depths"},
        rejudge=_rejudge,
    )
)
