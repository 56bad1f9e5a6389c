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
from .paper_numbers import PAPER_ITERS

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
    whole_schedule: bool = False  # judged at the paper's whole schedule, not a budget

    def __post_init__(self) -> None:
        if self.outcome not in WORDS:
            raise ValueError(f"verdict outcome {self.outcome!r}: one of {', '.join(WORDS)}")

    def word(self) -> str:
        if self.whole_schedule and self.outcome == "not decided":
            return "not decided"  # no budget to blame: the test itself did not decide
        return WORDS[self.outcome]

    def line(self) -> str:
        return f"- {self.label} {self.claim}: **{self.word()}**. {self.evidence}."

    def to_dict(self) -> dict[str, Any]:
        record = {**asdict(self), "verdict": self.word()}
        if not self.whole_schedule:  # a budget page's records stay as they were written
            del record["whole_schedule"]
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Verdict:
        return cls(
            record["label"],
            record["claim"],
            record["outcome"],
            record["evidence"],
            str(record.get("family", "")),
            bool(record.get("whole_schedule", False)),
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
    # the training CPU had bf16 (the record's cpu_bf16; the zoo's precision=auto then trains
    # with bf16 autocast); None: not recorded
    bf16: bool | None = None

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
        bf16 = {"True": True, "False": False}.get(
            str((final.get("versions") or {}).get("cpu_bf16"))
        )
        found.append(
            FullScheduleWeights(
                name, meta.model, result, iters, n_val, where, meta.params or 0, bf16
            )
        )
    if not found:
        return []
    splits = [w.split for w in found]
    common = max(splits, key=splits.count)
    return [w for w in found if w.split == common]


# ---------------------------------------------------------------------------------------------
# run records -> tables, curves, CSV and RESULTS.md


def train_minutes(runs: list[dict[str, Any]]) -> str:
    """The runs' training time in all, in minutes, as a table cell."""
    return f"{sum(r['train_time'] or 0 for r in runs) / 60:.1f}"


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
