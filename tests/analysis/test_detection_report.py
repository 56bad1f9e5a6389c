"""The detection claim's report: verdicts from a test paired by seed on made-up run folders."""

from __future__ import annotations

import json

import pytest

from resnets.analysis.experiments.detection import write_detection_report
from resnets.cli import main


def _run(root, backbone, seed, map_value=None):
    folder = root / f"{backbone}-s{seed}"
    folder.mkdir(parents=True)
    config = {"kind": "detection", "config": {"backbone": backbone, "seed": seed, "epochs": 8}}
    (folder / "config.json").write_text(json.dumps(config))
    if map_value is not None:
        scores = {"map": map_value, "map_50": 2 * map_value, "map_75": map_value / 2}
        scores.update(map_small=-1.0, map_medium=map_value, map_large=map_value, seconds=1.0)
        (folder / "summary.json").write_text(json.dumps(scores))


@pytest.mark.parametrize(
    "residual,plain,outcome",
    [
        ([0.30, 0.32, 0.31], [0.20, 0.21, 0.23], "holds"),  # +10 points on every seed
        ([0.20, 0.21, 0.23], [0.30, 0.32, 0.31], "contradicted"),
        ([0.30, 0.20, 0.25], [0.25, 0.26, 0.24], "not decided"),  # differences of both signs
        ([0.30], [0.20], "not decided"),  # one seed decides nothing
    ],
)
def test_the_verdict_follows_the_paired_test(tmp_path, residual, plain, outcome):
    runs = tmp_path / "runs"
    for seed, (r, p) in enumerate(zip(residual, plain)):
        _run(runs, "resnet18", seed, r)
        _run(runs, "plain18", seed, p)
    verdict = write_detection_report(runs, tmp_path / "out")
    assert verdict.outcome == outcome
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    assert verdict.line() in text and "Table 8" in text and "**Machine**" in text
    stored = json.loads((tmp_path / "out" / "verdicts.json").read_text())
    assert stored["verdicts"][0]["outcome"] == outcome
    # each run's measured mAP is in the table, in percent
    assert f"| resnet18-s0 | resnet18 | 0 | 8 | {100 * residual[0]:.1f} |" in text


def test_unfinished_and_missing_runs_are_said(tmp_path, capsys):
    runs = tmp_path / "runs"
    _run(runs, "resnet18", 0, 0.3)
    _run(runs, "plain18", 0)  # no summary: still training
    verdict = write_detection_report(runs, tmp_path / "out")
    assert verdict.outcome == "missing" and "0 plain18" in verdict.evidence
    assert (
        "| plain18-s0 | plain18 | 0 | 8 | unfinished |"
        in (tmp_path / "out" / "RESULTS.md").read_text()
    )
    out = tmp_path / "cmd"
    assert main(["analyze", "detection", "--runs", str(runs), "--out", str(out)]) == 0
    assert (
        "**not decided (runs missing)**" in capsys.readouterr().out
        and (out / "RESULTS.md").is_file()
    )
    assert main(["analyze", "detection", "--runs", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_the_python_door_gives_what_the_command_gives_and_guards_its_folder(tmp_path, capsys):
    """``resnets.reproduce("detection", runs=...)`` is the command's experiment: the same page
    and verdict; the option it needs is asked for, and its results never land inside the runs
    it reads (the write check at the experiment's door, not in the command)."""
    import resnets
    from resnets.errors import ConfigError

    runs = tmp_path / "runs"
    for seed, (r, p) in enumerate(zip([0.30, 0.32, 0.31], [0.20, 0.21, 0.23])):
        _run(runs, "resnet18", seed, r)
        _run(runs, "plain18", seed, p)
    page = resnets.reproduce("detection", runs=runs, out=tmp_path / "py", progress=False)
    assert page == tmp_path / "py" / "RESULTS.md"
    assert main(["analyze", "detection", "--runs", str(runs), "--out", str(tmp_path / "cli")]) == 0
    assert "**holds**" in capsys.readouterr().out  # the command prints the page's verdict

    def table_and_verdicts(folder):
        lines = (folder / "RESULTS.md").read_text().splitlines()
        stored = json.loads((folder / "verdicts.json").read_text())["verdicts"]
        return [x for x in lines if x.startswith("| ")], [v["outcome"] for v in stored]

    assert table_and_verdicts(tmp_path / "py") == table_and_verdicts(tmp_path / "cli")
    with pytest.raises(ConfigError, match="detection: option runs is required"):
        resnets.reproduce("detection", out=tmp_path / "none")
    with pytest.raises(ConfigError, match="inside .*runs.*reads"):
        resnets.reproduce("detection", runs=runs, out=runs / "report", progress=False)
    assert not (runs / "report").exists()
