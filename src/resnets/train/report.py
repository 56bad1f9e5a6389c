"""What the loop reports: the metrics line of each evaluation, its log message, and the result
of a call of :func:`~resnets.train.train`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..eval.metrics import Scoring, evaluate
from ..inference import TestTime, TestViews
from ..models.weights import WeightsMeta, save_weights
from ..plots import plot_curves
from ..rundir import RunDir
from .config import TrainConfig
from .run_files import RunLog, time_to_accuracy, write_json
from .state import RunState


@dataclass
class TrainResult:
    """How a call of :func:`train` ended. ``stopped`` is None for a finished run, else
    ``"signal"`` (``exit_code`` 130/143) or ``"stop_after"``; the run can be resumed."""

    run_dir: Path
    final_val_err: float | None
    best_val_err: float | None
    final_train_err: float
    iters: int
    wall_time: float
    images_per_sec: float
    stopped: str | None = None
    exit_code: int = 0

    def summary(self) -> dict[str, Any]:
        """The ``--json`` line of ``resnets train``."""
        return {
            "run_dir": str(self.run_dir),
            "val_err": self.final_val_err,
            "best_val_err": self.best_val_err,
            "train_err": self.final_train_err,
            "iters": self.iters,
            "wall_time": self.wall_time,
        }


def evaluation_row(
    cfg: TrainConfig,
    td: Any,
    forward: Any,
    st: RunState,
    lr: float,
    steps_per_epoch: int,
    device: torch.device,
    bf16: bool,
    ema: nn.Module | None = None,
) -> dict[str, Any]:
    """One ``metrics.jsonl`` line: the interval's training numbers, the learning rate of its
    last iteration, and a validation pass (and one of the averaged weights, with ema)."""
    val = ema_val = None
    if len(td.val_idx):
        val = _validate(cfg, td, forward, device, bf16)
        if ema is not None:
            ema_val = _validate(cfg, td, ema.module, device, bf16)
    return {
        "epoch": round(st.step / steps_per_epoch, 4),
        "step": st.step,
        "train_loss": st.interval_loss / max(st.interval_n, 1),
        "train_err": st.interval_err / max(st.interval_n, 1),
        "val_loss": val.loss if val else None,
        "val_err": val.err if val else None,
        "val_top5_err": (1 - val.top5) if val else None,
        **({"ema_val_loss": ema_val.loss, "ema_val_err": ema_val.err} if ema_val else {}),
        "lr": lr,
        "images_per_sec": st.interval_n / max(st.interval_time, 1e-9),
        "data_wait": st.interval_wait / max(st.interval_time, 1e-9),
        "time": round(st.elapsed, 3),
    }


def _validate(cfg: TrainConfig, td: Any, forward: Any, device: torch.device, bf16: bool) -> Any:
    """One pass over the validation split."""
    views = TestViews(
        tuple(td.mean),
        tuple(td.std),
        eval_size=cfg.eval_size or cfg.crop_size,
        in_chans=td.data.channels,
    )
    return evaluate(
        forward,
        td.images,
        td.labels,
        td.val_idx,
        views=views,
        num_classes=td.num_classes,
        test=TestTime(tta=cfg.tta),
        run=Scoring(batch_size=max(256, cfg.batch_size), device=device, bf16=bf16),
    )


def eval_message(row: dict[str, Any], total: int) -> str:
    msg = f"iter {row['step']}/{total} epoch {row['epoch']:.2f}: train err {row['train_err']:.2%}"
    if row["val_err"] is not None:
        msg += f", val err {row['val_err']:.2%}"
    if row.get("ema_val_err") is not None:
        msg += f" (EMA {row['ema_val_err']:.2%})"
    return msg + f", lr {row['lr']:.3g}, {row['images_per_sec']:.0f} img/s"


def params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def draw_curves(run_dir: RunDir, cfg: TrainConfig, rows: list[dict[str, Any]], log: RunLog) -> None:
    """``curves.png``; a plotting problem is logged, never allowed to lose a finished run."""
    try:
        plot_curves({cfg.model: rows}, run_dir.curves, title=f"{cfg.model} on {cfg.data}")
    except Exception as e:
        log(f"could not draw curves.png: {e}")


def final_meta(
    meta: WeightsMeta, final: dict[str, Any], row: dict[str, Any] | None, run_dir: RunDir
) -> WeightsMeta:
    """The record of ``model.safetensors``: the run's metadata, the validation accuracy of the
    last evaluation and the split it was measured on, and the command that trained it."""
    metrics = None
    if row is not None and row["val_err"] is not None:
        sp = meta.split or {}
        metrics = {
            "top1": 1 - row["val_err"],
            "top5": 1 - row["val_top5_err"],
            "split": f"validation: {sp['n_val']} images held out of {meta.data} (stratified, "
            f"seed {sp['seed']}), at iteration {row['step']}"
            + (", flip TTA" if meta.tta == "flip" else ""),
        }
    command = run_dir.read_config().get("command") if run_dir.config.exists() else None
    return replace(meta, final=final, metrics=metrics, command=command, source="resnets")


def save_final_weights(raw_model: nn.Module, run_dir: RunDir, meta: WeightsMeta) -> None:
    """``model.safetensors``; a failed write (full disk) leaves the last checkpoint, from which
    ``--resume`` writes the weights without training again."""
    try:
        save_weights(raw_model, run_dir.weights, meta)
    except OSError as e:
        raise CheckpointError(
            f"could not write {run_dir.weights} ({e.strerror or e}); the last "
            f"checkpoint is intact: free space, then resnets train --resume {run_dir}"
        ) from None


def unreadable_note(images: Any) -> str:
    """For streamed data with ``skip_bad``: the files found unreadable so far. A streamed set
    is only decoded batch by batch, so they are found as they come; their places in a batch are
    labelled ``IGNORE`` and left out of the loss, the error counts and the scores."""
    names = getattr(images, "bad_names", None)
    if not names:
        return ""
    shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
    return f"; {len(names)} unreadable files left out of the loss and the scores: {shown}"


def is_new_best(row: dict[str, Any], state: RunState, raw_model: nn.Module) -> bool:
    """Whether this evaluation beats the best so far, with finite loss and weights (only
    then is best.ckpt written)."""
    return (
        row["val_err"] is not None
        and math.isfinite(row["val_loss"])
        and row["val_err"] < state.best_val_err
        and params_finite(raw_model)
    )


def finished_result(run_dir: RunDir) -> TrainResult:
    """The result a finished run recorded in ``summary.json`` (nothing is trained again)."""
    summary = run_dir.read_summary()
    known = {f.name for f in fields(TrainResult)} - {"run_dir"}
    try:
        return TrainResult(run_dir=run_dir.path, **{k: summary[k] for k in known if k in summary})
    except TypeError as e:
        raise ConfigError(f"{run_dir.summary}: not the summary a run writes ({e})") from None


def stopped_result(
    run_dir: Path, state: RunState, wall_time: float, stopped: str, signal_number: int | None
) -> TrainResult:
    """The result of a session that stopped early (a signal or --stop-after): resumable."""
    code = 128 + (signal_number or 15) if stopped == "signal" else 0
    return TrainResult(
        run_dir=Path(run_dir),
        final_val_err=None,
        best_val_err=None,
        final_train_err=math.nan,
        iters=state.step,
        wall_time=wall_time,
        images_per_sec=0.0,
        stopped=stopped,
        exit_code=code,
    )


def finish_run(
    run_dir: RunDir,
    cfg: TrainConfig,
    raw_model: nn.Module,
    meta: WeightsMeta,
    row: dict[str, Any] | None,
    state: RunState,
    *,
    wall_time: float,
    world_size: int,
    write: bool,
    log: RunLog,
    ema: nn.Module | None = None,
) -> TrainResult:
    """The end of a finished run: final weights with their metadata, curves.png and
    summary.json (``write``: on the main process only); returns the result."""
    if not params_finite(raw_model):
        raise TrainingDiverged("final weights are not finite; not saving model.safetensors")
    averaged = ema is not None and cfg.ema_final  # the final weights are the average
    final = {
        "val_err": (row.get("ema_val_err") if averaged else row["val_err"]) if row else None,
        "train_err": row["train_err"] if row else None,
        "iters": state.step,
    }
    # images/s over the whole run: state.elapsed sums the step time of every session
    result = TrainResult(
        run_dir=Path(run_dir),
        final_val_err=final["val_err"],
        best_val_err=state.best_val_err if math.isfinite(state.best_val_err) else None,
        final_train_err=final["train_err"] if row else math.nan,
        iters=state.step,
        wall_time=wall_time,
        images_per_sec=state.step * cfg.batch_size / state.elapsed if state.elapsed else 0.0,
    )
    if write:
        final_model = ema.module if ema is not None and cfg.ema_final else raw_model
        save_final_weights(final_model, run_dir, final_meta(meta, final, row, run_dir))
        rows = run_dir.read_metrics()
        draw_curves(run_dir, cfg, rows, log)
        summary = {
            **asdict(result),
            "run_dir": str(run_dir),
            "train_time": state.elapsed,
            "world_size": world_size,
            "time_to_accuracy": time_to_accuracy(rows),
        }
        write_json(run_dir, RunDir.SUMMARY, summary)
    return result
