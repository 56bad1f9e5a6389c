"""The Python door to every experiment: :func:`reproduce`, as ``resnets reproduce NAME`` (or
``analyze NAME``) runs it. Every experiment is registered (:mod:`.experiments`, one file
each) and called alike, ``paper``, ``detection`` and ``verdicts`` included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import experiments  # noqa: F401  (importing it registers every experiment)
from .registry import Settings, get_experiment, run_experiment


def reproduce(
    name: str,
    /,
    *,
    data: str = "cifar10",
    budget: float = 1.0,
    seeds: int | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    runs_from: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Run one of the paper's experiments end to end from Python, as ``resnets reproduce NAME``
    (or ``analyze NAME``) would; returns its RESULTS.md. ``options`` are the experiment's own
    (``depths=[20, 56]``, ``model="resnet20"``, ...: see ``EXPERIMENTS[name].defaults`` and
    ``option_help``); ``seeds`` defaults to the experiment's (2 for ``"paper"``, else 1). A
    second call with the same ``out`` skips the finished runs and resumes an interrupted one.
    ``"paper"`` trains its whole queue in this process (the command can share it between
    workers) and then writes its reports; where other workers still hold runs it raises
    :class:`~.registry.NoReportYet`."""
    seeds = get_experiment(name).seeds if seeds is None else seeds
    settings = Settings(
        data=data,
        budget=budget,
        seeds=seeds,
        out=Path(out) if out is not None else Path("results") / name,
        device=device,
        runs_from=Path(runs_from) if runs_from is not None else None,
        progress=progress,
        command=f"resnets.reproduce({name!r}, data={data!r}, budget={budget!r}, seeds={seeds})",
        options=options,
    )
    return run_experiment(name, settings)
