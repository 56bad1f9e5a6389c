"""The suite's own guard (issue 44): a resnets process a test leaves running is killed when
the run ends, named, and fails the run (tests/conftest.py, pytest_sessionfinish)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_a_process_left_by_a_test_fails_the_run_and_is_killed(tmp_path):
    for name in ("__init__.py", "conftest.py", "warm.py"):  # the guard and what it imports
        shutil.copy(Path(__file__).with_name(name), tmp_path / name)
    marker = f"resnets-left-{os.getpid()}"
    (tmp_path / "test_leaves.py").write_text(
        "import subprocess, sys\n"
        "def test_leaves_a_process():\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])\n"
    )
    # the inner run is a controller of its own, not an xdist worker of this one
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-o", "addopts=", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-2000:]
    assert "processes left running after the tests (killed)" in run.stdout
    assert marker in run.stdout
    alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert alive.stdout.strip() == ""
