"""``reproduce paper``: the paper's CIFAR result from one resumable queue, the command's and
Python's one function (:func:`run_paper`).

The runs behind Table 6 (cifar-table), Fig. 6 (degradation) and Fig. 7 (responses) train in
the order that decides the claims soonest, in one run store that any number of worker
processes share (each run folder's claim is the queue's); once every run has finished, the
three reports are written over that store, then the summary page of claims (a)-(e) with the
whole-schedule section (the zoo's weights and curves, :mod:`.whole_schedule`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..data import data_fingerprints
from . import (
    definitions,  # noqa: F401  (importing it registers every experiment)
    experiments,
    whole_schedule,
)
from .registry import Settings, run_experiment, write_page
from .reports import group, read_verdicts, summary_section

#: the paper experiment's own options and their defaults (the CLI's flags of the same names)
PAPER_OPTIONS = {"table_seeds": 1, "seeds_110": 1, "plain_32_44": False, "zoo_runs": None}
TITLE = "The paper's result: deeper residual nets against deeper plain nets"


@dataclass(frozen=True)
class PaperOutcome:
    """Where one call of :func:`run_paper` left the queue: runs finished of all, and the
    summary page when it was written (None: runs are missing, or no report was asked for)."""

    finished: int
    total: int
    summary: Path | None


def run_paper(
    base: Settings,
    *,
    table_seeds: int = 1,
    seeds_110: int = 1,
    plain_32_44: bool = False,
    zoo_runs: str | Path | None = None,
    train: bool = True,
    report: bool = True,
) -> PaperOutcome:
    """Train this worker's share of the queue (``train``), then, if every run has finished,
    write the three reports and the summary in ``base.out`` (``report``). ``base.seeds``:
    seeds of ResNet-20/56 and their plain twins; the run store is ``base.runs_from``, by
    default ``out/runs-store``."""
    started = time.perf_counter()
    root = Path(base.runs_from or base.out / "runs-store")
    per_depth = {20: base.seeds, 56: base.seeds, 32: table_seeds, 44: table_seeds}
    per_depth[110] = seeds_110
    base = replace(base, runs_from=root, depth_seeds=per_depth)
    names = experiments.paper_queue(base.seeds, table_seeds, plain_32_44, seeds_110)
    specs = [base.spec(model, int(seed)) for model, seed in (n.rsplit("-s", 1) for n in names)]
    if train:
        done, total = experiments.run_queue(specs, root, progress=base.progress)
    else:
        done, total = experiments.finished_count(specs, root)
    if done < total or not report:
        return PaperOutcome(done, total, None)
    plain = [20, 32, 44, 56] if plain_32_44 else [20, 56]
    reports = [  # (each experiment's own defaults where none is given)
        ("cifar-table", {}),
        ("degradation", {"depths": plain}),
        ("responses", {}),
    ]
    out = base.out
    for name, options in reports:
        run_experiment(name, replace(base, out=out / name, options=options))
    # one page of every claim, (a)-(e), copied from the verdicts the three reports computed
    found = [(name, read_verdicts(out / name / "verdicts.json")) for name, _ in reports]
    records = experiments.run_all(specs, root, progress=False, echo=False)  # finished: read only
    seeds = group(records, lambda r: r["model"])
    zoo = whole_schedule.score_zoo(base.data, data_fingerprints(base.data))
    zoo_folder = Path(zoo_runs) if zoo_runs else None
    curves = whole_schedule.zoo_curves(out, zoo_folder)
    runs_behind = ", ".join(
        f"{name} ({len(runs)} seed{'s' * (len(runs) > 1)})" for name, runs in seeds.items()
    )
    sections = [
        *summary_section(found),
        "",
        f"Runs behind it: {runs_behind}.",
        "",
        # claims (a)-(d) where no budget cuts the schedule: the zoo's weights trained on this data
        *whole_schedule.table6_section(
            zoo,
            zoo_folder,
            whole_schedule.write_responses_figure(zoo, out),
            whole_schedule.curves_section(curves, whole_schedule.write_curves_figure(curves, out)),
        ),
    ]
    page = write_page(
        replace(base, out=out), TITLE, sections, time.perf_counter() - started, records
    )
    return PaperOutcome(done, total, page)
