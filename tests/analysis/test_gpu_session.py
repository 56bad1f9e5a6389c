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
    for report, label in (("cifar-table", "(d)"), ("degradation", "(a)"), ("responses", "(e)")):
        text = (tmp_path / "results" / report / "RESULTS.md").read_text()
        assert f"- {label} " in text and "**Machine**" in text
        assert (
            f"[{report}]({report}/RESULTS.md)" in (tmp_path / "results" / "RESULTS.md").read_text()
        )
