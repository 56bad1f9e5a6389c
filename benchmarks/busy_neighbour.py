"""Training throughput when another process keeps a core busy (issue 11, section 6).

Runs the trainer's step (ResNet-20, batch 128, the default settings without compile) in a
fresh process, alone and beside a busy-loop neighbour process (bounded in time), with
OpenMP's waiting threads spinning (OMP_WAIT_POLICY=ACTIVE) and sleeping (PASSIVE, what
resnets sets unless told otherwise). Ideal: with one of two cores taken, about half the idle
rate; a collapse is far below that. Prints a table; the last line is JSON.

    python benchmarks/busy_neighbour.py [--steps 15] [--seconds-cap 120]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import time, torch
from resnets.runtime import choose_threads
torch.set_num_threads(choose_threads(THREADS))  # as resnets train does (0: by idle cores)
from resnets.bench import trainer_step
from resnets.train.config import build_config
cfg = build_config("he2015-cifar", string_values={"model": "resnet20", "compile": "off"})
step = trainer_step(cfg, 32, 10, torch.device("cpu"), cfg.iters)[0]
for _ in range(3):
    step()
t0 = time.perf_counter()
for _ in range(STEPS):
    step()
print(128 * STEPS / (time.perf_counter() - t0))
"""

SPIN = "import time\nt = time.time()\nwhile time.time() - t < {cap}:\n    pass\n"


def measure(policy: str, busy: str, steps: int, cap: float, threads: int = 2) -> float:
    """img/s of the worker; ``busy``: "" (alone), "spin" (a busy loop) or "torch" (another
    training process with its own threads, as a second job or parallel tests would be)."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    env.pop("OMP_NUM_THREADS", None)  # threads: 2 = one per core (torch's default), 0 = auto
    worker = WORKER.replace("THREADS", str(threads))
    code = SPIN.format(cap=cap) if busy == "spin" else worker.replace("STEPS", str(steps * 4))
    neighbour = None
    if busy:
        neighbour = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL
        )
    try:
        time.sleep(3 if busy == "torch" else 0.5 if busy else 0)  # the neighbour is running
        out = subprocess.run(
            [sys.executable, "-c", worker.replace("STEPS", str(steps))],
            capture_output=True,
            text=True,
            env=env,
            timeout=cap,
        )
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--seconds-cap", type=float, default=120.0)
    a = ap.parse_args()
    res = {}
    for policy in ("ACTIVE", "PASSIVE"):
        for busy in ("", "spin", "torch"):
            res[f"{policy} {busy or 'idle'}"] = measure(policy, busy, a.steps, a.seconds_cap)
    for policy in ("ACTIVE", "PASSIVE"):
        idle, spin, tor = (res[f"{policy} {k}"] for k in ("idle", "spin", "torch"))
        print(
            f"OMP_WAIT_POLICY={policy:<8} idle {idle:6.0f} img/s | busy loop beside {spin:6.0f}"
            f" ({spin / idle:.2f}) | training job beside {tor:6.0f} ({tor / idle:.2f})"
        )
    # resnets' choice: threads = the cores other processes leave idle (both jobs choose)
    res["auto idle"] = measure("ACTIVE", "", a.steps, a.seconds_cap, threads=0)
    res["auto torch"] = measure("ACTIVE", "torch", a.steps, a.seconds_cap, threads=0)
    print(
        f"threads by idle cores     idle {res['auto idle']:6.0f} img/s | training job beside "
        f"{res['auto torch']:6.0f} ({res['auto torch'] / res['auto idle']:.2f})"
    )
    print(json.dumps({"cores": os.cpu_count(), "images_per_sec": res}))


if __name__ == "__main__":
    main()
