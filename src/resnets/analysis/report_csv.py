"""Reading back what a report wrote, to judge it again (the run folders may be gone): its CSV
files validated row by row (:func:`run_table_from_csv`, the cells every report shares) and its
``experiment.json`` (the options it ran with). Each experiment's own CSV reader and its
re-judging live in its file (:mod:`resnets.analysis.experiments`); ``resnets analyze
verdicts`` (:mod:`resnets.analysis.experiments.verdicts`) runs them over every report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from .reports import RunFinal


def csv_rows(path: Path, what: str) -> list[dict[str, str]]:
    """The rows of a report's CSV file ``what``; one line naming the file when unreadable."""
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a {what} a report wrote ({e})") from e


def fraction(value: str, path: Path, line: int, column: str) -> float:
    """A CSV cell that must be an error or accuracy: a finite fraction in [0, 1]."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}, row {line}: {column} {value!r} is not a number") from None
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        raise ValueError(f"{path}, row {line}: {column} {value!r} is not a fraction in [0, 1]")
    return x


def seed_cell(value: str | None, path: Path, line: int) -> int:
    """A CSV cell that must be a run's seed: a whole number >= 0."""
    if value is None or not value.strip():
        raise ValueError(f"{path}, row {line}: no seed (every run is paired by its seed)")
    try:
        seed = int(value)
    except ValueError:
        raise ValueError(f"{path}, row {line}: seed {value!r} is not a whole number") from None
    if seed < 0:
        raise ValueError(f"{path}, row {line}: seed {seed} is negative")
    return seed


def run_table_from_csv(path: Path, key: str = "model") -> dict[str, list[RunFinal]]:
    """The run table of a report's ``runs.csv`` (one row per run: model, seed, final errors),
    keyed by the column ``key`` (``tag`` for reports whose variants share a model). The table
    is validated before anything is judged: one row per (key, seed), a seed on every row,
    errors that are finite fractions, and one schedule (``iters``) for all runs where the file
    records it; anything else is refused in one line naming the file and the row."""
    table: dict[str, list[RunFinal]] = {}
    seen: dict[tuple[str, int], int] = {}
    schedules: dict[str, int] = {}
    try:
        rows = csv_rows(path, "runs.csv")
        for line, row in enumerate(rows, start=2):  # row 1 is the header
            name = row[key]
            if name is None:
                raise ValueError(f"{path}, row {line}: fewer cells than the header")
            seed = seed_cell(row.get("seed"), path, line)
            if (name, seed) in seen:
                raise ValueError(
                    f"{path}, row {line}: {name} seed {seed} again (first on row "
                    f"{seen[name, seed]}): one row per run"
                )
            seen[name, seed] = line
            if row.get("iters"):
                schedules.setdefault(row["iters"], line)
            table.setdefault(name, []).append(
                RunFinal(
                    fraction(row["final_train_err"], path, line, "final_train_err"),
                    fraction(row["final_val_err"], path, line, "final_val_err"),
                    seed,
                )
            )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a runs.csv a report wrote (no column {e})") from e
    if len(schedules) > 1:
        (a, la), (b, lb) = list(schedules.items())[:2]
        raise ValueError(
            f"{path}, row {lb}: {b} iterations against {a} on row {la}: paired runs must come "
            "from one recipe and schedule"
        )
    return table


def report_args(folder: Path) -> dict[str, Any]:
    """The options a report in ``folder`` ran with, from its ``experiment.json``."""
    try:
        args = json.loads((folder / "experiment.json").read_text())["args"]
        if not isinstance(args, dict):
            raise TypeError("args is not a mapping")
        return args
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: not a report's record ({e})") from e


def report_depths(folder: Path) -> list[int]:
    """The depths a report in ``folder`` ran with."""
    given = report_args(folder).get("depths")  # a list (since experiments are functions) or "20,56"
    try:
        return [int(d) for d in (given if isinstance(given, list) else str(given).split(","))]
    except (ValueError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: depths {given!r} ({e})") from e
