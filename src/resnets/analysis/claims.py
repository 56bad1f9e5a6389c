"""What every claim's verdict is built from: a model's runs by seed, a paired test between two
models of a run table (``RunTable``: model -> its runs' final errors, one
:class:`~resnets.analysis.reports.RunFinal` per seed), the test's numbers with its place in
the page's family, and a page's verdicts judged together by
:class:`~resnets.analysis.stats.Family` (Holm over the page at 5% / looks). Each claim itself
is written once, in its experiment's file (:mod:`resnets.analysis.experiments`), and used both
by the report that trains the runs and by the report judged again from its CSV files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .reports import RunTable, Spread, Verdict
from .stats import Family, PairedBySeed, judge_family, paired_by_seed


def by_seed(table: RunTable, model: str, field: str) -> dict[int, float]:
    """``model``'s ``field`` (``train_err`` or ``val_err``) by seed."""
    return {r.seed: getattr(r, field) for r in table.get(model, ())}


def spreads(table: RunTable, model: str) -> tuple[Spread, Spread]:
    """``model``'s training and validation errors over its seeds."""
    runs = table.get(model, ())
    return Spread.of([r.train_err for r in runs]), Spread.of([r.val_err for r in runs])


def runs_missing(label: str, claim: str, *models: str) -> Verdict:
    """The verdict of a claim whose runs are not all there: "not decided (runs missing)"."""
    return Verdict(label, claim, "missing", "needs " + ", ".join(models))


def paired(table: RunTable, better: str, worse: str, field: str) -> PairedBySeed:
    """The test of "``better`` has the lower ``field``" over the seeds both models have."""
    return paired_by_seed(by_seed(table, better, field), by_seed(table, worse, field))


def tested(test: PairedBySeed, family: Family, scale: float = 100.0, unit: str = " points") -> str:
    """A paired test's numbers with its place in the page's family: the raw p-value, the
    Holm-adjusted one and, when left undecided, the seeds that would give 80% power."""
    note = family.note(test)
    return test.text(scale, unit) + (f"; {note}" if note else "")


def judged(build: Callable[[Family], list[Verdict]], family: str, looks: int) -> list[Verdict]:
    """A page's verdicts decided by Holm over all its tests, each carrying the sentence that
    says how."""

    def described(fam: Family) -> list[Verdict]:
        verdicts = build(fam)
        return [replace(v, family=fam.describe()) for v in verdicts] if fam.gathered else verdicts

    return judge_family(described, family, looks)


def lower_val_error(
    table: RunTable,
    label: str,
    claim: str,
    better: str,
    worse: str,
    family: Family,
    kind: str = "",
) -> Verdict:
    """The claim "``better`` has the lower validation error than ``worse``", paired by seed;
    ``kind`` names what the keys are in the evidence ("option " for shortcut options)."""
    if not (table.get(better) and table.get(worse)):
        return runs_missing(label, claim, better, worse)
    (_, b_v), (_, w_v) = spreads(table, better), spreads(table, worse)
    test = paired(table, better, worse, "val_err")
    return Verdict(
        label,
        claim,
        family.outcome(test),
        f"validation: {kind}{better} {b_v.pct()} against {kind}{worse} {w_v.pct()}; {worse} "
        f"minus {better}, paired by seed: {tested(test, family)}",
    )
