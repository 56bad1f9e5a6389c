"""The trainer's step with glibc's allocator defaults against freed memory held (issue 42).

`resnets train` on a CPU calls ``resnets.runtime.hold_freed_memory`` so that the buffers a
step frees are reused by the next, not given back to the kernel and faulted in again. Each
round runs the trainer's step (recipe he2015-cifar with the model given, its compile decision
for the whole schedule, synthetic batches) in a fresh process: ``held`` as the trainer does,
``default`` with a glibc.malloc tunable set to its default value (``GLIBC_TUNABLES=
glibc.malloc.perturb=0``), which is a user's choice that resnets leaves alone, so glibc keeps
its defaults. The conditions alternate, each process warms up first; a step's page faults
and the kernel's share of the CPU time come from ``getrusage``. Prints a table; the last
line is JSON.

    python benchmarks/cpu_allocator.py [--model plain56] [--steps 30] [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKER = r"""
import json, resource, time, torch
from resnets.runtime import hold_freed_memory
choice = hold_freed_memory()
torch.set_num_threads(THREADS)
from resnets.bench import trainer_step
from resnets.train.config import build_config
cfg = build_config("he2015-cifar", string_values={"model": "MODEL", "device": "cpu"})
step = trainer_step(cfg, 32, 10, torch.device("cpu"), cfg.iters)[0]
for _ in range(5):  # compile and first steps
    step()
before = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
for _ in range(STEPS):
    step()
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "held": choice.held,
    "images_per_sec": 128 * STEPS / seconds,
    "faults_per_step": (after.ru_minflt - before.ru_minflt) / STEPS,
    "kernel_share": (after.ru_stime - before.ru_stime)
    / max(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1e-9),
}))
"""


def measure(condition: str, model: str, steps: int, threads: int) -> dict:
    """One fresh process's figures under ``condition`` ("held" or "default")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    if condition == "default":
        env["GLIBC_TUNABLES"] = "glibc.malloc.perturb=0"
    code = (
        WORKER.replace("MODEL", model).replace("STEPS", str(steps)).replace("THREADS", str(threads))
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800
    )
    if out.returncode:
        raise SystemExit(f"cpu_allocator: the {condition} worker failed:\n{out.stderr}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["held"] != (condition == "held"):
        raise SystemExit(f"cpu_allocator: the {condition} worker held={figures['held']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="plain56")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per condition")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"default": [], "held": []}
    for _ in range(args.rounds):
        for condition in runs:
            runs[condition].append(measure(condition, args.model, args.steps, args.threads))
    print(f"{args.model}, batch 128, {args.threads} threads, {args.steps} steps x {args.rounds}")
    print("| glibc | img/s (each process) | page faults / step | kernel share of CPU |")
    print("| --- | --- | ---: | ---: |")
    summary = {}
    for condition, figures in runs.items():
        rates = [f["images_per_sec"] for f in figures]
        faults = statistics.median(f["faults_per_step"] for f in figures)
        kernel = statistics.median(f["kernel_share"] for f in figures)
        print(
            f"| {condition} | {', '.join(f'{r:.1f}' for r in rates)} | {faults:,.0f} "
            f"| {100 * kernel:.1f}% |"
        )
        summary[condition] = {
            "images_per_sec": rates,
            "faults_per_step": faults,
            "kernel_share": kernel,
        }
    print(json.dumps({"model": args.model, "threads": args.threads, **summary}))


if __name__ == "__main__":
    main()
