"""The paper's claims, decided by statistics: each verdict is computed from a table of runs.

A run table maps a model name (``"plain56"``, ``"resnet20"``) to its runs' final errors, one
:class:`RunFinal` per seed. Each claim of the paper becomes a :class:`Verdict` with one of three
outcomes from :mod:`resnets.analysis.stats`: the difference paired by seed (same seed, same
held-out split) and its 95% t interval, or, for two sets of weights scored on the same images,
the exact McNemar test. "holds" when the test puts the difference on the paper's side,
"contradicted" when on the other side, "not decided at this budget" otherwise. No verdict is
ever typed by hand: RESULTS.md prints :meth:`Verdict.line`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy
import torch

from .. import __version__
from ..io import atomic_write_text, relative_paths
from ..models.weights import WeightsMeta
from ..runtime import cpu_name, machine_label
from .paper import PAPER_ITERS
from .stats import Family, PairedBySeed, combine, judge_family, paired_by_seed

JPEG_NOTE = (
    "The shared CIFAR-10 images are JPEG (quality ~75, 4:2:0 chroma), which loses detail: errors "
    "measured on them sit somewhat above figures for the original lossless arrays. Validation is "
    "the 5k split held out of the 50k training images (the paper's Table 6 uses the 10k test set)."
)


@dataclass(frozen=True)
class RunFinal:
    """One run's end: training error (on its augmented batches) and validation error, 0..1,
    and its seed (the pairing key: one seed is one held-out split and one initialisation)."""

    train_err: float
    val_err: float
    seed: int = 0


@dataclass(frozen=True)
class Spread:
    """Mean and standard deviation over seeds (std 0 for one seed)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        xs = [v for v in values if v is not None and math.isfinite(v)]
        if not xs:
            return cls(math.nan, math.nan, 0)
        return cls(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs))

    def pct(self) -> str:
        """``12.34 ± 0.56%`` (over n seeds), or ``12.34%`` for one."""
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{100 * self.mean:.2f}% (1 seed)"
        return f"{100 * self.mean:.2f} ± {100 * self.std:.2f}% ({self.n} seeds)"


#: what each outcome reads as in a report; "missing" is a claim whose runs are not there yet
WORDS = {
    "holds": "holds",
    "contradicted": "contradicted",
    "not decided": "not decided at this budget",
    "missing": "not decided (runs missing)",
}


@dataclass(frozen=True)
class Verdict:
    """One claim of the paper against our numbers, decided by a test."""

    label: str  # "(a)"
    claim: str  # what the paper says
    outcome: str  # "holds", "contradicted", "not decided" or "missing"
    evidence: str  # the numbers behind it and the test's result
    family: str = ""  # how the page's tests were corrected together (stats.Family.describe)

    def __post_init__(self) -> None:
        if self.outcome not in WORDS:
            raise ValueError(f"verdict outcome {self.outcome!r}: one of {', '.join(WORDS)}")

    def word(self) -> str:
        return WORDS[self.outcome]

    def line(self) -> str:
        return f"- {self.label} {self.claim}: **{self.word()}**. {self.evidence}."

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.word()}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Verdict:
        return cls(
            record["label"],
            record["claim"],
            record["outcome"],
            record["evidence"],
            str(record.get("family", "")),
        )


#: what a look is keyed by: each model (or variant) and the seeds its runs had then
Seeds = Mapping[str, Sequence[int]]


def seeds_of(table: RunTable) -> dict[str, list[int]]:
    """The seeds each model of a run table has: what one look at its data saw."""
    return {model: sorted(r.seed for r in runs) for model, runs in sorted(table.items())}


def _read_verdicts_file(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
        if isinstance(record, list):  # written before looks were recorded: one unknown look
            record = {"verdicts": record, "looks": []}
        if not isinstance(record.get("verdicts"), list) or not isinstance(
            record.get("looks"), list
        ):
            raise TypeError("no list of verdicts and looks")
        return record
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a verdicts file the reports wrote ({e})") from e


def looks_with(out: Path, seeds: Seeds, what: str = "") -> list[dict[str, Any]]:
    """The page's looks at its data (from its ``verdicts.json``), with this one added when its
    seeds differ from the last look's: a verdict reached after seeds were added is corrected
    for every look (:class:`stats.Family`). A look counts when a paired test could be made on
    it: a look at one seed per model cannot decide anything, so it spends nothing."""
    path = out / "verdicts.json"
    looks = _read_verdicts_file(path)["looks"] if path.is_file() else []
    now = {m: [int(s) for s in ss] for m, ss in sorted(seeds.items())}
    if not looks or looks[-1].get("seeds") != now:
        looks = [
            *looks,
            {
                "seeds": now,
                "date": time.strftime("%Y-%m-%d", time.gmtime()),
                "what": what or "verdicts computed by resnets.analysis.reports",
            },
        ]
    return looks


def counted_looks(looks: Sequence[Mapping[str, Any]]) -> int:
    """How many of ``looks`` could decide something: those with 2 seeds or more of a model."""
    return max(1, sum(1 for look in looks if max(map(len, look["seeds"].values()), default=0) > 1))


def write_verdicts(
    out: Path, verdicts: Sequence[Verdict], looks: Sequence[Mapping[str, Any]] = ()
) -> Path:
    """``verdicts.json`` beside RESULTS.md: the same verdicts, for tools and the summary page,
    and the history of the looks they were computed on (each look's seeds and date)."""
    path = out / "verdicts.json"
    record = {"looks": list(looks), "verdicts": [v.to_dict() for v in verdicts]}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def judge_page(out: Path, seeds: Seeds, build: Callable[[int], list[Verdict]]) -> list[Verdict]:
    """A report's verdicts, built by ``build(looks)`` at the number of looks its page has had
    at its data (this one included), and written with that history to ``verdicts.json``."""
    looks = looks_with(out, seeds)
    verdicts = with_looks(build(counted_looks(looks)), looks)
    write_verdicts(out, verdicts, looks)
    return verdicts


def _seed_list(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def describe_looks(looks: Sequence[Mapping[str, Any]]) -> str:
    """One sentence: every look the page has had at its data, with the seeds it saw."""
    parts = []
    for i, look in enumerate(looks, 1):
        by_model = {m: tuple(s) for m, s in look["seeds"].items()}
        if len(set(by_model.values())) == 1:
            seen = _seed_list(next(iter(by_model.values())))
        else:
            seen = "; ".join(f"{m} {_seed_list(s)}" for m, s in by_model.items())
        parts.append(f"({i}) {look.get('date', '?')}, {seen} ({look.get('what', '')})")
    return "Every look at this page's data: " + "; ".join(parts) + "."


def with_looks(verdicts: Sequence[Verdict], looks: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    """The verdicts with the page's history of looks added to their family sentence."""
    if not looks:
        return list(verdicts)
    history = describe_looks(looks)
    return [replace(v, family=f"{v.family} {history}".strip()) for v in verdicts]


def read_verdicts(path: Path) -> list[Verdict]:
    """The verdicts a report wrote (``verdicts.json``)."""
    try:
        return [Verdict.from_dict(r) for r in _read_verdicts_file(path)["verdicts"]]
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a verdicts file the reports wrote ({e})") from e


#: the lines around a report's verdicts, so that `resnets analyze verdicts` can write them anew
VERDICTS_BEGIN = "<!-- verdicts: computed by resnets.analysis.reports -->"
VERDICTS_END = "<!-- /verdicts -->"
CLAIMS_BEGIN = "<!-- claims: copied from each report's verdicts.json -->"
CLAIMS_END = "<!-- /claims -->"


VERDICTS_INTRO = (
    "Verdicts, computed from the runs above, each difference paired by seed (one seed is one "
    "held-out split and one initialisation) with its 95% t interval and two-sided p-value: "
    "**holds** when the corrected test puts the difference on the paper's side of zero, "
    "**contradicted** when on the other side, **not decided** otherwise (a comparison with one "
    "seed on a side, or with the same difference on every seed, cannot be decided)."
)


def verdict_block(verdicts: Sequence[Verdict]) -> list[str]:
    """A report's verdicts, with the sentences that say how they were decided and corrected,
    between their markers."""
    family = next((v.family for v in verdicts if v.family), "")
    intro = f"{VERDICTS_INTRO} {family}".rstrip()
    return [VERDICTS_BEGIN, intro, "", *(v.line() for v in verdicts), VERDICTS_END]


def replace_block(text: str, begin: str, end: str, lines: Sequence[str]) -> str:
    """``text`` with the lines from ``begin`` to ``end`` (markers included) replaced by
    ``lines``; ValueError when the markers are not there once each."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"the markers {begin!r} ... {end!r} are not there once each, in order")
    before, rest = text.split(begin, 1)
    after = rest.split(end, 1)[1]
    return before + "\n".join(lines) + after


HOW_DECIDED = (
    "Each verdict is computed by `resnets.analysis.reports` with a test: the difference paired "
    "by seed (same seed, same held-out split) and its 95% t interval, or the exact McNemar test "
    "when two sets of weights are scored on the same images. Each report's tests are one "
    "family, corrected together by Holm's method at 5% split across the report's looks at its "
    "data (its page says how many). **holds**: the corrected test puts the difference on the "
    "paper's side; **contradicted**: on the other side; **not decided**: neither, at this "
    "budget and number of seeds."
)


def summary_section(reports: Sequence[tuple[str, Sequence[Verdict]]]) -> list[str]:
    """One table of every claim, in label order, each with the report its numbers come from:
    ``reports`` pairs a report's folder (relative link) with its verdicts."""
    rows = sorted(
        ((v, folder) for folder, verdicts in reports for v in verdicts), key=lambda r: r[0].label
    )
    counts = {o: sum(v.outcome == o for v, _ in rows) for o in WORDS}
    lines = [
        "## The paper's claims against our numbers",
        "",
        CLAIMS_BEGIN,
        f"Of {len(rows)} claims: {counts['holds']} hold, {counts['contradicted']} contradicted, "
        f"{counts['not decided'] + counts['missing']} not decided. {HOW_DECIDED} Copied here "
        "from the report beside each.",
        "",
        "| claim | verdict | the numbers | report |",
        "| --- | --- | --- | --- |",
    ]
    for v, folder in rows:
        lines.append(
            f"| {v.label} {v.claim} | **{v.word()}** | {v.evidence} | "
            f"[{folder}]({folder}/RESULTS.md) |"
        )
    return [*lines, CLAIMS_END]


RunTable = Mapping[str, Sequence[RunFinal]]


def _by_seed(table: RunTable, model: str, field: str) -> dict[int, float]:
    return {r.seed: getattr(r, field) for r in table.get(model, ())}


def _spreads(table: RunTable, model: str) -> tuple[Spread, Spread]:
    runs = table.get(model, ())
    return Spread.of([r.train_err for r in runs]), Spread.of([r.val_err for r in runs])


def _missing(label: str, claim: str, *models: str) -> Verdict:
    return Verdict(label, claim, "missing", "needs " + ", ".join(models))


def _paired(table: RunTable, better: str, worse: str, field: str) -> PairedBySeed:
    """The test of "``better`` has the lower ``field``" over the seeds both models have."""
    return paired_by_seed(_by_seed(table, better, field), _by_seed(table, worse, field))


def tested(test: PairedBySeed, family: Family, scale: float = 100.0, unit: str = " points") -> str:
    """A paired test's numbers with its place in the page's family: the raw p-value, the
    Holm-adjusted one and, when left undecided, the seeds that would give 80% power."""
    note = family.note(test)
    return test.text(scale, unit) + (f"; {note}" if note else "")


def _judged(build: Callable[[Family], list[Verdict]], family: str, looks: int) -> list[Verdict]:
    """A page's verdicts decided by Holm over all its tests, each carrying the sentence that
    says how."""

    def described(fam: Family) -> list[Verdict]:
        verdicts = build(fam)
        return [replace(v, family=fam.describe()) for v in verdicts] if fam.gathered else verdicts

    return judge_family(described, family, looks)


def degradation_verdicts(
    table: RunTable, shallow: int = 20, deep: int = 56, looks: int = 1
) -> list[Verdict]:
    """Claims (a)-(c) of Fig. 6 and Table 6 from a table with plain and residual runs, each
    decided by the difference paired by seed; the page's tests are one family (Holm) tested
    at 5% / ``looks``."""
    return _judged(lambda fam: _degradation(table, shallow, deep, fam), "degradation", looks)


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
        out.append(_missing("(a)", claim, p_lo, p_hi))
    else:
        (lo_t, lo_v), (hi_t, hi_v) = _spreads(table, p_lo), _spreads(table, p_hi)
        train = _paired(table, p_lo, p_hi, "train_err")
        val = _paired(table, p_lo, p_hi, "val_err")
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
        out.append(_lower_val_error(table, label, claim, better, worse, family))
    return out


def _lower_val_error(
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
        return _missing(label, claim, better, worse)
    (_, b_v), (_, w_v) = _spreads(table, better), _spreads(table, worse)
    test = _paired(table, better, worse, "val_err")
    return Verdict(
        label,
        claim,
        family.outcome(test),
        f"validation: {kind}{better} {b_v.pct()} against {kind}{worse} {w_v.pct()}; {worse} "
        f"minus {better}, paired by seed: {tested(test, family)}",
    )


def ordering_verdict(
    table: RunTable, depths: Sequence[int], label: str = "(d)", looks: int = 1
) -> Verdict:
    """Claim (d): validation error falls with depth, ResNet-20 > 32 > 44 > 56 > 110. Each
    neighbouring step is tested paired by seed, the steps corrected together (Holm) at 5% /
    ``looks``; the claim holds when every step does."""
    return _judged(lambda fam: [_ordering(table, depths, label, fam)], "cifar-table", looks)[0]


def _ordering(table: RunTable, depths: Sequence[int], label: str, family: Family) -> Verdict:
    models = [f"resnet{d}" for d in depths]
    claim = "the ordering " + " > ".join(str(d) for d in depths) + " in validation error"
    have = [m for m in models if table.get(m)]
    if len(have) < 2 or len(have) < len(models):
        return _missing(label, claim, *(m for m in models if m not in have))
    vals = [_spreads(table, m)[1] for m in models]
    steps = [
        (a, b, _paired(table, f"resnet{b}", f"resnet{a}", "val_err"))
        for a, b in zip(depths, depths[1:])
    ]
    outcomes = [family.outcome(test) for _, _, test in steps]
    evidence = "; ".join(f"ResNet-{d} {v.pct()}" for d, v in zip(depths, vals))
    evidence += "; each step, the shallower minus the deeper, paired by seed: " + "; ".join(
        f"{a}->{b} {tested(test, family)} ({WORDS[outcome]})"
        for (a, b, test), outcome in zip(steps, outcomes)
    )
    return Verdict(label, claim, combine(outcomes), evidence)


def shortcut_verdicts(table: RunTable, plain: str = "plain", looks: int = 1) -> list[Verdict]:
    """Table 3's claims from runs keyed by shortcut option (``"A"``, ``"B"``, ``"C"``) and by
    ``plain`` (the twin without shortcuts), each decided by the validation error paired by seed,
    the page's tests corrected together (Holm) at 5% / ``looks``: (g) every option beats the
    plain net, (h) projections where the shape changes (B) beat zero-padding (A), (i)
    projections everywhere (C) beat B. The paper finds (h) and (i) small (0.51 and 0.33 points
    on ImageNet) and concludes projections are not essential."""
    return _judged(lambda fam: _shortcuts(table, plain, fam), "shortcuts", looks)


def _shortcuts(table: RunTable, plain: str, family: Family) -> list[Verdict]:
    out = []
    claim = "shortcut options A, B and C each have lower validation error than the plain net"
    missing = [m for m in ("A", "B", "C", plain) if not table.get(m)]
    if missing:
        out.append(_missing("(g)", claim, *missing))
    else:
        tests = [(o, _paired(table, o, plain, "val_err")) for o in ("A", "B", "C")]
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
        out.append(_lower_val_error(table, label, claim, better, worse, family, kind="option "))
    return out


def response_verdict(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int] = (20, 56), looks: int = 1
) -> Verdict:
    """Claim (e) of Fig. 7: residual responses are smaller than plain ones at every depth, and
    smaller for the deeper ResNet. ``means`` maps a model to its mean response std by seed;
    each comparison is paired by seed, the three corrected together (Holm) at 5% / ``looks``."""
    return _judged(lambda fam: [_responses(means, depths, fam)], "responses", looks)[0]


def _responses(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int], family: Family
) -> Verdict:
    claim = "residual responses smaller than plain ones, and smaller for deeper ResNets"
    needed = [f"{k}{d}" for d in depths for k in ("plain", "resnet")]
    missing = [m for m in needed if not means.get(m)]
    if missing:
        return _missing("(e)", claim, *missing)
    parts, outcomes = [], []
    for better, worse, what in [
        *((f"resnet{d}", f"plain{d}", f"depth {d}: ResNet against plain") for d in depths),
        (
            f"resnet{max(depths)}",
            f"resnet{min(depths)}",
            f"ResNet-{max(depths)} against ResNet-{min(depths)}",
        ),
    ]:
        test = paired_by_seed(means[better], means[worse])
        outcomes.append(family.outcome(test))
        b, w = Spread.of(list(means[better].values())), Spread.of(list(means[worse].values()))
        parts.append(
            f"{what}: {b.mean:.3f} against {w.mean:.3f}, difference "
            f"{tested(test, family, scale=1.0, unit='')}"
        )
    return Verdict(
        "(e)", claim, combine(outcomes), "mean std of 3x3 responses: " + "; ".join(parts)
    )


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
                out.append(_missing(f"(preact-{depth})", claim, original, preact))
                continue
            (_, o_v), (_, p_v) = _spreads(table, original), _spreads(table, preact)
            test = _paired(table, preact, original, "val_err")
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

    return _judged(build, "preact", looks)


def concat_verdict(table: RunTable, summed: str, matched: str, looks: int = 1) -> Verdict:
    """Concatenating shortcuts at matched parameters (``matched``) reach a lower validation
    error than the additive ones (``summed``), paired by seed: a family of one test, at 5% /
    ``looks``."""

    def build(family: Family) -> list[Verdict]:
        claim = "concatenation at matched parameters beats the sum"
        return [_lower_val_error(table, "(concat)", claim, matched, summed, family, kind="")]

    return _judged(build, "sum-vs-concat", looks)[0]


#: transfer's run table: (mode, labelled images per class; 0 = all) -> {seed: validation error}
TransferTable = Mapping[tuple[str, int], Mapping[int, float]]


def transfer_verdict(table: TransferTable, few: int, many: int, looks: int = 1) -> Verdict:
    """The transfer claim, decided by tests paired by seed (one seed: one initialisation and one
    draw of the labelled images, shared by the modes): with the fewest labels, fine-tuning the
    pretrained network beats training from scratch, and that advantage is larger there than
    with the most labels. The page's four paired tests (the linear probe's and the advantage
    with every label included) are one family (Holm) at 5% / ``looks``."""

    def lab(n: int) -> str:
        return f"{n} labelled images per class" if n else "every labelled image"

    def build(family: Family) -> list[Verdict]:
        claim = (
            f"with {lab(few)}, fine-tuning the pretrained network beats training from scratch, "
            f"and by more than with {lab(many)}"
        )
        needed = [("fine-tuned", few), ("from scratch", few), ("fine-tuned", many),
                  ("from scratch", many)]  # fmt: skip
        if any(not table.get(k) for k in needed):
            return [_missing("(transfer)", claim, *(f"{m} at {n}" for m, n in needed))]
        helps = paired_by_seed(table["fine-tuned", few], table["from scratch", few])
        probe = paired_by_seed(table.get(("linear probe", few), {}), table["from scratch", few])
        at_many = paired_by_seed(table["fine-tuned", many], table["from scratch", many])
        shrinks = paired_by_seed(  # the few-label advantage minus the many-label advantage
            dict(zip(at_many.seeds, at_many.diffs)), dict(zip(helps.seeds, helps.diffs))
        )
        outcomes = [family.outcome(t) for t in (helps, probe, at_many, shrinks)]
        evidence = (
            f"with {lab(few)}, fine-tuning lowers the validation error against training from "
            f"scratch by {tested(helps, family)} ({WORDS[outcomes[0]]}; the linear probe: "
            f"{tested(probe, family)}); with {lab(many)}, by {tested(at_many, family)}; the "
            f"advantage with {lab(few)} minus the one with {lab(many)}: "
            f"{tested(shrinks, family)} ({WORDS[outcomes[3]]})"
        )
        return [Verdict("(transfer)", claim, combine([outcomes[0], outcomes[3]]), evidence)]

    return _judged(build, "transfer", looks)[0]


def detection_verdict(
    rows: Sequence[Mapping[str, Any]], residual: str, plain: str, looks: int = 1
) -> Verdict:
    """Residual against plain backbones of one detector: the mAP@[.5:.95] difference paired by
    seed (a family of one test, at 5% / ``looks``). ``rows``: one per run, with ``backbone``,
    ``seed``, ``finished`` and ``map``."""
    claim = (
        f"a residual backbone ({residual}) detects better than its plain twin ({plain}) in the "
        "same Faster R-CNN, trained from scratch for the same steps"
    )
    done = [r for r in rows if r["finished"]]
    res = {int(r["seed"]): -float(r["map"]) for r in done if r["backbone"] == residual}
    pla = {int(r["seed"]): -float(r["map"]) for r in done if r["backbone"] == plain}
    if not res or not pla:
        return Verdict(
            "(f)", claim, "missing", f"finished runs: {len(res)} {residual}, {len(pla)} {plain}"
        )

    def build(family: Family) -> list[Verdict]:
        test = paired_by_seed(res, pla)  # "better" = lower -mAP = higher mAP
        evidence = (
            f"mAP@[.5:.95] higher by {tested(test, family)} over seeds {list(test.seeds)} "
            f"({', '.join(f'{100 * d:+.2f}' for d in test.diffs)})"
        )
        return [Verdict("(f)", claim, family.outcome(test), evidence)]

    return _judged(build, "detection", looks)[0]


# ---------------------------------------------------------------------------------------------
# a written report judged again from its own CSV files (the run folders may be gone)

#: the reports whose verdicts come from their CSV files, by folder
REJUDGED = (
    "degradation",
    "cifar-table",
    "responses",
    "shortcuts",
    "sum-vs-concat",
    "preact",
    "transfer",
    "detection",
)
#: those whose claims the summary page copies: (a)-(e)
SUMMARY_REPORTS = ("degradation", "cifar-table", "responses")


def _csv_rows(path: Path, what: str) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a {what} a report wrote ({e})") from e


def _fraction(value: str, path: Path, line: int, column: str) -> float:
    """A CSV cell that must be an error or accuracy: a finite fraction in [0, 1]."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}, row {line}: {column} {value!r} is not a number") from None
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        raise ValueError(f"{path}, row {line}: {column} {value!r} is not a fraction in [0, 1]")
    return x


def _seed(value: str | None, path: Path, line: int) -> int:
    if value is None or not value.strip():
        raise ValueError(f"{path}, row {line}: no seed (every run is paired by its seed)")
    try:
        seed = int(value)
    except ValueError:
        raise ValueError(f"{path}, row {line}: seed {value!r} is not a whole number") from None
    if seed < 0:
        raise ValueError(f"{path}, row {line}: seed {seed} is negative")
    return seed


def run_table_from_csv(path: Path, key: str = "model") -> dict[str, list[RunFinal]]:
    """The run table of a report's ``runs.csv`` (one row per run: model, seed, final errors),
    keyed by the column ``key`` (``tag`` for reports whose variants share a model). The table
    is validated before anything is judged: one row per (key, seed), a seed on every row,
    errors that are finite fractions, and one schedule (``iters``) for all runs where the file
    records it; anything else is refused in one line naming the file and the row."""
    table: dict[str, list[RunFinal]] = {}
    seen: dict[tuple[str, int], int] = {}
    schedules: dict[str, int] = {}
    try:
        rows = _csv_rows(path, "runs.csv")
        for line, row in enumerate(rows, start=2):  # row 1 is the header
            name = row[key]
            if name is None:
                raise ValueError(f"{path}, row {line}: fewer cells than the header")
            seed = _seed(row.get("seed"), path, line)
            if (name, seed) in seen:
                raise ValueError(
                    f"{path}, row {line}: {name} seed {seed} again (first on row "
                    f"{seen[name, seed]}): one row per run"
                )
            seen[name, seed] = line
            if row.get("iters"):
                schedules.setdefault(row["iters"], line)
            table.setdefault(name, []).append(
                RunFinal(
                    _fraction(row["final_train_err"], path, line, "final_train_err"),
                    _fraction(row["final_val_err"], path, line, "final_val_err"),
                    seed,
                )
            )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a runs.csv a report wrote (no column {e})") from e
    if len(schedules) > 1:
        (a, la), (b, lb) = list(schedules.items())[:2]
        raise ValueError(
            f"{path}, row {lb}: {b} iterations against {a} on row {la}: paired runs must come "
            "from one recipe and schedule"
        )
    return table


def response_means_from_csv(path: Path) -> dict[str, dict[int, float]]:
    """Each network's mean response std by seed, from a responses report's CSV (written before
    it kept a seed column: seed 0)."""
    stds: dict[str, dict[int, list[float]]] = {}
    try:
        for row in _csv_rows(path, "responses.csv"):
            by_seed = stds.setdefault(row["model"], {})
            by_seed.setdefault(int(row.get("seed") or 0), []).append(float(row["std"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a responses.csv a report wrote ({e})") from e
    return {m: {s: statistics.fmean(v) for s, v in seeds.items()} for m, seeds in stds.items()}


def transfer_table_from_csv(path: Path) -> dict[tuple[str, int], dict[int, float]]:
    """Transfer's run table from its ``transfer.csv`` (mode, labels per class, seed, accuracy),
    validated as :func:`run_table_from_csv` validates a runs.csv."""
    table: dict[tuple[str, int], dict[int, float]] = {}
    try:
        for line, row in enumerate(_csv_rows(path, "transfer.csv"), start=2):
            key = (row["mode"], int(row["labels_per_class"]))
            seed = _seed(row.get("seed"), path, line)
            if seed in table.get(key, {}):
                raise ValueError(f"{path}, row {line}: {key[0]} at {key[1]} seed {seed} again")
            acc = _fraction(row["val_acc"], path, line, "val_acc")
            table.setdefault(key, {})[seed] = 1.0 - acc
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a transfer.csv a report wrote (no column {e})") from e
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a transfer.csv a report wrote ({e})") from e
    return table


def detection_rows_from_csv(path: Path) -> list[dict[str, Any]]:
    """The detection report's runs from its ``runs.csv``: one row per (backbone, seed), a
    finished run's mAP a fraction in [0, 1]."""
    rows, seen = [], set()
    try:
        for line, row in enumerate(_csv_rows(path, "runs.csv"), start=2):
            seed = _seed(row.get("seed"), path, line)
            if (row["backbone"], seed) in seen:
                raise ValueError(f"{path}, row {line}: {row['backbone']} seed {seed} again")
            seen.add((row["backbone"], seed))
            if row["finished"] not in ("True", "False"):
                raise ValueError(f"{path}, row {line}: finished {row['finished']!r}")
            finished = row["finished"] == "True"
            rows.append(
                {
                    "backbone": row["backbone"],
                    "seed": seed,
                    "finished": finished,
                    "map": _fraction(row["map"], path, line, "map") if finished else math.nan,
                }
            )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a detection runs.csv (no column {e})") from e
    return rows


def _args(folder: Path) -> dict[str, Any]:
    try:
        args = json.loads((folder / "experiment.json").read_text())["args"]
        if not isinstance(args, dict):
            raise TypeError("args is not a mapping")
        return args
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: not a report's record ({e})") from e


def _depths(folder: Path) -> list[int]:
    given = _args(folder).get("depths")  # a list (since experiments are functions) or "20,56"
    try:
        return [int(d) for d in (given if isinstance(given, list) else str(given).split(","))]
    except (ValueError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: depths {given!r} ({e})") from e


def _judge_folder(folder: Path, looks: Callable[[Seeds], int]) -> tuple[list[Verdict], Seeds]:
    """The verdicts of one report from its CSV; ``looks`` gives the number of looks at the
    seeds the CSV holds."""
    name = folder.name
    if name in ("degradation", "cifar-table"):
        table = run_table_from_csv(folder / "runs.csv")
        depths, seeds = _depths(folder), seeds_of(table)
        if name == "degradation":
            return degradation_verdicts(table, min(depths), max(depths), looks(seeds)), seeds
        return [ordering_verdict(table, depths, looks=looks(seeds))], seeds
    if name == "responses":
        means = response_means_from_csv(folder / "responses.csv")
        seeds = {m: sorted(by_seed) for m, by_seed in sorted(means.items())}
        return [response_verdict(means, _depths(folder), looks(seeds))], seeds
    if name == "shortcuts":
        table = run_table_from_csv(folder / "runs.csv", key="tag")
        table = {tag.strip("-") or "plain": runs for tag, runs in table.items()}
        seeds = seeds_of(table)
        return shortcut_verdicts(table, looks=looks(seeds)), seeds
    if name == "sum-vs-concat":
        table = run_table_from_csv(folder / "runs.csv", key="tag")
        summed = next((t for t in table if t.startswith("sum")), "sum (ResNet)")
        matched = next((t for t in table if t.startswith("concat, matched")), "concat, matched")
        seeds = seeds_of(table)
        return [concat_verdict(table, summed, matched, looks(seeds))], seeds
    if name == "preact":
        table = run_table_from_csv(folder / "runs.csv")
        args = _args(folder)
        depths = [110] + [164] * bool(args.get("with_164")) + [1001] * bool(args.get("with_1001"))
        pairs = [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]
        seeds = seeds_of(table)
        return preact_verdicts(table, pairs, looks(seeds)), seeds
    if name == "transfer":
        ttable = transfer_table_from_csv(folder / "transfer.csv")
        counts = [int(n) for n in _args(folder).get("labels", [10, 50, 250, 0])]
        seeds = {f"{m} at {n}": sorted(s) for (m, n), s in sorted(ttable.items())}
        return [transfer_verdict(ttable, counts[0], counts[-1], looks(seeds))], seeds
    if name == "detection":
        rows = detection_rows_from_csv(folder / "runs.csv")
        backbones = sorted({r["backbone"] for r in rows})
        residual = next((b for b in backbones if not b.startswith("plain")), "resnet18")
        plain = next((b for b in backbones if b.startswith("plain")), "plain18")
        seeds = {
            b: sorted(r["seed"] for r in rows if r["backbone"] == b and r["finished"])
            for b in backbones
        }
        return [detection_verdict(rows, residual, plain, looks(seeds))], seeds
    raise ValueError(f"{folder}: not one of the reports judged from their CSV ({REJUDGED})")


def rejudge(folder: Path) -> tuple[list[Verdict], str, list[dict[str, Any]]]:
    """A written report's verdicts computed again from the CSV it wrote, corrected for the
    looks its ``verdicts.json`` records (this one added when its seeds are new), its RESULTS.md
    with the verdict lines replaced, and the looks; nothing is written
    (:func:`write_rejudged` writes)."""
    history: list[dict[str, Any]] = []

    def looks(seeds: Seeds) -> int:
        history[:] = looks_with(folder, seeds, "judged again from the report's CSV")
        return counted_looks(history)

    verdicts, _ = _judge_folder(folder, looks)
    verdicts = with_looks(verdicts, history)
    results = folder / "RESULTS.md"
    text = results.read_text()
    try:
        text = replace_block(text, VERDICTS_BEGIN, VERDICTS_END, verdict_block(verdicts))
    except ValueError as e:
        raise ValueError(f"{results}: {e}") from e
    return verdicts, text, history


def write_rejudged(
    folder: Path, verdicts: Sequence[Verdict], text: str, looks: Sequence[Mapping[str, Any]]
) -> None:
    """Write what :func:`rejudge` computed: ``verdicts.json`` (with its looks) and RESULTS.md."""
    write_verdicts(folder, verdicts, looks)
    atomic_write_text(folder / "RESULTS.md", text)


# ---------------------------------------------------------------------------------------------
# the zoo's weights trained at the whole schedule: claim (d) where the budget is 1


@dataclass(frozen=True)
class FullScheduleWeights:
    """A named set of weights trained by resnets at the paper's whole CIFAR schedule."""

    name: str  # resnet20.cifar10
    model: str
    final: RunFinal  # training error at the last iteration, held-out error scored in fp32
    iters: int
    n_val: int  # held-out images scored
    split: str  # the held-out split, e.g. "5,000 images held out, seed 0"
    params: int = 0

    def sampling_error(self) -> float:
        """The binomial standard error of the held-out error on ``n_val`` images, 0..1."""
        e = self.final.val_err
        return math.sqrt(e * (1 - e) / self.n_val) if self.n_val else math.nan


def full_schedule_weights(
    named: Mapping[str, WeightsMeta],
    fingerprints: Sequence[str],
    recipe: str = "he2015-cifar",
    iters: int = PAPER_ITERS,
) -> list[FullScheduleWeights]:
    """The weights in ``named`` trained with ``recipe`` for all ``iters`` iterations on the
    data whose fingerprints are given (those ``data_fingerprints`` finds for ``--data``), with
    their held-out error. Only weights sharing one held-out split are comparable: those of the
    split most of them share are kept, by name."""
    found = []
    for name, meta in sorted(named.items()):
        final, metrics, split = meta.final or {}, meta.metrics or {}, meta.split or {}
        if (
            f"--recipe {recipe} " not in f"{meta.command or ''} "
            or final.get("iters") != iters
            or meta.data_fingerprint not in fingerprints
            or not isinstance(metrics.get("top1"), float)
            or not isinstance(final.get("train_err"), float)
            or not split
        ):
            continue
        n_val = int(metrics.get("n") or split.get("n_val") or 0)
        where = f"{split.get('n_val', 0):,} images held out, seed {split.get('seed')}"
        result = RunFinal(final["train_err"], 1.0 - metrics["top1"])
        found.append(
            FullScheduleWeights(name, meta.model, result, iters, n_val, where, meta.params or 0)
        )
    if not found:
        return []
    splits = [w.split for w in found]
    common = max(splits, key=splits.count)
    return [w for w in found if w.split == common]


# ---------------------------------------------------------------------------------------------
# run records -> tables, curves, CSV and RESULTS.md


def mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt_pct(m: float, s: float, n: int) -> str:
    if math.isnan(m):
        return "n/a"
    return f"{100 * m:.2f} ± {100 * s:.2f}" if n > 1 else f"{100 * m:.2f}"


def mean_curve(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Average the metrics rows of several seeds step by step."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        for row in r["rows"]:
            by_step.setdefault(row["step"], []).append(row)
    out = []
    for step in sorted(by_step):
        rows = by_step[step]
        vals = [x["val_err"] for x in rows if x.get("val_err") is not None]
        out.append(
            {
                "step": step,
                "train_err": float(numpy.mean([x["train_err"] for x in rows])),
                "val_err": float(numpy.mean(vals)) if vals else None,
            }
        )
    return out


def run_table(records: list[dict[str, Any]]) -> dict[str, list[RunFinal]]:
    """Each model's finished runs, one RunFinal per seed, for the verdicts."""
    table: dict[str, list[RunFinal]] = {}
    for r in records:
        if r["final_val_err"] is not None and r["final_train_err"] is not None:
            table.setdefault(r["model"], []).append(
                RunFinal(r["final_train_err"], r["final_val_err"], int(r.get("seed") or 0))
            )
    return table


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of one shape as a CSV file, written atomically (nothing for no rows)."""
    if not rows:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def per_run_csv(out: Path, records: list[dict[str, Any]]) -> None:
    write_csv(
        out / "runs.csv",
        [
            {
                k: r.get(k)
                for k in (
                    "name",
                    "model",
                    "tag",
                    "seed",
                    "params",
                    "iters",
                    "final_train_err",
                    "final_val_err",
                    "best_val_err",
                    "train_time",
                )
            }
            for r in records
        ],
    )


def group(records: list[dict[str, Any]], key) -> dict[Any, list[dict[str, Any]]]:
    g: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        g.setdefault(key(r), []).append(r)
    return g


def environment() -> dict[str, str]:
    cpu = cpu_name()
    return {
        "cpu": f"{cpu} ({torch.get_num_threads()} threads)",
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "resnets": __version__,
    }


def schedule_line(budget: float, schedules: Sequence[tuple[int, Sequence[float]]]) -> str:
    """What the runs trained for, read from their records: one line."""
    counts = Counter((int(iters), tuple(round(m) for m in ms)) for iters, ms in schedules)
    if not counts:
        return f"Budget {budget:g} of the paper's schedule; no training run behind this page."
    parts = [
        f"{iters:,} iterations (lr /10 at {' and '.join(f'{m:,}' for m in ms) or 'no milestone'})"
        + (f" for {n} runs" if len(counts) > 1 else "")
        for (iters, ms), n in sorted(counts.items())
    ]
    return f"Budget {budget:g} of the paper's schedule; the runs trained {'; '.join(parts)}."


def write_results(
    out: Path,
    title: str,
    command: str,
    budget: float,
    sections: list[str],
    wall: float,
    data: str,
    train_seconds: float | None = None,
    machines: list[str] | None = None,
    *,
    schedules: Sequence[tuple[int, Sequence[float]]] = (),
) -> Path:
    """RESULTS.md: the tables and figures, the paper's numbers beside ours, and how they were
    made. ``schedules``: each run's iterations and learning-rate milestones, as its resolved
    config recorded them (the page states what the runs used, not what the budget implies)."""
    env = environment()
    lines = [
        f"# {title}",
        "",
        f"**Machine**: {'; '.join(sorted(set(machines))) if machines else env['cpu']} "
        f"(report written on {machine_label()}). "
        f"**Budget {budget:g}** of the paper's 64k iterations.",
        "",
        f"Command: `{relative_paths(command)}`",
        "",
        schedule_line(budget, schedules),
        f"Data: `{data}`. "
        + (
            f"Training time of the runs behind these numbers: {train_seconds / 60:.1f} min; "
            if train_seconds is not None
            else ""
        )
        + f"this invocation took {wall / 60:.1f} min (a re-run skips finished runs).",
        "",
    ]
    if "cifar10-jpeg" in data or data.endswith(".jpg"):
        lines += [JPEG_NOTE, ""]
    if budget < 1:
        lines += [
            f"**At budget {budget:g} these are short-schedule numbers, not the paper's full 64k-iteration "
            "training: compare orderings and trends, not absolute errors.**",
            "",
        ]
    lines += sections
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()]
    lines += [f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    p = out / "RESULTS.md"
    atomic_write_text(p, "\n".join(lines))
    return p
