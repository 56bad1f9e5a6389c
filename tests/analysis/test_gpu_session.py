"""benchmarks/gpu_session.sh paper, end to end on the CPU at a tiny budget: a first call cut
short by its time limit, its state collected and carried into a second call on a fresh
machine (another runs folder), which resumes the interrupted run and writes the reports."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import finish

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _call(tmp: Path, name: str, cut_mid_run: bool = False) -> None:
    """One device call of the script. ``cut_mid_run``: end it (SIGTERM to its workers, as its
    time limit does) as soon as some run has checkpointed before finishing, whatever the
    machine's speed or load, so the second call must resume that run."""
    runs = tmp / f"runs-{name}"
    env = {
        **os.environ,
        "SKIP_INSTALL": "1",
        "DATA": "digits",
        "DEVICE": "cpu",
        "BUDGET": "0.0001",  # 6 iterations: an evaluation after each, a checkpoint too
        "SEEDS": "1",
        "PLAIN_32_44": "0",  # 7 runs: the script is what is tested, not the set
        "WORKERS": "2",
        "OMP_NUM_THREADS": "1",
        "STOP_AFTER": "600",
        "STATE": str(tmp / "state"),
        "OUT": str(tmp / name),
        "RUNS": str(runs),
    }
    (tmp / name).mkdir()
    script = subprocess.Popen(
        ["bash", "benchmarks/gpu_session.sh", "paper"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if cut_mid_run:
        deadline = time.monotonic() + 600
        while script.poll() is None and time.monotonic() < deadline:
            cut = [
                ckpt
                for ckpt in runs.glob("runs/*/last.ckpt")
                if not (ckpt.parent / "summary.json").exists()
            ]
            if cut:  # the workers' command lines name this call's runs folder, the script's not
                subprocess.run(["pkill", "-TERM", "-f", f"runs-from {runs}"], check=False)
                break
            time.sleep(0.05)
    output, _ = finish(script, 900, f"benchmarks/gpu_session.sh paper ({name})")
    assert script.returncode == 0, output


def _collect(tmp: Path, name: str) -> str:
    r = subprocess.run(
        ["bash", "benchmarks/gpu_paper_collect.sh", str(tmp / name), str(tmp / "results")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "STATE": str(tmp / "state")},
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_two_calls_resume_and_report(tmp_path):
    """Also the shared queue itself: two workers per call, each run trained once by one of
    them, and the reports' verdicts, the summary page and their re-judging from the CSV
    files alone."""
    _call(tmp_path, "first", cut_mid_run=True)
    assert "not every run has finished" in _collect(tmp_path, "first")
    parts = sorted((tmp_path / "first").glob("paper-state.tgz.part*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    assert not (tmp_path / "results").exists()

    _call(tmp_path, "second")
    assert "reports:" in _collect(tmp_path, "second")
    runs = tmp_path / "runs-second" / "runs"
    logs = {p.parent.name: p.read_text() for p in runs.glob("*/train.log")}
    assert len(logs) == 7 and all("done in" in log for log in logs.values())
    assert any("resumed" in log for log in logs.values())  # the run the first call cut
    workers = [p.read_text() for p in sorted(tmp_path.glob("*/worker*.log"))]
    assert len(workers) == 4  # two workers in each call
    for name, log in logs.items():  # trained once: one start line, one finished line in all
        lines = log.splitlines()
        starts = [x for x in lines if x[:4].isdigit() and x.split(" ", 3)[2] == "run"]
        assert len(starts) == 1, name
        assert sum(w.count(f"{name}: finished\n") for w in workers) == 1, name
    _check_reports(tmp_path / "results")
    _check_python_door(tmp_path / "runs-second", tmp_path / "results", tmp_path / "py")


def _check_python_door(store: Path, results: Path, out: Path) -> None:
    """``resnets.reproduce("paper")`` gives what the command gave: over the run store the
    workers filled (nothing trained again), the same claims with the same verdicts."""
    import resnets
    from resnets.errors import ConfigError

    page = resnets.reproduce(
        "paper", data="digits", budget=0.0001, seeds=1, runs_from=store, out=out, progress=False
    )
    assert page == out / "RESULTS.md" and "resnets.reproduce('paper'" in page.read_text()

    def claims(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("| (")]

    assert claims(page.read_text()) == claims((results / "RESULTS.md").read_text())
    with pytest.raises(ConfigError, match="paper: no option depths"):
        resnets.reproduce("paper", data="digits", out=out, depths=[20])


def _check_reports(results: Path) -> None:
    """Each report names its machine and budget and prints the verdicts its verdicts.json
    holds; the summary page has one row per claim as its report computed it; the same
    verdicts come back when judged again from the reports' CSV files (no run folders)."""
    from resnets.analysis.experiments.paper import SUMMARY_REPORTS
    from resnets.analysis.reports import WORDS, read_verdicts
    from resnets.cli import main

    summary_rows = []
    for folder, labels in (
        ("degradation", "(a)(b)(c)"),
        ("cifar-table", "(d)"),
        ("responses", "(e)"),
    ):
        text = (results / folder / "RESULTS.md").read_text()
        head = "\n".join(text.splitlines()[:4])
        assert "**Machine**" in head and "**Budget 0.0001**" in head
        assert not (results / folder / "runs").exists()  # the collect script left them out
        for label in (labels[i : i + 3] for i in range(0, len(labels), 3)):
            assert f"- {label} " in text
            assert any(f"**{word}**" in text for word in WORDS.values())
        verdicts = read_verdicts(results / folder / "verdicts.json")
        assert "".join(v.label for v in verdicts) == labels
        assert all(v.line() in text for v in verdicts)
        summary_rows += [(v, folder) for v in verdicts]
    summary = (results / "RESULTS.md").read_text()
    assert "**Machine**" in summary and "**Budget 0.0001**" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| (")]
    assert [row[2:5] for row in rows] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    for row, (verdict, folder) in zip(rows, sorted(summary_rows, key=lambda r: r[0].label)):
        assert f"**{verdict.word()}**" in row and f"[{folder}]({folder}/RESULTS.md)" in row
    counts = [sum(v.outcome == o for v, _ in summary_rows) for o in ("holds", "contradicted")]
    assert f"Of 5 claims: {counts[0]} hold, {counts[1]} contradicted" in summary
    # no shipped weights were trained on the digits: Table 6 at the whole schedule has no
    # number of ours, and each row says its run has not been trained here
    whole = summary.split("## At the whole schedule: Table 6 from the zoo's weights")[1]
    table6, fig6 = whole.split("### Fig. 7 at the whole schedule")[0].split("### Fig. 6")
    rows = [line for line in table6.splitlines() if line.startswith("| ResNet-")]
    assert len(rows) == 5 and all("not trained yet" in row for row in rows)
    # nor a zoo run's curve: Fig. 6's rows say so, and there is no figure
    rows = [line for line in fig6.splitlines() if line.startswith(("| ResNet-", "| plain-"))]
    assert len(rows) == 7 and all("no recorded metrics here" in row for row in rows)
    assert ".png)" not in fig6
    assert "(b, whole schedule) ResNet-56 has lower validation error than ResNet-20: " in whole
    assert "**not decided (runs missing)**. needs resnet56, resnet20" in whole
    fig7 = whole.split("### Fig. 7 at the whole schedule")[1]
    assert fig7.count("not shipped yet |") == 7 and ".png)" not in fig7  # no weights: no figure
    before = {f: read_verdicts(results / f / "verdicts.json") for f in SUMMARY_REPORTS}
    assert main(["analyze", "verdicts", "--results", str(results), "--data", "digits"]) == 0
    for folder in SUMMARY_REPORTS:
        assert read_verdicts(results / folder / "verdicts.json") == before[folder]
    assert (results / "RESULTS.md").read_text() == summary
    # and from Python, the same registered experiment: the same page again
    import resnets

    page = resnets.reproduce("verdicts", results=results, data="digits", progress=False)
    assert page == results / "RESULTS.md" and page.read_text() == summary
