"""The statistical tests that decide the paper's claims: three outcomes, never a comparison of
means, and every page's tests corrected together.

- Runs with several seeds: the difference paired by seed (one seed = one held-out split and one
  initialisation on both sides), its mean, 95% interval and two-sided p-value from Student's t
  distribution. A difference with no spread at all (every seed the same) is not tested: a
  zero-width interval says nothing about the next seed.
- Two sets of weights scored on the same images: the exact McNemar test on per-image
  correctness (the images one set gets right and the other wrong), two-sided.
- A page's tests form one family (:class:`Family`): Holm's step-down correction over all of
  them, at a level split evenly across the looks the page has had (Bonferroni over looks: a page
  whose seeds were added after an earlier look tests each look at 5% / looks). The corrected
  verdict is the verdict; the raw p-value stays beside it.
- "Seeds that would decide it" is the number of seeds at which the paired t test would reach
  80% power if the observed mean and spread were the truth (noncentral t), at the page's level.

Both are written so that a positive difference is the paper's side: ``worse - better`` error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Protocol, TypeVar

Outcome = Literal["holds", "contradicted", "not decided"]
#: a claim's outcome: a test's, or "missing" while some of its runs do not exist yet
ClaimOutcome = Literal["holds", "contradicted", "not decided", "missing"]

#: the two-sided level of a page's family of tests, before it is split across looks
ALPHA = 0.05
#: the power at which "seeds that would decide it" is computed
POWER = 0.8
#: the most seeds a "seeds needed" estimate names; beyond it, the gap is called negligible
MAX_SEEDS = 1000


def _t_quantile(df: int, alpha: float = ALPHA) -> float:
    """The two-sided ``alpha`` point of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t  # imported here: only reports need it

    return float(t.ppf(1 - alpha / 2, df))


def _t_p_value(t_stat: float, df: int) -> float:
    from scipy.stats import t

    return float(min(1.0, 2 * t.sf(abs(t_stat), df)))


def combine(outcomes: Sequence[Outcome], waiting: bool = False) -> ClaimOutcome:
    """A claim made of several parts: contradicted when any part is, holds when every part
    does, not decided otherwise. ``waiting``: some parts cannot be tested yet (their runs are
    missing), so the claim is "missing" unless a part tested already contradicts it."""
    if any(o == "contradicted" for o in outcomes):
        return "contradicted"
    if waiting:
        return "missing"
    if outcomes and all(o == "holds" for o in outcomes):
        return "holds"
    return "not decided"


class Test(Protocol):
    """What a family needs of a test: its two-sided p-value (nan: no test could be made) and
    the side of zero its difference is on (+1 the paper's, -1 the other, 0 neither)."""

    @property
    def p_value(self) -> float: ...

    @property
    def sign(self) -> int: ...


def _outcome(p_value: float, sign: int, alpha: float) -> Outcome:
    if math.isfinite(p_value) and p_value < alpha and sign:
        return "holds" if sign > 0 else "contradicted"
    return "not decided"


def _no_spread(diffs: Sequence[float], sd: float) -> bool:
    """Whether the differences are all the same, up to float rounding: errors are counts over
    the same images (multiples of 1/5,000), so equal differences come out a few ulps apart."""
    return sd <= 1e-9 * max(abs(d) for d in diffs)


@dataclass(frozen=True)
class PairedBySeed:
    """The per-seed differences ``worse - better`` (positive: the paper's side) and their test."""

    diffs: tuple[float, ...]
    seeds: tuple[int, ...]
    mean: float
    low: float  # the 95% interval of the mean difference (nan below 2 seeds or with no spread)
    high: float
    p_value: float  # two-sided, Student's t (nan below 2 seeds or with no spread)
    outcome: Outcome  # at ALPHA alone, before any correction (a Family gives the verdict)
    seeds_needed: int | None  # for 80% power at the observed mean and spread, at the level the
    # test was made at; None: no spread, one seed, or beyond MAX_SEEDS

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def sd(self) -> float:
        if self.n < 2:
            return math.nan
        return math.sqrt(math.fsum((d - self.mean) ** 2 for d in self.diffs) / (self.n - 1))

    @property
    def sign(self) -> int:
        return 0 if not self.n or self.mean == 0 else (1 if self.mean > 0 else -1)

    @property
    def zero_spread(self) -> bool:
        return self.n >= 2 and _no_spread(self.diffs, self.sd)

    def text(self, scale: float = 100.0, unit: str = " points") -> str:
        """``+0.69 points (95% CI -1.53 to +2.91, 3 seeds paired, p = 0.41)``, or why no test
        was made (what a decision would take is :meth:`Family.note`'s)."""
        if self.n == 0:
            return "no seed in common"
        if self.n == 1:
            return (
                f"{scale * self.mean:+.2f}{unit} (1 seed in common: a paired test needs at least 2)"
            )
        if self.zero_spread:
            return (
                f"{scale * self.mean:+.2f}{unit} on each of {self.n} seeds (no spread: the "
                "paired test is not made; more seeds are needed)"
            )
        return (
            f"{scale * self.mean:+.2f}{unit} (95% CI {scale * self.low:+.2f} to "
            f"{scale * self.high:+.2f}, {self.n} seeds paired, p = {self.p_value:.3g})"
        )


def paired_by_seed(
    better: Mapping[int, float], worse: Mapping[int, float], alpha: float = ALPHA
) -> PairedBySeed:
    """Test "``better`` is lower than ``worse``" on the seeds both have (seed -> value)."""
    seeds = tuple(sorted(set(better) & set(worse)))
    diffs = tuple(float(worse[s]) - float(better[s]) for s in seeds)
    n = len(diffs)
    nan = math.nan
    if n == 0:
        return PairedBySeed(diffs, seeds, nan, nan, nan, nan, "not decided", None)
    mean = math.fsum(diffs) / n
    if n == 1:
        return PairedBySeed(diffs, seeds, mean, nan, nan, nan, "not decided", None)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    if _no_spread(diffs, sd):  # a zero-width interval: no test, whatever the mean
        return PairedBySeed(diffs, seeds, mean, nan, nan, nan, "not decided", None)
    half = _t_quantile(n - 1) * sd / math.sqrt(n)
    p = _t_p_value(mean / (sd / math.sqrt(n)), n - 1)
    outcome = _outcome(p, 1 if mean > 0 else -1, alpha)
    needed = seeds_needed(mean, sd, n, alpha)
    return PairedBySeed(diffs, seeds, mean, mean - half, mean + half, p, outcome, needed)


def paired_power(mean: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """The power of the two-sided paired t test at level ``alpha`` with ``n`` seeds, if the
    true mean difference were ``mean`` and its standard deviation ``sd`` (noncentral t)."""
    from scipy.stats import nct

    df = n - 1
    crit = _t_quantile(df, alpha)
    shift = abs(mean) / sd * math.sqrt(n)
    power = float(nct.sf(crit, df, shift) + nct.cdf(-crit, df, shift))
    if not math.isfinite(power):  # scipy's series fails far out in the tail: power is ~1 there
        return 1.0 if shift > crit else 0.0
    return power


def seeds_needed(mean: float, sd: float, n: int, alpha: float = ALPHA) -> int | None:
    """The fewest seeds (more than ``n``) at which the paired t test at level ``alpha`` would
    reach :data:`POWER` if ``mean`` and ``sd`` were the truth; None when the spread is zero or
    unknown, or beyond MAX_SEEDS."""
    if mean == 0 or not math.isfinite(mean) or not (math.isfinite(sd) and sd > 0):
        return None
    low, high = max(n + 1, 2), max(n + 1, 2)
    while paired_power(mean, sd, high, alpha) < POWER:  # double up to a bracket
        if high >= MAX_SEEDS:
            return None
        low, high = high + 1, min(2 * high, MAX_SEEDS)
    while low < high:  # power rises with the number of seeds: bisect
        mid = (low + high) // 2
        if paired_power(mean, sd, mid, alpha) >= POWER:
            high = mid
        else:
            low = mid + 1
    return low


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of "``better`` is right more often than ``worse``" on the same images."""

    only_better: int  # images the better set gets right and the other wrong
    only_worse: int  # and the reverse
    n: int  # images scored by both
    p_value: float  # two-sided, exact (binomial with p = 1/2 over the discordant images)
    outcome: Outcome  # at ALPHA alone, before any correction (a Family gives the verdict)

    @property
    def sign(self) -> int:
        return (self.only_better > self.only_worse) - (self.only_better < self.only_worse)

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
    sign = (only_better > only_worse) - (only_better < only_worse)
    return McNemar(only_better, only_worse, len(better_correct), p, _outcome(p, sign, ALPHA))


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (nan counts as 1: a test that
    could not be made still belongs to the family)."""
    m = len(p_values)
    ps = [p if math.isfinite(p) else 1.0 for p in p_values]
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class Family:
    """The tests of one page, judged together: Holm's correction over all of them at
    ``ALPHA / looks`` (the level split evenly across the page's looks at its data).

    A page's verdicts are built twice by :func:`judge_family`: once to gather every test's
    p-value, once to decide each from its Holm-adjusted p-value. Until the p-values are
    gathered, :meth:`outcome` answers the uncorrected outcome."""

    name: str
    looks: int = 1
    p_values: list[float] = field(default_factory=list)
    gathered: bool = False
    _adjusted: list[float] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.looks < 1:
            raise ValueError(f"family {self.name!r}: looks must be at least 1, got {self.looks}")

    @property
    def alpha(self) -> float:
        return ALPHA / self.looks

    @property
    def size(self) -> int:
        return len(self.p_values)

    def adjusted(self, test: Test) -> float:
        """The Holm-adjusted p-value of a test of this family (equal p-values share one)."""
        if not math.isfinite(test.p_value):
            return math.nan
        if self._adjusted is None or len(self._adjusted) != len(self.p_values):
            self._adjusted = holm_adjusted(self.p_values)  # once per gathered family
        return next(a for p, a in zip(self.p_values, self._adjusted) if p == test.p_value)

    def level_for(self, test: Test) -> float:
        """The level a test's raw p-value must clear at its step of Holm's method:
        ``alpha / (m - k)``, where ``k`` tests of the family have a smaller p-value (before
        the p-values are gathered, the page's level itself)."""
        if not self.gathered:
            return self.alpha
        smaller = sum(1 for p in self.p_values if math.isfinite(p) and p < test.p_value)
        return self.alpha / max(1, self.size - smaller)

    def outcome(self, test: Test) -> Outcome:
        """The verdict of one test, and the test counted in the family while gathering: from
        its Holm-adjusted p-value once the tests are gathered (the uncorrected one before)."""
        if not self.gathered:
            self.p_values.append(test.p_value)
        return self.outcome_of(test)

    def outcome_of(self, test: Test) -> Outcome:
        """:meth:`outcome` without counting the test (for a test already counted)."""
        if not self.gathered:
            return _outcome(test.p_value, test.sign, self.alpha)
        return _outcome(self.adjusted(test), test.sign, self.alpha)

    def note(self, test: Test) -> str:
        """``Holm-adjusted p = 0.086`` and, for a paired test left undecided, the seeds that
        would give it 80% power (empty when no test could be made)."""
        if not math.isfinite(test.p_value):
            return ""
        out = f"Holm-adjusted p = {self.adjusted(test):.3g}" if self.gathered else ""
        if self.outcome_of(test) == "not decided" and isinstance(test, PairedBySeed):
            level = self.level_for(test)  # the test's own step of Holm, not the bare 5%
            needed = seeds_needed(test.mean, test.sd, test.n, level)
            out += "; " if out else ""
            out += (
                f"about {needed} seeds would decide it with {POWER:.0%} power at this mean and "
                f"spread (noncentral t, at its Holm step's level {level:.3g})"
                if needed
                else f"more than {MAX_SEEDS} seeds would be needed at this spread"
            )
        return out

    def describe(self) -> str:
        """One sentence: how this page's verdicts were corrected."""
        looks = (
            f"{self.looks} looks at the data, so each look is tested at {ALPHA:.0%} / "
            f"{self.looks} = {self.alpha:.3g} (Bonferroni over looks)"
            if self.looks > 1
            else f"one look at the data, tested at {ALPHA:.0%}"
        )
        return (
            f"This page's family is its {self.size} test{'s' if self.size != 1 else ''}, "
            f"corrected together by Holm's step-down method; {looks}. The verdict is the "
            "corrected one; each raw p-value stays beside it."
        )


T = TypeVar("T")


def judge_family(build: Callable[[Family], T], name: str, looks: int = 1) -> T:
    """Build a page's verdicts with ``build(family)`` twice: the first pass gathers every
    test's p-value, the second decides each one by Holm over all of them."""
    family = Family(name, looks)
    build(family)
    family.gathered = True
    return build(family)
