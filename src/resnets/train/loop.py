"""The training loop, read top to bottom in execution order.

``train(cfg, run_dir)`` runs one job into a new run folder (see :mod:`resnets.rundir`);
``train(cfg, run_dir, resume=True)`` continues one, and ``resume="auto"`` starts, resumes or
returns the finished result, whichever the folder calls for. Batches and their augmentation are a pure
function of (seed, epoch, step) and the checkpoint holds everything else, so on the CPU an
interrupted and resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..io import progress_bar
from ..runtime import StopSignals
from . import report, schedule
from .config import DetectTrainConfig, TrainConfig
from .detection import start_detection_session
from .session import as_run_dir, end_session, start_session
from .state import roll_back, save_train_state


def train(
    cfg: TrainConfig | DetectTrainConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    resume: bool | str = False,
    progress: bool = True,
    echo: bool = True,
    stop_after: int | None = None,
    command: str | None = None,
    on_backward: Callable[[nn.Module, int], None] | None = None,
) -> report.TrainResult:
    """Train ``cfg`` in ``run_dir`` (None: a new ``runs/<model>-<data>-<time>``). ``resume``:
    False starts a run (a folder holding one is refused), True continues one, ``"auto"`` does
    whichever the folder calls for (a finished run: its recorded result, nothing trained).
    ``stop_after`` (iterations) ends this session with a checkpoint, as an interruption would;
    ``on_backward(raw_model, step)`` sees the gradients after each backward pass."""
    t_start, (run, finished) = time.perf_counter(), as_run_dir(cfg, run_dir, resume)
    if finished is not None:
        return finished

    # -- the run directory (new, or resumed with its own config), data, model, optimizer, state
    starts = start_detection_session if isinstance(cfg, DetectTrainConfig) else start_session
    session = starts(
        cfg, run, resume, progress=progress, echo=echo, command=command, on_backward=on_backward
    )
    cfg, dist, run_dir, log, metrics = (
        session.cfg,
        session.dist,
        session.run_dir,
        session.log,
        session.metrics,
    )
    device, data, total, state, meta = (
        session.device,
        session.data,
        session.total,
        session.state,
        session.meta,
    )
    trainable, step, warmup, hooks = session.trainable, session.step, session.warmup, session.hooks
    raw_model, optimizer, ema = trainable.raw_model, trainable.optimizer, trainable.ema
    steps_per_epoch = session.steps_per_epoch

    def save(path: Path) -> None:
        if dist.main:
            save_train_state(path, raw_model, optimizer, state, cfg.to_dict(), meta, ema)

    # the claim on the run folder is given back however this ends (a --resume may take it)
    with session.run_dir.releasing():
        # -- the loop: one iteration per batch; the host syncs only every log_every steps
        eval_every = cfg.eval_every or steps_per_epoch
        ckpt_every = cfg.checkpoint_every or eval_every
        session_start, row, stopped = state.step, None, None
        show = progress and dist.main
        bar = progress_bar(total=total, initial=state.step, desc=hooks.label, disable=not show)
        batches = data.stream.epoch(state.epoch, state.epoch_step)
        t_sync, wait = time.perf_counter(), 0.0
        raw_model.train()
        # a rank whose torchrun launcher is gone stops with a checkpoint (see StopSignals)
        with StopSignals(launcher=dist.launcher_pid) as signals:
            while state.step < total:
                # next batch; a new epoch when this one is used up
                t0 = time.perf_counter()
                batch = next(batches, None)
                wait += time.perf_counter() - t0
                if batch is None:
                    state.epoch, state.epoch_step = state.epoch + 1, 0
                    batches = data.stream.epoch(state.epoch, 0)
                    continue

                # forward, backward, SGD update (paper section 3.4)
                lr = hooks.lr_at(state)
                schedule.set_lr(optimizer, lr, trainable.lr_scales)
                step(*batch, state.step)
                state.step += 1
                state.epoch_step += 1

                # host sync: only where something needs the numbers (a signal, alone, syncs at once)
                do_eval = state.step % eval_every == 0 or state.step == total
                stop_after_due = stop_after is not None and state.step - session_start >= stop_after
                do_ckpt = do_eval or state.step % ckpt_every == 0 or stop_after_due
                if not (
                    do_ckpt
                    or state.step % cfg.log_every == 0
                    or schedule.warmup_due(cfg, state, warmup)
                    or (signals.requested and dist.world == 1)
                ):
                    continue
                flag = torch.tensor(
                    [float(signals.requested is not None)], dtype=torch.float64, device=device
                )
                sums = dist.all_sum(torch.cat([step.sums(), flag])).tolist()
                loss_sum, err_sum, n, stop_any = sums[0], sums[1], int(sums[2]), bool(sums[3])
                step.reset()
                state.add_parts(step.take_parts())  # a task of several losses: each one's values

                # a non-finite loss: roll back to the last checkpoint with lr halved, or stop
                if not math.isfinite(loss_sum):
                    state = roll_back(
                        cfg, state, run_dir, raw_model, optimizer, loss_sum, lr, log, ema
                    )
                    batches = data.stream.epoch(state.epoch, state.epoch_step)
                    t_sync, wait = time.perf_counter(), 0.0
                    continue

                # accounting, warm-up (paper 4.2), progress
                now = time.perf_counter()
                state.add_interval(loss_sum, err_sum, n, now - t_sync, wait)
                ended = schedule.warmup_update(cfg, state, warmup, err_sum, n)
                if ended is not None:
                    log(
                        f"warm-up done at iteration {state.step} (training error {ended:.1%}); lr -> {cfg.lr}"
                    )
                bar.update(state.step - bar.n)
                bar.set_postfix(
                    loss=f"{loss_sum / max(n, 1):.3f}",
                    err=f"{err_sum / max(n, 1):.1%}",
                    lr=f"{lr:.3g}",
                    ips=f"{n / max(now - t_sync, 1e-9):.0f}",
                )

                # evaluate (metrics line, best checkpoint), checkpoint
                if do_eval:
                    row = hooks.evaluate(trainable.local_forward, state, lr)
                    metrics.append(row)
                    state.last_eval = row
                    val_err = row.get("val_err")
                    if val_err is not None and schedule.plateau_update(cfg, state, val_err):
                        log(f"validation error plateaued: lr x{cfg.lr_decay}")
                    if hooks.record_best(row, state):
                        save(run_dir.best)
                    state.reset_interval()
                    log(hooks.message(row))
                if do_ckpt or stop_any:
                    save(run_dir.last)
                t_sync, wait = time.perf_counter(), 0.0

                # termination: a signal (any rank's) or the stop-after count
                if stop_any or stop_after_due:
                    stopped = "signal" if stop_any else "stop_after"
                    if signals.reason:
                        log(f"{signals.reason}: stopping with a checkpoint")
                    break
        bar.close()
        metrics.close()

        # -- the end: a stopped session leaves a checkpoint; a finished run its final weights
        return end_session(session, state, row, stopped, signals.requested, t_start)
