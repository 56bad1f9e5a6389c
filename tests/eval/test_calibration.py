"""Calibration: the metrics against hand-computed cases, the temperature fit against a known
temperature, and the command end to end (stored, applied, never changing a prediction)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from resnets.cli import main
from resnets.errors import ConfigError, WeightsError
from resnets.eval.calibration import calibrate_weights, fit_temperature, measure
from resnets.eval.metrics import expected_calibration_error
from resnets.eval.predict import top_classes
from resnets.inference import load_weights


def test_ece_matches_a_hand_computed_case():
    # two images at 0.95 confidence, one right (bin 0.933-1: |0.5 - 0.95| x 2/4 = 0.225), and
    # two at 0.55, both right (bin 0.533-0.6: |1.0 - 0.55| x 2/4 = 0.225): ECE 0.45
    ece = expected_calibration_error(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 0, 1, 1]))
    assert ece == pytest.approx(0.45, abs=1e-6)
    # a perfectly calibrated bin: 4 images at 0.75, 3 right
    assert expected_calibration_error(np.full(4, 0.75), np.array([1, 1, 1, 0])) == pytest.approx(0)


def test_nll_and_brier_match_hand_computed_values():
    logits = np.array([[math.log(3.0), 0.0], [0.0, 0.0]])  # probabilities (0.75, 0.25), (0.5, 0.5)
    m = measure(logits, np.array([0, 1]))
    assert m.nll == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2)
    assert m.brier == pytest.approx(((0.25**2 + 0.25**2) + (0.5**2 + 0.5**2)) / 2)
    # at temperature 2 the logits halve: probabilities sqrt(3)/(1+sqrt(3)) for the first image
    p = math.sqrt(3) / (1 + math.sqrt(3))
    assert measure(logits, np.array([0, 1]), 2.0).nll == pytest.approx(
        (-math.log(p) - math.log(0.5)) / 2
    )


def test_the_fit_recovers_a_known_temperature():
    """Labels drawn from softmax(z / 2.5): the fitted temperature is 2.5 within sampling error,
    and it lowers the NLL and the ECE of the raw logits."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 10, generator=gen) * 4
    y = torch.multinomial((z / 2.5).softmax(1), 1, generator=gen).squeeze(1)
    t = fit_temperature(z.numpy(), y.numpy())
    assert t == pytest.approx(2.5, rel=0.05)
    before, after = measure(z.numpy(), y.numpy()), measure(z.numpy(), y.numpy(), t)
    assert after.nll < before.nll and after.ece < before.ece / 3


def test_calibrate_stores_a_temperature_that_changes_probabilities_not_classes(
    digits_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    lm = load_weights(run)
    x = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        logits = lm.model(x)
    raw = [top_classes(lm, row, 3) for row in logits]
    assert (
        main(["calibrate", "--weights", str(run), "--data", "digits", "--json", "--no-progress"])
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    t = out["after"]["temperature"]
    assert out["after"]["nll"] <= out["before"]["nll"] + 1e-9 and t != 1.0
    calibrated = load_weights(run)
    assert calibrated.meta.temperature == pytest.approx(t, rel=1e-5)
    assert calibrated.meta.calibration["before"]["ece"] == pytest.approx(out["before"]["ece"])
    new = [top_classes(calibrated, row, 3) for row in logits]
    assert [r[0]["class"] for r in raw] == [r[0]["class"] for r in new]  # the same classes
    expected = (logits[0] / t).softmax(-1).max().item()
    assert new[0][0]["prob"] == pytest.approx(expected, rel=1e-5)
    # eval reports the calibrated metrics at the stored temperature
    assert (
        main(
            [
                "eval",
                "--weights",
                str(run),
                "--data",
                "digits",
                "--subset",
                "val",
                "--json",
                "--out",
                str(tmp_path / "ev"),
                "--no-progress",
            ]
        )
        == 0
    )
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["temperature"] == pytest.approx(t, rel=1e-5)
    assert ev["ece"] == pytest.approx(out["after"]["ece"], abs=2e-3)
    assert (tmp_path / "ev" / "reliability.png").stat().st_size > 10_000


def test_calibration_refuses_training_images_and_unknown_splits(digits_run, tmp_path):
    with pytest.raises(ConfigError, match="held-out split only"):
        calibrate_weights(digits_run, "digits", subset="train")
    from dataclasses import replace

    from resnets.models.weights import save_weights

    lm = load_weights(digits_run)  # the same weights, their record without the split
    no_split = tmp_path / "no-split.safetensors"
    save_weights(lm.model, no_split, replace(lm.meta, split=None))
    with pytest.raises(WeightsError, match="no held-out split recorded"):
        calibrate_weights(no_split, "digits")
