"""The machine as results name it: threads that follow the idle cores, the CPU's bf16 units."""

from __future__ import annotations

from resnets import runtime


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
