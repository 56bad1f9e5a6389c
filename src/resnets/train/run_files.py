"""What training writes into its run folder (:class:`resnets.rundir.RunDir` owns the folder,
its file names and its claim): the log, ``metrics.jsonl`` (and TensorBoard events),
``config.json`` and ``summary.json``, and the default folder of a run started without ``--out``.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy
import PIL
import torch
from tqdm import tqdm

from .. import __version__
from ..errors import ConfigError
from ..io import atomic_write_bytes, atomic_write_json
from ..rundir import RunDir
from ..runtime import cpu_has_bf16, cpu_name


def default_run_dir(model: str, data: str) -> Path:
    """``runs/<model>-<data>-<time>``, with a suffix where that exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(data.split(":")[0]).name or "data"
    base = Path("runs") / f"{model}-{name}-{stamp}"
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    return p


class RunLog:
    """Timestamped lines into ``train.log`` (and stderr, above the progress bar)."""

    def __init__(self, path: Path, echo: bool, enabled: bool = True) -> None:
        self.path, self.echo, self.enabled = path, echo, enabled

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a") as f:
            f.write(line + "\n")
        if self.echo:
            tqdm.write(msg, file=sys.stderr)


class MetricsLog:
    """``metrics.jsonl`` (one JSON line per evaluation) and, if asked, the same numbers as
    TensorBoard events in ``RUN_DIR/tensorboard``. Only the main process writes."""

    SCALARS = (
        "train_loss",
        "train_err",
        "val_loss",
        "val_err",
        "val_top5_err",
        "lr",
        "images_per_sec",
        "data_wait",
    )

    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool) -> None:
        self.path, self.enabled, self.tb = RunDir(run_dir).metrics, enabled, None
        if tensorboard and enabled:
            try:  # an optional extra
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "tensorboard=true needs the tensorboard package: pip install 'resnets[tensorboard]'"
                ) from None
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))

    def append(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k in self.SCALARS:
                if row.get(k) is not None:
                    self.tb.add_scalar(k, row[k], global_step=row["step"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop metrics lines written after the checkpoint we resume from (they will be redone)."""
    path = RunDir(run_dir).metrics
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def write_json(run_dir: Path, name: str, obj: dict[str, Any]) -> None:
    """Strict JSON (a NaN or infinity is written as null), atomically."""
    atomic_write_json(run_dir / name, _finite(obj))


def write_run_config(
    run_dir: Path,
    config: dict[str, Any],
    command: str | None,
    resolved: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    """``config.json``: the config, the command line, what it resolved to on this machine
    (device, precision, sizes), the weights' metadata and the software versions."""
    write_json(
        run_dir,
        RunDir.CONFIG,
        {
            "config": config,
            "command": command or " ".join(sys.argv),
            "resolved": resolved,
            "meta": meta,
            "versions": versions(),
        },
    )


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def time_to_accuracy(
    rows: list[dict[str, Any]], targets: tuple[float, ...] = (0.8, 0.9, 0.93, 0.94)
) -> dict[str, dict[str, float] | None]:
    """For each validation-accuracy target, the first evaluation reaching it: its training time
    in seconds (evaluations excluded), iteration and epoch; None where never reached."""
    out: dict[str, dict[str, float] | None] = {}
    for t in targets:
        hit = next(
            (r for r in rows if r.get("val_err") is not None and 1 - r["val_err"] >= t - 1e-12),
            None,
        )
        out[f"{t:.2f}"] = (
            None
            if hit is None
            else {"seconds": hit["time"], "step": hit["step"], "epoch": hit["epoch"]}
        )
    return out


def versions() -> dict[str, str | None]:
    """Software and machine, for ``config.json``."""
    return {
        "resnets": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_bf16": str(cpu_has_bf16()),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "threads": str(torch.get_num_threads()),
    }
