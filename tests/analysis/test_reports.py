"""The paper's claims are decided by the numbers: made-up run tables where each claim holds
and where it fails, and the reports that print those verdicts."""

from __future__ import annotations

import pytest

from resnets.analysis.reports import (
    RunFinal,
    Spread,
    Verdict,
    degradation_verdicts,
    ordering_verdict,
    response_verdict,
)


def runs(*pairs: tuple[float, float]) -> list[RunFinal]:
    return [RunFinal(t, v) for t, v in pairs]


# the paper's picture: plain-56 worse than plain-20, ResNet-56 better than ResNet-20 and plain-56
PAPER_LIKE = {
    "plain20": runs((0.10, 0.12), (0.11, 0.13)),
    "plain56": runs((0.15, 0.17), (0.16, 0.18)),
    "resnet20": runs((0.08, 0.11), (0.09, 0.12)),
    "resnet56": runs((0.05, 0.09), (0.06, 0.10)),
}


def by_label(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.label: v for v in verdicts}


def test_degradation_claims_hold_on_a_paper_like_table():
    v = by_label(degradation_verdicts(PAPER_LIKE))
    assert [v[k].holds for k in ("(a)", "(b)", "(c)")] == [True, True, True]
    assert all(not x.within_spread for x in v.values())
    assert "**holds**" in v["(a)"].line()
    # the evidence carries the means with their spread over the 2 seeds
    assert "15.50 ± 0.71% (2 seeds)" in v["(a)"].evidence


@pytest.mark.parametrize(
    "change, failing",
    [
        # plain-56 trains better than plain-20: no degradation
        ({"plain56": runs((0.09, 0.17), (0.09, 0.18))}, "(a)"),
        # plain-56 lower on validation only: (a) needs both errors higher
        ({"plain56": runs((0.15, 0.11), (0.16, 0.11))}, "(a)"),
        # ResNet-56 behind ResNet-20 on validation
        ({"resnet56": runs((0.05, 0.13), (0.06, 0.14))}, "(b)"),
        # ResNet-56 behind plain-56
        ({"resnet56": runs((0.05, 0.19), (0.06, 0.20))}, "(c)"),
    ],
)
def test_each_degradation_claim_fails_when_its_numbers_say_so(change, failing):
    v = by_label(degradation_verdicts({**PAPER_LIKE, **change}))
    assert v[failing].holds is False
    assert "does not hold at this budget" in v[failing].line()


def test_a_gap_inside_the_seed_spread_is_flagged():
    table = {**PAPER_LIKE, "resnet56": runs((0.05, 0.05), (0.06, 0.17))}  # mean 0.11, std 0.085
    v = by_label(degradation_verdicts(table))
    assert v["(b)"].holds is True and v["(b)"].within_spread
    assert "within the spread" in v["(b)"].line()


def test_missing_runs_leave_a_claim_undecided():
    v = by_label(degradation_verdicts({"plain20": PAPER_LIKE["plain20"]}))
    assert all(x.holds is None for x in v.values())
    assert "not decided" in v["(a)"].line() and "plain56" in v["(a)"].line()


def test_ordering_claim():
    depths = [20, 32, 44, 56, 110]
    good = {f"resnet{d}": runs((0.0, 0.10 - 0.01 * i)) for i, d in enumerate(depths)}
    assert ordering_verdict(good, depths).holds is True
    bad = {**good, "resnet44": runs((0.0, 0.095))}  # worse than ResNet-32's 0.09
    verdict = ordering_verdict(bad, depths)
    assert verdict.holds is False and "out of order at 32->44" in verdict.evidence
    missing = {k: v for k, v in good.items() if k != "resnet110"}
    assert ordering_verdict(missing, depths).holds is None


def test_response_claim():
    good = {"plain20": [0.9], "resnet20": [0.8], "plain56": [1.5], "resnet56": [0.7]}
    assert response_verdict(good).holds is True
    # residual smaller than plain at each depth, but the deeper ResNet's responses are larger
    assert response_verdict({**good, "resnet56": [0.85]}).holds is False
    # a ResNet with larger responses than its plain twin
    assert response_verdict({**good, "resnet20": [0.95]}).holds is False
    assert response_verdict({"plain20": [0.9]}).holds is None


def test_spread_formats():
    assert Spread.of([0.1]).pct() == "10.00% (1 seed)"
    assert Spread.of([0.1, 0.2]).pct() == "15.00 ± 7.07% (2 seeds)"
    assert Spread.of([]).pct() == "n/a"


def test_verdicts_round_trip_and_the_summary_counts_what_holds(tmp_path):
    """verdicts.json gives back the verdicts written; the summary page lists every claim in
    label order with its own report, and counts the ones that hold (missing runs do not)."""
    from resnets.analysis.reports import read_verdicts, summary_section, write_verdicts

    table = {**PAPER_LIKE, "resnet56": runs((0.09, 0.125), (0.10, 0.135))}  # (b) fails
    degradation = degradation_verdicts(table)
    order = ordering_verdict({}, [20, 32])  # no runs: not decided
    write_verdicts(tmp_path, degradation)
    assert read_verdicts(tmp_path / "verdicts.json") == degradation
    lines = summary_section([("cifar-table", [order]), ("degradation", degradation)])
    rows = [line for line in lines if line.startswith("| (")]
    assert [row[2:5] for row in rows] == ["(a)", "(b)", "(c)", "(d)"]
    assert "**holds**" in rows[0] and "**does not hold at this budget**" in rows[1]
    assert "**not decided (runs missing)**" in rows[3] and "(cifar-table/RESULTS.md)" in rows[3]
    assert "2 of 4 claims hold at this budget" in "\n".join(lines)
    (tmp_path / "verdicts.json").write_text('{"label": "(a)"}')
    with pytest.raises(ValueError, match="verdicts.json: not a verdicts file"):
        read_verdicts(tmp_path / "verdicts.json")


def _zoo_meta(model: str, top1: float, *, recipe="he2015-cifar", iters=64_000, fp="data-a", seed=0):
    from resnets.models.weights import WeightsMeta

    return WeightsMeta(
        model=model,
        command=f"resnets train --recipe {recipe} --model {model} --seed {seed}",
        data_fingerprint=fp,
        metrics={"top1": top1, "n": 5000},
        split={"val_split": 5000.0, "seed": seed, "n_train": 45000, "n_val": 5000},
        final={"iters": iters, "train_err": 0.01},
    )


def test_the_whole_schedule_section_compares_only_comparable_zoo_weights():
    """Claim (d) from the zoo: only weights of the paper's recipe, at the whole schedule, on
    this data and one held-out split count; with one depth the claim is not decided."""
    from resnets.analysis.reports import full_schedule_section, full_schedule_weights

    named = {
        "resnet20.cifar10": _zoo_meta("resnet20", 0.876),
        "resnet32.cifar10": _zoo_meta("resnet32", 0.890),
        "resnet44.short": _zoo_meta("resnet44", 0.99, iters=6_400),  # a budgeted run
        "resnet56.fast": _zoo_meta("resnet56", 0.99, recipe="fast-cifar"),
        "resnet110.other": _zoo_meta("resnet110", 0.99, fp="data-b"),  # other data
        "resnet1202.seed1": _zoo_meta("resnet1202", 0.99, seed=1),  # another split
        "fast_resnet8.cifar10": _zoo_meta("fast_resnet8", 0.94, recipe="he2015-cifar-x"),
    }
    kept = full_schedule_weights(named, ["data-a", "alias-a"])
    assert [w.name for w in kept] == ["resnet20.cifar10", "resnet32.cifar10"]
    assert kept[0].final.val_err == pytest.approx(0.124)
    text = "\n".join(full_schedule_section(kept))
    assert "**holds**" in text and "ResNet-20 12.40% (1 seed); ResNet-32 11.00% (1 seed)" in text
    # binomial standard error of 12.40% on 5,000 images: sqrt(0.124 * 0.876 / 5000)
    assert "sampling error (binomial standard error) of 0.47 points" in text
    # 12.40% -> 11.00%: 1.40 points against hypot(0.47, 0.44) = 0.64
    assert "ResNet-20 -> ResNet-32: the error falls by 1.40 points" in text
    assert "is 0.64 points" in text and "so the gap is larger than it." in text
    worse = {**named, "resnet32.cifar10": _zoo_meta("resnet32", 0.870)}
    text = "\n".join(full_schedule_section(full_schedule_weights(worse, ["data-a"])))
    assert "**does not hold at this budget**" in text and "out of order at 20->32" in text
    assert "the error rises by 0.60 points" in text and "so the gap is within it." in text
    alone = "\n".join(full_schedule_section(full_schedule_weights(named, ["data-b"])))
    assert "**not decided (runs missing)**. needs a second depth: ResNet-110 alone" in alone
    assert full_schedule_section([])[-1] == "None yet."
