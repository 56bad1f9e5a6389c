"""Running the paper's experiments as sets of training runs, resumably.

An experiment is a list of named runs (model x seed x option), each a normal run directory under
``OUT/runs/<name>``. Re-running the command skips runs that finished (``summary.json``), resumes
runs that were interrupted (``last.ckpt``), and starts the rest; so an interrupted reproduction
loses at most the current run's work since its last checkpoint.

``budget`` scales the paper's schedule: 1.0 is the full 64k iterations with the learning rate
divided at 32k and 48k; 0.01 is 640 iterations divided at 320 and 480.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import torch

from .. import __version__
from ..errors import ConfigError
from ..runtime import cpu_name, machine_label
from ..train import TrainingInterrupted, train
from ..train.config import TrainConfig, build_config
from ..train.run_dir import read_metrics
from .paper import budget_iters, scaled_milestones

JPEG_NOTE = (
    "The shared CIFAR-10 images are JPEG (quality ~75, 4:2:0 chroma), which loses detail: errors "
    "measured on them sit somewhat above figures for the original lossless arrays. Validation is "
    "the 5k split held out of the 50k training images (the paper's Table 6 uses the 10k test set)."
)


@dataclass
class RunSpec:
    name: str
    cfg: TrainConfig
    group: dict[str, Any]


def budget_config(
    model: str,
    data: str,
    budget: float,
    seed: int,
    device: str = "auto",
    **overrides: Any,
) -> TrainConfig:
    """The paper's CIFAR recipe with its iteration counts scaled by ``budget``."""
    if not (budget > 0 and math.isfinite(budget)):
        raise ConfigError(f"--budget {budget}: must be > 0 (1.0 = the paper's 64k iterations)")
    iters = budget_iters(budget)
    values: dict[str, Any] = {
        "model": model,
        "data": data,
        "seed": seed,
        "device": device,
        "iters": iters,
        "milestones": scaled_milestones(budget),
        "eval_every": max(1, iters // 40),  # ~40 points on each curve
        "checkpoint_every": max(1, iters // 20),
        # the warm-up of section 4.2 at the paper's length, but never longer than 1/8 of a run
        "warmup_max_iters": max(1, min(2000, iters // 8)),
    }
    if data == "digits":  # the bundled 1,797 images: the paper's 5k split does not fit
        values.update(val_split=0.2, pad=1, augment="crop")
    values.update(overrides)
    return build_config("he2015-cifar", cli_values=values)


def run_all(
    specs: list[RunSpec], out: Path, *, progress: bool = True, echo: bool = True
) -> list[dict[str, Any]]:
    """Run (or skip, or resume) every spec under ``out/runs``; returns one record per run."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    records = []
    for i, spec in enumerate(specs):
        rd = runs / spec.name
        if (rd / "config.json").is_file():
            _check_same_config(rd, spec.cfg)
        res = None
        if (rd / "summary.json").is_file():
            if echo:
                print(
                    f"[{i + 1}/{len(specs)}] {spec.name}: finished earlier, skipped",
                    file=sys.stderr,
                )
        elif (rd / "last.ckpt").is_file():
            if echo:
                print(f"[{i + 1}/{len(specs)}] {spec.name}: resuming", file=sys.stderr)
            res = train(spec.cfg, resume=rd, progress=progress, echo=False)
        else:  # (a run that stopped before its first checkpoint is cleared by the trainer)
            if echo:
                print(f"[{i + 1}/{len(specs)}] {spec.name}: training", file=sys.stderr)
            res = train(spec.cfg, rd, progress=progress, echo=False)
        if res is not None and res.stopped:
            raise TrainingInterrupted(res)
        records.append(load_record(rd, spec))
    return records


def paper_queue(
    seeds: int = 2, table_seeds: int = 1, plain_extra: bool = False, seeds_110: int = 1
) -> list[str]:
    """The runs behind Table 6, Fig. 6 and Fig. 7, in the order that decides the paper's claims
    soonest: ResNet-20, plain-20, ResNet-56, plain-56 (claims a-c), their further seeds (the
    spread), ResNet-32/44 (the ordering, claim d), then ResNet-110 (the slowest), then
    plain-32/44 when asked. Names are those the reproduce commands give the same runs."""
    names = [
        f"{m}-s{s}" for s in range(seeds) for m in ("resnet20", "plain20", "resnet56", "plain56")
    ]
    names += [f"resnet{d}-s{s}" for d in (32, 44) for s in range(table_seeds)]
    names += [f"resnet110-s{s}" for s in range(seeds_110)]
    if plain_extra:
        names += [f"plain{d}-s{s}" for d in (32, 44) for s in range(table_seeds)]
    return names


def claim(runs: Path, name: str) -> Any | None:
    """An exclusive, non-blocking claim on one run, so several worker processes can share one
    queue: the open file holding the lock, or None if another live process holds it. The
    kernel drops the lock when its process ends, however it ends, so no claim goes stale."""
    folder = runs / ".claims"
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / f"{name}.lock", "a+")  # noqa: SIM115 - held for the run's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def run_queue(specs: list[RunSpec], out: Path, *, progress: bool = True) -> tuple[int, int]:
    """Train every unfinished spec that no other worker has claimed, in the given order.

    Returns (finished, total) after this worker's pass: when a worker ends with finished <
    total, other workers still hold the remaining runs."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(specs):
        if (runs / spec.name / "summary.json").is_file():
            continue
        held = claim(runs, spec.name)
        if held is None:
            print(f"[{i + 1}/{len(specs)}] {spec.name}: another worker has it", file=sys.stderr)
            continue
        with held:
            run_all([spec], out, progress=progress, echo=False)
            print(f"[{i + 1}/{len(specs)}] {spec.name}: finished", file=sys.stderr)
    done = sum((runs / s.name / "summary.json").is_file() for s in specs)
    return done, len(specs)


_RUNTIME_KEYS = {"device", "workers", "log_every", "compile", "precision", "threads"}


def _check_same_config(rd: Path, cfg: TrainConfig) -> None:
    """A finished or interrupted run is reused only if it was trained with this very config."""
    # fields added to TrainConfig after a run was made have their default value there
    saved = {**TrainConfig().to_dict(), **json.loads((rd / "config.json").read_text())["config"]}
    want = cfg.to_dict()
    diff = [k for k in want if k not in _RUNTIME_KEYS and saved.get(k) != want[k]]
    if diff:
        k = diff[0]
        raise ConfigError(
            f"{rd} was trained with {k}={saved.get(k)!r}, this experiment needs {want[k]!r} "
            f"(and {len(diff) - 1} more differences): use another --out / --runs-from"
        )


def load_record(rd: Path, spec: RunSpec) -> dict[str, Any]:
    summary = json.loads((rd / "summary.json").read_text())
    conf = json.loads((rd / "config.json").read_text())
    rows = read_metrics(rd / "metrics.jsonl")
    return {
        "name": spec.name,
        **spec.group,
        "run_dir": str(rd),
        "rows": rows,
        "final_train_err": rows[-1]["train_err"] if rows else None,
        "final_val_err": summary.get("final_val_err"),
        "best_val_err": summary.get("best_val_err"),
        "params": conf["meta"].get("params"),
        "train_time": summary.get("train_time"),
        "iters": summary.get("iters"),
        "machine": run_machine(conf),
    }


def run_machine(conf: dict[str, Any]) -> str:
    """The machine a run trained on, from its config.json: CPU, bf16, threads, GPU."""
    versions, resolved = conf.get("versions", {}), conf.get("resolved", {})
    if versions.get("gpu"):
        return f"GPU {versions['gpu']}"
    cpu = versions.get("cpu") or "unknown CPU"
    if cpu in ("x86_64", "aarch64"):  # runs made before the model name was recorded
        cpu = f"{cpu} CPU"
    bf16 = "bf16 autocast" if resolved.get("bf16") else "fp32 (no bf16)"
    return f"{cpu}, {bf16}, {versions.get('threads', '?')} thread(s)"


def mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt_pct(m: float, s: float, n: int) -> str:
    if math.isnan(m):
        return "n/a"
    return f"{100 * m:.2f} ± {100 * s:.2f}" if n > 1 else f"{100 * m:.2f}"


def environment() -> dict[str, str]:
    cpu = cpu_name()
    return {
        "cpu": f"{cpu} ({torch.get_num_threads()} threads)",
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "resnets": __version__,
    }


def write_results(
    out: Path,
    title: str,
    command: str,
    budget: float,
    sections: list[str],
    wall: float,
    data: str,
    train_seconds: float | None = None,
    machines: list[str] | None = None,
) -> Path:
    """RESULTS.md: the tables and figures, the paper's numbers beside ours, and how they were made."""
    env = environment()
    iters = budget_iters(budget)
    first, second = (round(m) for m in scaled_milestones(budget))
    lines = [
        f"# {title}",
        "",
        f"**Machine**: {'; '.join(sorted(set(machines))) if machines else env['cpu']} "
        f"(report written on {machine_label()}). "
        f"**Budget {budget:g}**: {iters:,} of the paper's 64k iterations.",
        "",
        f"Command: `{command}`",
        "",
        f"Budget {budget:g} of the paper's schedule: {iters:,} iterations of batch 128 "
        f"(lr /10 at {first:,} and {second:,}).",
        f"Data: `{data}`. "
        + (
            f"Training time of the runs behind these numbers: {train_seconds / 60:.1f} min; "
            if train_seconds is not None
            else ""
        )
        + f"this invocation took {wall / 60:.1f} min (a re-run skips finished runs).",
        "",
    ]
    if "cifar10-jpeg" in data or data.endswith(".jpg"):
        lines += [JPEG_NOTE, ""]
    if budget < 1:
        lines += [
            f"**At budget {budget:g} these are short-schedule numbers, not the paper's full 64k-iteration "
            "training: compare orderings and trends, not absolute errors.**",
            "",
        ]
    lines += sections
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()]
    lines += [f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    p = out / "RESULTS.md"
    p.write_text("\n".join(lines))
    return p
