"""benchmarks/gpu_session.sh paper, end to end on the CPU at a tiny budget: a first call cut
short by its time limit, its state collected and carried into a second call on a fresh
machine (another runs folder), which resumes the interrupted run and writes the reports."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _call(tmp: Path, name: str, stop_after: int) -> None:
    env = {
        **os.environ,
        "SKIP_INSTALL": "1",
        "DATA": "digits",
        "DEVICE": "cpu",
        "BUDGET": "0.001",
        "SEEDS": "1",
        "WORKERS": "2",
        "OMP_NUM_THREADS": "1",
        "STOP_AFTER": str(stop_after),
        "STATE": str(tmp / "state"),
        "OUT": str(tmp / name),
        "RUNS": str(tmp / f"runs-{name}"),
    }
    (tmp / name).mkdir()
    r = subprocess.run(
        ["bash", "benchmarks/gpu_session.sh", "paper"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr


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
    # 6 s cannot hold the 9 runs on any machine (ResNet-110's 64 iterations alone take
    # longer), while the shorter runs have checkpointed by then: some are cut mid-way
    _call(tmp_path, "first", stop_after=6)
    assert "not every run has finished" in _collect(tmp_path, "first")
    parts = sorted((tmp_path / "first").glob("paper-state.tgz.part*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    assert not (tmp_path / "results").exists()

    _call(tmp_path, "second", stop_after=600)
    assert "reports:" in _collect(tmp_path, "second")
    runs = tmp_path / "runs-second" / "runs"
    logs = {p.parent.name: p.read_text() for p in runs.glob("*/train.log")}
    assert len(logs) == 9 and all("done in" in log for log in logs.values())
    assert any("resumed" in log for log in logs.values())  # the run the first call cut
    for report, label in (("cifar-table", "(d)"), ("degradation", "(a)"), ("responses", "(e)")):
        text = (tmp_path / "results" / report / "RESULTS.md").read_text()
        assert f"- {label} " in text and "**Machine**" in text
