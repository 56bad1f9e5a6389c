"""The run directory: claiming it, its lock, its log, ``metrics.jsonl``, ``config.json`` and
``summary.json``.

::

    RUN_DIR/config.json       the resolved config (+ command, versions, data split)
    RUN_DIR/metrics.jsonl     one JSON line per evaluation
    RUN_DIR/last.ckpt         everything needed to resume (atomic, SHA-256 checked)
    RUN_DIR/best.ckpt         the best weights by validation error
    RUN_DIR/model.safetensors the final weights with metadata (classes, normalisation, ...)
    RUN_DIR/curves.png        training (thin dashed) and validation (bold) error vs iterations
    RUN_DIR/summary.json      final numbers, training time, time to accuracy
    RUN_DIR/train.log         the log
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
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
from ..io import RUN_MARKER, atomic_write_bytes, atomic_write_json
from ..runtime import cpu_has_bf16, cpu_name

LOCK = ".lock"
#: written first into every run folder: only a folder that holds it is ever treated as a run
#: (cleared when abandoned, refused when finished); a folder without it is the user's own
MARKER = RUN_MARKER

# files a run writes before its first checkpoint: a run folder holding only these is abandoned
EARLY_FILES = {LOCK, MARKER, "config.json", "train.log", "metrics.jsonl", "tensorboard"}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or
    None where that cannot be read: with the PID, it names one process even after the PID
    is reused by another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def lock_text() -> bytes:
    """This process's lock: its PID and start time."""
    return f"{os.getpid()} {process_start(os.getpid()) or ''}".strip().encode()


def lock_holder(run_dir: Path) -> int | None:
    """The live process holding ``run_dir``'s lock (None: no lock, or a stale one: its process
    is gone, or its PID now belongs to another process that started later)."""
    try:
        parts = (run_dir / LOCK).read_text().split()
        pid = int(parts[0]) if parts else 0
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid() or not _pid_alive(pid):
        return None
    if len(parts) > 1 and process_start(pid) not in (None, parts[1]):
        return None  # the PID was reused: the process that took the lock is gone
    return pid


def lock_run(run_dir: Path) -> None:
    """Take ``run_dir`` for this process: refused while a live process holds it; a lock left
    by a process that is gone (killed, crashed) is taken over."""
    holder = lock_holder(run_dir)
    if holder is not None:
        raise ConfigError(f"{run_dir}: in use by process {holder} (a run is training there)")
    # temporary files of an interrupted atomic write (their process is gone)
    for tmp in run_dir.glob(".*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
    try:
        atomic_write_bytes(run_dir / LOCK, lock_text())
    except OSError as e:
        raise ConfigError(f"{run_dir}: cannot write there ({e.strerror or e})") from None


def is_run_dir(folder: Path) -> bool:
    """Whether resnets made this folder a run folder (it holds the marker)."""
    return (folder / MARKER).is_file()


def is_abandoned(run_dir: Path) -> bool:
    """A run that stopped before its first checkpoint and whose process is gone. Only a
    folder with the run marker qualifies: the user's own config.json, train.log or
    tensorboard/ in a folder resnets never made are not a run to clear."""
    if not is_run_dir(run_dir):
        return False
    names = {p.name for p in run_dir.iterdir()}
    return names <= EARLY_FILES and lock_holder(run_dir) is None


def make_run_dir(out: Path) -> Path:
    """Claim a new run directory; never reuse one that holds a run (use --resume for that).
    A folder left by a run that failed before its first checkpoint is cleared and reused."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out}: exists and is not a folder")
        if is_abandoned(out):
            for p in out.iterdir():  # only the run's own early files (is_abandoned checked)
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        elif is_run_dir(out):
            raise ConfigError(
                f"--out {out}: already holds a run; resume it with --resume {out} or pick another --out"
            )
        elif any(out.iterdir()):
            raise ConfigError(
                f"--out {out}: not empty and not a resnets run folder; pick a new or empty folder"
            )
    else:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.mkdir()  # atomic: of two runs started into one folder, one fails here
        except FileExistsError:
            raise ConfigError(f"--out {out}: created by another process just now") from None
        except OSError as e:
            raise ConfigError(
                f"--out {out}: cannot create the folder ({e.strerror or e})"
            ) from None
    # a lock file, created exclusively, so two processes never share a run directory
    try:
        fd = os.open(out / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, lock_text())
        os.close(fd)
    except FileExistsError:
        raise ConfigError(f"--out {out}: in use by another process") from None
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    try:
        atomic_write_bytes(out / MARKER, b"a resnets run folder (see train.log)\n")
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    return out


def release(run_dir: Path) -> None:
    """Remove this process's lock (the run is finished)."""
    (run_dir / LOCK).unlink(missing_ok=True)


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


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (a line cut by a crash is skipped)."""
    rows = []
    p = Path(path)
    if not p.is_file():
        return rows
    for line in p.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the checkpoint decides what counts
    return rows


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
        self.path, self.enabled, self.tb = run_dir / "metrics.jsonl", enabled, None
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
    path = run_dir / "metrics.jsonl"
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
        "config.json",
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


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json``; a missing or corrupt one is a one-line error."""
    p = run_dir / "config.json"
    try:
        obj = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: missing (is {run_dir} a resnets run directory?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: unreadable ({e})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{p}: not a JSON object")
    return obj


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
