"""Table 3: shortcut options A (zero-padding), B (projections where the shape changes) and C
(projections everywhere) on one network, against its plain twin, and claims (g)-(i).
``resnets reproduce shortcuts``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..claims import judged, lower_val_error, paired, runs_missing, tested
from ..paper_numbers import PAPER_TABLE3
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import run_table_from_csv
from ..reports import (
    WORDS,
    RunTable,
    Seeds,
    Verdict,
    fmt_pct,
    group,
    judge_page,
    mean_std,
    per_run_csv,
    run_table,
    seeds_of,
    verdict_block,
)
from ..runs import RunSpec
from ..stats import Family, combine


def _shortcuts_runs(s: Settings) -> list[RunSpec]:
    model = s["model"]
    specs = [
        s.spec(model, seed, tag=f"-{option}", shortcut=option)
        for option in ("A", "B", "C")
        for seed in range(s.seeds)
    ]
    return specs + [s.spec(model.replace("resnet", "plain"), seed) for seed in range(s.seeds)]


def _shortcuts_report(s: Settings, records: Records) -> Report:
    groups = group(records, lambda r: (r["model"], r["tag"]))
    # the verdicts' table is keyed by option ("A", "B", "C") and "plain" for the twin
    by_option = run_table([{**r, "model": r["tag"].strip("-") or "plain"} for r in records])
    verdicts = judge_page(
        s.out, seeds_of(by_option), lambda looks: shortcut_verdicts(by_option, looks=looks)
    )
    per_run_csv(s.out, records)
    return Report(f"Shortcut options on {s['model']}", shortcuts_sections(groups, verdicts))


def shortcuts_sections(
    groups: dict[tuple[str, str], Records], verdicts: Sequence[Verdict]
) -> list[str]:
    """Table 3's comparison of shortcut options A, B, C (and the plain twin) on one net, with
    the paper's claims judged (:func:`shortcut_verdicts`)."""
    table = [
        "| network | shortcut | params | final training error (%) | final validation error (%) |",
        "| --- | :---: | ---: | ---: | ---: |",
    ]
    for (model, tag), runs in groups.items():
        train_mean, train_std = mean_std([r["final_train_err"] for r in runs])
        val_mean, val_std = mean_std([r["final_val_err"] for r in runs])
        table.append(
            f"| {model} | {tag.strip('-') or 'none'} | {runs[0]['params']:,} | "
            f"{fmt_pct(train_mean, train_std, len(runs))} | {fmt_pct(val_mean, val_std, len(runs))} |"
        )
    return [
        "## Shortcut options A, B, C (paper Table 3)",
        "",
        *table,
        "",
        "The paper's comparison is on ImageNet with 34-layer nets (top-1 10-crop error %): "
        + ", ".join(f"{k} {v}" for k, v in PAPER_TABLE3.items())
        + ": all three far better than plain, and B slightly better than A, C marginally better "
        "than B. The paper concludes projections are not essential.",
        "",
        *verdict_block(verdicts),
    ]


def shortcut_verdicts(table: RunTable, plain: str = "plain", looks: int = 1) -> list[Verdict]:
    """Table 3's claims from runs keyed by shortcut option (``"A"``, ``"B"``, ``"C"``) and by
    ``plain`` (the twin without shortcuts), each decided by the validation error paired by seed,
    the page's tests corrected together (Holm) at 5% / ``looks``: (g) every option beats the
    plain net, (h) projections where the shape changes (B) beat zero-padding (A), (i)
    projections everywhere (C) beat B. The paper finds (h) and (i) small (0.51 and 0.33 points
    on ImageNet) and concludes projections are not essential."""
    return judged(lambda fam: _shortcuts(table, plain, fam), "shortcuts", looks)


def _shortcuts(table: RunTable, plain: str, family: Family) -> list[Verdict]:
    out = []
    claim = "shortcut options A, B and C each have lower validation error than the plain net"
    missing = [m for m in ("A", "B", "C", plain) if not table.get(m)]
    if missing:
        out.append(runs_missing("(g)", claim, *missing))
    else:
        tests = [(o, paired(table, o, plain, "val_err")) for o in ("A", "B", "C")]
        outcomes = [family.outcome(test) for _, test in tests]
        evidence = "; ".join(
            f"{plain} minus option {o}, paired by seed: {tested(test, family)} ({WORDS[outcome]})"
            for (o, test), outcome in zip(tests, outcomes)
        )
        out.append(Verdict("(g)", claim, combine(outcomes), evidence))
    for label, claim, better, worse in (
        (
            "(h)",
            "option B (projections where the shape changes) beats option A (zero-padding)",
            "B",
            "A",
        ),
        ("(i)", "option C (projections everywhere) beats option B", "C", "B"),
    ):
        out.append(lower_val_error(table, label, claim, better, worse, family, kind="option "))
    return out


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    table = run_table_from_csv(folder / "runs.csv", key="tag")
    table = {tag.strip("-") or "plain": runs for tag, runs in table.items()}
    seeds = seeds_of(table)
    return shortcut_verdicts(table, looks=looks(seeds)), seeds


register_experiment(
    Experiment(
        "shortcuts",
        "shortcut options A, B, C on one network (Table 3)",
        runs=_shortcuts_runs,
        report=_shortcuts_report,
        defaults={"model": "resnet20"},
        option_help={"model": "CIFAR ResNet whose options A, B, C are compared"},
        rejudge=_rejudge,
    )
)
