"""Running the paper's experiments as sets of training runs, resumably.

An experiment is a list of named runs (model x seed x option), each a normal run directory under
``OUT/runs/<name>``. Re-running the command skips runs that finished (``summary.json``), resumes
runs that were interrupted (``last.ckpt``), and starts the rest (see :mod:`resnets.rundir`); so an interrupted reproduction
loses at most the current run's work since its last checkpoint.

``budget`` scales the paper's schedule: 1.0 is the full 64k iterations with the learning rate
divided at 32k and 48k; 0.01 is 640 iterations divided at 320 and 480.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import AugmentSpec, BatchStream, channel_stats, load_dataset, stratified_split
from ..errors import ConfigError, TrainingDiverged
from ..eval.predict import recorded_split
from ..inference import model_from_weights
from ..io import atomic_write_text, first_line
from ..models import count_macs, count_params, create_model
from ..models.summary import activation_bytes
from ..rundir import RunDir, RunStatus
from ..train import TrainingInterrupted, train
from ..train.config import TrainConfig, build_config
from .layers import (
    calibrate_bn,
    gradient_norms,
    gradient_norms_at,
    response_stds,
    shattered_correlation,
)
from .paper_numbers import budget_iters, scaled_milestones


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
    """The paper's CIFAR recipe with its iteration counts scaled by ``budget`` (checked when
    the experiment's :class:`~resnets.analysis.registry.Settings` was made)."""
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
    if data == "digits":  # the bundled 1,797 images: the paper's 5k split does not fit, and
        # at their own 8x8 (as the default job trains them) a check costs 1/16 of 32x32's
        values.update(val_split=0.2, pad=1, augment="crop", image_size=0)
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
        run = RunDir(runs / spec.name)
        run_one(spec, run, progress=progress, echo=f"[{i + 1}/{len(specs)}]" if echo else None)
        records.append(load_record(run, spec))
    return records


def run_one(spec: RunSpec, run: RunDir, *, progress: bool, echo: str | None) -> None:
    """Train one spec to its end in ``run`` (``train(..., resume="auto")``: skipped when it
    finished, resumed when interrupted, else started); a run trained with another config is
    refused, and an interrupted session raises TrainingInterrupted."""
    if run.config.is_file():
        _check_same_config(run, spec.cfg)
    if echo is not None:
        doing = {
            RunStatus.FINISHED: "finished earlier, skipped",
            RunStatus.INTERRUPTED: "resuming",
        }.get(run.status, "training")
        print(f"{echo} {spec.name}: {doing}", file=sys.stderr)
    res = train(spec.cfg, run, resume="auto", progress=progress, echo=False)
    if res.stopped:
        raise TrainingInterrupted(res)


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


def run_queue(specs: list[RunSpec], out: Path, *, progress: bool = True) -> tuple[int, int]:
    """Train every unfinished spec that no other worker has claimed, in the given order: the
    run folder's own claim (see :class:`~resnets.rundir.RunDir`) is the queue's, so any number
    of worker processes can share one queue, and a worker that dies frees its run at once.

    Returns (finished, total) after this worker's pass: when a worker ends with finished <
    total, other workers still hold the remaining runs."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(specs):
        run = RunDir(runs / spec.name)
        if run.finished:
            continue
        if not run.try_claim():
            print(f"[{i + 1}/{len(specs)}] {spec.name}: another worker has it", file=sys.stderr)
            continue
        try:
            run_one(spec, run, progress=progress, echo=None)
        finally:
            run.release()
        print(f"[{i + 1}/{len(specs)}] {spec.name}: finished", file=sys.stderr)
    return finished_count(specs, out)


def finished_count(specs: list[RunSpec], out: Path) -> tuple[int, int]:
    """(finished, total) of ``specs``' runs under ``out/runs``."""
    return sum(RunDir(out / "runs" / s.name).finished for s in specs), len(specs)


_RUNTIME_KEYS = {"device", "workers", "log_every", "compile", "precision", "threads"}


def _check_same_config(rd: RunDir, cfg: TrainConfig) -> None:
    """A finished or interrupted run is reused only if it was trained with this very config."""
    # fields added to TrainConfig after a run was made have their default value there
    saved = {**TrainConfig().to_dict(), **rd.read_config()["config"]}
    want = cfg.to_dict()
    diff = [k for k in want if k not in _RUNTIME_KEYS and saved.get(k) != want[k]]
    if diff:
        k = diff[0]
        raise ConfigError(
            f"{rd} was trained with {k}={saved.get(k)!r}, this experiment needs {want[k]!r} "
            f"(and {len(diff) - 1} more differences): use another --out / --runs-from"
        )


def load_record(rd: RunDir, spec: RunSpec) -> dict[str, Any]:
    """A finished run's record for the reports; a damaged file is a one-line error naming it."""
    try:
        summary, conf, rows = rd.read_summary(), rd.read_config(), rd.read_metrics()
        if not isinstance(conf.get("meta"), dict):
            raise ValueError("not the record a run writes")
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise ConfigError(
            f"{rd}: a damaged run record ({first_line(e)}); remove the folder to train the run again"
        ) from None
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
        "milestones": conf.get("config", {}).get("milestones") or [],
        "machine": run_machine(conf),
    }


def run_machine(conf: dict[str, Any]) -> str:
    """The machine a run trained on, from its config.json: CPU, bf16, threads, GPU."""
    versions, resolved = conf.get("versions", {}), conf.get("resolved", {})
    if versions.get("gpu"):
        return f"GPU {versions['gpu']}"
    cpu = versions.get("cpu") or "unknown CPU"
    if cpu in ("x86_64", "aarch64"):  # runs made before the model name was recorded
        cpu = f"{cpu} CPU (model not recorded by this run)"
    bf16 = "bf16 autocast" if resolved.get("bf16") else "fp32 (no bf16)"
    return f"{cpu}, {bf16}, {versions.get('threads', '?')} thread(s)"


# ---------------------------------------------------------------------------------------------
# measurements on trained and fresh networks


def val_batches(run_dir: Path, limit: int | None = None) -> tuple[torch.nn.Module, list]:
    """The loaded model of a finished run and its validation split as normalised batches."""
    run = RunDir(run_dir)
    conf = run.read_config()
    cfg = conf["config"]
    model, meta = model_from_weights(run.weights)
    data = load_dataset(cfg["data"], image_size=cfg["image_size"], progress=False)
    # the split the weights record (its own seed: a run's split_seed may differ from its seed)
    val = recorded_split(meta.split, data.labels, data.classes).val_idx
    if limit:
        val = val[:limit]
    stream = BatchStream(
        data.images, data.labels, val, 500, 0, meta.mean, meta.std, None, drop_last=False
    )
    return model, [x for x, _ in stream.epoch(0)]


def response_curves(
    specs: list[RunSpec], root: Path
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], tuple[list[float], list[float]]]]:
    """Fig. 7's measurement on each finished run: the std of every 3x3 layer's response over
    the validation split; returns CSV rows and per (model, seed) the layer order and the sorted
    order."""
    rows, curves = [], {}
    for spec in specs:
        model, batches = val_batches(root / "runs" / spec.name)
        stds = response_stds(model, batches)
        ordered = sorted((s for _, s in stds), reverse=True)
        curves[spec.cfg.model, spec.cfg.seed] = ([s for _, s in stds], ordered)
        for i, ((layer, std), sorted_std) in enumerate(zip(stds, ordered)):
            rows.append(
                {
                    "model": spec.cfg.model,
                    "seed": spec.cfg.seed,
                    "layer_index": i + 1,
                    "layer": layer,
                    "std": std,
                    "sorted_std": sorted_std,
                }
            )
    return rows, curves


def model_costs(model: str, **kwargs: Any) -> dict[str, Any]:
    """Parameters, MACs (one 32x32 image), training activations (batch 128, MiB), features."""
    net = create_model(model, **kwargs)
    return {
        "params": count_params(net),
        "macs": count_macs(net, (1, 3, 32, 32)),
        "act_mib": activation_bytes(net, (128, 3, 32, 32)) / 2**20,
        "features": int(net.num_features),
    }


def matched_concat_width(depth: int, target_params: int) -> int:
    """The concat net's base width whose parameter count is closest to ``target_params``."""

    def params(width: int) -> int:
        return count_params(create_model(f"concat{depth}", base_width=width))

    return min(range(2, 33), key=lambda width: abs(params(width) - target_params))


@dataclass
class GradientMeasurements:
    """Gradient norms per conv layer and shattered-gradient correlations."""

    rows: list[dict[str, Any]]  # gradients.csv
    shattered: list[dict[str, Any]]  # shattered.csv
    init_curves: dict[tuple[str, bool], list[float]]  # (model, batchnorm) -> norms at init
    train_curves: dict[str, dict[int, list[float]]]  # model -> iteration -> norms
    probe: torch.Tensor | None = None  # the one validation image shattering is measured at


def gradients_at_init(
    data_spec: str, budget: float, device: str, depths: list[int]
) -> GradientMeasurements:
    """Weight-gradient norms of fresh plain and residual nets, with and without BatchNorm, on
    one fixed training batch, and their shattered-gradient correlation (Balduzzi et al. 2017)."""
    base = budget_config("resnet20", data_spec, budget, 0, device)
    data = load_dataset(base.data, image_size=base.image_size, progress=False)
    train_idx, val_idx = stratified_split(data.labels, base.val_split, 0)
    mean, std = channel_stats(data.images, train_idx)
    stream = BatchStream(
        data.images,
        data.labels,
        train_idx,
        min(128, len(train_idx)),
        0,
        mean,
        std,
        AugmentSpec("none"),
    )
    x, y = stream.make_batch(0, 0)
    calibration = [stream.make_batch(0, k)[0] for k in range(min(4, len(stream)))]
    one = BatchStream(data.images, data.labels, val_idx, 1, 0, mean, std, None)
    x0 = one.make_batch(0, 0)[0][0]
    found = GradientMeasurements([], [], {}, {}, probe=x0)
    for batchnorm in (True, False):
        for kind in ("plain", "resnet"):
            for depth in depths:
                name = f"{kind}{depth}"
                torch.manual_seed(0)
                net = create_model(
                    name, num_classes=len(data.classes), in_chans=data.channels, batchnorm=batchnorm
                )
                norms = gradient_norms_at(net, x, y)
                found.init_curves[(name, batchnorm)] = [v for _, v in norms]
                found.rows += [
                    {
                        "model": name,
                        "batchnorm": batchnorm,
                        "phase": "init",
                        "layer_index": i + 1,
                        "layer": layer,
                        "grad_norm": v,
                    }
                    for i, (layer, v) in enumerate(norms)
                ]
                if batchnorm:
                    calibrate_bn(net, calibration)
                found.shattered.append(
                    {
                        "model": name,
                        "batchnorm": batchnorm,
                        "phase": "init",
                        **shattered_correlation(net, x0),
                    }
                )
    return found


def gradients_in_training(
    found: GradientMeasurements,
    specs: list[RunSpec],
    root: Path,
    progress: bool,
) -> None:
    """Train each BN net at the budget with a hook that records the gradient norms at a few
    iterations (0, 10%, 50%, last); an interrupted recording restarts, hooks do not resume."""
    for spec in specs:
        name, cfg = spec.cfg.model, spec.cfg
        run_dir = root / "runs" / f"grad-{name}"
        record_path = run_dir / "gradients.json"
        if record_path.is_file():
            record = {int(k): v for k, v in json.loads(record_path.read_text()).items()}
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            marks = sorted({0, cfg.iters // 10, cfg.iters // 2, cfg.iters - 1})
            record = {}

            def hook(model, step, record=record, marks=marks):
                if step in marks:
                    record[step] = [v for _, v in gradient_norms(model)]

            try:
                result = train(cfg, run_dir, progress=progress, echo=False, on_backward=hook)
            except TrainingDiverged:
                result = None
            if result is not None and result.stopped:
                raise TrainingInterrupted(result)
            atomic_write_text(record_path, json.dumps(record))
        found.train_curves[name] = record
        for step, norms in record.items():
            found.rows += [
                {
                    "model": name,
                    "batchnorm": True,
                    "phase": f"iter {step}",
                    "layer_index": i + 1,
                    "layer": "",
                    "grad_norm": v,
                }
                for i, v in enumerate(norms)
            ]
        weights = RunDir(run_dir).weights
        if weights.is_file():
            trained, _ = model_from_weights(weights)
            found.shattered.append(
                {
                    "model": name,
                    "batchnorm": True,
                    "phase": "trained",
                    **shattered_correlation(trained, found.probe),
                }
            )
