"""Table 6 at the paper's whole schedule, from the zoo's weights: each set scored again on its
held-out split (the plain nets on their training images too), Fig. 6's curves, Fig. 7's
responses, and the paper's claims as :mod:`.zoo_claims` decides them on the same images.

The zoo's CIFAR-10 weights (``resnet20.cifar10`` and its siblings) are trained by resnets on
this data with the he2015-cifar recipe, all 64k iterations, one seed each and one held-out
split. A depth whose weights are not shipped yet shows how far its run has got, read from its
run folder (``docs/results/zoo_worker.sh`` trains them in ``.bgtrain/zoo/MODEL-cifar10``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..eval.predict import batch_inputs, score
from ..inference import TestTime, load_weights
from ..models.catalogue import get_pretrained, list_pretrained
from ..plots import plot_panels
from ..rundir import RunDir
from .figures import plot_responses
from .layers import response_stds_by_image
from .paper_numbers import PAPER_ITERS, PAPER_MILESTONES, PAPER_TABLE6
from .reports import full_schedule_weights
from .zoo_claims import (
    MODELS,
    RESPONSE_IMAGES,
    TRAINING_SCORED,
    Scored,
    display_name,
    seeds_sentence,
    training_seed,
    whole_schedule_verdicts,
)

RESPONSES_FIGURE = "whole-schedule-responses.png"
#: Fig. 6 at the whole schedule, and the zoo runs' metrics it is drawn from: each shipped run's
#: metrics.jsonl, kept beside the page by docs/results/zoo_ship.sh (a run folder stays on the
#: machine that trained it)
CURVES_FIGURE = "whole-schedule-curves.png"
CURVES_FOLDER = "zoo-curves"

BEGIN = "<!-- whole-schedule: computed by resnets.analysis.whole_schedule -->"
END = "<!-- /whole-schedule -->"


def score_zoo(data: str, fingerprints: Sequence[str]) -> dict[str, Scored]:
    """Every named weights set trained by resnets at the whole schedule on ``data`` (one split),
    scored again in fp32 on its held-out images; keyed by model (``resnet56``): seed 0's file
    (``resnet56.cifar10``), with the held-out error of the model's other training seeds'
    files (``resnet56.cifar10_seed1``) in its ``seed_errors``."""
    named = {name: get_pretrained(name).meta for name in list_pretrained()}
    found, other_seeds = {}, {}
    for w in full_schedule_weights(named, fingerprints):
        seed = training_seed(w.name, w.model)
        if seed is None:
            continue
        lm = load_weights(w.name)
        res, selection = score(lm, data, subset="val", test=TestTime(tta="none"))
        if len(res.hits) != len(selection.indices):
            raise RuntimeError(f"{w.name}: {len(res.hits)} results for {len(selection.indices)}")
        if seed:
            other_seeds.setdefault(w.model, {})[seed] = 1.0 - float(np.mean(res.hits))
            continue
        top1 = float((named[w.name].metrics or {}).get("top1", float("nan")))
        first = np.asarray(selection.indices)[:RESPONSE_IMAGES]
        images = selection.data.images[first]
        batches = (batch_inputs(lm, images[i : i + 250], w.name) for i in range(0, len(first), 250))
        responses = response_stds_by_image(lm.model, batches).numpy()
        found[w.model] = Scored(
            w, np.asarray(selection.indices), np.asarray(res.hits), top1, responses
        )
        if w.model in TRAINING_SCORED:
            # the 45,000 images it trained on, in eval mode and without augmentation
            res, selection = score(lm, data, subset="train", test=TestTime(tta="none"))
            found[w.model] = replace(
                found[w.model],
                train_indices=np.asarray(selection.indices),
                train_hits=np.asarray(res.hits),
            )
    for model, errors in other_seeds.items():
        if model in found:  # a second seed is paired with seed 0's file, never alone
            found[model] = replace(found[model], seed_errors=errors)
    return found


def responses_figure(scored: Mapping[str, Scored], folder: Path) -> Path | None:
    """Where :func:`write_responses_figure` puts Fig. 7 in ``folder``; None when no net of the
    section is scored (no figure)."""
    return folder / RESPONSES_FIGURE if any(m in scored for m in MODELS) else None


def write_responses_figure(scored: Mapping[str, Scored], folder: Path) -> Path | None:
    """Fig. 7 at the whole schedule: each scored net's response std per 3x3 layer (each
    image's std, averaged over the measured images), in layer order and sorted."""
    path = responses_figure(scored, folder)
    if path is None:
        return None
    curves = {}
    for model in (m for m in MODELS if m in scored):
        per_layer = [float(v) for v in scored[model].responses.mean(axis=0)]
        curves[display_name(model)] = (per_layer, sorted(per_layer, reverse=True))
    return plot_responses(curves, path)


def run_progress(zoo_runs: Path | None, model: str) -> str:
    """How far the zoo run of ``model`` has got, from its run folder: "not started" when it has
    none, else the iteration of its last logged row of metrics."""
    if zoo_runs is None:
        return "not trained yet"
    run = RunDir(zoo_runs / f"{model}-cifar10")
    if not run.config.is_file():
        return "not started"
    rows = [r for r in run.read_metrics() if isinstance(r, dict) and isinstance(r.get("step"), int)]
    step = max((r["step"] for r in rows), default=0)
    evals = [r for r in rows if isinstance(r.get("val_err"), float)]
    last = f", validation error {100 * evals[-1]['val_err']:.2f}% then" if evals else ""
    done = "finished, not packaged yet" if run.finished else "training"
    return f"{done}: iteration {step:,} of {PAPER_ITERS:,}{last}"


@dataclass(frozen=True)
class Curve:
    """One zoo run's recorded metrics (its metrics.jsonl rows, in order) and where they are
    from: ``shipped`` (kept beside the page when its weights shipped: the whole run) or a run
    folder still training."""

    model: str
    rows: list[dict]
    shipped: bool

    @property
    def last_step(self) -> int:
        return max(r["step"] for r in self.rows)

    def last(self, key: str) -> tuple[int, float] | None:
        """The step and value of the last row that has ``key`` (None: no row has it)."""
        found = [(r["step"], r[key]) for r in self.rows if isinstance(r.get(key), float)]
        return found[-1] if found else None


def _metric_rows(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl that a curve can use (a step, a training error)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash, as RunDir.read_metrics skips it
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            if isinstance(row.get("train_err"), float):
                rows.append(row)
    return rows


def zoo_curves(results: Path, zoo_runs: Path | None) -> dict[str, Curve]:
    """Fig. 6's curves that exist, keyed by model: a shipped run's kept metrics
    (``results/zoo-curves/MODEL.jsonl``) first, else the run folder of one still training."""
    curves = {}
    for model in MODELS:
        kept = results / CURVES_FOLDER / f"{model}.jsonl"
        live = RunDir(zoo_runs / f"{model}-cifar10").metrics if zoo_runs is not None else None
        if kept.is_file():
            rows, shipped = _metric_rows(kept), True
        elif live is not None and live.is_file():
            rows, shipped = _metric_rows(live), False
        else:
            continue
        if rows:
            curves[model] = Curve(model, rows, shipped)
    return curves


def curves_figure(curves: Mapping[str, Curve], folder: Path) -> Path | None:
    """Where :func:`write_curves_figure` puts Fig. 6 in ``folder``; None when no curve exists."""
    return folder / CURVES_FIGURE if curves else None


def _label(curve: Curve) -> str:
    done = "" if curve.shipped else f" (training: to iteration {curve.last_step:,})"
    return display_name(curve.model) + done


def write_curves_figure(curves: Mapping[str, Curve], folder: Path) -> Path | None:
    """Fig. 6 at the whole schedule, as the paper draws it: training error thin (dashed) and
    validation error bold against iterations, the plain nets left and the ResNets right."""
    path = curves_figure(curves, folder)
    if path is None:
        return None
    panels = []
    for title, kind in (("plain", "plain"), ("ResNet", "resnet")):
        runs = {
            _label(curves[m]): curves[m].rows for m in MODELS if m in curves and m.startswith(kind)
        }
        panels.append((f"{title} (whole schedule, CIFAR-10 held out)", runs))
    return plot_panels(panels, path, x_max=PAPER_ITERS, marks=PAPER_MILESTONES)


def curves_section(curves: Mapping[str, Curve], figure: Path | None) -> list[str]:
    """Fig. 6 at the whole schedule: the figure, and each net's last recorded errors beside
    the paper's final test error (Table 6; the paper prints no number for its plain nets)."""
    lines = [
        "### Fig. 6 at the whole schedule",
        "",
        "Training error (thin, dashed: the running error over each epoch's augmented batches) "
        "and validation error (bold: the 5,000 held-out images) against iterations, from each "
        "zoo run's own recorded metrics: plain nets left, ResNets right, as the paper's Fig. 6 "
        f"draws them. A shipped run's metrics are kept in `{CURVES_FOLDER}/` beside this page; "
        "a run still training is drawn as far as it has got. The figure is redrawn by `resnets analyze verdicts` (run by "
        "docs/results/zoo_ship.sh when a run ships).",
        "",
    ]
    if figure is not None:
        lines += [f"![Fig. 6 at the whole schedule]({figure.name})", ""]
    lines += [
        "| model | paper's final test error (%) | ours: last validation error (%) | "
        "last training error (%) | curve |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for model in MODELS:
        paper_err = PAPER_TABLE6.get(model, (None, ""))[0]
        paper = f"{paper_err:.2f}" if paper_err is not None else "-"
        curve = curves.get(model)
        if curve is None:
            lines.append(f"| {display_name(model)} | {paper} | - | - | no recorded metrics here |")
            continue
        val, train = curve.last("val_err"), curve.last("train_err")
        ours = f"{100 * val[1]:.2f} (iteration {val[0]:,})" if val else "-"
        trained = f"{100 * train[1]:.2f}" if train else "-"
        where = "shipped run" if curve.shipped else f"training, iteration {curve.last_step:,}"
        lines.append(f"| {display_name(model)} | {paper} | {ours} | {trained} | {where} |")
    missing = [display_name(m) for m in MODELS if m.startswith("resnet") and m not in curves]
    if missing:
        lines += [
            "",
            f"No recorded metrics here for {', '.join(missing)}: a run not trained yet, or one "
            "shipped before its metrics were kept beside this page (its run folder stayed on "
            "the machine that trained it); its held-out error is in Table 6 above.",
        ]
    return lines


def deviations(scored: Mapping[str, Scored]) -> list[str]:
    """Every way the zoo's whole-schedule runs differ from the paper's CIFAR-10 runs, each
    saying whether it was measured here and by how much; the sampling error is computed from
    the weights scored."""
    errs = sorted(s.val_err for s in scored.values())
    n_val = max((s.weights.n_val for s in scored.values()), default=0)
    if errs and n_val:
        lo, hi = errs[0], errs[-1]
        se = (
            f"{100 * math.sqrt(lo * (1 - lo) / n_val):.2f}-"
            f"{100 * math.sqrt(hi * (1 - hi) / n_val):.2f} points (binomial standard error of "
            f"an error of {100 * lo:.2f}-{100 * hi:.2f}% on {n_val:,} images)"
        )
    else:
        se = "not computed (no weights scored)"
    by_precision: dict[str, list[str]] = {}
    for model in (m for m in MODELS if m in scored):
        bf16 = scored[model].weights.bf16
        kind = {True: "bf16 autocast", False: "fp32", None: "not recorded"}[bf16]
        by_precision.setdefault(kind, []).append(display_name(model))
    precisions = "; ".join(f"{k}: {', '.join(v)}" for k, v in by_precision.items()) or "no files"
    return [
        "### The gap to the paper, and what is behind it",
        "",
        "Our held-out errors sit above the paper's test errors. Each way these runs differ from "
        "the paper's, and whether it was measured:",
        "",
        "- **The images are a JPEG copy** (quality about 75, colour at 16x16), for training and "
        "scoring alike. *Not measured*: no lossless copy of CIFAR-10 is available here, so the "
        "cost of the compression cannot be separated from the rest.",
        "- **45,000 training images, not 50,000.** The paper chose its schedule on a 45k/5k "
        "split but trained its Table 6 nets on all 50,000; ours hold 5,000 out to score on. "
        "*Not measured* (it would take a second whole-schedule run per depth on 50,000 images, "
        "and then no held-out images would be left).",
        "- **A held-out split in place of the 10,000-image test set.** The 5,000 images come "
        "from the training distribution and were never trained on. Its sampling error alone is "
        f"{se}; *measured* as that binomial figure, not as a bias (the test set is not here).",
        "- **bf16 autocast on the CPUs that have it** (the paper used fp32 on GPUs; a run on "
        f"a CPU without bf16 trains in fp32). As each file's record (`cpu_bf16`) says: {precisions}"
        ". A pair trained on different CPUs differs in precision as well. *Measured once* at a "
        "tenth of the schedule: the fp32 "
        "run of ResNet-56 was not better than the bf16 run of the same seed (BENCHMARKS.md, "
        "'Training, ResNet-56 at budget 0.1'); one seed decides nothing, at the whole schedule "
        "nothing was measured.",
        "- **The last iteration's weights**, as the paper reports (no selection on the "
        "held-out images). *Not measured as a gap*: a run's best evaluation is picked on the "
        "very images it would be scored on, so its number would be biased low, and it is not "
        "used.",
        "- **One training seed per depth** (the paper reports the best of 5 runs for ResNet-110 "
        "and single runs elsewhere). *Not measured yet*: the second seeds of ResNet-20 and -56 "
        "are queued (`docs/results/zoo_queue.sh`), and until they exist the McNemar tests "
        "above compare weights files, not architectures.",
        "",
    ]


def table6_section(
    scored: Mapping[str, Scored],
    zoo_runs: Path | None,
    figure: Path | None = None,
    curves: Sequence[str] = (),
) -> list[str]:
    """RESULTS.md lines between the whole-schedule markers: Table 6 as the paper prints it with
    our column beside it, Fig. 6's curves (``curves``: :func:`curves_section`'s lines), Fig. 7's
    responses (``figure``: its file, beside the page), and the verdicts."""
    verdicts = whole_schedule_verdicts(scored)
    lines = [
        BEGIN,
        "## At the whole schedule: Table 6 from the zoo's weights",
        "",
        f"The named weights trained by resnets at the paper's whole schedule ({PAPER_ITERS:,} "
        "iterations of batch 128, he2015-cifar), one seed each, all on the same held-out split, "
        "scored again from the files in fp32 when this page was written (`resnets weights info "
        "NAME` prints each record). The paper's column is its CIFAR-10 test error; ours is the "
        "error on the 5,000 training images held out, JPEG-compressed; the training error is "
        "the one the record states (the running error over the last epoch's augmented "
        "batches).",
        "",
        "| model | n | layers | params (paper) | paper error (%) | ours: held-out error (%) | "
        "training error (%) | weights |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for model in MODELS:
        depth = int(model.removeprefix("resnet").removeprefix("plain"))
        paper_err, paper_params = PAPER_TABLE6.get(model, (None, "-"))
        paper = f"{paper_err:.2f}" if paper_err is not None else "-"
        s = scored.get(model)
        if s is None:
            ours = train = "-"
            where = run_progress(zoo_runs, model)
            params = f"- ({paper_params})"
        else:
            ours = f"{100 * s.val_err:.2f}"
            train = f"{100 * s.weights.final.train_err:.2f}"
            where = f"`{s.weights.name}`"
            params = f"{s.weights.params:,} ({paper_params})"
        lines.append(
            f"| {display_name(model)} | {(depth - 2) // 6} | {depth} | {params} | {paper} | "
            f"{ours} | {train} | {where} |"
        )
    mismatched = [
        f"`{s.weights.name}` states {100 * s.top1_recorded:.2f}% top-1, measured "
        f"{100 * (1 - s.val_err):.2f}%"
        for s in scored.values()
        if abs(s.top1_recorded - (1 - s.val_err)) > 1e-9
    ]
    if mismatched:
        lines += ["", "Measured here against the record: " + "; ".join(mismatched) + "."]
    if curves:
        lines += ["", *curves]
    lines += ["", *_responses_table(scored, figure)]
    lines += [
        "",
        "Verdicts, each by the exact McNemar test on the same held-out images (two-sided): "
        "holds when the images only the paper's better net gets right significantly outnumber "
        "the reverse, contradicted when the reverse is significant, not decided otherwise; "
        "(a)'s training error by the same test on the images both plain nets trained on, "
        "scored from the files in eval mode without augmentation, and (a) holds when both of "
        "its tests do; "
        "(e) by t tests on the per-image differences of the mean response std, paired over "
        "the same images. "
        + (verdicts[0].family + " " if verdicts and verdicts[0].family else "")
        + seeds_sentence(scored),
        "",
        *(v.line() for v in verdicts),
        "",
        *deviations(scored),
        END,
    ]
    return lines


def _responses_table(scored: Mapping[str, Scored], figure: Path | None) -> list[str]:
    """Fig. 7 at the whole schedule: the mean response std of each net's 3x3 layers, from the
    shipped files, and the figure when there is one."""
    lines = [
        "### Fig. 7 at the whole schedule: layer responses",
        "",
        f"The std of each 3x3 layer's response (after BN, before the addition and the ReLU) to "
        f"each of the first {RESPONSE_IMAGES:,} held-out images, from the same files; the "
        "paper's Fig. 7 shows ResNets' responses smaller than their plain twins', and smaller "
        "for deeper ResNets.",
        "",
        "| model | 3x3 layers | mean response std | weights |",
        "| --- | ---: | ---: | --- |",
    ]
    for model in MODELS:
        s = scored.get(model)
        if s is None:
            lines.append(f"| {display_name(model)} | - | - | not shipped yet |")
        else:
            mean = float(s.responses.mean())
            lines.append(
                f"| {display_name(model)} | {s.responses.shape[1]} | {mean:.3f} | "
                f"`{s.weights.name}` |"
            )
    if figure is not None:
        lines += [
            "",
            f"![Std of each 3x3 layer's response, in layer order and sorted]({figure.name})",
        ]
    return lines
