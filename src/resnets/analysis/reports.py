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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy
import torch

from .. import __version__
from ..io import atomic_write_text, relative_paths
from ..models.weights import WeightsMeta
from ..runtime import cpu_name, machine_label
from .paper import PAPER_ITERS
from .stats import PairedBySeed, combine, paired_by_seed

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
        return cls(record["label"], record["claim"], record["outcome"], record["evidence"])


def write_verdicts(out: Path, verdicts: Sequence[Verdict]) -> Path:
    """``verdicts.json`` beside RESULTS.md: the same verdicts, for tools and the summary page."""
    path = out / "verdicts.json"
    atomic_write_text(path, json.dumps([v.to_dict() for v in verdicts], indent=2) + "\n")
    return path


def read_verdicts(path: Path) -> list[Verdict]:
    """The verdicts a report wrote (``verdicts.json``)."""
    try:
        return [Verdict.from_dict(r) for r in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a verdicts file the reports wrote ({e})") from e


#: the lines around a report's verdicts, so that `resnets analyze verdicts` can write them anew
VERDICTS_BEGIN = "<!-- verdicts: computed by resnets.analysis.reports -->"
VERDICTS_END = "<!-- /verdicts -->"
CLAIMS_BEGIN = "<!-- claims: copied from each report's verdicts.json -->"
CLAIMS_END = "<!-- /claims -->"


VERDICTS_INTRO = (
    "Verdicts, computed from the runs above, each difference paired by seed (one seed is one "
    "held-out split and one initialisation) with its 95% t interval: **holds** when the "
    "interval lies on the paper's side of zero, **contradicted** when it lies on the other "
    "side, **not decided** otherwise (a comparison with one seed on a side cannot be decided):"
)


def verdict_block(verdicts: Sequence[Verdict]) -> list[str]:
    """A report's verdicts, with the sentence that says how they were decided, between their
    markers."""
    return [VERDICTS_BEGIN, VERDICTS_INTRO, "", *(v.line() for v in verdicts), VERDICTS_END]


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
    "when two sets of weights are scored on the same images. **holds**: the test puts the "
    "difference on the paper's side; **contradicted**: on the other side; **not decided**: "
    "neither, at this budget and number of seeds."
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


def degradation_verdicts(table: RunTable, shallow: int = 20, deep: int = 56) -> list[Verdict]:
    """Claims (a)-(c) of Fig. 6 and Table 6 from a table with plain and residual runs, each
    decided by the difference paired by seed."""
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
                combine([train.outcome, val.outcome]),
                f"training: {p_hi} {hi_t.pct()} against {p_lo} {lo_t.pct()}, paired difference "
                f"{train.text()}; validation: {p_hi} {hi_v.pct()} against {p_lo} {lo_v.pct()}, "
                f"paired difference {val.text()}",
            )
        )
    for label, claim, better, worse in (
        ("(b)", f"ResNet-{deep} has lower validation error than ResNet-{shallow}", r_hi, r_lo),
        ("(c)", f"ResNet-{deep} has lower validation error than plain-{deep}", r_hi, p_hi),
    ):
        out.append(_lower_val_error(table, label, claim, better, worse))
    return out


def _lower_val_error(
    table: RunTable, label: str, claim: str, better: str, worse: str, kind: str = ""
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
        test.outcome,
        f"validation: {kind}{better} {b_v.pct()} against {kind}{worse} {w_v.pct()}; {worse} "
        f"minus {better}, paired by seed: {test.text()}",
    )


def ordering_verdict(table: RunTable, depths: Sequence[int], label: str = "(d)") -> Verdict:
    """Claim (d): validation error falls with depth, ResNet-20 > 32 > 44 > 56 > 110. Each
    neighbouring step is tested paired by seed; the claim holds when every step does."""
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
    evidence = "; ".join(f"ResNet-{d} {v.pct()}" for d, v in zip(depths, vals))
    evidence += "; each step, the shallower minus the deeper, paired by seed: " + "; ".join(
        f"{a}->{b} {test.text()} ({WORDS[test.outcome]})" for a, b, test in steps
    )
    return Verdict(label, claim, combine([test.outcome for _, _, test in steps]), evidence)


def shortcut_verdicts(table: RunTable, plain: str = "plain") -> list[Verdict]:
    """Table 3's claims from runs keyed by shortcut option (``"A"``, ``"B"``, ``"C"``) and by
    ``plain`` (the twin without shortcuts), each decided by the validation error paired by seed:
    (g) every option beats the plain net, (h) projections where the shape changes (B) beat
    zero-padding (A), (i) projections everywhere (C) beat B. The paper finds (h) and (i) small
    (0.51 and 0.33 points on ImageNet) and concludes projections are not essential."""
    out = []
    claim = "shortcut options A, B and C each have lower validation error than the plain net"
    missing = [m for m in ("A", "B", "C", plain) if not table.get(m)]
    if missing:
        out.append(_missing("(g)", claim, *missing))
    else:
        tests = [(o, _paired(table, o, plain, "val_err")) for o in ("A", "B", "C")]
        evidence = "; ".join(
            f"{plain} minus option {o}, paired by seed: {test.text()} ({WORDS[test.outcome]})"
            for o, test in tests
        )
        out.append(Verdict("(g)", claim, combine([t.outcome for _, t in tests]), evidence))
    for label, claim, better, worse in (
        (
            "(h)",
            "option B (projections where the shape changes) beats option A (zero-padding)",
            "B",
            "A",
        ),
        ("(i)", "option C (projections everywhere) beats option B", "C", "B"),
    ):
        out.append(_lower_val_error(table, label, claim, better, worse, kind="option "))
    return out


def response_verdict(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int] = (20, 56)
) -> Verdict:
    """Claim (e) of Fig. 7: residual responses are smaller than plain ones at every depth, and
    smaller for the deeper ResNet. ``means`` maps a model to its mean response std by seed;
    each comparison is paired by seed."""
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
        outcomes.append(test.outcome)
        b, w = Spread.of(list(means[better].values())), Spread.of(list(means[worse].values()))
        parts.append(
            f"{what}: {b.mean:.3f} against {w.mean:.3f}, difference {test.text(scale=1.0, unit='')}"
        )
    return Verdict(
        "(e)", claim, combine(outcomes), "mean std of 3x3 responses: " + "; ".join(parts)
    )


# ---------------------------------------------------------------------------------------------
# a written report judged again from its own CSV files (the run folders may be gone)

#: the reports whose verdicts come from their CSV files, by folder
REJUDGED = ("degradation", "cifar-table", "responses")


def run_table_from_csv(path: Path) -> dict[str, list[RunFinal]]:
    """The run table of a report's ``runs.csv`` (one row per run: model, seed, final errors)."""
    table: dict[str, list[RunFinal]] = {}
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                table.setdefault(row["model"], []).append(
                    RunFinal(
                        float(row["final_train_err"]),
                        float(row["final_val_err"]),
                        int(row.get("seed") or 0),
                    )
                )
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a runs.csv a report wrote ({e})") from e
    return table


def response_means_from_csv(path: Path) -> dict[str, dict[int, float]]:
    """Each network's mean response std by seed, from a responses report's CSV (written before
    it kept a seed column: seed 0)."""
    stds: dict[str, dict[int, list[float]]] = {}
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                by_seed = stds.setdefault(row["model"], {})
                by_seed.setdefault(int(row.get("seed") or 0), []).append(float(row["std"]))
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a responses.csv a report wrote ({e})") from e
    return {m: {s: statistics.fmean(v) for s, v in seeds.items()} for m, seeds in stds.items()}


def rejudge(folder: Path) -> tuple[list[Verdict], str]:
    """A written report's verdicts computed again from the CSV it wrote, and its RESULTS.md
    with the verdict lines replaced; nothing is written (:func:`write_rejudged` writes)."""
    try:
        args = json.loads((folder / "experiment.json").read_text())["args"]
        given = args["depths"]  # a list (written since experiments are functions) or "20,56"
        depths = [int(d) for d in (given if isinstance(given, list) else str(given).split(","))]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: not a report's record ({e})") from e
    if folder.name == "degradation":
        verdicts = degradation_verdicts(
            run_table_from_csv(folder / "runs.csv"), min(depths), max(depths)
        )
    elif folder.name == "cifar-table":
        verdicts = [ordering_verdict(run_table_from_csv(folder / "runs.csv"), depths)]
    elif folder.name == "responses":
        verdicts = [response_verdict(response_means_from_csv(folder / "responses.csv"), depths)]
    else:
        raise ValueError(f"{folder}: not one of the reports judged from their CSV ({REJUDGED})")
    results = folder / "RESULTS.md"
    text = results.read_text()
    try:
        text = replace_block(text, VERDICTS_BEGIN, VERDICTS_END, verdict_block(verdicts))
    except ValueError as e:
        raise ValueError(f"{results}: {e}") from e
    return verdicts, text


def write_rejudged(folder: Path, verdicts: Sequence[Verdict], text: str) -> None:
    """Write what :func:`rejudge` computed: ``verdicts.json`` and RESULTS.md."""
    write_verdicts(folder, verdicts)
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
