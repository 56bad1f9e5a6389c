"""Writes docs/where-is.md: the hand-kept "you look for" rows below, then one row per module of
``src/resnets`` with the first sentence of its docstring, read from the source (no import).

    python docs/where_is.py          # after adding a module or changing a module's docstring

``tests/test_layout.py`` fails when docs/where-is.md differs from what this writes, so the
index of modules cannot fall behind the code.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "resnets"
OUT = ROOT / "docs" / "where-is.md"

#: (what a newcomer looks for, where it is): kept by hand, short
LOOK_FOR: tuple[tuple[str, str], ...] = (
    (
        "---",
        "---",
    ),
    (
        "the list of commands (what `resnets --help` prints)",
        "`cli/__init__.py` `COMMANDS`: each command's family and help; a command imports only its family",
    ),
    (
        "a command's options and handler",
        "`cli/<family>.py`: `train.py` (train, config), `infer.py` (eval, calibrate, predict, explain, export, serve), `weights.py`, `models.py` (models, summary), `bench.py`, `data.py`; the paper's experiments in `analysis/commands.py`",
    ),
    (
        "an option several commands share (`--weights`, `--model`, `--backend`, `--device`, `--batch-size`, `--json`, `--no-progress`)",
        "`argtypes.py`, one helper each",
    ),
    (
        "loading weights (a name, a file, a run folder, an ONNX file, an OpenVINO folder)",
        "`inference.load_weights` returns a `LoadedModel` (model, record, classes, preprocessing, backend, `logits`)",
    ),
    (
        "what a model is shown at test time (the preprocessing of predict, serve, eval, calibrate, card, export)",
        "`inference/views.py`: `TestViews` (built from the weights' record, `LoadedModel.views`) and `TestTime` (centre, flip, ten crops, scales); how a scoring pass runs is `eval.metrics.Scoring`",
    ),
    (
        "which runtime a model runs on",
        "`inference.loader.choose_backend`; precisions are spelled `fp32`, `bf16` or `auto`",
    ),
    (
        "building a model",
        "`models.create_model` (`factory.py`); names via `models.list_models`; builders are registered in each family's file (`resnet.py`, `fast.py`, `resnext.py`, `wide.py`, `preact.py`, `densenet.py`, `concat.py`)",
    ),
    (
        "a depth rule (6n+2, 9n+2, 6n+4)",
        "`models.registry.check_depth`",
    ),
    (
        "the checks every constructor shares (`in_chans`, `num_classes`)",
        "`models.base.check_input_and_classes`",
    ),
    (
        "named weights, their files and checksums",
        "`models/catalogue.py`; the download cache is `models/download.py`; class names are `models/class_index.py`",
    ),
    (
        "the weights record",
        "`models.weights.WeightsMeta`, which the trainer carries from `train/setup.py` to the final `model.safetensors`",
    ),
    (
        "a data set by its spec (`digits`, `cifar10[:PATH]`, a folder, shards)",
        "`data.load_dataset` (`data/load.py`)",
    ),
    (
        "whether data is what weights were trained on",
        "the fingerprint each loader gives (`ImageSet.fingerprint`, `aliases`); at another size without decoding, `data.data_fingerprints`; the check for scoring is `eval/predict.trained_on`",
    ),
    (
        "the training loop",
        "`train/loop.py`: one loop, read top to bottom; its start and end are in `train/session.py`",
    ),
    (
        "how a run stops early (SIGTERM, SIGINT, `--stop-after`, a torchrun launcher that is gone)",
        '`runtime.StopSignals` raises the request; the loop\'s "termination" section acts on it at a step boundary, with a checkpoint; every rank joins the decision by an all-reduce',
    ),
    (
        "validation during training",
        '`train/report.py` `evaluation_row`, called from the loop\'s "evaluate" section',
    ),
    (
        "the recipes",
        "`train/recipes.py`; the config fields, their help and units are in `train/config.py`",
    ),
    (
        "eval.json",
        "`eval/report.py`, built once; `resnets eval --json` prints a view of it",
    ),
    (
        "the paper's numbers",
        "`analysis/paper_numbers.py`",
    ),
    (
        "the paper's claims, judged",
        "each claim is written once, in its experiment's file under `analysis/experiments/` (its verdict from a run table, its tables, how it is judged again from its CSV); `analysis/claims.py` (what every claim is built from: paired tests by seed, a page's tests judged as one family); `analysis/reports.py` (the `Verdict` record, `verdicts.json` with its looks, the verdict blocks); `analysis/experiments/paper.py` (`reproduce paper` gathers (a)-(e) on one page, `docs/results/RESULTS.md`); `analysis/experiments/verdicts.py` (`resnets analyze verdicts`: every written report judged again from its CSV, the tables validated first by `analysis/report_csv.py`)",
    ),
    (
        "the statistical tests behind every verdict (paired by seed, exact McNemar), the correction of a page's family (Holm, looks) and the seeds a decision needs (80% power)",
        "`analysis/stats.py` (`paired_by_seed`, `mcnemar_exact`, `Family`, `judge_family`, `seeds_needed`); each page's recorded looks are in its `verdicts.json` (`reports.looks_with`)",
    ),
    (
        "Table 6 at the whole schedule (the zoo's weights scored again, Fig. 6 and 7 from them, each unfinished run's progress)",
        "`analysis/whole_schedule.py`",
    ),
    (
        "the claims decided at the whole schedule (McNemar per pair on held-out and training images, a second training seed paired by seed)",
        "`analysis/zoo_claims.py`",
    ),
    (
        "whether a command may write somewhere (another run's folder, the package, the data being read) and two writers of one target",
        "`io.check_writable` (its `check_owner`) and `io.exclusive_target`",
    ),
    (
        "the weights record, its bounds and reading it from a file's header (no torch)",
        "`models/record.py` (`WeightsMeta`, `_TYPE_CHECKS`, `MAX_*`, `read_meta`)",
    ),
    (
        "the dtypes and shapes a weights file's tensors may have",
        "`models/weights.py` (`load_state_dict_checked`, `check_state_fits_record`)",
    ),
    (
        "checkpoints (the header, the checksum, loading without executing code)",
        "`checkpoint.py`",
    ),
    (
        "a run folder: its file names, its state (new, interrupted, finished, abandoned) and who may write it",
        "`rundir.py` (`RunDir`, `RunStatus`): training, detection, the experiment queue, the zoo's packaging and weights resolution all ask it; what a run writes into it is `train/run_files.py`",
    ),
    (
        "what `resnets models` lists without building a model",
        "`models/index.py` over `models/costs.json` (`summary.write_costs` writes it)",
    ),
    (
        "torch.hub entry points",
        "`hubconf.py` at the repository root",
    ),
    (
        "an experiment of the paper: the runs it needs and the report it writes",
        "`analysis/experiments/NAME.py`, one file per experiment (its options with help and default, its runs, its report, its claims, its registration; `paper`, `detection` and `verdicts` too); `reproduce`, the Python door, is `resnets.reproduce`; `Settings`, the registry and the driver are `analysis/registry.py`; the commands are generated from the registry (`analysis/commands.py`); what trains and measures the runs is `analysis/runs.py`",
    ),
    (
        "how an experiment trains, resumes and measures its runs (the shared queue, response and gradient measurements)",
        "`analysis/runs.py`",
    ),
    (
        "figures",
        "`plots.py` (curves, confusion, reliability, corruptions); the analysis figures are in `analysis/figures.py`",
    ),
    (
        "speed measurements",
        "`bench.py` (what `resnets benchmark` runs); the scripts are in `benchmarks/`",
    ),
    (
        "long background trainings (outside `src/`)",
        "`docs/results/paper_worker.sh` (the paper's run set, a shared queue) `docs/results/zoo_worker.sh MODEL` (a zoo model at the full schedule) and `docs/results/zoo_queue.sh` (the zoo models still missing, one after another); all resume from `.bgtrain/`",
    ),
    (
        "box IoU, box coding, NMS, RoIAlign (the detector's operations)",
        "`models/box_ops.py`, plain PyTorch (torchvision's compiled ops do not load here)",
    ),
    (
        "a COCO-format folder, its checks, and the detection set generated from CIFAR-10",
        "`detection/coco.py` (`read_coco`, `generate_from_cifar`)",
    ),
    (
        "Faster R-CNN + FPN on a resnets backbone, its normalisation inside, built from a weights record",
        "`models/detector.py` (`FasterRCNN`, `DetectorConfig`, `DetectorTransform`, `build_detector`); loaded by `load_weights(..., task='detection')`",
    ),
    (
        "COCO mAP",
        "`detection/metrics.py` (`coco_scores`, `coco_per_class`, `CocoEvaluator`, through pycocotools: the `detect` extra)",
    ),
    (
        "training a detector: what detection adds to the one training loop (its batch stream, its step's dict of losses, COCO mAP as its evaluation, its weights record)",
        "`train/detection.py` (`start_detection_session`, `DetectionStream`, `DetectionStep`, `new_detector`, `detector_lr`); the loop is `train/loop.py`'s, for both tasks",
    ),
    (
        "a detector's run, file and pictures from the Python side",
        "`detection/engine.py` (`train_detector`, `detect_file`, `package_detector_run`); scoring: `detection/metrics.py` (`evaluate_detector`)",
    ),
    (
        "pictures of detected boxes",
        "`detection/draw.py`",
    ),
    (
        "the `resnets detect` commands",
        "`cli/detect.py`",
    ),
    (
        "the detection claim (residual against plain, paired by seed)",
        "`analysis/experiments/detection.py` (`resnets analyze detection`); the paper's COCO figures are `analysis/paper_numbers.py` `PAPER_COCO_DETECTION`",
    ),
)

HEADER = """# Where is X?

Each thing is in one place. Paths are relative to `src/resnets/`. Imports point down the
stages listed in docs/layout.md, and `tests/test_layout.py` checks that.
This page is written by `python docs/where_is.py`: the first table is kept by hand in that
script, the second is every module with the first sentence of its docstring.
"""


def first_sentence(path: Path) -> str:
    """The first sentence of a module's docstring, on one line ("" without a docstring)."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    end = re.search(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.(\s+(?=[A-Z`(])|$)", paragraph)
    sentence = paragraph[: end.start() + 1] if end else paragraph
    return sentence.replace("|", "\\|")


def render() -> str:
    """The whole page."""
    lines = [HEADER, "| you look for | it is in |", "| --- | --- |"]
    lines += [f"| {what} | {where} |" for what, where in LOOK_FOR]
    lines += ["", "## Every module", "", "| module | what it is (its docstring) |", "| --- | --- |"]
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        lines.append(f"| `{name}` | {first_sentence(path) or '(no docstring)'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
