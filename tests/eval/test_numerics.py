"""Numbers are checked where they are made: scores that hold NaN or inf stop eval and
calibration with one line, and --json output is strict JSON (null, never NaN)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from resnets.argtypes import json_line
from resnets.cli import main
from resnets.eval.calibration import fit_temperature
from resnets.inference import load_weights
from resnets.models.weights import save_weights


@pytest.fixture(scope="module")
def overflowing(digits_run, tmp_path_factory):
    """The digits run's weights with a classifier so large (finite, 3e38) that its scores
    overflow to inf: a file that loads, and a model that cannot score."""
    lm = load_weights(str(digits_run))
    with torch.no_grad():
        lm.model.fc.weight.fill_(3e38)
    path = tmp_path_factory.mktemp("broken") / "overflow.safetensors"
    save_weights(lm.model, path, lm.meta)
    return path


@pytest.mark.parametrize("command", ["eval", "calibrate"])
def test_non_finite_scores_stop_the_command_with_one_line(overflowing, command, tmp_path, capsys):
    argv = [command, "--weights", str(overflowing), "--data", "digits", "--no-progress"]
    if command == "eval":
        argv += ["--subset", "val"]
    else:
        argv += ["--out", str(tmp_path / "calibrated.safetensors")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "non-finite scores (NaN or inf) on" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "calibrated.safetensors").exists()


def test_fit_temperature_refuses_non_finite_logits():
    logits = np.array([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="non-finite logits"):
        fit_temperature(logits, np.array([0, 1]))


def test_json_output_is_strict():
    record = {"top1": float("nan"), "rows": [1.0, float("inf"), np.float64("nan")], "n": 3}
    line = json_line(record)
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON")) == {
        "top1": None,
        "rows": [1.0, None, None],
        "n": 3,
    }
    assert json_line({"ok": True, "x": 0.5}) == '{"ok": true, "x": 0.5}'
    assert not math.isnan(json.loads(json_line({"v": 2.0}))["v"])
