"""Table 6 at the whole schedule: McNemar verdicts on made-up per-image results, and the rows of
depths whose runs are still training."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from resnets.analysis.reports import FullScheduleWeights, RunFinal
from resnets.analysis.whole_schedule import BEGIN, END, run_progress, table6_section
from resnets.analysis.zoo_claims import Scored, whole_schedule_verdicts

N = 1000


def scored(
    model: str,
    wrong: list[int],
    *,
    indices: np.ndarray | None = None,
    response: float = 1.0,
    train_wrong: list[int] | None = None,
) -> Scored:
    """Weights of ``model`` that get every held-out image right but those in ``wrong``, whose
    3x3 layers respond to each of 200 images with a std of about ``response``; with
    ``train_wrong``, also scored on 2,000 training images (indices N to 3N), all right but
    those."""
    hits = np.ones(N, dtype=bool)
    hits[wrong] = False
    weights = FullScheduleWeights(
        f"{model}.cifar10",
        model,
        RunFinal(0.01, len(wrong) / N),
        64_000,
        N,
        "1,000 images held out, seed 0",
        1234,
    )
    layers = int(model.removeprefix("resnet").removeprefix("plain")) - 2  # 3x3 layers: 6n
    noise = np.random.default_rng(len(model) + layers).normal(0, 0.05, (200, layers))
    trained = Scored(
        weights,
        np.arange(N) if indices is None else indices,
        hits,
        1 - len(wrong) / N,
        response + noise,
    )
    if train_wrong is None:
        return trained
    train_hits = np.ones(2 * N, dtype=bool)
    train_hits[train_wrong] = False
    return replace(trained, train_indices=np.arange(N, 3 * N), train_hits=train_hits)


def by_label(verdicts):
    return {v.label: v for v in verdicts}


def test_mcnemar_decides_each_claim_on_the_same_images():
    # ResNet-20 wrong on images 0-119; ResNet-56 on 0-79 and 500-509 (40 only ResNet-20 misses,
    # 10 only ResNet-56 misses: p < 0.001); plain-56 on 0-299; plain-20 on 0-129
    zoo = {
        "resnet20": scored("resnet20", list(range(120))),
        "resnet56": scored("resnet56", [*range(80), *range(500, 510)]),
        "plain56": scored("plain56", list(range(300)), train_wrong=list(range(200))),
        "plain20": scored("plain20", list(range(130)), train_wrong=list(range(20))),
    }
    v = by_label(whole_schedule_verdicts(zoo))
    assert v["(b, whole schedule)"].outcome == "holds"
    assert "40 images right only with the first, 10 only with the second" in (
        v["(b, whole schedule)"].evidence
    )
    assert v["(c, whole schedule)"].outcome == "holds"
    # (a): 180 training images against 0, and 170 held-out images against 0
    assert v["(a, whole schedule)"].outcome == "holds"
    assert "training images (2,000): plain-20 1.00% against plain-56 10.00%" in (
        v["(a, whole schedule)"].evidence
    )
    assert "held-out images (1,000): plain-20 13.00% against plain-56 30.00%" in (
        v["(a, whole schedule)"].evidence
    )
    # the ordering needs every depth; the steps present are still tested
    assert v["(d, whole schedule)"].outcome == "missing"
    assert "20->56" in v["(d, whole schedule)"].evidence
    # ResNet-56 worse than ResNet-20 by 40 images: contradicted, and then so is (d)
    zoo["resnet56"] = scored("resnet56", list(range(160)))
    v = by_label(whole_schedule_verdicts(zoo))
    assert v["(b, whole schedule)"].outcome == "contradicted"
    assert v["(d, whole schedule)"].outcome == "contradicted"
    # 3 against 1: not decided
    zoo["resnet56"] = scored("resnet56", [*range(117), 900])
    assert by_label(whole_schedule_verdicts(zoo))["(b, whole schedule)"].outcome == "not decided"


def test_claim_a_needs_the_training_error_and_the_validation_error():
    held_out = {"plain20": list(range(100)), "plain56": list(range(200))}  # 100 against 0

    def claim_a(train20, train56):
        zoo = {
            "plain20": scored("plain20", held_out["plain20"], train_wrong=train20),
            "plain56": scored("plain56", held_out["plain56"], train_wrong=train56),
        }
        return by_label(whole_schedule_verdicts(zoo))["(a, whole schedule)"]

    # plain-56 fits its training images better than plain-20 (60 against 0): contradicted,
    # though it is worse on the held-out images
    a = claim_a(list(range(80)), list(range(20)))
    assert a.outcome == "contradicted"
    assert "training images (2,000): plain-20 4.00% against plain-56 1.00%" in a.evidence
    # 3 against 2 on the training images: not decided, whatever the held-out images say
    assert claim_a([10, 11], [20, 21, 22]).outcome == "not decided"
    # a plain net scored without its training images: the claim waits for them
    zoo = {
        "plain20": scored("plain20", held_out["plain20"]),
        "plain56": scored("plain56", held_out["plain56"], train_wrong=[1]),
    }
    a = by_label(whole_schedule_verdicts(zoo))["(a, whole schedule)"]
    assert a.outcome == "missing"
    assert a.evidence.endswith("not scored on the training images")
    # training images that differ between the two nets are refused, not compared
    zoo["plain20"] = replace(
        scored("plain20", [], train_wrong=[]), train_indices=np.arange(2 * N) + 7
    )
    with pytest.raises(ValueError, match="not scored on the same training images"):
        whole_schedule_verdicts(zoo)


def test_second_training_seeds_decide_b_paired_by_seed_as_a_second_look():
    from resnets.analysis.zoo_claims import seed_paired, training_seed

    assert training_seed("resnet56.cifar10", "resnet56") == 0
    assert training_seed("resnet56.cifar10_seed2", "resnet56") == 2
    assert training_seed("resnet56.cifar10_half", "resnet56") is None
    # seed 0's files: ResNet-56 right on 40 images ResNet-20 misses, wrong on 10 it gets
    r20 = scored("resnet20", list(range(120)))
    r56 = scored("resnet56", [*range(80), *range(500, 510)])
    assert seed_paired({"resnet20": r20, "resnet56": r56}) == []
    # a second seed each, 2.5 points apart as seed 0's are 3.0 apart: 2 seeds paired, mean 2.75
    # points and sd 0.35 (p = 0.058): not decided, however strong seed 0's McNemar test was
    zoo = {
        "resnet20": replace(r20, seed_errors={1: 0.115}),
        "resnet56": replace(r56, seed_errors={1: 0.090}),
    }
    assert seed_paired(zoo) == ["(b, whole schedule)"]
    b = by_label(whole_schedule_verdicts(zoo))["(b, whole schedule)"]
    assert b.outcome == "not decided" and "**not decided**." in b.line()  # no budget to name
    assert "ResNet-56 9.00% / 9.00% against ResNet-20 12.00% / 11.50%" in b.evidence
    assert "training seeds 0, 1" in b.evidence and "2 seeds paired" in b.evidence
    assert "images right only" not in b.evidence  # the seed-paired test replaces McNemar
    # the page counts the second look (5% / 2) and says what is paired by seed
    assert "2 looks at the data" in b.family
    text = "\n".join(table6_section(zoo, None))
    assert "**(b) paired by training seed**" in text and "One weights file per depth" not in text
    # three seeds, differences 3.0, 2.5, 2.9 points: holds, at the second look's 2.5%
    zoo["resnet20"] = replace(r20, seed_errors={1: 0.115, 2: 0.119})
    zoo["resnet56"] = replace(r56, seed_errors={1: 0.090, 2: 0.090})
    assert by_label(whole_schedule_verdicts(zoo))["(b, whole schedule)"].outcome == "holds"
    # seeds the other model lacks are not paired: seed 0 alone is McNemar's again
    zoo["resnet20"] = replace(r20, seed_errors={3: 0.115})
    b = by_label(whole_schedule_verdicts(zoo))["(b, whole schedule)"]
    assert "images right only" in b.evidence and "one look at the data" in b.family


def test_the_ordering_over_every_depth():
    wrong = {20: 150, 32: 120, 44: 90, 56: 60, 110: 30}
    zoo = {f"resnet{d}": scored(f"resnet{d}", list(range(k))) for d, k in wrong.items()}
    assert by_label(whole_schedule_verdicts(zoo))["(d, whole schedule)"].outcome == "holds"


def test_weights_scored_on_other_images_are_refused():
    import pytest

    zoo = {
        "resnet20": scored("resnet20", [1]),
        "resnet56": scored("resnet56", [2], indices=np.arange(N) + 1),
    }
    with pytest.raises(ValueError, match="not scored on the same held-out images"):
        whole_schedule_verdicts(zoo)


def test_table6_rows_show_ours_beside_the_paper_and_how_far_each_run_got(tmp_path):
    runs = tmp_path / "zoo"
    (runs / "resnet56-cifar10").mkdir(parents=True)
    (runs / "resnet56-cifar10" / "config.json").write_text("{}")
    rows = [
        {"step": 20_000, "train_err": 0.1, "val_err": 0.15},
        {"step": 20_010, "train_err": 0.1},
    ]
    (runs / "resnet56-cifar10" / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    lines = table6_section({"resnet20": scored("resnet20", list(range(124)))}, runs)
    assert lines[0] == BEGIN and lines[-1] == END
    text = "\n".join(lines)
    assert (
        "| ResNet-20 | 3 | 20 | 1,234 (0.27M) | 8.75 | 12.40 | 1.00 | `resnet20.cifar10` |" in text
    )
    assert "| ResNet-56 | 9 | 56 | - (0.85M) | 6.97 | - | - | training: iteration 20,010" in text
    assert "validation error 15.00% then" in text
    assert "| ResNet-110 | 18 | 110 | - (1.7M) | 6.43 | - | - | not started |" in text
    assert "| plain-56 | 9 | 56 | - (-) | - | - | - | not started |" in text
    assert run_progress(None, "resnet44") == "not trained yet"
    # a stated accuracy that differs from the one measured is shown, not hidden
    odd = scored("resnet20", list(range(124)))
    odd = Scored(odd.weights, odd.indices, odd.hits, 0.9, odd.responses)
    assert "states 90.00% top-1, measured 87.60%" in "\n".join(
        table6_section({"resnet20": odd}, None)
    )


def test_fig7_responses_are_decided_paired_over_the_same_images(tmp_path):
    from resnets.analysis.whole_schedule import write_responses_figure

    zoo = {
        "resnet20": scored("resnet20", [], response=0.8),
        "resnet56": scored("resnet56", [], response=0.5),
    }
    verdict = by_label(whole_schedule_verdicts(zoo))["(e, whole schedule)"]
    assert verdict.outcome == "missing" and "needs plain20, plain56" in verdict.evidence
    found = re.search(
        r"ResNet-56 against ResNet-20: 0\.(49|50)\d against 0\.(79|80)\d", verdict.evidence
    )
    assert found, verdict.evidence
    assert "over the first 200 held-out images" in verdict.evidence
    assert "200 images paired" in verdict.evidence
    zoo |= {
        "plain20": scored("plain20", [], response=0.9),
        "plain56": scored("plain56", [], response=1.3),
    }
    verdict = by_label(whole_schedule_verdicts(zoo))["(e, whole schedule)"]
    assert verdict.outcome == "holds"
    # a deeper ResNet that responds more: contradicted, whatever the plain nets say
    zoo["resnet56"] = scored("resnet56", [], response=0.9)
    verdict = by_label(whole_schedule_verdicts(zoo))["(e, whole schedule)"]
    assert verdict.outcome == "contradicted"
    # measured on other images than its twin: refused, never paired wrongly
    zoo["plain56"] = scored("plain56", [], indices=np.arange(N) + 1, response=1.3)
    with pytest.raises(ValueError, match="not scored on the same held-out images"):
        whole_schedule_verdicts(zoo)
    # the figure and the table from the shipped files' responses
    figure = write_responses_figure({"resnet20": scored("resnet20", [])}, tmp_path)
    assert figure is not None and figure.stat().st_size > 10_000
    section = "\n".join(table6_section({"resnet20": scored("resnet20", [])}, None, figure))
    assert (
        "| ResNet-20 | 18 | 1.00" in section and "| plain-56 | - | - | not shipped yet |" in section
    )
    assert f"]({figure.name})" in section


def _metrics(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "tr')  # a cut line


def test_fig6_is_drawn_from_the_runs_recorded_metrics_that_exist(tmp_path):
    """Issue 42, item 2: Fig. 6 at the whole schedule from the zoo runs' own metrics: a shipped
    run's kept copy first, else a run folder still training (drawn as far as it got); a net
    with neither is said to have no curve here; plain nets left, ResNets right."""
    from resnets.analysis.whole_schedule import (
        CURVES_FOLDER,
        curves_section,
        write_curves_figure,
        zoo_curves,
    )

    results, runs = tmp_path / "results", tmp_path / "zoo"
    shipped = [{"step": s, "train_err": 0.5 / s**0.2, "val_err": 0.6 / s**0.2} for s in (351, 702)]
    _metrics(results / CURVES_FOLDER / "resnet56.jsonl", shipped)
    # the same model's run folder is older: the kept copy wins
    _metrics(runs / "resnet56-cifar10" / "metrics.jsonl", shipped[:1])
    training = [{"step": 351, "train_err": 0.7, "val_err": 0.65}, {"step": 400, "train_err": 0.6}]
    _metrics(runs / "plain20-cifar10" / "metrics.jsonl", training)
    curves = zoo_curves(results, runs)
    assert set(curves) == {"resnet56", "plain20"}
    assert curves["resnet56"].shipped and len(curves["resnet56"].rows) == 2
    assert not curves["plain20"].shipped and curves["plain20"].last_step == 400
    assert set(zoo_curves(results, None)) == {"resnet56"}  # no run folders given: kept copies

    figure = write_curves_figure(curves, results)
    assert figure == results / "whole-schedule-curves.png" and figure.stat().st_size > 10_000
    text = "\n".join(curves_section(curves, figure))
    assert "![Fig. 6 at the whole schedule](whole-schedule-curves.png)" in text
    want56 = f"| ResNet-56 | 6.97 | {100 * shipped[1]['val_err']:.2f} (iteration 702) |"
    assert want56 in text and "| shipped run |" in text
    assert "| plain-20 | - | 65.00 (iteration 351) | 60.00 | training, iteration 400 |" in text
    assert "| ResNet-20 | 8.75 | - | - | no recorded metrics here |" in text
    assert "No recorded metrics here for ResNet-20, ResNet-32, ResNet-44, ResNet-110" in text
    assert write_curves_figure({}, tmp_path / "none") is None  # no curve, no figure


def test_the_gap_to_the_paper_names_each_files_precision_and_the_sampling_error():
    from resnets.analysis.whole_schedule import deviations

    r20, p20 = scored("resnet20", list(range(120))), scored("plain20", list(range(130)))
    zoo = {
        "resnet20": replace(r20, weights=replace(r20.weights, bf16=True)),
        "plain20": replace(p20, weights=replace(p20.weights, bf16=False)),
        "resnet56": scored("resnet56", list(range(100))),  # a record without cpu_bf16
    }
    text = "\n".join(deviations(zoo))
    assert "says: bf16 autocast: ResNet-20; not recorded: ResNet-56; fp32: plain-20." in text
    # binomial standard errors of 10.0% and 13.0% on 1,000 images: 0.95 and 1.06 points
    assert "0.95-1.06 points (binomial standard error of an error of 10.00-13.00%" in text
