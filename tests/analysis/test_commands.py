"""The paper's experiments and analyses as commands, at a tiny budget on the digits data."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from resnets.analysis.layers import response_stds, shattered_correlation
from resnets.analysis.reports import WORDS
from resnets.cli import main
from resnets.models import create_model

pytestmark = pytest.mark.slow  # subprocess and multi-run tests: seconds each

TINY = ["--data", "digits", "--budget", "0.0001", "--no-progress"]  # 6 iterations


def test_degradation_command_and_rerun_skips(tmp_path, capsys):
    out = tmp_path / "deg"
    assert (
        main(
            [
                "reproduce",
                "degradation",
                "--depths",
                "8,14",
                "--seeds",
                "2",
                "--out",
                str(out),
                *TINY,
            ]
        )
        == 0
    )
    text = (out / "RESULTS.md").read_text()
    assert "| plain-14 |" in text and "| resnet-8 |" in text and "±" in text
    assert "Verdict" in text and "Command: `resnets" in text and "torch:" in text
    assert (out / "degradation.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert len(rows) == 8 and {r["seed"] for r in rows} == {"0", "1"}
    for r in rows:
        assert (
            json.loads((out / "runs" / r["name"] / "config.json").read_text())["config"]["iters"]
            == 6
        )
    capsys.readouterr()
    # re-running skips every finished run
    assert (
        main(
            [
                "reproduce",
                "degradation",
                "--depths",
                "8,14",
                "--seeds",
                "2",
                "--out",
                str(out),
                *TINY,
            ]
        )
        == 0
    )
    assert capsys.readouterr().err.count("finished earlier, skipped") == 8


def test_interrupted_reproduction_resumes_the_run(tmp_path, capsys):
    from resnets.analysis.runs import budget_config
    from resnets.train import train

    out = tmp_path / "table"
    cfg = budget_config("resnet8", "digits", 0.0001, 0)
    train(
        cfg, out / "runs" / "resnet8-s0", progress=False, echo=False, stop_after=3
    )  # as if killed
    assert main(["reproduce", "cifar-table", "--depths", "8,14", "--out", str(out), *TINY]) == 0
    assert "resnet8-s0: resuming" in capsys.readouterr().err
    text = (out / "RESULTS.md").read_text()
    assert "| ResNet-8 |" in text and "(d) the ordering 8 > 14" in text


def test_shortcuts_command(tmp_path):
    out = tmp_path / "sc"
    assert main(["reproduce", "shortcuts", "--model", "resnet8", "--out", str(out), *TINY]) == 0
    text = (out / "RESULTS.md").read_text()
    for opt in ("| A |", "| B |", "| C |", "| none |"):
        assert opt in text
    # each row states the run's own measured final validation error (not a constant)
    runs = list(csv.DictReader(open(out / "runs.csv")))
    assert len(runs) == 4
    for r in runs:
        shortcut = r["tag"].strip("-") or "none"
        row = next(line for line in text.splitlines() if f"| {shortcut} |" in line)
        assert f"{100 * float(r['final_val_err']):.2f}" in row, (row, r)
    # one seed: Table 3's claims are judged, and none can be decided
    record = json.loads((out / "verdicts.json").read_text())
    verdicts = record["verdicts"]
    assert [v["label"] for v in verdicts] == ["(g)", "(h)", "(i)"]
    # the look is recorded: the seeds each variant had
    assert record["looks"][-1]["seeds"] == {"A": [0], "B": [0], "C": [0], "plain": [0]}
    assert all(v["outcome"] == "not decided" for v in verdicts)
    assert "(h) option B (projections where the shape changes) beats option A" in text


def test_sum_vs_concat_command(tmp_path):
    out = tmp_path / "svc"
    assert main(["reproduce", "sum-vs-concat", "--depth", "8", "--out", str(out), *TINY]) == 0
    text = (out / "RESULTS.md").read_text()
    rows = {r["variant"]: r for r in csv.DictReader(open(out / "variants.csv"))}
    assert len(rows) == 3 and (out / "curves.png").is_file()
    same = rows["concat, same widths"]
    summ = rows["sum (ResNet)"]
    matched = next(v for k, v in rows.items() if k.startswith("concat, matched"))
    # the costs are measured, not assumed: concat at the same widths is wider and dearer
    assert int(same["features"]) > int(summ["features"])
    assert float(same["act_mib"]) > float(summ["act_mib"]) and int(same["macs"]) > int(summ["macs"])
    # the matched variant is within 15% of the ResNet's parameters
    assert abs(int(matched["params"]) / int(summ["params"]) - 1) < 0.15
    assert "Verdict" in text and "grows the features" in text
    assert main(["reproduce", "sum-vs-concat", "--depth", "9", "--out", str(out), *TINY]) == 2


def test_preact_command(tmp_path):
    out = tmp_path / "pre"
    # 6 iterations of each ResNet-110 (budget 0.0001): the command, not the nets, is tested
    tiny = ["--data", "digits", "--budget", "0.0001", "--no-progress"]
    assert main(["reproduce", "preact", "--out", str(out), *tiny]) == 0
    text = (out / "RESULTS.md").read_text()
    assert "| 110 | original |" in text and "| 110 | pre-activation |" in text
    runs = {r["model"]: r for r in csv.DictReader(open(out / "runs.csv"))}
    for model, unit in (("resnet110", "original"), ("preact_resnet110", "pre-activation")):
        row = next(line for line in text.splitlines() if f"| 110 | {unit} |" in line)
        assert f"{100 * float(runs[model]['final_val_err']):.2f}" in row, row  # measured
    # the verdict is the paired test's on the measured errors (one seed: never decided)
    from resnets.analysis.stats import paired_by_seed

    rows = list(csv.DictReader(open(out / "runs.csv")))
    errors = {
        m: {int(r["seed"]): float(r["final_val_err"]) for r in rows if r["model"] == m}
        for m in ("resnet110", "preact_resnet110")
    }
    test = paired_by_seed(errors["preact_resnet110"], errors["resnet110"])
    line = next(x for x in text.splitlines() if x.startswith("- (preact-110) "))
    assert "pre-activation units beat the original ones at depth 110" in line
    assert f"**{WORDS[test.outcome]}**" in line
    assert test.outcome == "not decided" and test.text() in line
    assert (out / "curves.png").is_file()


def test_responses_command(tmp_path):
    out = tmp_path / "resp"
    assert main(["analyze", "responses", "--depths", "8,14", "--out", str(out), *TINY]) == 0
    rows = list(csv.DictReader(open(out / "responses.csv")))
    # 3x3 layers: 2 per block, 3n blocks: 6 for depth 8 and 12 for depth 14, for plain and residual
    assert len(rows) == 2 * (6 + 12)
    assert (out / "responses.png").is_file() and "Verdict" in (out / "RESULTS.md").read_text()


def test_gradients_command(tmp_path):
    out = tmp_path / "grad"
    assert main(["analyze", "gradients", "--depths", "8", "--out", str(out), *TINY]) == 0
    rows = list(csv.DictReader(open(out / "gradients.csv")))
    phases = {r["phase"] for r in rows}
    assert "init" in phases and any(p.startswith("iter") for p in phases)
    assert {r["batchnorm"] for r in rows} == {"True", "False"}
    text = (out / "RESULTS.md").read_text()
    assert "first layer's gradient is" in text and "shattered" in text
    assert list(csv.DictReader(open(out / "shattered.csv")))


def test_response_stds_follow_bn_outputs():
    torch.manual_seed(0)
    m = create_model("resnet8").eval()
    stds = response_stds(m, [torch.randn(16, 3, 32, 32)])
    assert len(stds) == 6 and all(s > 0 for _, s in stds)
    assert stds[0][0] == "layer1.0.bn1"


def test_shattered_correlation_bounds():
    torch.manual_seed(0)
    m = create_model("resnet8").eval()
    c = shattered_correlation(m, torch.randn(3, 32, 32), n_points=16)
    assert -1 <= c["lag8"] <= c["lag1"] <= 1.0 + 1e-9


@pytest.mark.parametrize("argv", [["--budget", "0"], ["--seeds", "0"], ["--depths", "8,x"]])
def test_bad_experiment_options(argv, tmp_path, capsys):
    base = [
        "reproduce",
        "degradation",
        "--data",
        "digits",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
    ]
    assert main(base + argv) == 2
    assert capsys.readouterr().err.startswith("resnets: error:")


def test_shared_runs_must_have_the_same_config(tmp_path, capsys):
    runs = tmp_path / "pool"
    args = [
        "reproduce",
        "cifar-table",
        "--depths",
        "8",
        "--runs-from",
        str(runs),
        "--no-progress",
        "--data",
        "digits",
    ]
    assert main([*args, "--budget", "0.0003", "--out", str(tmp_path / "a")]) == 0
    # another budget must not silently reuse the run trained for the first one
    assert main([*args, "--budget", "0.0005", "--out", str(tmp_path / "b")]) == 2
    assert "was trained with iters=19, this experiment needs 32" in capsys.readouterr().err


def test_transfer_command(tmp_path):
    out = tmp_path / "tr"
    argv = [
        "reproduce",
        "transfer",
        "--model",
        "resnet8",
        "--labels",
        "4,all",
        "--val-per-class",
        "15",
        "--pretrain-budget",
        "0.001",
        "--out",
        str(out),
        *TINY,
    ]
    assert main(argv) == 0
    text = (out / "RESULTS.md").read_text()
    assert "| labelled images per class | from scratch | linear probe | fine-tuned |" in text
    verdict = next(x for x in text.splitlines() if x.startswith("- (transfer) "))
    assert "labelled images per class, fine-tuning the pretrained" in verdict
    rows = list(csv.DictReader(open(out / "transfer.csv")))
    assert len(rows) == 6 and {r["mode"] for r in rows} == {
        "from scratch",
        "linear probe",
        "fine-tuned",
    }
    probe = json.loads((out / "runs" / "probe-n4-s0" / "config.json").read_text())
    c = probe["config"]
    assert c["freeze"] == "backbone" and c["per_class"] == 4 and c["classes"] == list("56789")
    assert probe["resolved"]["train_size"] == 20 and c["init"].endswith("pretrain")
    pre = json.loads((out / "runs" / "pretrain" / "config.json").read_text())
    assert pre["config"]["classes"] == list("01234") and pre["resolved"]["val_size"] == 75
    assert (out / "transfer.png").stat().st_size > 10_000
    # another experiment never writes into this one's folder
    assert main(["reproduce", "shortcuts", "--out", str(out), *TINY]) == 2
    assert json.loads((out / "experiment.json").read_text())["experiment"] == "transfer"
