"""The Python door to every experiment: :func:`reproduce`, as ``resnets reproduce NAME`` (or
``analyze NAME``) runs it. The registered experiments (:mod:`.definitions`) and ``paper``
(:mod:`.paper_summary`, the queue behind Table 6 and Figs. 6-7) are called alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import definitions  # noqa: F401  (importing it registers every experiment)
from .paper_summary import PAPER_OPTIONS, run_paper
from .registry import Settings, check_option, run_experiment, unknown_options


def reproduce(
    name: str,
    /,
    *,
    data: str = "cifar10",
    budget: float = 1.0,
    seeds: int = 1,
    out: str | Path | None = None,
    device: str = "auto",
    runs_from: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Run one of the paper's experiments end to end from Python, as ``resnets reproduce NAME``
    (or ``analyze NAME``) would; returns its RESULTS.md. ``options`` are the experiment's own
    (``depths=[20, 56]``, ``model="resnet20"``, ...: see ``EXPERIMENTS[name].defaults``; for
    ``"paper"``, ``PAPER_OPTIONS``). A second call with the same ``out`` skips the finished
    runs and resumes an interrupted one. ``"paper"`` trains its whole queue in this process
    (the command can share it between workers) and then writes its reports."""
    settings = Settings(
        data=data,
        budget=budget,
        seeds=seeds,
        out=Path(out) if out is not None else Path("results") / name,
        device=device,
        runs_from=Path(runs_from) if runs_from is not None else None,
        progress=progress,
        command=f"resnets.reproduce({name!r}, data={data!r}, budget={budget!r}, seeds={seeds})",
        options={} if name == "paper" else options,
    )
    if name != "paper":
        return run_experiment(name, settings)
    unknown_options(name, options, PAPER_OPTIONS)
    for option, value in options.items():
        if PAPER_OPTIONS[option] is not None:  # zoo_runs: a path or None
            check_option(name, option, value, PAPER_OPTIONS[option])
    outcome = run_paper(settings, **options)
    if outcome.summary is None:  # runs held by workers of `resnets reproduce paper` elsewhere
        raise ConfigError(
            f"paper: {outcome.finished}/{outcome.total} runs finished, the rest are held by other "
            "workers; call again once they have finished"
        )
    return outcome.summary
