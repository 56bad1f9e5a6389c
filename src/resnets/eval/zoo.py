"""Turning a finished training run into named weights (``MODEL.TAG``), with measured metadata.

:func:`package_run` re-scores the run's final weights on the split it held out, in fp32 (the
figure the trainer logged came from its own precision, bf16 on CPUs that have it), and writes
``MODEL.TAG.safetensors`` with that accuracy, the exact training command, the training time
and machine, and a ``.sha256`` beside it. The files ``src/resnets/weights/`` ships are made
this way, and the hub registers them by name at import.
"""

from __future__ import annotations

import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, WeightsError
from ..inference import load_weights
from ..io import atomic_write_text, file_digest
from ..models.summary import count_macs, count_params
from ..models.weights import WeightsMeta, check_weights_name, save_weights
from ..rundir import RunDir, RunStatus
from .predict import score

CIFAR_LICENSE = (
    "MIT (these weights, trained by resnets); CIFAR-10 (Krizhevsky 2009), whose terms apply"
)


def _run_rate(summary: dict[str, Any], config: dict[str, Any]) -> float | None:
    """Training images per second over the whole run, from its iterations and step time."""
    bs = (config.get("config") or {}).get("batch_size")
    t, iters = summary.get("train_time"), summary.get("iters")
    if not (bs and t and iters):
        return summary.get("images_per_sec")
    return iters * bs / t


def package_run(
    run_dir: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    *,
    license: str = CIFAR_LICENSE,
    data: str | None = None,
    half: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``out_dir/NAME.safetensors`` (+ ``.sha256``) from a finished run; returns what
    was recorded. ``data`` overrides where the run's data is now (a moved folder). ``half``
    stores the floating-point tensors as float16 (half the file): they are rounded before
    scoring, so the stated accuracy is that of the stored values. An existing file of that
    name is replaced only with ``overwrite``."""
    run = RunDir(run_dir)
    model = check_package_target(name, out_dir, overwrite)
    summary = finished_summary(run)
    lm = load_weights(run)
    if lm.meta.model != model:
        raise ConfigError(f"--name {name!r}: the run trained {lm.meta.model}, not {model}")
    if half:
        round_to_half(lm.model)
    spec = data or lm.meta.data
    res, _ = score(lm, spec, subset="val")  # fp32, the held-out split
    sp = lm.meta.split or {}
    size = lm.eval_size or lm.image_size or 32
    meta = replace(
        lm.meta,
        data=spec,
        metrics={
            "top1": res.top1,
            "top5": res.top5,
            "n": res.n,
            "split": f"validation: {sp.get('n_val', res.n):,} images held out of the "
            f"{sp.get('n_train', 0) + sp.get('n_val', 0):,} training images (stratified, seed "
            f"{sp.get('seed', 0)}), never trained on; scored in fp32 after the last iteration",
        },
        params=count_params(lm.model),
        macs=count_macs(lm.model, (1, lm.in_chans, size, size)),
        license=license,
        source="resnets",
        final={**(lm.meta.final or {}), **packaging_facts(run, summary, half)},
    )
    written = write_named_weights(lm.model, meta, name, out_dir, half)
    return {**written, "top1": res.top1, "top5": res.top5, "n": res.n, "command": meta.command}


def check_package_target(name: str, out_dir: str | os.PathLike, overwrite: bool) -> str:
    """The model part of a valid weights ``name``, once no file of that name waits in
    ``out_dir`` (replaced only with ``overwrite``): checked before minutes of scoring."""
    model, _, _tag = check_weights_name(name).partition(".")
    existing = [p for p in (Path(out_dir) / f"{name}.safetensors", Path(out_dir) / f"{name}.sha256")
                if p.exists() or p.is_symlink()]  # fmt: skip
    if existing and not overwrite:
        raise ConfigError(
            f"--out {out_dir}: {existing[0].name} exists already; remove it or pass --overwrite"
        )
    return model


def finished_summary(run: RunDir) -> dict[str, Any]:
    """The summary of a run that finished (a classifier's or a detector's), or a one-line
    error saying why it cannot be packaged."""
    if run.status is not RunStatus.FINISHED or not run.weights.is_file():
        raise WeightsError(f"{run}: not a finished run (no model.safetensors / summary.json)")
    summary = run.read_summary()
    if summary.get("stopped"):
        raise WeightsError(f"{run}: the run stopped early ({summary['stopped']}); resume it first")
    return summary


def packaging_facts(run: RunDir, summary: dict[str, Any], half: bool) -> dict[str, Any]:
    """What a packaged record's ``final`` adds about the run: its training time summed over
    every session (a resumed run's wall time covers only its last), its rate, the stored
    precision, the machine it was packaged on and the library versions it trained with."""
    config = run.read_config() if run.config.is_file() else {}
    return {
        "train_time_s": summary.get("train_time"),
        "images_per_sec": _run_rate(summary, config),
        "stored_dtype": "float16" if half else "float32",
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (packaged on)",
        "versions": config.get("versions"),
    }


def write_named_weights(
    model: torch.nn.Module, meta: WeightsMeta, name: str, out_dir: str | os.PathLike, half: bool
) -> dict[str, Any]:
    """``out_dir/NAME.safetensors`` (float16 with ``half``) and its ``.sha256``, atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{name}.safetensors"
    save_weights(model, dest, meta, dtype=torch.float16 if half else None)
    digest = file_digest(dest)
    atomic_write_text(out / f"{name}.sha256", f"{digest}  {dest.name}\n")
    return {"file": str(dest), "sha256": digest, "size_bytes": dest.stat().st_size}


def round_to_half(model: torch.nn.Module) -> None:
    """Round every floating-point tensor to what a float16 file holds (loading casts back),
    so that the accuracy measured next is that of the stored values."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half())
