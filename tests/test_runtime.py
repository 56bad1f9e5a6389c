"""The machine as results name it (threads that follow the idle cores, the CPU's bf16 units),
and the stop requests a run acts on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


# a training step's pattern: a forward's activations allocated, then all freed by the backward;
# page faults counted over 10 such steps after a first, glibc's defaults first, then held
_STEPS_FAULTS = """
import ctypes, resource, sys
sys.path[:0] = [{src!r}]
from resnets.runtime import hold_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def step():
    blocks = [libc.malloc(4 << 20) for _ in range(16)]  # 64 MiB of activations
    for block in blocks:
        ctypes.memset(block, 1, 4 << 20)
    for block in blocks:
        libc.free(block)
def faults_over_steps():
    step()  # the first step may grow the heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
default = faults_over_steps()
choice = hold_freed_memory({{}})
print(default, faults_over_steps(), choice.held)
"""


def test_freed_memory_is_held_for_the_next_step_without_new_page_faults():
    """glibc's defaults give the kernel each step's freed blocks back, and every step faults
    them in again (16,384 pages of 4 KiB a step here); held, each step reuses the last one's."""
    src = str(Path(runtime.__file__).parents[1])
    out = subprocess.run(
        [sys.executable, "-c", _STEPS_FAULTS.format(src=src)],
        capture_output=True,
        text=True,
        timeout=120,
        # glibc's defaults in the child: no allocator settings of this process's environment
        env={
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD")
        },
    )
    assert out.returncode == 0, out.stderr
    default, held, chose = out.stdout.split()
    assert chose == "True"
    assert int(default) > 5 * 16_384  # most steps fault their 64 MiB in afresh
    assert int(held) < 1_000  # the same pages again: under a 16th of one step's


def test_a_users_allocator_choice_is_left_alone():
    for environ, reason in (
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_ is set"),
        (
            {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"},
            "GLIBC_TUNABLES sets glibc.malloc",
        ),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "LD_PRELOAD preloads an allocator"),
    ):
        assert runtime.hold_freed_memory(environ) == runtime.AllocatorChoice(False, reason)
