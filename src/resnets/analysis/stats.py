"""The statistical tests that decide the paper's claims: three outcomes, never a comparison of
means.

- Runs with several seeds: the difference paired by seed (one seed = one held-out split and one
  initialisation on both sides), its mean and 95% interval from Student's t distribution.
  **holds** when the interval lies on the paper's side of zero, **contradicted** when it lies on
  the other side, **not decided** otherwise, with the number of seeds a decision would need at
  the spread observed.
- Two sets of weights scored on the same images: the exact McNemar test on per-image
  correctness (the images one set gets right and the other wrong), two-sided at 5%.

Both are written so that a positive difference is the paper's side: ``worse - better`` error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Outcome = Literal["holds", "contradicted", "not decided"]

#: the two-sided level of every test (a 95% interval)
ALPHA = 0.05
#: the most seeds a "seeds needed" estimate names; beyond it, the gap is called negligible
MAX_SEEDS = 1000


def _t_quantile(df: int) -> float:
    """The 97.5% point of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t  # imported here: only reports need it

    return float(t.ppf(1 - ALPHA / 2, df))


def combine(outcomes: Sequence[Outcome]) -> Outcome:
    """A claim made of several parts: contradicted when any part is, holds when every part
    does, not decided otherwise."""
    if any(o == "contradicted" for o in outcomes):
        return "contradicted"
    if outcomes and all(o == "holds" for o in outcomes):
        return "holds"
    return "not decided"


@dataclass(frozen=True)
class PairedBySeed:
    """The per-seed differences ``worse - better`` (positive: the paper's side) and their test."""

    diffs: tuple[float, ...]
    seeds: tuple[int, ...]
    mean: float
    low: float  # the 95% interval of the mean difference (nan below 2 seeds)
    high: float
    outcome: Outcome
    seeds_needed: int | None  # for a decision at the observed spread; None: decided or unknown

    @property
    def n(self) -> int:
        return len(self.diffs)

    def text(self, scale: float = 100.0, unit: str = " points") -> str:
        """``+0.69 points (95% CI -1.53 to +2.91, 3 seeds)`` and what a decision needs."""
        if self.n == 0:
            return "no seed in common"
        if self.n == 1:
            return (
                f"{scale * self.mean:+.2f}{unit} (1 seed in common: a paired test needs at least 2)"
            )
        out = (
            f"{scale * self.mean:+.2f}{unit} (95% CI {scale * self.low:+.2f} to "
            f"{scale * self.high:+.2f}, {self.n} seeds paired)"
        )
        if self.outcome == "not decided":
            out += (
                f"; about {self.seeds_needed} seeds would decide it at this spread"
                if self.seeds_needed
                else f"; more than {MAX_SEEDS} seeds would be needed at this spread"
            )
        return out


def paired_by_seed(better: Mapping[int, float], worse: Mapping[int, float]) -> PairedBySeed:
    """Test "``better`` is lower than ``worse``" on the seeds both have (seed -> value)."""
    seeds = tuple(sorted(set(better) & set(worse)))
    diffs = tuple(float(worse[s]) - float(better[s]) for s in seeds)
    n = len(diffs)
    if n == 0:
        return PairedBySeed(diffs, seeds, math.nan, math.nan, math.nan, "not decided", None)
    mean = math.fsum(diffs) / n
    if n == 1:
        return PairedBySeed(diffs, seeds, mean, math.nan, math.nan, "not decided", 2)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = _t_quantile(n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if low > 0:
        return PairedBySeed(diffs, seeds, mean, low, high, "holds", None)
    if high < 0:
        return PairedBySeed(diffs, seeds, mean, low, high, "contradicted", None)
    return PairedBySeed(diffs, seeds, mean, low, high, "not decided", seeds_needed(mean, sd, n))


def seeds_needed(mean: float, sd: float, n: int) -> int | None:
    """The fewest seeds (more than ``n``) at which the 95% interval of a mean difference
    ``mean`` with standard deviation ``sd`` would exclude zero; None beyond MAX_SEEDS."""
    if mean == 0 or not math.isfinite(mean) or not math.isfinite(sd):
        return None
    if sd == 0:
        return n + 1
    for k in range(n + 1, MAX_SEEDS + 1):
        if _t_quantile(k - 1) * sd / math.sqrt(k) < abs(mean):
            return k
    return None


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of "``better`` is right more often than ``worse``" on the same images."""

    only_better: int  # images the better set gets right and the other wrong
    only_worse: int  # and the reverse
    n: int  # images scored by both
    p_value: float  # two-sided, exact (binomial with p = 1/2 over the discordant images)
    outcome: Outcome

    def text(self) -> str:
        return (
            f"{self.only_better} images right only with the first, {self.only_worse} only with "
            f"the second, of {self.n:,}: exact McNemar p = {self.p_value:.3g}"
        )


def binomial_two_sided(k: int, n: int) -> float:
    """The exact two-sided p-value of ``k`` successes in ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1))  # exact integers: no overflow
    return min(1.0, float(Fraction(2 * tail, 2**n)))


def mcnemar_exact(better_correct: Sequence[bool], worse_correct: Sequence[bool]) -> McNemar:
    """Test on per-image correctness of two sets of weights scored on the same images, in the
    same order."""
    if len(better_correct) != len(worse_correct):
        raise ValueError(
            f"McNemar needs the same images: {len(better_correct)} against {len(worse_correct)}"
        )
    only_better = sum(1 for a, b in zip(better_correct, worse_correct) if a and not b)
    only_worse = sum(1 for a, b in zip(better_correct, worse_correct) if b and not a)
    p = binomial_two_sided(only_better, only_better + only_worse)
    outcome: Outcome = "not decided"
    if p < ALPHA:
        outcome = "holds" if only_better > only_worse else "contradicted"
    return McNemar(only_better, only_worse, len(better_correct), p, outcome)
