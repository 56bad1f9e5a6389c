"""The start of a training session, before its first step: the run directory (new, or resumed
with its own config), the devices and threads, the data, the model with its optimizer and step,
and the run state (fresh, or restored from the checkpoint). :func:`resnets.train.loop.train`
calls :func:`start_session` and then only loops."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.weights import WeightsMeta
from ..rundir import RunDir, RunStatus
from ..runtime import (
    Dist,
    choose_threads,
    hold_freed_memory,
    init_distributed,
    pick_device,
    use_bf16,
)
from . import report, run_files, schedule, setup
from .config import TrainConfig
from .state import RunState, restore_train_state
from .step import Trainee, TrainStep, build_for_training, model_options
from .transfer import fixed_normalisation, load_backbone, read_init, with_init_settings


@dataclass
class TaskHooks:
    """What the one loop (:func:`resnets.train.loop.train`) asks of the task it trains, the
    rest being the same for every task: the learning rate at a step, an evaluation's metrics
    line, whether it is the best so far (``best.ckpt``), its log line, and the end of a
    finished run (its final weights, record and summary)."""

    label: str  # the progress bar's
    lr_at: Callable[[RunState], float]
    evaluate: Callable[[Any, RunState, float], dict[str, Any]]  # (forward, state, lr) -> row
    record_best: Callable[[dict[str, Any], RunState], bool]  # records a new best in the state
    message: Callable[[dict[str, Any]], str]
    finish: Callable[[RunState, dict[str, Any] | None, float], report.TrainResult]


@dataclass
class Session:
    """What one training session works with, from its first step to its end."""

    cfg: TrainConfig
    dist: Dist
    run_dir: RunDir  # claimed by this session (rank 0); train() gives the claim back at its end
    log: run_files.RunLog
    metrics: run_files.MetricsLog
    device: torch.device
    data: setup.TrainData
    total: int  # iterations of the whole run
    steps_per_epoch: int
    trainable: Trainee
    step: TrainStep
    bf16: bool
    warmup: bool
    state: RunState
    meta: WeightsMeta  # the weights record (setup.weights_meta), saved with every checkpoint
    hooks: TaskHooks | None = None  # what the task does in the loop (set when it is built)


def as_run_dir(
    cfg: TrainConfig, run_dir: str | os.PathLike | None, resume: bool | str
) -> tuple[RunDir | None, report.TrainResult | None]:
    """The run folder of a call of ``train``, and for ``resume="auto"`` on a finished run the
    result it recorded (then nothing is trained); ``resume="auto"`` on a run of another config
    is refused (:func:`check_same_config`)."""
    if resume not in (True, False, "auto"):
        raise ConfigError(f"resume={resume!r}: True, False or 'auto'")
    run = run_dir if isinstance(run_dir, RunDir) or run_dir is None else RunDir(run_dir)
    if resume == "auto" and run is not None and run.status is not RunStatus.NEW:
        if run.config.is_file():  # the run's own record decides what it is
            check_same_config(cfg, run)
        if run.status is RunStatus.FINISHED:
            return run, report.finished_result(run)
    return run, None


#: fields a resumed run may run with otherwise (where and how fast, not what it learns)
_RUNTIME_FIELDS = frozenset(
    {"device", "threads", "workers", "log_every", "decode_workers", "data_mode", "tensorboard",
     "checkpoint_every", "compile", "compile_mode", "fused_optimizer"}
)  # fmt: skip
#: fields a run resolves at its start when they are given as 0 (the stored value is resolved)
_RESOLVED_FROM_ZERO = frozenset({"ramp_iters", "image_size", "eval_size"})


def check_same_config(cfg: TrainConfig, run: RunDir) -> None:
    """``resume="auto"`` continues or returns a run only if it is this config's: every field
    that decides what is learnt must equal the run's recorded one, else a one-line ConfigError
    naming the first fields that differ (a finished resnet8 run is never passed off as this
    resnet20's result)."""
    try:
        stored = run.read_config().get("config")
    except (OSError, ValueError) as e:
        raise ConfigError(f"{run}: its config.json cannot be read ({e})") from None
    if not isinstance(stored, dict):
        raise ConfigError(f"{run}: its config.json holds no config")
    given = json.loads(json.dumps(cfg.to_dict()))  # tuples as lists, as the file has them
    differ = [
        f"{k} {stored.get(k)!r} there, {v!r} given"
        for k, v in given.items()
        if k not in _RUNTIME_FIELDS
        and not (k in _RESOLVED_FROM_ZERO and v == 0)
        and stored.get(k) != v
    ]
    if differ:
        raise ConfigError(
            f"{run}: holds a run of another config ({'; '.join(differ[:3])}"
            f"{'; ...' if len(differ) > 3 else ''}); resume it with resume=True (its own "
            "config) or train into another folder"
        )


def start_session(
    cfg: TrainConfig,
    run_dir: RunDir | None,
    resume: bool | str,
    *,
    progress: bool,
    echo: bool,
    command: str | None,
    on_backward: Callable[[nn.Module, int], None] | None,
) -> Session:
    """Open (or resume) the run and build everything the loop needs."""
    dist = init_distributed(cfg.device)
    run_dir, cfg, ckpt = setup.open_run(cfg, run_dir, resume, dist)
    try:
        return _build_session(cfg, dist, run_dir, ckpt, progress, echo, command, on_backward)
    except BaseException:
        run_dir.release()  # a failed start leaves the run to a later --resume
        raise


def _build_session(
    cfg: TrainConfig,
    dist: Dist,
    run_dir: RunDir,
    ckpt: dict[str, Any] | None,
    progress: bool,
    echo: bool,
    command: str | None,
    on_backward: Callable[[nn.Module, int], None] | None,
) -> Session:
    log = run_files.RunLog(run_dir.log, echo and dist.main, enabled=dist.main)
    metrics = run_files.MetricsLog(run_dir, enabled=dist.main, tensorboard=cfg.tensorboard)
    device = pick_device(cfg.device)
    if device.type == "cpu":  # threads beyond the idle cores collapse throughput (issue 11)
        hold_freed_memory()  # each step's buffers reused, not faulted in again from the kernel
        from_load = not cfg.threads and not os.environ.get("OMP_NUM_THREADS")
        cfg = dataclasses.replace(cfg, threads=choose_threads(cfg.threads))
        torch.set_num_threads(cfg.threads)
        if from_load and ckpt is None:
            # the default follows the machine's load, and a seeded run's numbers follow the
            # thread count (reductions add in another order): say so, and how to pin it
            log(
                f"threads: {cfg.threads}, chosen from the idle cores now; the same seed on "
                "another thread count gives other weights: pass --threads "
                f"{cfg.threads} (or set OMP_NUM_THREADS) to repeat this run exactly"
            )
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    init = read_init(cfg) if ckpt is None else None  # transfer learning: the weights to start from
    cfg = with_init_settings(cfg, init[1] if init else None)
    normalisation = fixed_normalisation(init, ckpt)
    data = setup.load_train_data(cfg, dist, device, progress, log, normalisation)
    steps_per_epoch = len(data.stream)
    total = schedule.total_iters(cfg, steps_per_epoch)
    cfg = dataclasses.replace(cfg, ramp_iters=schedule.resolve_ramp(cfg, steps_per_epoch))
    channels, classes = data.data.channels, data.num_classes
    opts = model_options(cfg, classes, channels)
    trainable = build_for_training(
        cfg, num_classes=classes, in_chans=channels, device=device, total_iters=total, dist=dist
    )
    raw_model = trainable.raw_model
    bf16 = use_bf16(cfg.precision, device)
    step = TrainStep(
        trainable,
        device=device,
        bf16=bf16,
        label_smoothing=cfg.label_smoothing,
        on_backward=on_backward,
    )
    if ckpt is None:
        state = RunState()
        if init:
            load_backbone(raw_model, *init, data.classes, cfg.init, log)
        else:
            setup.init_from_data(raw_model, data, cfg.seed, device)
        macs = setup.count_model_macs(cfg, opts, data)
        meta = setup.weights_meta(cfg, data, raw_model, opts, macs)
        line = setup.record_start(run_dir, cfg, command, meta, data, trainable, device, total, dist)
        dist.barrier()  # (config.json is written by the main process alone)
        log(line)
    else:
        state = restore_train_state(
            run_dir.last, raw_model, trainable.optimizer, ckpt, trainable.ema
        )
        recorded = ckpt.get("meta")
        meta = (
            WeightsMeta.from_dict(recorded, str(run_dir.last))
            if recorded
            else setup.weights_meta(cfg, data, raw_model, opts, None)
        )
        setup.check_resumed_data(meta, data, run_dir)
        if dist.main:
            run_files.truncate_metrics(run_dir, state.step)
        before = ckpt["config"].get("threads")
        moved = (
            f"; on {cfg.threads} CPU threads instead of {before}"
            if device.type == "cpu" and before and before != cfg.threads
            else ""
        )
        log(
            f"resumed {run_dir} at iteration {state.step} (epoch {state.epoch}, "
            f"batch {state.epoch_step}){moved}"
        )
    session = Session(
        cfg=cfg,
        dist=dist,
        run_dir=run_dir,
        log=log,
        metrics=metrics,
        device=device,
        data=data,
        total=total,
        steps_per_epoch=steps_per_epoch,
        trainable=trainable,
        step=step,
        bf16=bf16,
        warmup=schedule.warmup_enabled(cfg),
        state=state,
        meta=meta,
    )
    session.hooks = _classification_hooks(session)
    return session


def _classification_hooks(session: Session) -> TaskHooks:
    """Classification in the one loop: the schedule of the config (step, cosine, plateau,
    the paper's warm-up), top-1 error on the held-out split, the best by validation error, the
    final weights with their record."""
    cfg, data, total = session.cfg, session.data, session.total
    raw_model = session.trainable.raw_model

    def lr_at(state: RunState) -> float:
        return schedule.lr_at(cfg, state.step, total, state, session.warmup)

    def evaluate(forward: Any, state: RunState, lr: float) -> dict[str, Any]:
        return report.evaluation_row(
            cfg, data, forward, state, lr, session.steps_per_epoch, session.device,
            session.bf16, session.trainable.ema,
        )  # fmt: skip

    def record_best(row: dict[str, Any], state: RunState) -> bool:
        if not report.is_new_best(row, state, raw_model):
            return False
        state.best_val_err, state.best_step = row["val_err"], state.step
        return True

    def message(row: dict[str, Any]) -> str:
        return report.eval_message(row, total) + report.unreadable_note(data.images)

    def finish(state: RunState, row: dict[str, Any] | None, wall: float) -> report.TrainResult:
        result = report.finish_run(
            session.run_dir, cfg, raw_model, session.meta, row, state, wall_time=wall,
            world_size=session.dist.world, write=session.dist.main, log=session.log,
            ema=session.trainable.ema,
        )  # fmt: skip
        session.log(
            f"done in {result.wall_time:.1f}s: final val err "
            f"{report.pct(result.final_val_err)}, best {report.pct(result.best_val_err)}\n"
            f"  run directory: {session.run_dir}"
        )
        return result

    return TaskHooks(cfg.model, lr_at, evaluate, record_best, message, finish)


def end_session(
    session: Session,
    state: RunState,
    row: dict[str, Any] | None,
    stopped: str | None,
    signal: Any,
    started: float,
) -> report.TrainResult:
    """Close the session: a stopped one leaves every rank together after rank 0's checkpoint;
    a finished run writes its final weights (with everything needed to use them), curves and
    summary."""
    dist, run_dir, log = session.dist, session.run_dir, session.log
    if stopped is not None:
        dist.barrier()
        session.trainable.release_ddp()  # before the group goes: see release_ddp
        dist.close()
        log(f"stopped at iteration {state.step} ({stopped}); resume with --resume {run_dir}")
        return report.stopped_result(run_dir, state, time.perf_counter() - started, stopped, signal)
    row = row or state.last_eval  # resumed after the last evaluation (a kill while saving)
    assert session.hooks is not None
    result = session.hooks.finish(state, row, time.perf_counter() - started)
    dist.barrier()
    session.trainable.release_ddp()
    dist.close()
    return result
