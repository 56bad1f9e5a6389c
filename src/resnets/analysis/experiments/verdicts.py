"""``resnets analyze verdicts``: the written reports judged again from their own CSV files (the
run folders may be gone), each under the looks its ``verdicts.json`` records, then the summary
page's table of claims and its whole-schedule section; nothing else on the pages changes.
Each experiment's own re-judging is its registration's ``rejudge``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...data import data_fingerprints
from ...errors import ConfigError
from ...io import atomic_write_text
from .. import whole_schedule
from ..registry import EXPERIMENTS, Experiment, Settings, register_experiment
from ..reports import (
    CLAIMS_BEGIN,
    CLAIMS_END,
    VERDICTS_BEGIN,
    VERDICTS_END,
    Seeds,
    Verdict,
    counted_looks,
    looks_with,
    replace_block,
    summary_section,
    verdict_block,
    with_looks,
    write_verdicts,
)
from .paper import SUMMARY_REPORTS


def rejudged_reports() -> list[str]:
    """The experiments whose reports can be judged again from their CSV files."""
    return [name for name, experiment in EXPERIMENTS.items() if experiment.rejudge is not None]


def rejudge(folder: Path) -> tuple[list[Verdict], str, list[dict[str, Any]]]:
    """A written report's verdicts computed again from the CSV it wrote (the experiment is the
    folder's name), corrected for the looks its ``verdicts.json`` records (this one added when
    its seeds are new), its RESULTS.md with the verdict lines replaced, and the looks; nothing
    is written (:func:`write_rejudged` writes)."""
    name = folder.name
    judge = EXPERIMENTS[name].rejudge if name in EXPERIMENTS else None
    if judge is None:
        raise ValueError(
            f"{folder}: not one of the reports judged from their CSV "
            f"({', '.join(rejudged_reports())})"
        )
    history: list[dict[str, Any]] = []

    def looks(seeds: Seeds) -> int:
        history[:] = looks_with(folder, seeds, "judged again from the report's CSV")
        return counted_looks(history)

    verdicts, _ = judge(folder, looks)
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


def _verdicts(s: Settings) -> Path:
    """Every report in ``s["results"]`` judged again, then its summary page; returns the page."""
    results = Path(s["results"])
    summary = results / "RESULTS.md"
    if not summary.is_file():
        raise ConfigError(f"--results {results}: holds no RESULTS.md of `reproduce paper`")
    # everything is computed and checked first, then written: a report that cannot be judged
    # again leaves every page as it was
    judged = {}
    for folder in rejudged_reports():
        if folder not in SUMMARY_REPORTS and not (results / folder / "RESULTS.md").is_file():
            continue  # a report not made (yet) in these results
        try:
            judged[folder] = rejudge(results / folder)
        except (OSError, ValueError) as e:
            raise ConfigError(str(e)) from e
    found = [(folder, judged[folder][0]) for folder in SUMMARY_REPORTS]
    text = summary.read_text()
    zoo_runs = Path(s["zoo_runs"]) if s["zoo_runs"] else None
    zoo = whole_schedule.score_zoo(s.data, data_fingerprints(s.data))
    figure = whole_schedule.responses_figure(zoo, results)  # written last
    curves = whole_schedule.zoo_curves(results, zoo_runs)
    fig6 = whole_schedule.curves_section(curves, whole_schedule.curves_figure(curves, results))
    whole = whole_schedule.table6_section(zoo, zoo_runs, figure, fig6)
    claims = summary_section(found)
    try:
        text = replace_block(text, CLAIMS_BEGIN, CLAIMS_END, claims[claims.index(CLAIMS_BEGIN) :])
        text = replace_block(text, whole_schedule.BEGIN, whole_schedule.END, whole)
    except ValueError as e:
        raise ConfigError(f"{summary}: {e}") from e
    for folder, (verdicts, page, looks) in judged.items():
        write_rejudged(results / folder, verdicts, page, looks)
    atomic_write_text(summary, text)
    whole_schedule.write_responses_figure(zoo, results)
    whole_schedule.write_curves_figure(curves, results)
    if s.progress:
        for folder, (verdicts, _, _) in judged.items():
            for v in verdicts:
                print(f"{folder}: {v.label} {v.word()}")
    return summary


register_experiment(
    Experiment(
        "verdicts",
        "judge written reports again from their own CSV files (the run folders may be gone), "
        "and the summary page, Table 6 at the whole schedule included",
        main=_verdicts,
        defaults={"results": "", "zoo_runs": ""},
        option_help={
            "results": "the folder `reproduce paper` wrote (its RESULTS.md, degradation/, "
            "cifar-table/, responses/)",
            "zoo_runs": "as for `reproduce paper`",
        },
        required=frozenset({"results", "data"}),
        command="analyze",
        flags=("data", "progress"),
    )
)
