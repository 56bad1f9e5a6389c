"""Table 6 at the whole schedule: McNemar verdicts on made-up per-image results, and the rows of
depths whose runs are still training."""

from __future__ import annotations

import json

import numpy as np

from resnets.analysis.reports import FullScheduleWeights, RunFinal
from resnets.analysis.whole_schedule import (
    BEGIN,
    END,
    Scored,
    run_progress,
    table6_section,
    whole_schedule_verdicts,
)

N = 1000


def scored(model: str, wrong: list[int], *, indices: np.ndarray | None = None) -> Scored:
    """Weights of ``model`` that get every image right but those in ``wrong``."""
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
    return Scored(weights, np.arange(N) if indices is None else indices, hits, 1 - len(wrong) / N)


def by_label(verdicts):
    return {v.label: v for v in verdicts}


def test_mcnemar_decides_each_claim_on_the_same_images():
    # ResNet-20 wrong on images 0-119; ResNet-56 on 0-79 and 500-509 (40 only ResNet-20 misses,
    # 10 only ResNet-56 misses: p < 0.001); plain-56 on 0-299; plain-20 on 0-129
    zoo = {
        "resnet20": scored("resnet20", list(range(120))),
        "resnet56": scored("resnet56", [*range(80), *range(500, 510)]),
        "plain56": scored("plain56", list(range(300))),
        "plain20": scored("plain20", list(range(130))),
    }
    v = by_label(whole_schedule_verdicts(zoo))
    assert v["(b, whole schedule)"].outcome == "holds"
    assert "40 images right only with the first, 10 only with the second" in (
        v["(b, whole schedule)"].evidence
    )
    assert v["(c, whole schedule)"].outcome == "holds"
    assert v["(a, whole schedule)"].outcome == "holds"  # 170 against 0
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
    with pytest.raises(ValueError, match="not scored on the same images"):
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
    odd = Scored(odd.weights, odd.indices, odd.hits, 0.9)
    assert "states 90.00% top-1, measured 87.60%" in "\n".join(
        table6_section({"resnet20": odd}, None)
    )
