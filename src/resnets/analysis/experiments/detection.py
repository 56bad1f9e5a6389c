"""Issue 34's claim at CPU scale: the same detector (Faster R-CNN + FPN) with a residual
backbone finds objects better than with its plain twin of the same depth, decided by a test
paired by seed on COCO mAP@[.5:.95], and written beside the paper's COCO figures (Table 8).
Its runs are trained by ``resnets detect train`` (docs/results/detection_worker.sh); this
experiment reads them: ``resnets analyze detection --runs FOLDER``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ...detection.coco import collate, read_coco
from ...detection.draw import draw_detections, save_grid, top_detections
from ...errors import ConfigError
from ...inference import load_weights
from ...io import atomic_write_text, relative_paths
from ...rundir import RunDir
from ...runtime import machine_label
from ..claims import judged, tested
from ..paper_numbers import PAPER_COCO_DETECTION
from ..registry import Experiment, Judged, Settings, claim_results_folder, register_experiment
from ..report_csv import csv_rows, fraction, seed_cell
from ..reports import Seeds, Verdict, judge_page, verdict_block, write_csv
from ..stats import Family, paired_by_seed


def detection_runs(runs: Path) -> list[dict]:
    """One row per finished detection run under ``runs`` (its ``config.json`` says
    ``kind: detection`` and it has a ``summary.json``); unfinished runs are listed as such."""
    rows = []
    for folder in map(RunDir, sorted(runs.iterdir())):
        if folder.kind != "detection":
            continue
        cfg = folder.read_config()["config"]
        summary = folder.read_summary() if folder.finished else {}
        rows.append(
            {
                "run": folder.name,
                "backbone": cfg["backbone"],
                "seed": cfg["seed"],
                "epochs": cfg["epochs"],
                "finished": bool(summary),
                **{k: summary.get(k) for k in ("map", "map_50", "map_75", "map_small",
                                                "map_medium", "map_large", "seconds")},
            }
        )  # fmt: skip
    return rows


#: the detections drawn per image: the highest-scoring ones, whatever their score (a fixed
#: threshold of 0.5 drew nothing for detectors this early in training)
DRAWN_PER_IMAGE = 3


def draw_runs(rows: list[dict], runs: Path, out: Path, images: int = 8) -> list[str]:
    """For seed 0 of each backbone with final weights: its :data:`DRAWN_PER_IMAGE`
    highest-scoring detections, labelled with class and score, and the true boxes (white) on
    the first ``images`` validation images, as ``boxes-<run>.png`` in ``out``; returns the
    Markdown lines that show them, with the scores drawn."""
    lines = []
    for row in rows:
        run = RunDir(runs / row["run"])
        if row["seed"] != 0 or not run.weights.is_file():
            continue
        loaded = load_weights(run.path, task="detection")
        conf = run.read_config()["config"]
        data = read_coco(conf["val"])
        shown = list(range(min(images, len(data.images))))
        batch, _ = collate(data, shown)
        with torch.no_grad():
            found = loaded.model(batch)
        top = [top_detections(found[k], DRAWN_PER_IMAGE) for k in range(len(shown))]
        pictures = [
            draw_detections(
                data.load(i)[0],
                top[k],
                loaded.classes,
                threshold=0.0,
                truth=data.images[i].boxes,
            )
            for k, i in enumerate(shown)
        ]
        name = f"boxes-{row['run']}.png"
        save_grid(pictures, out / name)
        scores = torch.cat([t["scores"] for t in top]) if top else torch.zeros(0)
        drawn = (
            f"scores {float(scores.min()):.2f} to {float(scores.max()):.2f}"
            if len(scores)
            else "no detection at all"
        )
        lines += [
            f"{row['backbone']}, seed 0 (coloured: its {DRAWN_PER_IMAGE} highest-scoring "
            f"detections per image, class and score written on each, {drawn}; white: the true "
            "boxes):",
            "",
            f"![{name}]({name})",
            "",
        ]
    return lines


def write_detection_report(
    runs: Path, out: Path, residual: str = "resnet18", plain: str = "plain18"
) -> Verdict:
    """``out/RESULTS.md``, ``out/runs.csv`` and ``out/verdicts.json`` from the runs."""
    rows = detection_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    seeds = detection_seeds(rows, (residual, plain))
    (verdict,) = judge_page(
        out, seeds, lambda looks: [detection_verdict(rows, residual, plain, looks)]
    )
    write_csv(out / "runs.csv", rows)
    vgg, r101 = PAPER_COCO_DETECTION["VGG-16"], PAPER_COCO_DETECTION["ResNet-101"]
    lines = [
        "# ResNet as a detection backbone: residual against plain",
        "",
        f"**Machine**: {machine_label(1)} per run. **Runs**: `{relative_paths(str(runs))}`.",
        "",
        "Faster R-CNN + FPN (`resnets.detection`), the backbone trained from scratch, on the set "
        "`resnets detect data` generates from the CIFAR-10 training images (objects of 12-112 "
        "pixels pasted on 160-pixel backgrounds; training and validation objects from disjoint "
        "halves of the files). Scored by COCO's mAP (pycocotools) on the validation set after "
        "the last epoch.",
        "",
        "| run | backbone | seed | epochs | mAP@[.5:.95] | mAP@.5 | mAP@.75 | small | medium | large |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [r["run"], r["backbone"], str(r["seed"]), str(r["epochs"])]
        if r["finished"]:
            cells += [f"{100 * r[k]:.1f}" if r[k] >= 0 else "-" for k in
                      ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")]  # fmt: skip
        else:
            cells += ["unfinished"] + [""] * 5
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        *verdict_block([verdict]),
        "",
        "**What was compared.** Two backbones of the same depth (18 layers), with and without "
        "shortcuts, each trained from scratch inside the same detector for the same few "
        f"epochs ({', '.join(sorted({str(r['epochs']) for r in rows}))}), on a generated set, "
        "on a CPU. This is a comparison early in training, so it measures how fast each "
        "backbone learns: the paper's counterpart is its ImageNet comparison of plain-18 and "
        "ResNet-18 (Fig. 4, Table 2), where the two end at about the same error but ResNet-18 "
        "converges faster. It says nothing about which ends better after long training.",
        "",
        f"**Not the paper's Table 8.** Table 8 (COCO val, Faster R-CNN) compares ImageNet-"
        f"pretrained VGG-16 ({vgg[0]} mAP@.5 / {vgg[1]} mAP@[.5, .95]) with ImageNet-pretrained "
        f"ResNet-101 ({r101[0]} / {r101[1]}, {100 * (r101[1] / vgg[1] - 1):.0f}% higher "
        "mAP@[.5, .95]): other architectures, pretrained, on another data set; its numbers are "
        "given for reference only.",
        "",
        "Detections on the first validation images:",
        "",
        *(draw_runs(rows, runs, out) or ["(no run of seed 0 has final weights yet)", ""]),
        f"Written by `resnets analyze detection --runs {relative_paths(str(runs))} --out "
        f"{relative_paths(str(out))}`.",
        "",
    ]
    atomic_write_text(out / "RESULTS.md", "\n".join(lines))
    return verdict


def detection_seeds(
    rows: Sequence[Mapping[str, Any]], backbones: Sequence[str]
) -> dict[str, list[int]]:
    """The finished seeds of each backbone: what a look at the detection claim saw."""
    return {
        b: sorted(int(r["seed"]) for r in rows if r["backbone"] == b and r["finished"])
        for b in backbones
    }


def detection_verdict(
    rows: Sequence[Mapping[str, Any]], residual: str, plain: str, looks: int = 1
) -> Verdict:
    """Residual against plain backbones of one detector: the mAP@[.5:.95] difference paired by
    seed (a family of one test, at 5% / ``looks``). ``rows``: one per run, with ``backbone``,
    ``seed``, ``finished`` and ``map``."""
    claim = (
        f"a residual backbone ({residual}) detects better than its plain twin ({plain}) in the "
        "same Faster R-CNN, trained from scratch for the same steps"
    )
    done = [r for r in rows if r["finished"]]
    res = {int(r["seed"]): -float(r["map"]) for r in done if r["backbone"] == residual}
    pla = {int(r["seed"]): -float(r["map"]) for r in done if r["backbone"] == plain}
    if not res or not pla:
        return Verdict(
            "(f)", claim, "missing", f"finished runs: {len(res)} {residual}, {len(pla)} {plain}"
        )

    def build(family: Family) -> list[Verdict]:
        test = paired_by_seed(res, pla)  # "better" = lower -mAP = higher mAP
        evidence = (
            f"mAP@[.5:.95] higher by {tested(test, family)} over seeds {list(test.seeds)} "
            f"({', '.join(f'{100 * d:+.2f}' for d in test.diffs)})"
        )
        return [Verdict("(f)", claim, family.outcome(test), evidence)]

    return judged(build, "detection", looks)[0]


def detection_rows_from_csv(path: Path) -> list[dict[str, Any]]:
    """The detection report's runs from its ``runs.csv``: one row per (backbone, seed), a
    finished run's mAP a fraction in [0, 1]."""
    rows, seen = [], set()
    try:
        for line, row in enumerate(csv_rows(path, "runs.csv"), start=2):
            seed = seed_cell(row.get("seed"), path, line)
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
                    "map": fraction(row["map"], path, line, "map") if finished else math.nan,
                }
            )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a detection runs.csv (no column {e})") from e
    return rows


def _rejudge(folder: Path, looks: Callable[[Seeds], int]) -> Judged:
    rows = detection_rows_from_csv(folder / "runs.csv")
    backbones = sorted({r["backbone"] for r in rows})
    residual = next((b for b in backbones if not b.startswith("plain")), "resnet18")
    plain = next((b for b in backbones if b.startswith("plain")), "plain18")
    seeds = detection_seeds(rows, backbones)
    return [detection_verdict(rows, residual, plain, looks(seeds))], seeds


def _detection(s: Settings) -> Path:
    """The report of the detection runs in ``s["runs"]``, written into ``s.out``."""
    runs = Path(s["runs"])
    if not runs.is_dir():
        raise ConfigError(f"--runs {runs}: no such folder (detection run folders)")
    claim_results_folder(s, "detection", reading=[runs])
    write_detection_report(runs, s.out, s["residual"], s["plain"])
    return s.out / "RESULTS.md"


register_experiment(
    Experiment(
        "detection",
        "residual against plain backbones in Faster R-CNN: the report and a paired verdict "
        "from the detection runs (`resnets detect train`)",
        main=_detection,
        defaults={"runs": "", "residual": "resnet18", "plain": "plain18"},
        option_help={
            "runs": "a folder of detection run folders",
            "residual": "the residual backbone's name",
            "plain": "its plain twin's name",
        },
        required=frozenset({"runs"}),
        command="analyze",
        flags=("out",),
        rejudge=_rejudge,
    )
)
