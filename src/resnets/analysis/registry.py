"""The paper's experiments as data and functions: one :class:`Experiment` per experiment in one
registry. Each experiment is one file of :mod:`resnets.analysis.experiments`, which declares
its options (each with its help and default, once), the runs it needs, the report it writes
from their finished records, its claims and how they are judged again from its CSV files, and
registers itself. :func:`~resnets.analysis.reproduce.reproduce` is the Python door to any of
them:

    import resnets
    path = resnets.reproduce("degradation", data="digits", budget=0.01, out="results/deg")

``resnets reproduce NAME`` and ``resnets analyze NAME`` are generated from the registry: they
parse their flags into the same :class:`Settings` and call the same :func:`run_experiment`.
The budget and the seeds are checked once, here, when a Settings is made; the options, when
an experiment is run. The registry fills when :mod:`resnets.analysis.experiments` is imported
(``resnets.reproduce`` and the commands import it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.load import spec_paths
from ..errors import ConfigError
from ..io import atomic_write_text, check_owner
from .reports import Seeds, Verdict, write_results
from .runs import RunSpec, budget_config, run_all

Records = list[dict[str, Any]]
#: an experiment's verdicts judged again from what its report wrote, and the seeds they saw
Judged = tuple[list[Verdict], Seeds]
#: the Settings fields an experiment that trains takes as flags (``progress`` is --no-progress)
TRAINING_FLAGS = ("data", "budget", "seeds", "out", "device", "workers", "runs_from", "progress")


class NoReportYet(ConfigError):
    """A call of an experiment that ended without its report: its runs are held by other
    workers, or it was asked to train only. ``exit_code`` is its command's exit status (0:
    this worker did its share)."""

    def __init__(self, message: str, exit_code: int = 0) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Settings:
    """What every experiment is given. ``budget`` is the fraction of the paper's 64k-iteration
    schedule (1.0 = all of it); ``seeds`` the runs per configuration; ``out`` the results
    folder; ``runs_from`` a folder whose ``runs/`` holds (and receives) the trained runs, so
    experiments can share them; ``depth_seeds`` the seeds per depth where they differ (set by
    ``reproduce paper``); ``options`` the experiment's own (depths, model, ...)."""

    data: str = "cifar10"
    budget: float = 1.0
    seeds: int = 1
    out: Path = Path("results")
    device: str = "auto"
    workers: int = 0
    runs_from: Path | None = None
    progress: bool = True
    depth_seeds: Mapping[int, int] | None = None
    command: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (
            isinstance(self.budget, (int, float))
            and not isinstance(self.budget, bool)  # True is an int to Python, not a budget
            and self.budget > 0
            and math.isfinite(self.budget)
        ):
            raise ConfigError(
                f"--budget {self.budget}: must be > 0 (1.0 = the paper's 64k iterations)"
            )
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ConfigError(f"--seeds {self.seeds}: must be >= 1")
        object.__setattr__(self, "out", Path(self.out))
        if self.runs_from is not None:
            object.__setattr__(self, "runs_from", Path(self.runs_from))
        object.__setattr__(self, "command", self.command or "resnets " + " ".join(sys.argv[1:]))

    def __getitem__(self, option: str) -> Any:
        return self.options[option]

    @property
    def runs_root(self) -> Path:
        """Where the runs live: ``runs_from``, else the results folder (``runs/`` inside)."""
        return self.runs_from or self.out

    def seeds_at(self, depth: int) -> int:
        """Seeds of the nets of this depth: ``seeds``, unless ``depth_seeds`` says otherwise."""
        return (self.depth_seeds or {}).get(depth, self.seeds)

    def spec(self, model: str, seed: int, tag: str = "", **overrides: Any) -> RunSpec:
        """One run of ``model`` at this budget: named ``<model><tag>-s<seed>``."""
        cfg = budget_config(
            model, self.data, self.budget, seed, self.device, workers=self.workers, **overrides
        )
        return RunSpec(f"{model}{tag}-s{seed}", cfg, {"model": model, "seed": seed, "tag": tag})


@dataclass(frozen=True)
class Report:
    """What an experiment's report gives back: the title and sections of its RESULTS.md, and
    the schedules its trainings used where it has no shared runs to read them from."""

    title: str
    sections: list[str]
    schedules: list[tuple[int, list[float]]] | None = None  # None: read from the records


@dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments. Most train runs and report on them: ``runs(settings)``
    lists the training runs it needs; ``report(settings, records)`` measures what it must on
    the finished runs, writes its CSV files, figures and verdicts into ``settings.out`` and
    returns the page's sections. One that composes others or reads what they wrote gives
    ``main(settings)`` instead, which returns the page it wrote (``paper``, ``detection``,
    ``verdicts``). ``rejudge(folder, looks)`` gives its verdicts again from the CSV files its
    report wrote, ``looks`` counting the looks at the seeds it found (``analyze verdicts``)."""

    name: str
    help: str
    runs: Callable[[Settings], list[RunSpec]] | None = None
    report: Callable[[Settings, Records], Report] | None = None
    main: Callable[[Settings], Path] | None = None
    #: its own options and their defaults (a default's type is the option's type)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: each option's help, written once: the command's flag (``--with-1202`` for
    #: ``with_1202``) is made from it and the default (commands.py)
    option_help: Mapping[str, str] = field(default_factory=dict)
    #: options (default "") and flags its command must be given
    required: frozenset[str] = frozenset()
    command: str = "reproduce"  # the `resnets` command it sits under (reproduce or analyze)
    #: the Settings fields its command takes as flags
    flags: tuple[str, ...] = TRAINING_FLAGS
    seeds: int = 1  # runs per configuration when none is given
    rejudge: Callable[[Path, Callable[[Seeds], int]], Judged] | None = None

    def __post_init__(self) -> None:
        if set(self.option_help) != set(self.defaults):
            raise ValueError(f"experiment {self.name!r}: every option needs its help, once")
        if (self.main is None) == (self.runs is None or self.report is None):
            raise ValueError(f"experiment {self.name!r}: either runs and a report, or a main")
        if not set(self.required) <= {*self.defaults, *self.flags}:
            raise ValueError(f"experiment {self.name!r}: a required option or flag it lacks")


EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Add an experiment to the registry (its name must be new)."""
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} registered twice")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """An experiment by name; a one-line error listing the others."""
    if not EXPERIMENTS:  # this module alone registers none (the experiments import it)
        raise ConfigError(
            f"experiment {name!r}: none registered; import resnets.analysis.experiments first "
            "(resnets.reproduce and the commands do)"
        )
    if name not in EXPERIMENTS:
        raise ConfigError(f"experiment {name!r}: one of {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[name]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool (true or false)"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (str, os.PathLike)):  # a path is given as text on the command line
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def check_option(experiment: str, option: str, value: Any, default: Any) -> None:
    """One option of an experiment against its default's type, in one line: a bool is not a
    number (nor the reverse), a number is finite, a list is a non-empty list of what the
    default's items are (an empty default list takes strings)."""
    where = f"{experiment}: option {option}={value!r}"
    if isinstance(default, bool) != isinstance(value, bool) or _kind(value) != _kind(default):
        raise ConfigError(f"{where}: must be {_kind(default)}, not {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number")
    if isinstance(default, (list, tuple)):
        if not value and default:
            raise ConfigError(f"{where}: must not be empty (default {list(default)})")
        want = _kind(default[0]) if default else "a string"
        for item in value:
            if _kind(item) != want:
                raise ConfigError(f"{where}: each item must be {want}, not {item!r}")


def unknown_options(name: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Refuse, in one line, an option the experiment ``name`` does not take."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise ConfigError(
            f"{name}: no option {', '.join(sorted(unknown))} (it takes "
            f"{', '.join(sorted(defaults)) or 'none'})"
        )


def run_experiment(name: str, settings: Settings) -> Path:
    """Train (or find finished, or resume) every run ``name`` needs, then write its report;
    returns the path of its RESULTS.md (an experiment with a ``main``: what that returns)."""
    experiment = get_experiment(name)
    unknown_options(name, settings.options, experiment.defaults)
    for option, value in settings.options.items():
        check_option(name, option, value, experiment.defaults[option])
    settings = dataclasses.replace(settings, options={**experiment.defaults, **settings.options})
    for option in sorted(experiment.required & set(experiment.defaults)):
        if not str(settings.options[option]):
            raise ConfigError(
                f"{name}: option {option} is required ({experiment.option_help[option]})"
            )
    if experiment.main is not None:
        return experiment.main(settings)
    assert experiment.runs is not None and experiment.report is not None  # (__post_init__)
    started = time.perf_counter()
    # every run is specified (and so every option checked) before anything is written: a
    # refused call leaves no folder behind
    specs = experiment.runs(settings)
    claim_results_folder(settings, name)
    records = run_all(specs, settings.runs_root, progress=settings.progress)
    report = experiment.report(settings, records)
    return write_page(
        settings,
        report.title,
        report.sections,
        time.perf_counter() - started,
        records,
        report.schedules,
    )


def write_page(
    settings: Settings,
    title: str,
    sections: list[str],
    wall: float,
    records: list[dict[str, Any]],
    schedules: list[tuple[int, list[float]]] | None = None,
) -> Path:
    """``settings.out/RESULTS.md`` from the records behind it: their machines, training time
    and schedules (``schedules`` where the page has no records to read them from)."""
    return write_results(
        settings.out,
        title,
        settings.command,
        settings.budget,
        sections,
        wall,
        settings.data,
        sum(r.get("train_time") or 0 for r in records) if records else None,
        [r["machine"] for r in records] if records else None,
        schedules=[(r["iters"], r["milestones"]) for r in records]
        if schedules is None
        else schedules,
    )


def claim_results_folder(
    settings: Settings, name: str, reading: Sequence[str | Path] | None = None
) -> None:
    """``out`` for this experiment: created, and refused when it holds another experiment's
    results (``experiment.json`` says whose), or when it lies inside what is read (``reading``;
    by default the data), a run folder or the installed package."""
    out = settings.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    # a results folder never lands inside a run folder, the installed package or the data
    # (the same door for the command and for resnets.reproduce)
    check_owner(out, "--out", reading=spec_paths(settings.data) if reading is None else reading)
    prev = out / "experiment.json"
    if prev.is_file():
        try:
            saved = json.loads(prev.read_text())
            # (folders written before the field existed: the command's fourth word)
            other = saved.get("experiment") or saved["command"].split()[2]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            other = "another experiment (unreadable experiment.json)"
        if other != name:
            raise ConfigError(
                f"--out {out}: holds the results of {other!r}, not {name!r}; give this "
                "experiment its own folder"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create the folder ({e.strerror or e})") from None
    record = {
        "experiment": name,
        "command": settings.command,
        "args": {
            "data": settings.data,
            "budget": settings.budget,
            "seeds": settings.seeds,
            "device": settings.device,
            "workers": settings.workers,
            "runs_from": str(settings.runs_from) if settings.runs_from else None,
            **{k: v for k, v in settings.options.items()},
        },
    }
    atomic_write_text(out / "experiment.json", json.dumps(record, indent=2, default=str))
