"""A written report judged again from its own CSV files (the run folders may be gone): each
table validated before it is judged, the verdicts computed by claims.py under the looks the
page's ``verdicts.json`` records, and the page's verdict block replaced; ``resnets analyze
verdicts`` runs it over every report."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_write_text
from .claims import (
    concat_verdict,
    degradation_verdicts,
    detection_seeds,
    detection_verdict,
    ordering_verdict,
    preact_verdicts,
    response_verdict,
    shortcut_verdicts,
    transfer_verdict,
)
from .reports import (
    VERDICTS_BEGIN,
    VERDICTS_END,
    RunFinal,
    Seeds,
    Verdict,
    counted_looks,
    looks_with,
    replace_block,
    seeds_of,
    verdict_block,
    with_looks,
    write_verdicts,
)

#: the reports whose verdicts come from their CSV files, by folder
REJUDGED = (
    "degradation",
    "cifar-table",
    "responses",
    "shortcuts",
    "sum-vs-concat",
    "preact",
    "transfer",
    "detection",
)
#: those whose claims the summary page copies: (a)-(e)
SUMMARY_REPORTS = ("degradation", "cifar-table", "responses")


def _csv_rows(path: Path, what: str) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a {what} a report wrote ({e})") from e


def _fraction(value: str, path: Path, line: int, column: str) -> float:
    """A CSV cell that must be an error or accuracy: a finite fraction in [0, 1]."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}, row {line}: {column} {value!r} is not a number") from None
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        raise ValueError(f"{path}, row {line}: {column} {value!r} is not a fraction in [0, 1]")
    return x


def _seed(value: str | None, path: Path, line: int) -> int:
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
        rows = _csv_rows(path, "runs.csv")
        for line, row in enumerate(rows, start=2):  # row 1 is the header
            name = row[key]
            if name is None:
                raise ValueError(f"{path}, row {line}: fewer cells than the header")
            seed = _seed(row.get("seed"), path, line)
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
                    _fraction(row["final_train_err"], path, line, "final_train_err"),
                    _fraction(row["final_val_err"], path, line, "final_val_err"),
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


def response_means_from_csv(path: Path) -> dict[str, dict[int, float]]:
    """Each network's mean response std by seed, from a responses report's CSV (written before
    it kept a seed column: seed 0)."""
    stds: dict[str, dict[int, list[float]]] = {}
    try:
        for row in _csv_rows(path, "responses.csv"):
            by_seed = stds.setdefault(row["model"], {})
            by_seed.setdefault(int(row.get("seed") or 0), []).append(float(row["std"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a responses.csv a report wrote ({e})") from e
    return {m: {s: statistics.fmean(v) for s, v in seeds.items()} for m, seeds in stds.items()}


def transfer_table_from_csv(path: Path) -> dict[tuple[str, int], dict[int, float]]:
    """Transfer's run table from its ``transfer.csv`` (mode, labels per class, seed, accuracy),
    validated as :func:`run_table_from_csv` validates a runs.csv."""
    table: dict[tuple[str, int], dict[int, float]] = {}
    try:
        for line, row in enumerate(_csv_rows(path, "transfer.csv"), start=2):
            key = (row["mode"], int(row["labels_per_class"]))
            seed = _seed(row.get("seed"), path, line)
            if seed in table.get(key, {}):
                raise ValueError(f"{path}, row {line}: {key[0]} at {key[1]} seed {seed} again")
            acc = _fraction(row["val_acc"], path, line, "val_acc")
            table.setdefault(key, {})[seed] = 1.0 - acc
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a transfer.csv a report wrote (no column {e})") from e
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a transfer.csv a report wrote ({e})") from e
    return table


def detection_rows_from_csv(path: Path) -> list[dict[str, Any]]:
    """The detection report's runs from its ``runs.csv``: one row per (backbone, seed), a
    finished run's mAP a fraction in [0, 1]."""
    rows, seen = [], set()
    try:
        for line, row in enumerate(_csv_rows(path, "runs.csv"), start=2):
            seed = _seed(row.get("seed"), path, line)
            if (row["backbone"], seed) in seen:
                raise ValueError(f"{path}, row {line}: {row['backbone']} seed {seed} again")
            seen.add((row["backbone"], seed))
            if row["finished"] not in ("True", "False"):
                raise ValueError(f"{path}, row {line}: finished {row['finished']!r}")
            finished = row["finished"] == "True"
            rows.append(
                {
                    "backbone": row["backbone"],
                    "seed": seed,
                    "finished": finished,
                    "map": _fraction(row["map"], path, line, "map") if finished else math.nan,
                }
            )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a detection runs.csv (no column {e})") from e
    return rows


def _args(folder: Path) -> dict[str, Any]:
    try:
        args = json.loads((folder / "experiment.json").read_text())["args"]
        if not isinstance(args, dict):
            raise TypeError("args is not a mapping")
        return args
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: not a report's record ({e})") from e


def _depths(folder: Path) -> list[int]:
    given = _args(folder).get("depths")  # a list (since experiments are functions) or "20,56"
    try:
        return [int(d) for d in (given if isinstance(given, list) else str(given).split(","))]
    except (ValueError, TypeError) as e:
        raise ValueError(f"{folder / 'experiment.json'}: depths {given!r} ({e})") from e


def _judge_folder(folder: Path, looks: Callable[[Seeds], int]) -> tuple[list[Verdict], Seeds]:
    """The verdicts of one report from its CSV; ``looks`` gives the number of looks at the
    seeds the CSV holds."""
    name = folder.name
    if name in ("degradation", "cifar-table"):
        table = run_table_from_csv(folder / "runs.csv")
        depths, seeds = _depths(folder), seeds_of(table)
        if name == "degradation":
            return degradation_verdicts(table, min(depths), max(depths), looks(seeds)), seeds
        return [ordering_verdict(table, depths, looks=looks(seeds))], seeds
    if name == "responses":
        means = response_means_from_csv(folder / "responses.csv")
        seeds = {m: sorted(by_seed) for m, by_seed in sorted(means.items())}
        return [response_verdict(means, _depths(folder), looks(seeds))], seeds
    if name == "shortcuts":
        table = run_table_from_csv(folder / "runs.csv", key="tag")
        table = {tag.strip("-") or "plain": runs for tag, runs in table.items()}
        seeds = seeds_of(table)
        return shortcut_verdicts(table, looks=looks(seeds)), seeds
    if name == "sum-vs-concat":
        table = run_table_from_csv(folder / "runs.csv", key="tag")
        summed = next((t for t in table if t.startswith("sum")), "sum (ResNet)")
        matched = next((t for t in table if t.startswith("concat, matched")), "concat, matched")
        seeds = seeds_of(table)
        return [concat_verdict(table, summed, matched, looks(seeds))], seeds
    if name == "preact":
        table = run_table_from_csv(folder / "runs.csv")
        args = _args(folder)
        depths = [110] + [164] * bool(args.get("with_164")) + [1001] * bool(args.get("with_1001"))
        pairs = [(d, f"resnet{d}", f"preact_resnet{d}") for d in depths]
        seeds = seeds_of(table)
        return preact_verdicts(table, pairs, looks(seeds)), seeds
    if name == "transfer":
        ttable = transfer_table_from_csv(folder / "transfer.csv")
        counts = [int(n) for n in _args(folder).get("labels", [10, 50, 250, 0])]
        seeds = {f"{m} at {n}": sorted(s) for (m, n), s in sorted(ttable.items())}
        return [transfer_verdict(ttable, counts[0], counts[-1], looks(seeds))], seeds
    if name == "detection":
        rows = detection_rows_from_csv(folder / "runs.csv")
        backbones = sorted({r["backbone"] for r in rows})
        residual = next((b for b in backbones if not b.startswith("plain")), "resnet18")
        plain = next((b for b in backbones if b.startswith("plain")), "plain18")
        seeds = detection_seeds(rows, backbones)
        return [detection_verdict(rows, residual, plain, looks(seeds))], seeds
    raise ValueError(f"{folder}: not one of the reports judged from their CSV ({REJUDGED})")


def rejudge(folder: Path) -> tuple[list[Verdict], str, list[dict[str, Any]]]:
    """A written report's verdicts computed again from the CSV it wrote, corrected for the
    looks its ``verdicts.json`` records (this one added when its seeds are new), its RESULTS.md
    with the verdict lines replaced, and the looks; nothing is written
    (:func:`write_rejudged` writes)."""
    history: list[dict[str, Any]] = []

    def looks(seeds: Seeds) -> int:
        history[:] = looks_with(folder, seeds, "judged again from the report's CSV")
        return counted_looks(history)

    verdicts, _ = _judge_folder(folder, looks)
    verdicts = with_looks(verdicts, history)
    results = folder / "RESULTS.md"
    text = results.read_text()
    try:
        text = replace_block(text, VERDICTS_BEGIN, VERDICTS_END, verdict_block(verdicts))
    except ValueError as e:
        raise ValueError(f"{results}: {e}") from e
    return verdicts, text, history


def write_rejudged(
    folder: Path, verdicts: Sequence[Verdict], text: str, looks: Sequence[Mapping[str, Any]]
) -> None:
    """Write what :func:`rejudge` computed: ``verdicts.json`` (with its looks) and RESULTS.md."""
    write_verdicts(folder, verdicts, looks)
    atomic_write_text(folder / "RESULTS.md", text)
