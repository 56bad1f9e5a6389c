"""``reproduce paper``: the paper's CIFAR result from one resumable queue.

The runs behind Table 6 (cifar-table), Fig. 6 (degradation) and Fig. 7 (responses) train in
the order that decides the claims soonest, in one run store that any number of worker
processes share (each run folder's claim is the queue's); once every run has finished, the
three reports are written over that store, then the summary page of claims (a)-(e) with the
whole-schedule section (the zoo's weights and curves, :mod:`..whole_schedule`). Start
``resnets reproduce paper`` several times and the workers share the queue.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ...data import data_fingerprints
from ...errors import ConfigError
from .. import whole_schedule
from ..registry import (
    Experiment,
    NoReportYet,
    Settings,
    claim_results_folder,
    register_experiment,
    run_experiment,
    write_page,
)
from ..reports import group, read_verdicts, summary_section
from ..runs import finished_count, paper_queue, run_all, run_queue

TITLE = "The paper's result: deeper residual nets against deeper plain nets"
#: the reports whose claims the summary page copies: (a)-(e)
SUMMARY_REPORTS = ("degradation", "cifar-table", "responses")


def _paper(base: Settings) -> Path:
    """Train this worker's share of the queue (unless ``report_only``), then, if every run has
    finished, write the three reports and the summary in ``base.out`` (unless
    ``train_only``); returns the summary page. ``base.seeds``: seeds of ResNet-20/56 and their
    plain twins; the run store is ``base.runs_from``, by default ``out/runs-store``. A call
    that writes no summary raises :class:`~..registry.NoReportYet`."""
    started = time.perf_counter()
    options = base.options
    if options["train_only"] and options["report_only"]:
        raise ConfigError("paper: train_only and report_only exclude each other")
    if not options["train_only"] or base.runs_from is None:  # (else nothing goes in out)
        claim_results_folder(base, "paper")
    root = Path(base.runs_from or base.out / "runs-store")
    table_seeds = options["table_seeds"]
    per_depth = {20: base.seeds, 56: base.seeds, 32: table_seeds, 44: table_seeds}
    per_depth[110] = options["seeds_110"]
    base = replace(base, runs_from=root, depth_seeds=per_depth)
    names = paper_queue(base.seeds, table_seeds, options["plain_32_44"], options["seeds_110"])
    specs = [base.spec(model, int(seed)) for model, seed in (n.rsplit("-s", 1) for n in names)]
    if options["report_only"]:
        done, total = finished_count(specs, root)
        if done < total:
            raise NoReportYet(f"paper: {done}/{total} runs finished: no report yet", exit_code=1)
    else:
        done, total = run_queue(specs, root, progress=base.progress)
    if done < total:
        raise NoReportYet(
            f"paper: {done}/{total} runs finished, the rest are held by other workers; call "
            "again once they have finished"
        )
    if options["train_only"]:
        raise NoReportYet(f"paper: {done}/{total} runs finished (train only: no report)")
    plain = [20, 32, 44, 56] if options["plain_32_44"] else [20, 56]
    reports = [  # (each experiment's own defaults where none is given)
        ("cifar-table", {}),
        ("degradation", {"depths": plain}),
        ("responses", {}),
    ]
    out = base.out
    for name, report_options in reports:
        run_experiment(name, replace(base, out=out / name, options=report_options))
    # one page of every claim, (a)-(e), copied from the verdicts the three reports computed
    found = [(name, read_verdicts(out / name / "verdicts.json")) for name, _ in reports]
    records = run_all(specs, root, progress=False, echo=False)  # finished: read only
    seeds = group(records, lambda r: r["model"])
    zoo = whole_schedule.score_zoo(base.data, data_fingerprints(base.data))
    zoo_folder = Path(options["zoo_runs"]) if options["zoo_runs"] else None
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
    return write_page(
        replace(base, out=out), TITLE, sections, time.perf_counter() - started, records
    )


register_experiment(
    Experiment(
        "paper",
        "Table 6, Fig. 6 and Fig. 7 from one resumable queue that several workers can share",
        main=_paper,
        defaults={
            "table_seeds": 1,
            "seeds_110": 1,
            "plain_32_44": False,
            "train_only": False,
            "report_only": False,
            "zoo_runs": "",
        },
        option_help={
            "table_seeds": "seeds of ResNet-32, -44 and -110",
            "seeds_110": "seeds of ResNet-110",
            "plain_32_44": "also plain-32 and plain-44",
            "train_only": "train this worker's share, write no report",
            "report_only": "train nothing; write the reports if every run has finished (else "
            "exit 1)",
            "zoo_runs": "where the zoo's whole-schedule runs train (docs/results/zoo_worker.sh: "
            ".bgtrain/zoo): Table 6 shows how far each unpackaged depth has got",
        },
        seeds=2,
    )
)
