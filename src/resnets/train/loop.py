"""The training loop, read top to bottom in execution order.

``train(cfg, out=...)`` runs one job into a run directory (see :mod:`resnets.train.run_dir`);
``train(cfg, resume=RUN_DIR)`` continues one. Batches and their augmentation are a pure
function of (seed, epoch, step) and the checkpoint holds everything else, so on the CPU an
interrupted and resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..errors import TrainingDiverged
from ..runtime import StopSignals, choose_threads, init_distributed, pick_device, use_bf16
from . import run_dir as R
from . import schedule as S
from .config import TrainConfig
from .report import (
    TrainResult,
    draw_curves,
    eval_message,
    evaluation_row,
    final_meta,
    params_finite,
    pct,
    save_final_weights,
    unreadable_note,
)
from .setup import count_model_macs, init_from_data, load_train_data, open_run, weights_meta
from .state import RunState, restore_train_state, roll_back, save_train_state
from .step import TrainStep, build_for_training, model_options
from .transfer import fixed_normalisation, load_backbone, read_init, with_init_settings


def train(
    cfg: TrainConfig,
    out: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    echo: bool = True,
    stop_after: int | None = None,
    command: str | None = None,
    on_backward: Callable[[nn.Module, int], None] | None = None,
) -> TrainResult:
    """Train ``cfg`` into a new run directory ``out``, or continue the run in ``resume``.

    ``stop_after`` (iterations) ends this session early with a checkpoint, as an interruption
    would. ``on_backward(raw_model, step)`` sees the gradients after each backward pass.
    """
    t_start = time.perf_counter()

    # -- the run directory (new, or resumed with its own config), data, model, optimizer
    dist = init_distributed(cfg.device)
    run_dir, cfg, ckpt = open_run(cfg, out, resume, dist)
    log = R.RunLog(run_dir / "train.log", echo and dist.main, enabled=dist.main)
    metrics = R.MetricsLog(run_dir, enabled=dist.main, tensorboard=cfg.tensorboard)
    device = pick_device(cfg.device)
    if device.type == "cpu":  # threads beyond the idle cores collapse throughput (issue 11)
        cfg = dataclasses.replace(cfg, threads=choose_threads(cfg.threads))
        torch.set_num_threads(cfg.threads)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    init = read_init(cfg) if ckpt is None else None  # transfer learning: the weights to start from
    cfg = with_init_settings(cfg, init[1] if init else None)
    td = load_train_data(cfg, dist, device, progress, log, fixed_normalisation(cfg, init, ckpt))
    steps_per_epoch = len(td.stream)
    total = S.total_iters(cfg, steps_per_epoch)
    cfg = dataclasses.replace(cfg, ramp_iters=S.resolve_ramp(cfg, steps_per_epoch))
    opts = model_options(cfg, td.num_classes, td.data.channels)
    tr = build_for_training(
        cfg, num_classes=td.num_classes, in_chans=td.data.channels, device=device,
        total_iters=total, dist=dist,
    )  # fmt: skip
    raw_model, optimizer = tr.raw_model, tr.optimizer
    bf16, warmup = use_bf16(cfg.precision, device), S.warmup_enabled(cfg)
    step = TrainStep(tr, device=device, bf16=bf16, label_smoothing=cfg.label_smoothing,
                     on_backward=on_backward)  # fmt: skip
    if ckpt is None:
        st = RunState()
        if init:
            load_backbone(raw_model, *init, td.classes, cfg.init, log)
        else:
            init_from_data(raw_model, td, cfg.seed, device)
        meta = weights_meta(cfg, td, raw_model, opts, count_model_macs(cfg, opts, td))
        if dist.main:
            R.write_json(run_dir, "config.json", {
                "config": cfg.to_dict(), "command": command or " ".join(sys.argv),
                "resolved": {"device": str(device), "bf16": bf16, "compile": tr.compiled,
                             "steps_per_epoch": steps_per_epoch, "total_iters": total,
                             "warmup": warmup, "num_classes": td.num_classes,
                             "in_chans": td.data.channels, "train_size": len(td.train_idx),
                             "val_size": len(td.val_idx), "mean": td.mean, "std": td.std},
                "meta": meta, "versions": R.versions(),
            })  # fmt: skip
        dist.barrier()
        log(f"run {run_dir}: {cfg.model} ({meta['params']:,} params) on {cfg.data} "
            f"[{len(td.train_idx)} train / {len(td.val_idx)} val, {td.num_classes} classes], "
            f"{total} iterations ({steps_per_epoch}/epoch), {device}, "
            f"{'bf16' if bf16 else 'fp32'}{', compiled' if tr.compiled else ''}")  # fmt: skip
    else:
        st = restore_train_state(run_dir / "last.ckpt", raw_model, optimizer, ckpt)
        meta = ckpt.get("meta") or weights_meta(cfg, td, raw_model, opts, None)
        if dist.main:
            R.truncate_metrics(run_dir, st.step)
        log(f"resumed {run_dir} at iteration {st.step} (epoch {st.epoch}, batch {st.epoch_step})")

    def save(name: str = "last.ckpt") -> None:
        if dist.main:
            save_train_state(run_dir / name, raw_model, optimizer, st, cfg.to_dict(), meta)

    # -- the loop: one iteration per batch; the host syncs only every log_every steps
    eval_every = cfg.eval_every or steps_per_epoch
    ckpt_every = cfg.checkpoint_every or eval_every
    session_start, row, stopped = st.step, None, None
    bar = tqdm(total=total, initial=st.step, desc=cfg.model, unit="it", dynamic_ncols=True,
               disable=not (progress and dist.main))  # fmt: skip
    batches = td.stream.epoch(st.epoch, st.epoch_step)
    t_sync, wait = time.perf_counter(), 0.0
    raw_model.train()
    with StopSignals() as signals:
        while st.step < total:
            # next batch; a new epoch when this one is used up
            t0 = time.perf_counter()
            batch = next(batches, None)
            wait += time.perf_counter() - t0
            if batch is None:
                st.epoch, st.epoch_step = st.epoch + 1, 0
                batches = td.stream.epoch(st.epoch, 0)
                continue

            # forward, backward, SGD update (paper section 3.4)
            lr = S.lr_at(cfg, st.step, total, st, warmup)
            S.set_lr(optimizer, lr, tr.lr_scales)
            step(*batch, st.step)
            st.step += 1
            st.epoch_step += 1

            # host sync: only where something needs the numbers (a signal, alone, syncs at once)
            do_eval = st.step % eval_every == 0 or st.step == total
            stop_after_due = stop_after is not None and st.step - session_start >= stop_after
            do_ckpt = do_eval or st.step % ckpt_every == 0 or stop_after_due
            if not (do_ckpt or st.step % cfg.log_every == 0 or S.warmup_due(cfg, st, warmup)
                    or (signals.requested and dist.world == 1)):  # fmt: skip
                continue
            flag = torch.tensor([float(signals.requested is not None)], dtype=torch.float64,
                                device=device)  # fmt: skip
            sums = dist.all_sum(torch.cat([step.sums(), flag])).tolist()
            loss_sum, err_sum, n, stop_any = sums[0], sums[1], int(sums[2]), bool(sums[3])
            step.reset()

            # a non-finite loss: roll back to the last checkpoint with lr halved, or stop
            if not math.isfinite(loss_sum):
                st = roll_back(cfg, st, run_dir, raw_model, optimizer, loss_sum, lr, log)
                batches = td.stream.epoch(st.epoch, st.epoch_step)
                t_sync, wait = time.perf_counter(), 0.0
                continue

            # accounting, warm-up (paper 4.2), progress
            now = time.perf_counter()
            st.add_interval(loss_sum, err_sum, n, now - t_sync, wait)
            ended = S.warmup_update(cfg, st, warmup, err_sum, n)
            if ended is not None:
                log(
                    f"warm-up done at iteration {st.step} (training error {ended:.1%}); lr -> {cfg.lr}"
                )
            bar.update(st.step - bar.n)
            bar.set_postfix(loss=f"{loss_sum / max(n, 1):.3f}", err=f"{err_sum / max(n, 1):.1%}",
                            lr=f"{lr:.3g}", ips=f"{n / max(now - t_sync, 1e-9):.0f}")  # fmt: skip

            # evaluate (metrics line, best checkpoint), checkpoint
            if do_eval:
                row = evaluation_row(cfg, td, tr.local_forward, st, lr, steps_per_epoch, device,
                                     bf16)  # fmt: skip
                metrics.append(row)
                st.last_eval = row
                if row["val_err"] is not None and S.plateau_update(cfg, st, row["val_err"]):
                    log(f"validation error plateaued: lr x{cfg.lr_decay}")
                if row["val_err"] is not None and math.isfinite(row["val_loss"]) \
                        and row["val_err"] < st.best_val_err and params_finite(raw_model):  # fmt: skip
                    st.best_val_err, st.best_step = row["val_err"], st.step
                    save("best.ckpt")
                st.reset_interval()
                log(eval_message(row, total) + unreadable_note(td.images))
            if do_ckpt or stop_any:
                save()
            t_sync, wait = time.perf_counter(), 0.0

            # termination: a signal (any rank's) or the stop-after count
            if stop_any or stop_after_due:
                stopped = "signal" if stop_any else "stop_after"
                break
    bar.close()
    metrics.close()

    # -- a stopped session: every rank leaves together, after rank 0's checkpoint
    if stopped is not None:
        dist.barrier()
        dist.close()
        code = 128 + (signals.requested or 15) if stopped == "signal" else 0
        if dist.main:
            R.release(run_dir)  # not training any more: a --resume (any process) may take it
        log(f"stopped at iteration {st.step} ({stopped}); resume with --resume {run_dir}")
        return TrainResult(run_dir, None, None, math.nan, st.step,
                           time.perf_counter() - t_start, 0.0, stopped, code)  # fmt: skip

    # -- final weights (with everything needed to use them), curves, summary
    row = row or st.last_eval  # resumed after the last evaluation (a kill while saving)
    if not params_finite(raw_model):
        raise TrainingDiverged("final weights are not finite; not saving model.safetensors")
    final = {"val_err": row["val_err"] if row else None,
             "train_err": row["train_err"] if row else None, "iters": st.step}  # fmt: skip
    # images/s over the whole run: st.elapsed sums the step time of every session
    result = TrainResult(
        run_dir, final["val_err"], st.best_val_err if math.isfinite(st.best_val_err) else None,
        final["train_err"] if row else math.nan, st.step, time.perf_counter() - t_start,
        st.step * cfg.batch_size / st.elapsed if st.elapsed else 0.0,
    )  # fmt: skip
    if dist.main:
        save_final_weights(raw_model, run_dir, final_meta(meta, final, row, run_dir))
        rows = R.read_metrics(run_dir / "metrics.jsonl")
        draw_curves(run_dir, cfg, rows, log)
        summary = {**dataclasses.asdict(result), "run_dir": str(run_dir), "train_time": st.elapsed,
                   "world_size": dist.world, "time_to_accuracy": R.time_to_accuracy(rows)}  # fmt: skip
        R.write_json(run_dir, "summary.json", summary)
        R.release(run_dir)
    dist.barrier()
    dist.close()
    log(f"done in {result.wall_time:.1f}s: final val err {pct(result.final_val_err)}, "
        f"best {pct(result.best_val_err)}\n  run directory: {run_dir}")  # fmt: skip
    return result
