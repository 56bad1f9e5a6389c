"""Fig. 7: the standard deviation of every 3x3 layer's response, measured on the degradation
experiment's runs (shared through ``--runs-from``), and claim (e): residual responses are
smaller than plain ones, and smaller for deeper ResNets. ``resnets analyze responses``."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..claims import judged, runs_missing, tested
from ..figures import plot_responses
from ..registry import Experiment, Judged, Records, Report, Settings, register_experiment
from ..report_csv import csv_rows, report_depths
from ..reports import Seeds, Spread, Verdict, judge_page, verdict_block, write_csv
from ..runs import response_curves
from ..stats import Family, combine, paired_by_seed
from .degradation import plain_and_residual


def _responses_report(s: Settings, records: Records) -> Report:
    depths = s["depths"]
    specs = plain_and_residual(s)
    rows, curves = response_curves(specs, s.runs_root)
    write_csv(s.out / "responses.csv", rows)
    first = {model: curve for (model, seed), curve in curves.items() if seed == 0}
    plot_responses(first, s.out / "responses.png")  # the figure: seed 0, as the paper shows one
    means: dict[str, dict[int, float]] = {}
    for (model, seed), (layer_order, _) in curves.items():
        means.setdefault(model, {})[seed] = float(np.mean(layer_order))
    # every seed of the degradation runs: claim (e) is tested paired by seed
    seeds = {model: sorted(by_seed) for model, by_seed in sorted(means.items())}
    (verdict,) = judge_page(
        s.out, seeds, lambda looks: [response_verdict(means, sorted(depths), looks)]
    )
    return Report("Layer response statistics", responses_sections(first, verdict))


def responses_sections(
    curves: dict[str, tuple[list[float], list[float]]], verdict: Verdict
) -> list[str]:
    """Fig. 7: mean and median response std per net, and claim (e) (``verdict``, from
    :func:`response_verdict`)."""
    table = ["| network | layers | mean std | median std |", "| --- | ---: | ---: | ---: |"]
    for name, (layer_order, _) in curves.items():
        table.append(
            f"| {name} | {len(layer_order)} | {np.mean(layer_order):.3f} | "
            f"{np.median(layer_order):.3f} |"
        )
    return [
        "## Layer responses (paper Fig. 7)",
        "",
        "![responses](responses.png)",
        "",
        *table,
        "",
        "The table and the figure show seed 0; claim (e) is tested on each seed's mean response "
        "std.",
        "",
        *verdict_block([verdict]),
        "",
        "The paper: ResNets have generally smaller responses than their plain counterparts, and "
        "deeper ResNets smaller ones still, supporting residual functions that are closer to zero "
        "than non-residual ones.",
    ]


def response_verdict(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int] = (20, 56), looks: int = 1
) -> Verdict:
    """Claim (e) of Fig. 7: residual responses are smaller than plain ones at every depth, and
    smaller for the deeper ResNet. ``means`` maps a model to its mean response std by seed;
    each comparison is paired by seed, the three corrected together (Holm) at 5% / ``looks``."""
    return judged(lambda fam: [_responses(means, depths, fam)], "responses", looks)[0]


def _responses(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int], family: Family
) -> Verdict:
    claim = "residual responses smaller than plain ones, and smaller for deeper ResNets"
    needed = [f"{k}{d}" for d in depths for k in ("plain", "resnet")]
    missing = [m for m in needed if not means.get(m)]
    if missing:
        return runs_missing("(e)", claim, *missing)
    parts, outcomes = [], []
    for better, worse, what in [
        *((f"resnet{d}", f"plain{d}", f"depth {d}: ResNet against plain") for d in depths),
        (
            f"resnet{max(depths)}",
            f"resnet{min(depths)}",
            f"ResNet-{max(depths)} against ResNet-{min(depths)}",
        ),
    ]:
        test = paired_by_seed(means[better], means[worse])
        outcomes.append(family.outcome(test))
        b, w = Spread.of(list(means[better].values())), Spread.of(list(means[worse].values()))
        parts.append(
            f"{what}: {b.mean:.3f} against {w.mean:.3f}, difference "
            f"{tested(test, family, scale=1.0, unit='')}"
        )
    return Verdict(
        "(e)", claim, combine(outcomes), "mean std of 3x3 responses: " + "; ".join(parts)
    )


def response_means_from_csv(path: Path) -> dict[str, dict[int, float]]:
    """Each network's mean response std by seed, from a responses report's CSV (written before
    it kept a seed column: seed 0)."""
    stds: dict[str, dict[int, list[float]]] = {}
    try:
        for row in csv_rows(path, "responses.csv"):
            by_seed = stds.setdefault(row["model"], {})
            by_seed.setdefault(int(row.get("seed") or 0), []).append(float(row["std"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a responses.csv a report wrote ({e})") from e
    return {m: {s: statistics.fmean(v) for s, v in seeds.items()} for m, seeds in stds.items()}


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    means = response_means_from_csv(folder / "responses.csv")
    seeds = {m: sorted(by_seed) for m, by_seed in sorted(means.items())}
    return [response_verdict(means, report_depths(folder), looks(seeds))], seeds


register_experiment(
    Experiment(
        "responses",
        "std of every 3x3 layer's response (Fig. 7)",
        runs=plain_and_residual,
        report=_responses_report,
        defaults={"depths": [20, 56]},
        command="analyze",
        option_help={"depths": "comma-separated 6n+2 depths"},
        rejudge=_rejudge,
    )
)
