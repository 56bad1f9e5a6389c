"""The bottom of the package: where and how tensors run.

Device choice, bf16 autocast where the hardware has it, CPU threads and the CPU allocator, and
this process's place in a ``torchrun`` job. Imports nothing of resnets but its error types.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import platform
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; a CUDA name without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: not a device name (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available on this machine")
    return dev


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), or the machine type where it is not
    readable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_label(threads: int | None = None) -> str:
    """One line naming this machine for a results file: the CPU, whether it has native bf16,
    the threads, and the GPU when one is used."""
    threads = threads or torch.get_num_threads()
    bf16 = f"with {cpu_bf16_units()}" if cpu_has_bf16() else "no native bf16 (AVX2-class)"
    text = f"{cpu_name()}, {bf16}, {threads} thread{'s' if threads != 1 else ''}"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()}"
    return text


def cpu_bf16_units(cpuinfo: str | None = None) -> str:
    """The CPU's native bf16 units as its flags name them: ``AVX512-BF16``, ``AMX-BF16``, both
    joined by ``+``, or ``""``. ``cpuinfo``: the text of /proc/cpuinfo (read when None)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    flags = set(cpuinfo.split())
    units = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
    return "+".join(name for flag, name in units.items() if flag in flags)


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where autocast pays."""
    return bool(cpu_bf16_units())


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` (auto / bf16 / fp32) means bf16 autocast on ``device``."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def autocast_ctx(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device``, or nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@dataclass
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False
    # the process that started this one when it joined the group: torchrun's agent for a rank
    launcher_pid: int | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over ranks, in place."""
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Leave the process group if this process created it."""
        if self.initialized_here and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


DIST_TIMEOUT_ENV = "RESNETS_DIST_TIMEOUT"


def _pg_timeout() -> dict[str, datetime.timedelta]:
    """``$RESNETS_DIST_TIMEOUT`` seconds for a collective to wait on the other ranks (torch's
    default when unset): a rank that is gone then ends the run with an error, not a hang."""
    raw = os.environ.get(DIST_TIMEOUT_ENV, "").strip()
    if not raw:
        return {}
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"${DIST_TIMEOUT_ENV}={raw!r}: a number of seconds > 0")
    return {"timeout": datetime.timedelta(seconds=seconds)}


def init_distributed(device: str) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist = torch.distributed
    use_cuda = device != "cpu" and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo", **_pg_timeout())
        created = True
    launcher = os.getppid() if under_torchrun() else None
    return Dist(dist.get_rank(), dist.get_world_size(), local, created, launcher)


LAUNCHER_POLL_SECONDS = 1.0


def under_torchrun() -> bool:
    """Whether ``torchrun`` (torch elastic) started this process: it sets TORCHELASTIC_RUN_ID."""
    return "TORCHELASTIC_RUN_ID" in os.environ


class StopSignals:
    """SIGTERM and SIGINT, caught while a run is inside: ``requested`` holds the first one.
    The loop acts on it at its next step boundary (checkpoint, then a clean return).

    ``launcher`` (a pid: the parent's when the process group was joined) also stops the run,
    as a SIGTERM would, once this process's parent is another (``reason`` says so). Under
    torchrun the parent is its agent, and torchrun starts each rank in a session of its own:
    when torchrun is killed (SIGKILL, the OOM killer, a time-out that kills its process group)
    no signal reaches the ranks, which would train on, or wait in a collective, unsupervised."""

    def __init__(self, launcher: int | None = None) -> None:
        self.requested: int | None = None
        self.reason: str | None = None
        self._old: dict[int, Any] = {}
        self._launcher = launcher
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.requested is None:
            self.requested = signum

    def _watch_launcher(self, launcher: int) -> None:
        # the parent's pid changes (to init or a subreaper) only when the parent has exited
        while True:
            if os.getppid() != launcher:
                if self.requested is None:
                    self.reason = f"the launcher (pid {launcher}) exited"
                    self.requested = signal.SIGTERM
                return
            if self._done.wait(LAUNCHER_POLL_SECONDS):
                return

    def __enter__(self) -> StopSignals:
        if in_main_thread():  # handlers can only be installed from the main thread
            for s in (signal.SIGTERM, signal.SIGINT):
                self._old[s] = signal.signal(s, self._on_signal)
        if self._launcher is not None:
            self._watcher = threading.Thread(
                target=self._watch_launcher,
                args=(self._launcher,),
                name="resnets-launcher-watch",
                daemon=True,
            )
            self._watcher.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()
        for s, h in self._old.items():
            signal.signal(s, h)


def busy_cores(seconds: float = 0.2) -> float:
    """How many cores other work keeps busy now, from two readings of /proc/stat (Linux);
    0.0 where it cannot be read."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals), idle

    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
    except (OSError, ValueError, IndexError):
        return 0.0
    cores = os.cpu_count() or 1
    return cores * (1 - (i1 - i0) / max(t1 - t0, 1))


def choose_threads(requested: int = 0) -> int:
    """CPU threads for this process: ``requested``, or $OMP_NUM_THREADS when set, or the cores
    left idle by other processes (at least 1). Threads beyond the idle cores spin against the
    other work: two trainings with 2 threads each on 2 cores ran at 0.15 of one alone, where
    one thread each keeps each near half (benchmarks/busy_neighbour.py)."""
    if requested:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, round((cores or 1) - busy_cores())))


#: glibc's mallopt parameters (malloc.h) and the values a CPU training sets: blocks up to the
#: largest threshold glibc allows on 64-bit (32 MiB: ResNet activations of a CIFAR batch of 128
#: are 2-8 MiB) come from the heap, and freed memory stays there for the next step instead of
#: going back to the kernel, which would hand it out again as fresh zeroed pages
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_HELD_ALLOCATOR = (
    (_M_MMAP_THRESHOLD, 32 << 20),
    (_M_TRIM_THRESHOLD, 2**31 - 1),
    (_M_TOP_PAD, 256 << 20),
)
#: the environment variables that set those parameters: the user's choice, left alone
_MALLOC_VARIABLES = frozenset(
    {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"}
)


@dataclass(frozen=True)
class AllocatorChoice:
    """What :func:`hold_freed_memory` did: ``held`` is True when it set glibc's thresholds;
    ``reason`` says why not otherwise."""

    held: bool
    reason: str


def hold_freed_memory(environ: Mapping[str, str] | None = None) -> AllocatorChoice:
    """Keep the memory a CPU training step frees for its next step.

    glibc hands blocks above its mmap threshold straight back to the kernel when freed, and
    trims the heap's free top; a training step frees and allocates the same activation
    buffers every iteration, so each comes back as new pages the kernel must fault in and
    zero. On the 2-core Zen 3 the plain-56 zoo run spent 12-13% of its CPU time in the kernel
    this way (74,000-95,000 page faults a second); held, its epochs ran at 140-160 img/s
    against 118-126 (BENCHMARKS.md, 'The CPU allocator'). PyTorch's CPU launcher answers the
    same problem by preloading jemalloc or tcmalloc; this uses glibc's own ``mallopt`` and no
    dependency. Left alone where the user has chosen (a ``MALLOC_*_`` threshold variable, a
    glibc.malloc tunable, a preloaded allocator), and on any C library but glibc. The setting
    is process-wide and stays for the process's life."""
    env = os.environ if environ is None else environ
    chosen = sorted(set(env) & _MALLOC_VARIABLES)
    if chosen:
        return AllocatorChoice(False, f"{chosen[0]} is set")
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return AllocatorChoice(False, "GLIBC_TUNABLES sets glibc.malloc")
    if "malloc" in env.get("LD_PRELOAD", ""):
        return AllocatorChoice(False, "LD_PRELOAD preloads an allocator")
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        glibc = None
    if not glibc:
        return AllocatorChoice(False, "not glibc")
    try:
        libc = ctypes.CDLL(None)
        if all(libc.mallopt(param, value) == 1 for param, value in _HELD_ALLOCATOR):
            return AllocatorChoice(True, "glibc mallopt")
    except (OSError, AttributeError):
        pass
    return AllocatorChoice(False, "mallopt refused")
