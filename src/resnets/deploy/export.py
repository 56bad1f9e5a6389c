"""Export to ONNX and OpenVINO, with the classes and preprocessing inside, and a parity check.

* ONNX: opset 17, input ``input`` (float32 NCHW, normalised as the metadata says) with a dynamic
  batch axis, output ``logits``. ``metadata_props`` holds ``resnets`` (the full weights record,
  JSON), and for other tools ``classes`` (JSON list) and ``preprocessing`` (JSON: mean and std
  in 0..255 units, RGB order, resize and crop sizes, interpolation).
* OpenVINO: a folder with ``model.xml`` / ``model.bin`` converted from that ONNX graph, and the
  same record as ``resnets.json`` beside them.

With ``int8``, the graph is quantized first (:mod:`.quantize`: NNCF for OpenVINO, ONNX
Runtime's quantizer for ONNX) and the record gains a ``quantization`` entry (tool, calibration
data, split and image count).

The parity check runs real images (given, or the data named in the weights' record) through
PyTorch fp32 and through the exported model (OpenVINO with an f32 precision hint: by default it
picks bf16 on CPUs that have it) and reports the largest absolute difference of the logits.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.load import load_dataset
from ..errors import ConfigError
from ..eval.predict import batch_inputs
from ..inference import ExternalModel, LoadedModel, load_weights
from ..inference.graph import onnx_bytes, with_metadata
from ..io import (
    atomic_write_bytes,
    atomic_write_text,
    check_owner,
    check_writable,
    exclusive_target,
    own_run,
    partial_folder,
    replace_folder,
)
from .quantize import DEFAULT_CALIB_IMAGES, calibration_images, quantize_onnx, quantize_openvino

FORMATS = ("onnx", "openvino")
PARITY_TOL = 1e-4
INT8_AGREEMENT = 0.95


@dataclass
class ExportReport:
    path: Path
    format: str
    max_abs_diff: float  # exported against PyTorch fp32 logits, on ``n_checked`` images
    n_checked: int
    check_data: str
    size_bytes: int
    agreement: float = 1.0  # fraction of those images whose top-1 class is PyTorch's
    int8: bool = False
    batch_diffs: dict[int, float] = field(default_factory=dict)  # batch size -> max |diff|

    @property
    def ok(self) -> bool:
        """fp32: logits within 1e-4 of PyTorch's; int8 (logits legitimately differ): the same
        top-1 class for at least 95% of the check images (accuracy is measured with
        ``resnets eval`` on the held-out split)."""
        return self.agreement >= INT8_AGREEMENT if self.int8 else self.max_abs_diff < PARITY_TOL

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (the ``--json`` line of ``resnets export``)."""
        return {**asdict(self), "path": str(self.path), "ok": self.ok}


def check_images(lm: LoadedModel, data: str | None, n: int) -> tuple[torch.Tensor, str]:
    """Up to ``n`` real images, preprocessed as the model expects, and where they came from."""
    spec = data or lm.meta.data
    if not spec:
        raise ConfigError("the weights name no data set: give --check-data for the parity check")
    size = lm.image_size
    try:
        ds = load_dataset(spec, "train", image_size=size, progress=False)
    except Exception as e:
        raise ConfigError(f"--check-data {spec}: cannot load it for the parity check ({e})") from e
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    return batch_inputs(lm, ds.images[idx], f"--check-data {spec}"), spec


def export_model(
    weights: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike,
    *,
    model: str | None = None,
    check_data: str | None = None,
    n_check: int = 64,
    int8: bool = False,
    calib: str | None = None,
    calib_size: int = DEFAULT_CALIB_IMAGES,
) -> ExportReport:
    """Export ``weights`` to ``fmt`` at ``out`` (a ``.onnx`` file, or a folder for OpenVINO),
    optionally quantized to int8 (calibrated on ``calib_size`` training images of ``calib``,
    default the weights' own data), and run the parity check. The export is written
    atomically; an existing ``out`` is an error. The door checks ownership itself, for the CLI
    and the Python API alike: ``out`` never lands on the weights or the data it reads, inside
    the installed package or another run's folder (the weights' own run folder is allowed),
    and a second export into the same ``out`` at the same time stops at once."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    out = Path(out)
    # whose the target is comes first: onto the weights being read says that, not "exists"
    reading = tuple(source for source in (check_data, calib, weights) if source)
    own = own_run(weights)
    check_owner(out, reading=reading, own=own)
    if out.exists():
        raise ConfigError(f"--out {out}: exists; choose a new path")
    if fmt == "onnx" and out.suffix != ".onnx":
        raise ConfigError(f"--out {out}: an ONNX export is a file ending in .onnx")
    if calib and not int8:
        raise ConfigError("--calib is for --int8 exports")
    check_writable(out, folder=fmt == "openvino", reading=reading, own=own)
    with exclusive_target(out):
        return _export_claimed(
            weights, fmt, out, model, check_data, n_check, int8, calib, calib_size
        )


def _export_claimed(
    weights: str | os.PathLike,
    fmt: str,
    out: Path,
    model: str | None,
    check_data: str | None,
    n_check: int,
    int8: bool,
    calib: str | None,
    calib_size: int,
) -> ExportReport:
    """:func:`export_model`'s work, once ``out`` is checked and held."""
    lm = load_weights(weights, model=model)
    x, spec = check_images(lm, check_data, n_check)
    meta = lm.meta
    if int8:
        cx, cspec, where = calibration_images(lm, calib, calib_size)
        meta = replace(
            meta,
            quantization={
                "dtype": "int8",
                "tool": "nncf" if fmt == "openvino" else "onnxruntime",
                "calib_data": cspec,
                "calib_split": where,
                "calib_images": int(cx.shape[0]),
                "from_weights": str(weights),
            },
        )
    data = onnx_bytes(lm.model, meta, int(x.shape[-1]))
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        if int8:
            with tempfile.TemporaryDirectory() as d:
                quantize_onnx(data, cx, Path(d) / "int8.onnx")
                data = with_metadata((Path(d) / "int8.onnx").read_bytes(), meta)
        atomic_write_bytes(out, data)
        runner = ExternalModel("onnxruntime", str(out), meta)
        size = out.stat().st_size
    else:
        import openvino as ov

        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out}: a file; an OpenVINO export is a folder")
        tmp = partial_folder(out)
        try:
            if int8:
                ov_model = quantize_openvino(data, cx)
            else:
                (tmp / "model.onnx").write_bytes(data)
                ov_model = ov.convert_model(str(tmp / "model.onnx"))
                (tmp / "model.onnx").unlink()
            # fp32 weights in the file (save_model would halve them to fp16 by default)
            ov.save_model(ov_model, str(tmp / "model.xml"), compress_to_fp16=False)
            atomic_write_text(tmp / "resnets.json", json.dumps(meta.to_dict(), indent=1))
            replace_folder(tmp, out)  # the folder appears whole (old or new), never half
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        runner = ExternalModel(
            "openvino", str(out / "model.xml"), meta, precision="auto" if int8 else "fp32"
        )
        size = sum(f.stat().st_size for f in out.iterdir())
    # the batch axis is dynamic: proven at batch 1, an odd 7 and the full 64
    batch_diffs, agree = {}, 1.0
    with torch.no_grad():
        for batch in sorted({1, min(7, len(x)), len(x)}):
            ref = lm.model(x[:batch]).float()
            got = runner(x[:batch])
            batch_diffs[batch] = float((ref - got).abs().max())
            agree = float((ref.argmax(1) == got.argmax(1)).float().mean())  # the largest batch
    diff = max(batch_diffs.values())
    return ExportReport(out, fmt, diff, int(x.shape[0]), spec, size, agree, int8, batch_diffs)
