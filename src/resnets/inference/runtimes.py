"""Inference backends: PyTorch, ONNX Runtime and OpenVINO behind one callable.

An exported model is wrapped as :class:`ExternalModel`, an ``nn.Module`` without parameters
whose ``forward`` hands the batch to the runtime, so ``eval`` and ``predict`` run it exactly as
they run a PyTorch model. Which runtime a model gets is decided in one place:
:func:`resnets.inference.loader.choose_backend`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, WeightsError
from ..models.weights import WeightsMeta

BACKENDS = ("torch", "onnxruntime", "openvino")
META_KEY = "resnets"  # ONNX metadata_props key / OpenVINO sidecar file stem


@functools.cache
def import_problem(package: str) -> str | None:
    """Why the optional ``package`` cannot be used here, in a few words, or None when it
    imports. The package is imported, not only looked up: one that is installed but broken
    (a missing shared library, a wrong build) must not pass for available."""
    if importlib.util.find_spec(package) is None:
        return "not installed"
    try:
        importlib.import_module(package)
    except Exception as e:  # noqa: BLE001 - any failure at import means "not usable"
        first = (str(e).strip().splitlines() or [""])[0][:160]
        return f"installed but fails to import ({type(e).__name__}: {first})"
    return None


def available_backends() -> list[str]:
    """The backends usable here, fastest first on a CPU (OpenVINO, ONNX Runtime, torch: the
    order measured by ``resnets benchmark infer``); one that fails to import is left out."""
    out = [b for b in ("openvino", "onnxruntime") if import_problem(b) is None]
    return out + ["torch"]


def is_exported(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p.is_file() and p.suffix == ".onnx") or (p.is_dir() and (p / "model.xml").is_file())


class ExternalModel(nn.Module):
    """A compiled ONNX Runtime session or OpenVINO model, called like a module (float32 NCHW in,
    logits out). ``threads`` caps the runtime's threads (0: its own default)."""

    def __init__(
        self,
        backend: str,
        source: str | bytes | Any,
        meta: WeightsMeta,
        *,
        threads: int = 0,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.backend, self.meta = backend, meta
        self.num_classes = (
            len(meta.classes) if meta.classes else int(meta.model_kwargs.get("num_classes", 0))
        )
        self.in_chans = int(meta.model_kwargs.get("in_chans", 3))
        self.device = torch.device("cpu")
        if backend == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = threads
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._sess = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
            self._input = self._sess.get_inputs()[0].name
        elif backend == "openvino":
            import openvino as ov

            core = ov.Core()
            if isinstance(source, str):
                model = core.read_model(source)
            elif isinstance(source, bytes):
                model = None
            else:  # an ov.Model in memory (e.g. straight from NNCF)
                model = source
            if model is None:  # ONNX bytes: through a temporary file (read_model takes paths)
                with tempfile.TemporaryDirectory() as d:
                    f = Path(d) / "model.onnx"
                    f.write_bytes(source)  # type: ignore[arg-type]
                    model = core.read_model(str(f))
            config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
            # OpenVINO runs bf16 by default where the CPU has it (precision "auto"); fp32
            # keeps the parity check. Its own spelling of the hint is "f32" / "bf16".
            hint = {"auto": "", "fp32": "f32", "bf16": "bf16"}.get(precision)
            if hint is None:
                raise ConfigError(f"precision {precision!r}: auto, fp32 or bf16")
            if hint:
                config["INFERENCE_PRECISION_HINT"] = hint
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self._compiled = core.compile_model(model, "CPU", config)
            self._request = self._compiled.create_infer_request()
        else:
            raise ConfigError(f"backend {backend!r}: one of {', '.join(BACKENDS[1:])}")

    def forward(self, x: Tensor) -> Tensor:
        arr = np.ascontiguousarray(x.detach().float().cpu().numpy())
        if self.backend == "onnxruntime":
            out = self._sess.run(None, {self._input: arr})[0]
        else:
            out = self._request.infer({0: arr})[self._compiled.output(0)]
        return torch.from_numpy(np.asarray(out, np.float32).copy())


def read_exported_meta(path: str | os.PathLike) -> WeightsMeta:
    """The resnets record stored with an exported model."""
    p = Path(path)
    if p.is_dir():
        side = p / f"{META_KEY}.json"
        if not side.is_file():
            raise WeightsError(f"{p}: no {side.name} beside model.xml (not exported by resnets)")
        try:
            return WeightsMeta.from_dict(json.loads(side.read_text()), str(side))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WeightsError(f"{side}: not valid JSON") from None
    import onnx

    try:
        m = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and others for junk
        raise WeightsError(f"{p}: not a valid ONNX file ({type(e).__name__})") from None
    props = {kv.key: kv.value for kv in m.metadata_props}
    if META_KEY not in props:
        raise WeightsError(f"{p}: no resnets metadata in the ONNX file (not exported by resnets)")
    try:
        return WeightsMeta.from_dict(json.loads(props[META_KEY]), str(p))
    except json.JSONDecodeError:
        raise WeightsError(f"{p}: malformed resnets metadata (not JSON)") from None
