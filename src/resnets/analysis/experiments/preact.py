"""Original against pre-activation residual units (He et al. 2016, "Identity Mappings",
Table 3) per depth, beside that paper's errors. ``resnets reproduce preact``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ...plots import plot_panels
from ..claims import judged, paired, runs_missing, spreads, tested
from ..paper_numbers import PAPER_PREACT
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import report_args, run_table_from_csv
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
    verdict_block,
)
from ..runs import RunSpec
from ..stats import Family


def _preact_pairs(s: Settings) -> list[tuple[int, str, str]]:
    depths = [110] + ([164] if s["with_164"] else []) + ([1001] if s["with_1001"] else [])
    return [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]


def _preact_runs(s: Settings) -> list[RunSpec]:
    return [
        s.spec(model, seed)
        for _d, a, b in _preact_pairs(s)
        for model in (a, b)
        for seed in range(s.seeds)
    ]


def _preact_report(s: Settings, records: Records) -> Report:
    pairs = _preact_pairs(s)
    groups = group(records, lambda r: r["model"])
    plot_panels(
        [
            ("original units", {f"ResNet-{d}": mean_curve(groups[a]) for d, a, _b in pairs}),
            ("pre-activation units", {f"ResNet-{d}": mean_curve(groups[b]) for d, _a, b in pairs}),
        ],
        s.out / "curves.png",
    )
    per_run_csv(s.out, records)
    table = run_table(records)
    verdicts = judge_page(
        s.out, seeds_of(table), lambda looks: preact_verdicts(table, pairs, looks)
    )
    return Report("Pre-activation residual units", preact_sections(pairs, groups, verdicts))


def preact_sections(
    pairs: list[tuple[int, str, str]], groups: dict[str, Records], verdicts: Sequence[Verdict]
) -> list[str]:
    """Original against pre-activation units per depth, beside the paper's errors, and the
    ordering judged per depth (``verdicts``, from :func:`preact_verdicts`)."""
    table = [
        "| depth | unit | params | final training error (%) | final val error (%) | "
        "paper, CIFAR-10 test error (%) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for depth, original, preact in pairs:
        for model, unit, paper in (
            (original, "original", PAPER_PREACT[depth][0]),
            (preact, "pre-activation", PAPER_PREACT[depth][1]),
        ):
            runs = groups[model]
            train_mean, train_std = mean_std([r["final_train_err"] for r in runs])
            val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
            table.append(
                f"| {depth} | {unit} | {runs[0]['params']:,} | "
                f"{fmt_pct(train_mean, train_std, len(runs))} | "
                f"{fmt_pct(val_mean, val_std, len(runs))} | {paper:.2f} |"
            )
    gain_110 = PAPER_PREACT[110][0] - PAPER_PREACT[110][1]
    gain_1001 = PAPER_PREACT[1001][0] - PAPER_PREACT[1001][1]
    return [
        "## Original against pre-activation residual units (Identity Mappings, Table 3)",
        "",
        "![curves](curves.png)",
        "",
        *table,
        "",
        *verdict_block(verdicts),
        "",
        "The paper (Identity Mappings, Table 3, CIFAR-10 test error): "
        + "; ".join(
            f"depth {d}: pre-activation {PAPER_PREACT[d][1]} against original {PAPER_PREACT[d][0]}"
            for d, _, _ in pairs
        )
        + ".",
        "",
        "Original units: conv-BN-ReLU, conv-BN, addition, ReLU (He et al. 2015). Pre-activation "
        "units: BN-ReLU-conv twice (three times in the bottleneck of 164/1001), addition, nothing "
        f"after it. The paper's gain grows with depth ({gain_110:.2f} points at 110, "
        f"{gain_1001:.2f} at 1001).",
    ]


def preact_verdicts(
    table: RunTable, pairs: Sequence[tuple[int, str, str]], looks: int = 1
) -> list[Verdict]:
    """Identity Mappings' Table 3 ordering per depth: pre-activation units reach a lower
    validation error than the original ones, paired by seed; the depths' tests are one family
    (Holm) at 5% / ``looks``. ``pairs``: (depth, original model, pre-activation model)."""

    def build(family: Family) -> list[Verdict]:
        out = []
        for depth, original, preact in pairs:
            claim = f"pre-activation units beat the original ones at depth {depth}"
            if not (table.get(original) and table.get(preact)):
                out.append(runs_missing(f"(preact-{depth})", claim, original, preact))
                continue
            (_, o_v), (_, p_v) = spreads(table, original), spreads(table, preact)
            test = paired(table, preact, original, "val_err")
            out.append(
                Verdict(
                    f"(preact-{depth})",
                    claim,
                    family.outcome(test),
                    f"validation: pre-activation {p_v.pct()} against original {o_v.pct()}; "
                    f"original minus pre-activation, paired by seed: {tested(test, family)}",
                )
            )
        return out

    return judged(build, "preact", looks)


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    table = run_table_from_csv(folder / "runs.csv")
    args = report_args(folder)
    depths = [110] + [164] * bool(args.get("with_164")) + [1001] * bool(args.get("with_1001"))
    pairs = [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]
    seeds = seeds_of(table)
    return preact_verdicts(table, pairs, looks(seeds)), seeds


register_experiment(
    Experiment(
        "preact",
        "original against pre-activation units (depth 110)",
        runs=_preact_runs,
        report=_preact_report,
        defaults={"with_164": False, "with_1001": False},
        option_help={
            "with_164": "also the bottleneck ResNet-164",
            "with_1001": "also ResNet-1001 (slow)",
        },
        rejudge=_rejudge,
    )
)
