"""The tests that decide the paper's claims, against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from resnets.analysis.stats import (
    Family,
    binomial_two_sided,
    combine,
    holm_adjusted,
    judge_family,
    mcnemar_exact,
    paired_by_seed,
    paired_power,
    seeds_needed,
)


def test_paired_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1; t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3)
    test = paired_by_seed({0: 0.0, 1: 0.0, 2: 0.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert test.mean == pytest.approx(2.0)
    assert test.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert test.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert test.outcome == "not decided"
    # t = 2 / (1 / sqrt(3)) = 3.4641 on 2 degrees of freedom: two-sided p = 0.0742
    assert test.p_value == pytest.approx(0.07418, abs=1e-5)
    # 80% power at effect size 2 (noncentral t): 4 seeds fall short, 5 reach it
    assert paired_power(2.0, 1.0, 4) < 0.8 <= paired_power(2.0, 1.0, 5)
    assert test.seeds_needed == 5 == seeds_needed(2.0, 1.0, 3)


@pytest.mark.parametrize(
    "worse, outcome",
    [
        ({0: 2.0, 1: 2.1, 2: 1.9}, "holds"),  # every seed on the paper's side, tight
        ({0: -2.0, 1: -2.1, 2: -1.9}, "contradicted"),  # every seed on the other side
        ({0: 2.0, 1: -1.0, 2: 0.5}, "not decided"),  # the sign changes with the seed
    ],
)
def test_paired_by_seed_has_three_outcomes(worse, outcome):
    assert paired_by_seed({0: 0.0, 1: 0.0, 2: 0.0}, worse).outcome == outcome


def test_paired_by_seed_pairs_only_common_seeds_and_needs_two():
    test = paired_by_seed({0: 0.1, 1: 0.2, 5: 0.3}, {1: 0.5, 5: 0.7, 9: 0.0})
    assert test.seeds == (1, 5) and test.diffs == pytest.approx((0.3, 0.4))
    one = paired_by_seed({0: 0.1}, {0: 0.5})
    assert one.outcome == "not decided" and "needs at least 2" in one.text()
    assert paired_by_seed({0: 0.1}, {1: 0.5}).text() == "no seed in common"


def test_seeds_needed_gives_up_on_a_negligible_gap():
    assert seeds_needed(1e-9, 1.0, 3) is None
    assert seeds_needed(0.0, 1.0, 3) is None
    assert seeds_needed(1.0, 0.0, 2) is None  # no spread: nothing to size a study on


def test_power_matches_published_values():
    """The paired t test's power by the noncentral t: effect size 1 with 10 pairs, two-sided
    5%, has power 0.8031 (G*Power's and R's power.t.test(type="paired") value)."""
    assert paired_power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=5e-4)
    # the sizes, recomputed from each page's mean and interval at 80% power
    sd_b = 2.30 * math.sqrt(3) / 4.302653  # (b) at budget 0.1: -0.69, 95% CI -2.99 to +1.61
    assert seeds_needed(0.69, sd_b, 3) == 17
    sd_h = 2.84 * 2 / 3.182446  # shortcut (h): +1.93, CI -0.91 to +4.77, 4 seeds
    assert seeds_needed(1.93, sd_h, 4) == 9


def test_holm_adjusted_by_hand():
    # sorted 0.0025, 0.043, 0.33 over 3 tests: 3 x 0.0025, 2 x 0.043, max(1 x 0.33, before)
    assert holm_adjusted([0.043, 0.0025, 0.33]) == pytest.approx([0.086, 0.0075, 0.33])
    # monotone: a larger raw p never gets a smaller adjusted one; nan counts as 1
    assert holm_adjusted([0.01, 0.011, math.nan]) == pytest.approx([0.03, 0.03, 1.0])


def test_a_family_decides_by_the_adjusted_p():
    # 20 vs 3 and 12 vs 3 discordant images: exact p = 2**-11 and 0.03515625
    tests = [mcnemar_exact([True] * k + [False] * 3, [False] * k + [True] * 3) for k in (20, 12)]
    assert [t.p_value for t in tests] == pytest.approx([2**-11, 0.03515625])
    assert [t.outcome for t in tests] == ["holds", "holds"]  # each alone at 5%
    one = judge_family(lambda f: [f.outcome(t) for t in tests], "two", looks=1)
    assert one == ["holds", "holds"]  # Holm: 2 x 0.00049 and 1 x 0.035, both under 0.05
    # three looks: level 0.0167; the second test's adjusted p 0.035 no longer clears it
    three = judge_family(lambda f: [f.outcome(t) for t in tests], "two, three looks", looks=3)
    assert three == ["holds", "not decided"]
    with pytest.raises(ValueError, match="looks must be at least 1"):
        Family("x", looks=0)


def test_seeds_to_decide_are_sized_at_the_tests_holm_step():
    # two paired tests: the smaller p is at Holm's first step (0.05 / 2), the other at 0.05
    small = paired_by_seed({0: 0.0, 1: 0.0, 2: 0.0}, {0: 1.0, 1: 1.2, 2: 0.9})
    large = paired_by_seed({0: 0.0, 1: 0.0, 2: 0.0}, {0: 0.5, 1: -0.3, 2: 0.9})
    family = Family("pair", p_values=[small.p_value, large.p_value], gathered=True)
    assert small.p_value < large.p_value and large.outcome == "not decided"
    assert family.level_for(small) == pytest.approx(0.025)
    assert family.level_for(large) == pytest.approx(0.05)
    note = family.note(large)
    needed = seeds_needed(large.mean, large.sd, large.n, 0.05)
    assert f"about {needed} seeds" in note and "level 0.05" in note
    # two looks halve every step: more seeds are needed than the test's own 5% figure says
    halved = Family("pair, two looks", looks=2, p_values=list(family.p_values), gathered=True)
    strict = seeds_needed(large.mean, large.sd, large.n, 0.025)
    assert strict > large.seeds_needed
    assert f"about {strict} seeds" in halved.note(large) and "level 0.025" in halved.note(large)


def test_binomial_two_sided_by_hand():
    # 2 of 12: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096
    assert binomial_two_sided(2, 12) == pytest.approx(158 / 4096)
    assert binomial_two_sided(10, 12) == pytest.approx(158 / 4096)
    assert binomial_two_sided(6, 12) == 1.0
    assert binomial_two_sided(0, 0) == 1.0
    # thousands of discordant images: exact integers, no overflow
    assert 0 < binomial_two_sided(900, 2000) < 1e-5


def test_mcnemar_exact_by_hand():
    # 10 images only the first gets right, 2 only the second, 8 both, 5 neither
    first = [True] * 10 + [False] * 2 + [True] * 8 + [False] * 5
    second = [False] * 10 + [True] * 2 + [True] * 8 + [False] * 5
    test = mcnemar_exact(first, second)
    assert (test.only_better, test.only_worse, test.n) == (10, 2, 25)
    assert test.p_value == pytest.approx(158 / 4096)
    assert test.outcome == "holds"
    assert mcnemar_exact(second, first).outcome == "contradicted"
    # 6 against 4: p = 0.754, not decided
    close = mcnemar_exact([True] * 6 + [False] * 4, [False] * 6 + [True] * 4)
    assert close.outcome == "not decided" and close.p_value == pytest.approx(0.75390625)
    with pytest.raises(ValueError, match="same images"):
        mcnemar_exact([True], [True, False])


def test_combine():
    assert combine(["holds", "holds"]) == "holds"
    assert combine(["holds", "not decided"]) == "not decided"
    assert combine(["holds", "contradicted", "not decided"]) == "contradicted"
    assert combine([]) == "not decided"
    # parts still untested (their runs missing): the claim waits, unless one already contradicts
    assert combine(["holds", "holds"], waiting=True) == "missing"
    assert combine(["holds", "contradicted"], waiting=True) == "contradicted"
