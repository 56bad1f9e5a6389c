"""Calibration: how far a model's confidence is from its accuracy, and a fix that keeps every
prediction. Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
2017) divides the logits by one number T fitted on held-out images by minimising the negative
log-likelihood; the arg-max, so the predicted class, cannot change.

The fit sees only the validation split the weights record (images the model never trained
on); it is stored in the weights' record (``temperature``, ``calibration``) and every command
that reports probabilities (eval, predict, explain, serve) applies it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, WeightsError
from ..inference import TestTime, load_weights
from ..io import (
    atomic_write_text,
    check_writable,
    exclusive_target,
    file_digest,
    package_is_checkout,
    run_folder_of,
)
from ..models.catalogue import is_weights_name, resolve_weights_path
from ..models.download import weights_cache
from ..models.weights import save_weights
from .metrics import Scoring, expected_calibration_error
from .predict import score

#: the range searched for T (a fitted T outside it means the logits are not usable)
T_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class Calibration:
    """Calibration metrics of a set of logits at one temperature."""

    temperature: float
    ece: float
    nll: float
    brier: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {
            "temperature": self.temperature,
            "ece": self.ece,
            "nll": self.nll,
            "brier": self.brier,
            "n": self.n,
        }


def measure(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> Calibration:
    """ECE (15 bins), mean NLL and mean Brier score of ``logits`` scaled by ``1/temperature``."""
    z = torch.as_tensor(logits, dtype=torch.float64) / temperature
    y = torch.as_tensor(targets, dtype=torch.long)
    probs = z.softmax(1)
    confidence, predicted = probs.max(1)
    return Calibration(
        temperature=temperature,
        ece=expected_calibration_error(confidence.numpy(), (predicted == y).numpy()),
        nll=float(F.cross_entropy(z, y)),
        brier=float(((probs - F.one_hot(y, z.shape[1]).double()) ** 2).sum(1).mean()),
        n=int(y.numel()),
    )


def fit_temperature(logits: np.ndarray, targets: np.ndarray, steps: int = 60) -> float:
    """The T in T_RANGE that minimises the NLL of ``softmax(logits / T)``: a golden-section
    search on log T (the NLL is smooth and unimodal in log T), deterministic to 1e-6."""
    if not np.isfinite(logits).all():
        raise ValueError("non-finite logits: no temperature can be fitted to them")
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.long)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[0] != y.shape[0]:
        raise ConfigError("temperature fitting needs one row of logits per labelled image")

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), y))

    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(steps):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


@dataclass(frozen=True)
class CalibrationReport:
    path: Path
    before: Calibration
    after: Calibration
    top1: float


def calibrate_weights(
    weights: str | os.PathLike,
    data: str,
    *,
    subset: str = "val",
    out: str | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> CalibrationReport:
    """Fit a temperature on the weights' held-out split of ``data`` and store it in their
    record: in place (a run's ``model.safetensors``, a weights file) or into ``out``."""
    if subset != "val":
        raise ConfigError(
            f"--subset {subset}: a temperature is fitted on the held-out split only ('val'); "
            "images the model trained on would make it look better calibrated than it is"
        )
    dest = calibration_target(weights, out, data)
    lm = load_weights(weights)
    if not lm.meta.split:
        raise WeightsError(
            f"{weights}: no held-out split recorded (weights not trained by resnets): no "
            "images are known to be unseen, so no temperature can be fitted honestly"
        )
    res, _ = score(
        lm,
        data,
        subset="val",
        test=TestTime(temperature=1.0),
        run=Scoring(batch_size=batch_size, progress=progress, keep_logits=True),
    )
    if res.logits is None or res.targets is None:
        raise ConfigError(f"{data}: no validation images to fit a temperature on")
    before = measure(res.logits, res.targets, 1.0)
    t = fit_temperature(res.logits, res.targets)
    after = measure(res.logits, res.targets, t)
    meta = replace(
        lm.meta,
        temperature=round(t, 6),
        calibration={
            "data": data,
            "split": "validation (held out, never trained on)",
            "before": before.to_dict(),
            "after": after.to_dict(),
            "bins": 15,
        },
    )
    half = (lm.meta.final or {}).get("stored_dtype") == "float16"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_target(dest):
        save_weights(lm.model, dest, meta, dtype=torch.float16 if half else None)
        sidecar = dest.with_suffix(".sha256")
        if sidecar.is_file():  # a packaged set: its checksum file follows the new bytes
            atomic_write_text(sidecar, f"{file_digest(dest)}  {dest.name}\n")
    return CalibrationReport(dest, before, after, res.top1)


def calibration_target(weights: str | os.PathLike, out: str | None, data: str) -> Path:
    """Where calibrating ``weights`` writes, checked before any work: ``out`` when given (never
    another run's file, the package's or one inside the data); else the file named by path, in
    place (a run's own model.safetensors, the user's file); for a weights set named by name, a
    user copy in the weights cache (``calibrated/NAME.safetensors``), never the installed
    package's file, whose checksum the catalogue keeps."""
    source = resolve_weights_path(weights)
    run = run_folder_of(source)
    own: tuple[Path, ...] = (run,) if run is not None else ()  # the source's own run folder
    named = not out and is_weights_name(str(weights))
    if out:
        dest = Path(out)
    elif named:
        dest = weights_cache() / "calibrated" / f"{weights}.safetensors"
        own = (dest.parent,)
    else:
        dest = source
        own = (*own, source)  # the file the user named, in place
    if dest.suffix != ".safetensors":
        raise ConfigError(f"{dest}: the temperature is stored in a .safetensors file; give --out")
    check_writable(
        dest,
        "--out" if out else "--weights",
        folder=False,
        reading=(data,),
        own=own,
        # a shipped file calibrated in place, named by its path: the developers' step in a
        # source checkout, never in an installed package
        package_ok=not out and not named and package_is_checkout(),
    )
    return dest


def calibration_summary(report: CalibrationReport) -> dict[str, Any]:
    return {
        "file": str(report.path),
        "top1": report.top1,
        "before": report.before.to_dict(),
        "after": report.after.to_dict(),
    }
