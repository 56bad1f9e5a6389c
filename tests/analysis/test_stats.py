"""The tests that decide the paper's claims, against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from resnets.analysis.stats import (
    binomial_two_sided,
    combine,
    mcnemar_exact,
    paired_by_seed,
    seeds_needed,
)


def test_paired_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1; t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3)
    test = paired_by_seed({0: 0.0, 1: 0.0, 2: 0.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert test.mean == pytest.approx(2.0)
    assert test.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert test.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert test.outcome == "not decided"
    # with 4 seeds: t(0.975, 3) = 3.182 -> half-width 1.59 < 2
    assert test.seeds_needed == 4 == seeds_needed(2.0, 1.0, 3)


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
    assert seeds_needed(1.0, 0.0, 2) == 3


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
