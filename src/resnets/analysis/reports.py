"""The paper's claims, decided by the numbers: each verdict is computed from a table of runs.

A run table maps a model name (``"plain56"``, ``"resnet20"``) to its runs' final errors, one
:class:`RunFinal` per seed. Each claim of the paper becomes a :class:`Verdict`: "holds" when
the means are ordered as the paper says, "does not hold at this budget" otherwise, with the
spread over seeds beside the numbers and a note when the gap is inside that spread. No verdict
is ever typed by hand: RESULTS.md prints :meth:`Verdict.line`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy
import torch

from .. import __version__
from ..io import atomic_write_text
from ..models.weights import WeightsMeta
from ..runtime import cpu_name, machine_label
from .paper import PAPER_ITERS, budget_iters, scaled_milestones

JPEG_NOTE = (
    "The shared CIFAR-10 images are JPEG (quality ~75, 4:2:0 chroma), which loses detail: errors "
    "measured on them sit somewhat above figures for the original lossless arrays. Validation is "
    "the 5k split held out of the 50k training images (the paper's Table 6 uses the 10k test set)."
)


@dataclass(frozen=True)
class RunFinal:
    """One run's end: training error (on its augmented batches) and validation error, 0..1."""

    train_err: float
    val_err: float


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


def lower(a: Spread, b: Spread) -> bool:
    """Whether ``a``'s mean is below ``b``'s (False when either is missing)."""
    return a.n > 0 and b.n > 0 and a.mean < b.mean


def clear_gap(a: Spread, b: Spread) -> bool:
    """Whether the two means differ by more than the larger of their standard deviations."""
    return abs(a.mean - b.mean) > max(a.std, b.std)


@dataclass(frozen=True)
class Verdict:
    """One claim of the paper against our numbers."""

    label: str  # "(a)"
    claim: str  # what the paper says
    holds: bool | None  # None: the runs it needs are missing
    evidence: str  # the numbers behind it, with their spread
    within_spread: bool = False  # the deciding gap is smaller than the spread over seeds

    def word(self) -> str:
        if self.holds is None:
            return "not decided (runs missing)"
        return "holds" if self.holds else "does not hold at this budget"

    def line(self) -> str:
        note = " The deciding gap is within the spread over seeds." if self.within_spread else ""
        return f"- {self.label} {self.claim}: **{self.word()}**. {self.evidence}.{note}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.word()}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Verdict:
        return cls(
            record["label"],
            record["claim"],
            record["holds"],
            record["evidence"],
            record.get("within_spread", False),
        )


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


def summary_section(reports: Sequence[tuple[str, Sequence[Verdict]]]) -> list[str]:
    """One table of every claim, in label order, each with the report its numbers come from:
    ``reports`` pairs a report's folder (relative link) with its verdicts."""
    rows = sorted(
        ((v, folder) for folder, verdicts in reports for v in verdicts), key=lambda r: r[0].label
    )
    held = sum(v.holds is True for v, _ in rows)
    lines = [
        "## The paper's claims against our numbers",
        "",
        f"{held} of {len(rows)} claims hold at this budget. Each verdict is computed from the "
        "runs' final errors by `resnets.analysis.reports` (holds when the means over seeds are "
        "ordered as the paper says) and copied here from the report beside it.",
        "",
        "| claim | verdict | the numbers | report |",
        "| --- | --- | --- | --- |",
    ]
    for v, folder in rows:
        note = " (gap within the spread over seeds)" if v.within_spread else ""
        lines.append(
            f"| {v.label} {v.claim} | **{v.word()}**{note} | {v.evidence} | "
            f"[{folder}]({folder}/RESULTS.md) |"
        )
    return lines


RunTable = Mapping[str, Sequence[RunFinal]]


def _spreads(table: RunTable, model: str) -> tuple[Spread, Spread]:
    runs = table.get(model, ())
    return Spread.of([r.train_err for r in runs]), Spread.of([r.val_err for r in runs])


def _missing(label: str, claim: str, *models: str) -> Verdict:
    return Verdict(label, claim, None, "needs " + ", ".join(models))


def degradation_verdicts(table: RunTable, shallow: int = 20, deep: int = 56) -> list[Verdict]:
    """Claims (a)-(c) of Fig. 6 and Table 6 from a table with plain and residual runs."""
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
        out.append(
            Verdict(
                "(a)",
                claim,
                lower(lo_t, hi_t) and lower(lo_v, hi_v),
                f"training: {p_hi} {hi_t.pct()} against {p_lo} {lo_t.pct()}; validation: "
                f"{p_hi} {hi_v.pct()} against {p_lo} {lo_v.pct()}",
                not (clear_gap(lo_t, hi_t) and clear_gap(lo_v, hi_v)),
            )
        )
    for label, claim, better, worse in (
        ("(b)", f"ResNet-{deep} has lower validation error than ResNet-{shallow}", r_hi, r_lo),
        ("(c)", f"ResNet-{deep} has lower validation error than plain-{deep}", r_hi, p_hi),
    ):
        if not (table.get(better) and table.get(worse)):
            out.append(_missing(label, claim, better, worse))
            continue
        (_, b_v), (_, w_v) = _spreads(table, better), _spreads(table, worse)
        out.append(
            Verdict(
                label,
                claim,
                lower(b_v, w_v),
                f"validation: {better} {b_v.pct()} against {worse} {w_v.pct()}",
                not clear_gap(b_v, w_v),
            )
        )
    return out


def ordering_verdict(table: RunTable, depths: Sequence[int], label: str = "(d)") -> Verdict:
    """Claim (d): validation error falls with depth, ResNet-20 > 32 > 44 > 56 > 110."""
    models = [f"resnet{d}" for d in depths]
    claim = "the ordering " + " > ".join(str(d) for d in depths) + " in validation error"
    have = [m for m in models if table.get(m)]
    if len(have) < 2 or len(have) < len(models):
        return _missing(label, claim, *(m for m in models if m not in have))
    vals = [_spreads(table, m)[1] for m in models]
    holds = all(lower(b, a) for a, b in zip(vals, vals[1:]))
    evidence = "; ".join(f"ResNet-{d} {v.pct()}" for d, v in zip(depths, vals))
    broken = [
        f"{a}->{b}" for a, b, va, vb in zip(depths, depths[1:], vals, vals[1:]) if not lower(vb, va)
    ]
    if broken:
        evidence += "; out of order at " + ", ".join(broken)
    within = any(not clear_gap(a, b) for a, b in zip(vals, vals[1:]))
    return Verdict(label, claim, holds, evidence, within)


def response_verdict(
    means: Mapping[str, Sequence[float]], depths: Sequence[int] = (20, 56)
) -> Verdict:
    """Claim (e) of Fig. 7: residual responses are smaller than plain ones at every depth, and
    smaller for the deeper ResNet. ``means`` maps a model to its mean response std, one value
    per seed."""
    claim = "residual responses smaller than plain ones, and smaller for deeper ResNets"
    needed = [f"{k}{d}" for d in depths for k in ("plain", "resnet")]
    missing = [m for m in needed if not means.get(m)]
    if missing:
        return _missing("(e)", claim, *missing)
    s = {m: Spread.of(list(means[m])) for m in needed}
    parts, holds, within = [], True, False
    for d in depths:
        r, p = s[f"resnet{d}"], s[f"plain{d}"]
        holds &= lower(r, p)
        within |= not clear_gap(r, p)
        parts.append(f"depth {d}: ResNet {r.mean:.3f} against plain {p.mean:.3f}")
    deep, shallow = s[f"resnet{max(depths)}"], s[f"resnet{min(depths)}"]
    holds &= lower(deep, shallow)
    within |= not clear_gap(deep, shallow)
    parts.append(f"ResNet-{min(depths)} {shallow.mean:.3f} -> ResNet-{max(depths)} {deep.mean:.3f}")
    return Verdict("(e)", claim, holds, "mean std of 3x3 responses: " + "; ".join(parts), within)


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
        found.append(FullScheduleWeights(name, meta.model, result, iters, n_val, where))
    if not found:
        return []
    splits = [w.split for w in found]
    common = max(splits, key=splits.count)
    return [w for w in found if w.split == common]


def full_schedule_section(
    weights: Sequence[FullScheduleWeights], depths: Sequence[int] = (20, 32, 44, 56, 110)
) -> list[str]:
    """RESULTS.md lines: the table of the zoo's full-schedule CIFAR weights and claim (d) over
    the depths among them (one seed each), computed like the budgeted verdicts."""
    lines = [
        "## At the whole schedule: the zoo's weights",
        "",
        f"The named weights trained by resnets at the paper's whole schedule ({PAPER_ITERS:,} "
        "iterations) on this data, one seed each, scored on the same held-out split "
        "(`resnets weights info NAME` prints each record):",
        "",
    ]
    if not weights:
        return [*lines, "None yet."]
    lines += [
        "| weights | training error | validation error | held-out split |",
        "| --- | --- | --- | --- |",
    ]
    table: dict[str, list[RunFinal]] = {}
    for w in weights:
        table.setdefault(w.model, []).append(w.final)
        lines.append(
            f"| `{w.name}` | {100 * w.final.train_err:.2f}% | {100 * w.final.val_err:.2f}% "
            f"| {w.split} |"
        )
    present = [d for d in depths if table.get(f"resnet{d}")]
    label = "(d, whole schedule)"
    if len(present) < 2:
        shipped = ", ".join(f"ResNet-{d}" for d in present) or "no ResNet"
        verdict = Verdict(
            label,
            "deeper ResNets have lower validation error",
            None,
            f"needs a second depth: {shipped} alone so far",
        )
    else:
        verdict = ordering_verdict(table, present, label)
    lines += ["", verdict.line()]
    if all(len(runs) == 1 for runs in table.values()):
        widest = max(weights, key=lambda w: w.sampling_error())
        lines.append(
            f"  One seed per depth: on {widest.n_val:,} held-out images an error of "
            f"{100 * widest.final.val_err:.2f}% has a sampling error (binomial standard error) "
            f"of {100 * widest.sampling_error():.2f} points."
        )
        by_depth = {int(w.model.removeprefix("resnet")): w for w in weights if w.model in table}
        for shallow, deep in zip(present, present[1:]):
            a, b = by_depth[shallow], by_depth[deep]
            gap = 100 * (a.final.val_err - b.final.val_err)
            error = 100 * math.hypot(a.sampling_error(), b.sampling_error())
            change = f"falls by {gap:.2f}" if gap >= 0 else f"rises by {-gap:.2f}"
            lines.append(
                f"  ResNet-{shallow} -> ResNet-{deep}: the error {change} points; the standard "
                f"error of that difference, were the two errors independent, is {error:.2f} "
                "points (scored on the same images, they are correlated and it is smaller), "
                "so the gap is " + ("larger than it." if abs(gap) > error else "within it.")
            )
    return lines


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
                RunFinal(r["final_train_err"], r["final_val_err"])
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
) -> Path:
    """RESULTS.md: the tables and figures, the paper's numbers beside ours, and how they were made."""
    env = environment()
    iters = budget_iters(budget)
    first, second = (round(m) for m in scaled_milestones(budget))
    lines = [
        f"# {title}",
        "",
        f"**Machine**: {'; '.join(sorted(set(machines))) if machines else env['cpu']} "
        f"(report written on {machine_label()}). "
        f"**Budget {budget:g}**: {iters:,} of the paper's 64k iterations.",
        "",
        f"Command: `{command}`",
        "",
        f"Budget {budget:g} of the paper's schedule: {iters:,} iterations of batch 128 "
        f"(lr /10 at {first:,} and {second:,}).",
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
