"""Post-training static int8 quantization, calibrated on images of the training split.

Two tools, one per export format, compared in BENCHMARKS.md (accuracy, size, speed):

* ``openvino``: NNCF's ``nncf.quantize`` on the OpenVINO model (the "mixed" preset:
  symmetric int8 weights per output channel, asymmetric activations per tensor, which suits
  the normalised, signed input of the stem; the "performance" preset's symmetric activations
  kept the top-1 class of only 93.8% of the test's digits against 95%+ with "mixed"), for
  OpenVINO's int8 kernels (VNNI / AMX where the CPU has them).
* ``onnx``: ONNX Runtime's ``quantize_static``, QDQ format, int8 weights per channel and
  int8 activations with min-max calibration, after its shape-inference pre-processing.

Calibration images are drawn (seeded) from the split the weights were *trained* on, as their
metadata records it, so no validation image is seen; they are preprocessed exactly as in
evaluation.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.load import load_dataset
from ..errors import ConfigError
from ..eval.predict import LoadedModel, batch_inputs, recorded_split

DEFAULT_CALIB_IMAGES = 300


def calibration_images(
    lm: LoadedModel, data: str | None, n: int = DEFAULT_CALIB_IMAGES, seed: int = 0
) -> tuple[torch.Tensor, str, str]:
    """``n`` preprocessed images for calibration, where they came from, and which split:
    the training split recorded in the weights when the data is the one trained on, else
    (weights from elsewhere) any ``n`` images of ``data``."""
    spec = data or lm.meta.data
    if not spec:
        raise ConfigError("the weights name no data set: give --calib DATA for int8 calibration")
    if n < 1:
        raise ConfigError(f"--calib-size {n}: at least 1 image")
    try:
        ds = load_dataset(spec, "train", image_size=lm.image_size, progress=False)
    except Exception as e:
        raise ConfigError(f"--calib {spec}: cannot load it for calibration ({e})") from e
    sp, where = lm.meta.split, "all images"
    pool = np.arange(len(ds))
    trained_on = bool(lm.meta.data) and _same_data(spec, lm.meta.data)
    if sp and trained_on and not ds.is_data(lm.meta.data_fingerprint):
        # the folder the weights were trained on has changed: which images were held out is
        # unknown, and calibrating on a validation image would flatter the int8 score
        raise ConfigError(
            f"--calib {spec}: changed since these weights were trained on it, so its held-out "
            "split is unknown; calibrate on other data with --calib"
        )
    if sp and ds.is_data(lm.meta.data_fingerprint):
        sel = recorded_split(sp, ds.labels, ds.classes)
        pool, where = np.asarray(sel.train_idx), "the training split"
    idx = np.sort(np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False))
    return batch_inputs(lm, ds.images[idx], f"--calib {spec}"), spec, where


def _same_data(spec: str, recorded: str) -> bool:
    """Whether a data spec names the data set the weights record (same folder or name)."""
    if spec == recorded:
        return True
    try:
        return Path(spec).expanduser().resolve() == Path(recorded).expanduser().resolve()
    except OSError:
        return False


def _batches(calib: torch.Tensor, batch: int = 1) -> list[np.ndarray]:
    return [calib[i : i + batch].numpy() for i in range(0, len(calib), batch)]


def quantize_openvino(onnx_data: bytes, calib: torch.Tensor) -> Any:
    """The int8 OpenVINO model (``ov.Model``) of an fp32 ONNX graph, calibrated by NNCF."""
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise ConfigError("int8 for OpenVINO needs NNCF: pip install 'resnets[deploy]'") from None
    nncf.set_log_level(logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "model.onnx"
        f.write_bytes(onnx_data)
        model = ov.convert_model(str(f))
    data = _batches(calib)
    return nncf.quantize(
        model, nncf.Dataset(data), subset_size=len(data), preset=nncf.QuantizationPreset.MIXED
    )


def quantize_onnx(onnx_data: bytes, calib: torch.Tensor, out: str | os.PathLike) -> None:
    """Write the int8 (QDQ) ONNX model of an fp32 graph to ``out``, calibrated by ONNX
    Runtime's min-max calibrator."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ConfigError("int8 ONNX needs onnxruntime: pip install 'resnets[deploy]'") from None

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(_batches(calib))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {"input": x}

    with tempfile.TemporaryDirectory() as d:
        src, pre = Path(d) / "fp32.onnx", Path(d) / "pre.onnx"
        src.write_bytes(onnx_data)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        # ONNX Runtime logs advice through the root logger; keep the command's output clean
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_static(
                str(pre),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
        finally:
            root.setLevel(level)
