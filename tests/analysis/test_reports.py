"""The paper's claims are decided by the numbers: made-up run tables where each claim holds
and where it fails, and the reports that print those verdicts."""

from __future__ import annotations

import pytest

from resnets.analysis.experiments.cifar_table import ordering_verdict
from resnets.analysis.experiments.degradation import degradation_verdicts
from resnets.analysis.experiments.responses import response_verdict
from resnets.analysis.experiments.shortcuts import shortcut_verdicts
from resnets.analysis.experiments.transfer import transfer_verdict
from resnets.analysis.reports import RunFinal, Spread, Verdict, verdict_block


def runs(*pairs: tuple[float, float]) -> list[RunFinal]:
    """One RunFinal per (training, validation) error pair, seeds 0, 1, 2, ... in order."""
    return [RunFinal(t, v, seed) for seed, (t, v) in enumerate(pairs)]


# the paper's picture, 3 seeds: plain-56 worse than plain-20, ResNet-56 better than ResNet-20
# and plain-56, each by a margin that varies little from seed to seed
PAPER_LIKE = {
    "plain20": runs((0.10, 0.12), (0.11, 0.13), (0.12, 0.12)),
    "plain56": runs((0.15, 0.17), (0.16, 0.18), (0.18, 0.18)),
    "resnet20": runs((0.08, 0.11), (0.09, 0.12), (0.08, 0.115)),
    "resnet56": runs((0.05, 0.09), (0.06, 0.10), (0.05, 0.096)),
}


def by_label(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.label: v for v in verdicts}


def test_degradation_claims_hold_on_a_paper_like_table():
    v = by_label(degradation_verdicts(PAPER_LIKE))
    assert [v[k].outcome for k in ("(a)", "(b)", "(c)")] == ["holds"] * 3
    assert "**holds**" in v["(a)"].line()
    # the evidence carries the means with their spread and the paired interval
    assert "16.33 ± 1.53% (3 seeds)" in v["(a)"].evidence
    assert "3 seeds paired" in v["(b)"].evidence


@pytest.mark.parametrize(
    "change, failing",
    [
        # plain-56 trains better than plain-20 on every seed: degradation contradicted
        ({"plain56": runs((0.05, 0.17), (0.062, 0.18), (0.07, 0.18))}, "(a)"),
        # plain-56 lower on validation only: (a) needs both errors higher
        ({"plain56": runs((0.15, 0.10), (0.16, 0.112), (0.18, 0.10))}, "(a)"),
        # ResNet-56 behind ResNet-20 on validation, seed by seed
        ({"resnet56": runs((0.05, 0.13), (0.06, 0.14), (0.05, 0.136))}, "(b)"),
        # ResNet-56 behind plain-56
        ({"resnet56": runs((0.05, 0.19), (0.06, 0.20), (0.05, 0.196))}, "(c)"),
    ],
)
def test_each_degradation_claim_is_contradicted_when_every_seed_says_so(change, failing):
    v = by_label(degradation_verdicts({**PAPER_LIKE, **change}))
    assert v[failing].outcome == "contradicted"
    assert "**contradicted**" in v[failing].line()


def test_a_gap_inside_the_seed_spread_is_not_decided_and_says_what_would_decide_it():
    """Means ordered as the paper says, but seed by seed the sign changes: the interval spans
    zero, so neither side is earned; the verdict names the seeds a decision would need."""
    table = {**PAPER_LIKE, "resnet56": runs((0.05, 0.05), (0.06, 0.17), (0.05, 0.10))}
    v = by_label(degradation_verdicts(table))
    assert v["(b)"].outcome == "not decided"
    assert "**not decided at this budget**" in v["(b)"].line()
    assert "seeds would decide it with 80% power at this mean and spread" in v["(b)"].evidence


def test_one_seed_never_decides_a_paired_claim():
    one = {k: v[:1] for k, v in PAPER_LIKE.items()}
    v = by_label(degradation_verdicts(one))
    assert all(x.outcome == "not decided" for x in v.values())
    assert "a paired test needs at least 2" in v["(b)"].evidence


def test_runs_pair_by_seed_not_by_position():
    """Seeds 0 and 2 only on one side: the test pairs the seeds both have."""
    resnet56 = [RunFinal(0.05, 0.09, 0), RunFinal(0.05, 0.096, 2)]
    v = by_label(degradation_verdicts({**PAPER_LIKE, "resnet56": resnet56}))
    assert "2 seeds paired" in v["(b)"].evidence


def test_missing_runs_leave_a_claim_undecided():
    v = by_label(degradation_verdicts({"plain20": PAPER_LIKE["plain20"]}))
    assert all(x.outcome == "missing" for x in v.values())
    assert "not decided (runs missing)" in v["(a)"].line() and "plain56" in v["(a)"].line()


def test_ordering_claim():
    depths = [20, 32, 44, 56, 110]
    good = {
        # each step 0.01 lower, less a little that differs by seed (a spread, so a test)
        f"resnet{d}": runs(*((0.0, 0.10 - 0.01 * i + 0.0007 * i * s) for s in (0, 2, 1)))
        for i, d in enumerate(depths)
    }
    assert ordering_verdict(good, depths).outcome == "holds"
    # ResNet-44 worse than ResNet-32 on every seed: that step, so the claim, is contradicted
    bad = {**good, "resnet44": runs((0.0, 0.095), (0.0, 0.097), (0.0, 0.094))}
    verdict = ordering_verdict(bad, depths)
    assert verdict.outcome == "contradicted" and "32->44 " in verdict.evidence
    # one seed per depth: no step can be decided
    single = {k: v[:1] for k, v in good.items()}
    assert ordering_verdict(single, depths).outcome == "not decided"
    missing = {k: v for k, v in good.items() if k != "resnet110"}
    assert ordering_verdict(missing, depths).outcome == "missing"


def test_response_claim():
    good = {
        "plain20": {0: 0.9, 1: 0.92, 2: 0.91},
        "resnet20": {0: 0.8, 1: 0.81, 2: 0.80},
        "plain56": {0: 1.5, 1: 1.4, 2: 1.45},
        "resnet56": {0: 0.7, 1: 0.72, 2: 0.71},
    }
    assert response_verdict(good).outcome == "holds"
    # residual smaller than plain at each depth, but the deeper ResNet's responses are larger
    assert (
        response_verdict({**good, "resnet56": {0: 0.85, 1: 0.86, 2: 0.84}}).outcome
        == "contradicted"
    )
    # one seed of each: not decided
    one = {k: {0: v[0]} for k, v in good.items()}
    assert response_verdict(one).outcome == "not decided"
    assert response_verdict({"plain20": {0: 0.9}}).outcome == "missing"


def test_spread_formats():
    assert Spread.of([0.1]).pct() == "10.00% (1 seed)"
    assert Spread.of([0.1, 0.2]).pct() == "15.00 ± 7.07% (2 seeds)"
    assert Spread.of([]).pct() == "n/a"


def test_verdicts_round_trip_and_the_summary_counts_what_holds(tmp_path):
    """verdicts.json gives back the verdicts written; the summary page lists every claim in
    label order with its own report, and counts the ones that hold (missing runs do not)."""
    from resnets.analysis.reports import read_verdicts, summary_section, write_verdicts

    table = {**PAPER_LIKE, "resnet56": runs((0.09, 0.125), (0.10, 0.1345), (0.1, 0.1301))}
    degradation = degradation_verdicts(table)
    order = ordering_verdict({}, [20, 32])  # no runs: not decided
    write_verdicts(tmp_path, degradation)
    assert read_verdicts(tmp_path / "verdicts.json") == degradation
    lines = summary_section([("cifar-table", [order]), ("degradation", degradation)])
    rows = [line for line in lines if line.startswith("| (")]
    assert [row[2:5] for row in rows] == ["(a)", "(b)", "(c)", "(d)"]
    assert "**holds**" in rows[0] and "**contradicted**" in rows[1]
    assert "**not decided (runs missing)**" in rows[3] and "(cifar-table/RESULTS.md)" in rows[3]
    assert "Of 4 claims: 2 hold, 1 contradicted, 1 not decided." in "\n".join(lines)
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


def test_only_comparable_zoo_weights_count_at_the_whole_schedule():
    """Only weights of the paper's recipe, at the whole schedule, on this data and one held-out
    split count."""
    from resnets.analysis.reports import full_schedule_weights

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
    assert [w.name for w in full_schedule_weights(named, ["data-b"])] == ["resnet110.other"]
    assert full_schedule_weights(named, ["data-c"]) == []


def _degradation_folder(tmp_path, experiment: str, *extra_rows: str):
    """A written degradation report's folder: its experiment.json and PAPER_LIKE's runs.csv
    (with ``extra_rows`` after them)."""
    folder = tmp_path / "degradation"
    folder.mkdir()
    (folder / "experiment.json").write_text(experiment)
    rows = ["name,model,seed,final_train_err,final_val_err"]
    for model, finals in PAPER_LIKE.items():
        rows += [f"{model}-s{r.seed},{model},{r.seed},{r.train_err},{r.val_err}" for r in finals]
    (folder / "runs.csv").write_text("\n".join([*rows, *extra_rows]) + "\n")
    return folder


def test_a_written_report_is_judged_again_from_its_csv(tmp_path):
    """`analyze verdicts`' step: the verdicts come from runs.csv alone; a page without its
    markers is refused before anything is written."""
    from resnets.analysis.experiments.verdicts import rejudge, write_rejudged
    from resnets.analysis.report_csv import run_table_from_csv
    from resnets.analysis.reports import VERDICTS_BEGIN, VERDICTS_END

    folder = _degradation_folder(tmp_path, '{"args": {"depths": "20,56"}}')
    assert run_table_from_csv(folder / "runs.csv") == PAPER_LIKE
    page = f"# Report\n\n{VERDICTS_BEGIN}\n- (a) old words\n{VERDICTS_END}\n\nthe rest\n"
    (folder / "RESULTS.md").write_text(page)
    verdicts, text, looks = rejudge(folder)
    fresh = degradation_verdicts(PAPER_LIKE)
    assert [(v.outcome, v.evidence) for v in verdicts] == [(v.outcome, v.evidence) for v in fresh]
    assert all("Every look at this page's data: (1) " in v.family for v in verdicts)
    assert [look["seeds"] for look in looks] == [{m: [0, 1, 2] for m in sorted(PAPER_LIKE)}]
    assert (folder / "RESULTS.md").read_text() == page  # nothing written yet
    write_rejudged(folder, verdicts, text, looks)
    written = (folder / "RESULTS.md").read_text()
    assert "old words" not in written and verdicts[0].line() in written
    assert written.endswith("\n\nthe rest\n")
    (folder / "RESULTS.md").write_text("# Report without markers\n")
    with pytest.raises(ValueError, match="markers"):
        rejudge(folder)
    (folder / "runs.csv").write_text("model,seed\nresnet20,zero\n")
    with pytest.raises(ValueError, match="row 2: seed 'zero' is not a whole number"):
        rejudge(folder)


def _transfer_table(gaps_few: list[float], gaps_many: list[float]) -> dict:
    """Made-up transfer runs: per seed, fine-tuning's error below scratch's by the given gap."""
    table: dict = {}
    for seed, (few, many) in enumerate(zip(gaps_few, gaps_many)):
        for n, gap in ((10, few), (0, many)):
            scratch = 0.5 + 0.01 * seed
            table.setdefault(("from scratch", n), {})[seed] = scratch
            table.setdefault(("fine-tuned", n), {})[seed] = scratch - gap
            table.setdefault(("linear probe", n), {})[seed] = scratch + 0.001 * seed
    return table


@pytest.mark.parametrize(
    "gaps_few, gaps_many, outcome",
    [
        ([0.20, 0.22, 0.18], [0.05, 0.06, 0.04], "holds"),  # helps, and most with few labels
        ([0.20, 0.22, 0.18], [0.30, 0.31, 0.29], "contradicted"),  # helps more with many labels
        ([0.20, -0.10, 0.05], [0.01, 0.02, 0.00], "not decided"),  # seed noise
        ([0.30], [0.01], "not decided"),  # one seed never decides
    ],
)
def test_the_transfer_claim_is_decided_paired_by_seed(gaps_few, gaps_many, outcome):
    verdict = transfer_verdict(_transfer_table(gaps_few, gaps_many), 10, 0)
    assert verdict.outcome == outcome, verdict.evidence
    assert "the linear probe" in verdict.evidence


def test_shortcut_claims():
    """Table 3: every option beats plain (g), B beats A (h), C beats B (i); each of the three
    outcomes from a made-up table."""
    good = {
        "plain": runs((0.0, 0.50), (0.0, 0.52), (0.0, 0.51)),
        "A": runs((0.0, 0.43), (0.0, 0.44), (0.0, 0.435)),
        "B": runs((0.0, 0.41), (0.0, 0.42), (0.0, 0.414)),
        "C": runs((0.0, 0.40), (0.0, 0.41), (0.0, 0.403)),
    }
    v = by_label(shortcut_verdicts(good))
    assert [v[k].outcome for k in ("(g)", "(h)", "(i)")] == ["holds"] * 3
    assert "plain minus option A, paired by seed" in v["(g)"].evidence
    # C behind B on every seed: (i) contradicted; one option behind plain: (g) contradicted
    worse_c = {**good, "C": runs((0.0, 0.42), (0.0, 0.4305), (0.0, 0.4241))}
    assert by_label(shortcut_verdicts(worse_c))["(i)"].outcome == "contradicted"
    c_behind_plain = {**good, "C": runs((0.0, 0.52), (0.0, 0.5405), (0.0, 0.5301))}
    assert by_label(shortcut_verdicts(c_behind_plain))["(g)"].outcome == "contradicted"
    # B against A changes sign from seed to seed: not decided
    mixed_b = {**good, "B": runs((0.0, 0.40), (0.0, 0.46), (0.0, 0.43))}
    assert by_label(shortcut_verdicts(mixed_b))["(h)"].outcome == "not decided"
    no_plain = by_label(shortcut_verdicts({k: x for k, x in good.items() if k != "plain"}))
    assert no_plain["(g)"].outcome == "missing" and "plain" in no_plain["(g)"].evidence


# ---------------------------------------------------------------------------------------------
# a page's tests are one family: Holm over them, at 5% split across the page's looks


def test_holm_over_the_page_turns_a_raw_pass_into_not_decided():
    """Three whole-schedule-like p-values: 0.0025 survives Holm (x3), 0.043 does not (x2)."""
    shortcut_like = {
        "plain": runs((0.0, 0.50), (0.0, 0.52), (0.0, 0.51)),
        "A": runs((0.0, 0.43), (0.0, 0.44), (0.0, 0.435)),
        # B ahead of A on each seed by a margin that passes alone (p ~0.03) but not after Holm
        "B": runs((0.0, 0.42), (0.0, 0.425), (0.0, 0.427)),
        "C": runs((0.0, 0.40), (0.0, 0.47), (0.0, 0.39)),
    }
    from resnets.analysis.claims import paired

    raw = paired(shortcut_like, "B", "A", "val_err")
    assert raw.outcome == "holds" and 0.01 < raw.p_value < 0.05
    v = by_label(shortcut_verdicts(shortcut_like))
    assert v["(h)"].outcome == "not decided"
    assert f"p = {raw.p_value:.3g}" in v["(h)"].evidence  # the raw p stays beside it
    assert "Holm-adjusted p = " in v["(h)"].evidence
    assert "5 tests, corrected together by Holm" in v["(h)"].family
    assert v["(h)"].family in "\n".join(verdict_block(list(v.values())))


def test_a_second_look_halves_the_level():
    """The same differences: decided at one look (p ~0.03), not at two (tested at 2.5%)."""
    table = {**PAPER_LIKE, "resnet56": runs((0.05, 0.10), (0.06, 0.113), (0.05, 0.102))}
    from resnets.analysis.claims import paired

    p = paired(table, "resnet56", "resnet20", "val_err").p_value
    assert 0.025 < p < 0.05  # passes alone, not at half the level
    one = by_label(
        degradation_verdicts({"resnet20": table["resnet20"], "resnet56": table["resnet56"]})
    )
    two = by_label(
        degradation_verdicts(
            {"resnet20": table["resnet20"], "resnet56": table["resnet56"]}, looks=2
        )
    )
    assert one["(b)"].outcome == "holds"
    assert two["(b)"].outcome == "not decided"
    assert "2 looks at the data" in two["(b)"].family and "0.025" in two["(b)"].family


def test_looks_are_recorded_and_a_new_seed_set_is_a_new_look(tmp_path):
    from resnets.analysis.reports import counted_looks, judge_page, read_verdicts

    table = {m: r[:2] for m, r in PAPER_LIKE.items()}

    def build(looks: int) -> list[Verdict]:
        return degradation_verdicts(current, looks=looks)

    current = table
    judge_page(tmp_path, {m: [0, 1] for m in table}, build)
    current = PAPER_LIKE
    judge_page(tmp_path, {m: [0, 1] for m in table}, build)  # the same seeds: the same look
    judged = judge_page(tmp_path, {m: [0, 1, 2] for m in table}, build)
    import json

    record = json.loads((tmp_path / "verdicts.json").read_text())
    assert [sorted(look["seeds"]["plain20"]) for look in record["looks"]] == [[0, 1], [0, 1, 2]]
    assert counted_looks(record["looks"]) == 2
    assert read_verdicts(tmp_path / "verdicts.json") == judged
    assert "2 looks at the data" in judged[0].family
    # a look at one seed per model could decide nothing: it spends no level
    assert counted_looks([{"seeds": {"a": [0]}}, {"seeds": {"a": [0, 1]}}]) == 1


def test_zero_spread_is_never_decided():
    """Errors on 5,000 images move in steps of 0.02 points: equal differences on every seed
    happen, and a zero-width interval must not read as a decision."""
    same_gap = {
        "resnet20": runs((0.0, 0.1200), (0.0, 0.1300), (0.0, 0.1250)),
        "resnet56": runs((0.0, 0.1100), (0.0, 0.1200), (0.0, 0.1150)),
    }
    v = by_label(degradation_verdicts(same_gap))
    assert v["(b)"].outcome == "not decided"
    assert "no spread: the paired test is not made" in v["(b)"].evidence


# ---------------------------------------------------------------------------------------------
# a results table is validated before it is judged (issue 44, V02)


def _runs_csv(tmp_path, lines: list[str]):
    path = tmp_path / "runs.csv"
    path.write_text("name,model,seed,iters,final_train_err,final_val_err\n" + "\n".join(lines))
    return path


@pytest.mark.parametrize(
    "lines, message",
    [
        # the same run twice: the spread would count it twice while the pairing kept one
        (["a,resnet56,0,64,0.1,0.1", "b,resnet56,0,64,0.1,0.2"], "row 3: resnet56 seed 0 again"),
        (["a,resnet56,,64,0.1,0.1"], "row 2: no seed"),
        (["a,resnet56,x,64,0.1,0.1"], "row 2: seed 'x' is not a whole number"),
        (["a,resnet56,0,64,0.1,nan"], "row 2: final_val_err 'nan' is not a fraction"),
        (["a,resnet56,0,64,0.1,12.5"], "row 2: final_val_err '12.5' is not a fraction"),
        (["a,resnet56,0,64,-0.1,0.1"], "row 2: final_train_err '-0.1' is not a fraction"),
        (["a,resnet56,0,64,0.1,0.1", "b,resnet20,0,32,0.1,0.1"], "row 3: 32 iterations against 64"),
    ],
)
def test_a_bad_runs_csv_is_refused_naming_the_row(tmp_path, lines, message):
    from resnets.analysis.report_csv import run_table_from_csv

    path = _runs_csv(tmp_path, lines)
    with pytest.raises(ValueError, match=message) as caught:
        run_table_from_csv(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_duplicated_row_no_longer_flips_a_verdict(tmp_path):
    """Issue 44's V02 through the command: analyze verdicts refuses the table in one line and
    writes nothing."""
    from resnets.analysis.experiments.verdicts import rejudge

    folder = _degradation_folder(
        tmp_path, '{"args": {"depths": [20, 56]}}', "again,resnet56,0,0.5,0.5"
    )
    (folder / "RESULTS.md").write_text("page")
    with pytest.raises(ValueError, match="resnet56 seed 0 again"):
        rejudge(folder)
    assert (folder / "RESULTS.md").read_text() == "page" and not (folder / "verdicts.json").exists()
