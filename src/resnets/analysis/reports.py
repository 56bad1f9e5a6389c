"""The paper's claims, decided by the numbers: each verdict is computed from a table of runs.

A run table maps a model name (``"plain56"``, ``"resnet20"``) to its runs' final errors, one
:class:`RunFinal` per seed. Each claim of the paper becomes a :class:`Verdict`: "holds" when
the means are ordered as the paper says, "does not hold at this budget" otherwise, with the
spread over seeds beside the numbers and a note when the gap is inside that spread. No verdict
is ever typed by hand: RESULTS.md prints :meth:`Verdict.line`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


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


def ordering_verdict(table: RunTable, depths: Sequence[int]) -> Verdict:
    """Claim (d): validation error falls with depth, ResNet-20 > 32 > 44 > 56 > 110."""
    models = [f"resnet{d}" for d in depths]
    claim = "the ordering " + " > ".join(str(d) for d in depths) + " in validation error"
    have = [m for m in models if table.get(m)]
    if len(have) < 2 or len(have) < len(models):
        return _missing("(d)", claim, *(m for m in models if m not in have))
    vals = [_spreads(table, m)[1] for m in models]
    holds = all(lower(b, a) for a, b in zip(vals, vals[1:]))
    evidence = "; ".join(f"ResNet-{d} {v.pct()}" for d, v in zip(depths, vals))
    broken = [
        f"{a}->{b}" for a, b, va, vb in zip(depths, depths[1:], vals, vals[1:]) if not lower(vb, va)
    ]
    if broken:
        evidence += "; out of order at " + ", ".join(broken)
    within = any(not clear_gap(a, b) for a, b in zip(vals, vals[1:]))
    return Verdict("(d)", claim, holds, evidence, within)


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
