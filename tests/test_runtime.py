"""The machine as results name it (threads that follow the idle cores, the CPU's bf16 units),
and the stop requests a run acts on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from resnets import runtime
from resnets.runtime import LAUNCHER_POLL_SECONDS, StopSignals


def test_threads_follow_the_idle_cores(monkeypatch):
    import torch

    assert 0.0 <= runtime.busy_cores(0.05) <= (runtime.os.cpu_count() or 1)  # the real reading
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(runtime, "busy_cores", lambda seconds=0.2: 1.1)  # another job on a core
    assert runtime.choose_threads() == 1
    monkeypatch.setattr(runtime, "busy_cores", lambda seconds=0.2: 0.05)
    assert runtime.choose_threads() == 2
    monkeypatch.setattr(runtime, "busy_cores", lambda seconds=0.2: 7.0)
    assert runtime.choose_threads() == 1  # never fewer than one
    assert runtime.choose_threads(3) == 3  # asked for
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runtime.choose_threads() == torch.get_num_threads()


def test_the_machine_label_names_the_bf16_units_the_flags_show():
    """Every RESULTS.md and benchmark names its CPU's bf16: the label says which unit, never
    AMX on a CPU without it (the flags are read as whole words)."""
    head = "processor : 0\nflags : fpu sse2 avx2 fma "
    assert runtime.cpu_bf16_units(head + "avx512f avx512_bf16\n") == "AVX512-BF16"
    assert (
        runtime.cpu_bf16_units(head + "avx512_bf16 amx_tile amx_bf16\n") == "AVX512-BF16+AMX-BF16"
    )
    assert runtime.cpu_bf16_units(head + "avx512f avx512_bf16x\n") == ""  # not the flag itself
    assert runtime.cpu_bf16_units(head + "\n") == ""
    label = runtime.machine_label(1)
    assert label.startswith(runtime.cpu_name()) and ", 1 thread" in label
    units = runtime.cpu_bf16_units()
    assert (f"with {units}," in label) if units else ("no native bf16" in label)


def test_a_run_stops_as_on_sigterm_once_its_launcher_is_gone(tmp_path):
    """StopSignals(launcher=PID) flags SIGTERM, with a reason, once the process's parent is
    not PID: the child of a shell that exits at once is re-parented (torchrun's ranks, in
    sessions of their own, are left the same way when torchrun is killed)."""
    child = tmp_path / "child.py"
    child.write_text(
        "import sys, time\n"
        "from resnets.runtime import StopSignals\n"
        "with StopSignals(launcher=int(sys.argv[1])) as signals:\n"
        "    deadline = time.time() + 20\n"
        "    while signals.requested is None and time.time() < deadline:\n"
        "        time.sleep(0.05)\n"
        "print(signals.requested, signals.reason, flush=True)\n"
    )
    out = tmp_path / "out.txt"
    # the shell passes its own pid and exits without waiting for the child
    subprocess.run(
        ["sh", "-c", f'"{sys.executable}" "{child}" $$ > "{out}" 2>&1 &'], check=True, timeout=30
    )
    deadline = time.time() + 30
    # (the shell may return before its background child has created the file)
    while not (out.exists() and out.read_text().endswith("\n")) and time.time() < deadline:
        time.sleep(0.1)
    requested, reason = out.read_text().split(" ", 1)
    assert int(requested) == signal.SIGTERM
    assert reason.startswith("the launcher (pid ") and reason.strip().endswith(") exited")


def test_a_live_launcher_stops_nothing():
    with StopSignals(launcher=os.getppid()) as signals:
        time.sleep(2.5 * LAUNCHER_POLL_SECONDS)
        assert signals.requested is None and signals.reason is None
    # and without a launcher no thread watches at all
    with StopSignals() as signals:
        assert signals._watcher is None
