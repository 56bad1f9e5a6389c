"""A weights card: every number it states is measured, and checked here against an
independent computation."""

from __future__ import annotations

import csv
import math
import re

import pytest

from resnets.cli import main
from resnets.deploy.card import wilson_interval
from resnets.eval import score
from resnets.inference import load_weights

from ..conftest import needs

pytestmark = [pytest.mark.slow, needs("onnxruntime", "openvino")]


def test_wilson_interval_matches_a_hand_computed_case():
    # 45 of 50: p = 0.9; Wilson 95%: (0.7864, 0.9565) (standard tables)
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-4) and hi == pytest.approx(0.9565, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_card_states_measured_numbers(patch_run, tmp_path, capsys):
    run, data, _ = patch_run
    out = tmp_path / "card"
    assert (
        main(
            [
                "weights",
                "card",
                str(run),
                "--data",
                str(data),
                "--out",
                str(out),
                "--corruption-images",
                "40",
                "--no-progress",
            ]
        )
        == 0
    )
    text = (out / "CARD.md").read_text()
    res, _ = score(load_weights(run), str(data), subset="val")
    assert f"Top-1 **{res.top1:.2%}**" in text  # the same number an independent eval gives
    lo, hi = wilson_interval(round(res.top1 * res.n), res.n)
    assert f"{lo:.2%} - {hi:.2%}, n = {res.n:,}" in text
    parity = re.search(r"\| onnx \| (\S+) \| (\S+) \| (\S+) \|", text)
    assert parity and all(float(v) < 1e-4 for v in parity.groups())
    assert re.search(r"int8 changes \d+\.\d\d% of the predicted classes", text)
    for png in ("confusion.png", "reliability.png", "corruptions.png"):
        assert (out / png).stat().st_size > 10_000 and f"({png})" in text
    assert "regenerated" in text and "mean over all 75" in text
    # every held-out image's prediction, in the order scored: the accuracy it gives is the card's
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == res.n and all((data / r["path"]).is_file() for r in rows)
    assert sum(r["label"] == r["predicted"] for r in rows) == round(res.top1 * res.n)
