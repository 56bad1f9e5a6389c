"""Where a compiled PyTorch forward's time goes at batch 1: oneDNN's kernels or the framework.

Runs ResNet-50 (224x224, bf16 weights, channels_last, ``torch.compile`` with Inductor's
freezing, optionally its C++ wrapper) in a child process with ``ONEDNN_VERBOSE=1``, which logs
every oneDNN primitive's execution time; the parent sums those times over the timed calls and
compares them with the wall time of the same calls in a run without the log. The difference is what PyTorch spends around the
kernels (operator dispatch, primitive cache look-ups, the Python or C++ wrapper, Dynamo's
guards). OpenVINO's whole forward, measured by ``benchmarks/infer_variants.py``, is the
yardstick for the kernels' share.

Usage: python benchmarks/infer_overhead.py [--batch 1] [--calls 20] [--threads 2] [--cpp]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

MARK = "=== timed calls begin"


def child(args: argparse.Namespace) -> None:
    import torch
    import torch._inductor.config as inductor_config

    from resnets import create_model

    torch.set_num_threads(args.threads)
    inductor_config.freezing = True
    inductor_config.cpp_wrapper = args.cpp
    torch.manual_seed(0)
    model = create_model(args.model).eval().to(memory_format=torch.channels_last)
    compiled = torch.compile(model.to(torch.bfloat16))
    x = torch.randn(args.batch, 3, 224, 224).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(3):
            compiled(x)
        print(MARK, flush=True)
        started = time.perf_counter()
        for _ in range(args.calls):
            compiled(x)
        wall = time.perf_counter() - started
    print(f"=== wall {wall}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpp", action="store_true", help="Inductor's C++ wrapper")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    argv = [sys.executable, __file__, "--child", "--model", args.model]
    argv += ["--batch", str(args.batch), "--calls", str(args.calls)]
    argv += ["--threads", str(args.threads)] + (["--cpp"] if args.cpp else [])
    # the kernels' times from a logged run; the wall time from a run without the log (writing
    # 54 lines per forward costs time of its own)
    logged = subprocess.run(
        argv, env={**os.environ, "ONEDNN_VERBOSE": "1"}, capture_output=True, text=True, check=True
    ).stdout
    kernels_ms = 0.0
    primitives = 0
    for line in logged.split(MARK, 1)[1].splitlines():
        if line.startswith("onednn_verbose") and ",exec,cpu," in line:
            kernels_ms += float(line.rsplit(",", 1)[1])
            primitives += 1
    quiet = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    wall_ms = 1000 * float(quiet.split("=== wall", 1)[1].split()[0])
    per_call = wall_ms / args.calls
    kernels = kernels_ms / args.calls
    print(
        f"{args.model}, batch {args.batch}, {args.threads} threads, "
        f"{'C++' if args.cpp else 'Python'} wrapper: {per_call:.2f} ms per forward, "
        f"{kernels:.2f} ms of it in {primitives // args.calls} oneDNN primitives "
        f"({kernels / per_call:.0%}); {per_call - kernels:.2f} ms around them"
    )


if __name__ == "__main__":
    main()
