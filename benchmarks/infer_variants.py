"""PyTorch inference paths against OpenVINO's default, side by side (issue 32, item 2).

Each variant lives in a worker process of its own (its own runtime and thread pool: OpenVINO's
threads can spin after a call and would slow whatever runs next in the same process); the
driver asks the workers in turn for one timed round, so all variants see the same machine
state, and reports the median of the rounds. ResNet-50 at 224x224 by default, batch 1 and 16,
on the CPU's threads (2 unless told). The variants:

- ``openvino``: the ONNX export compiled by OpenVINO with no settings (its own precision:
  bf16 where the CPU has it, its own threads and streams);
- ``eager-fp32``: ``model(x)`` under ``inference_mode``;
- ``eager-bf16-cl``: bf16 autocast and channels_last, eager;
- ``compiled-bf16-cl``: the same through ``torch.compile`` with Inductor's ``freezing`` (weights
  folded as constants, oneDNN's fused convolutions and prepacked weights);
- ``compiled-bf16-weights``: the model cast to bf16 outright (no autocast), channels_last,
  compiled with freezing; ``-cpp`` with Inductor's C++ wrapper (no Python between the
  kernels), ``-autotune`` in mode max-autotune-no-cudagraphs (Inductor's AMX GEMM templates
  tried against oneDNN for each layer).

Every variant's top-1 class is checked against fp32 eager on the same input.

Usage: python benchmarks/infer_variants.py [--model resnet50] [--rounds 5] [--threads 2]
       [--variants openvino,resnets]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = (
    "openvino",
    "eager-fp32",
    "eager-bf16-cl",
    "compiled-bf16-cl",
    "compiled-bf16-weights",
    "compiled-bf16-weights-cpp",
    "compiled-bf16-weights-autotune",
)


def build(variant: str, model_name: str, size: int):
    """The callable of ``variant`` (input: float32 NCHW) and the fp32 eager model."""
    import torch

    from resnets import create_model

    torch.manual_seed(0)
    model = create_model(model_name).eval()
    if variant == "openvino":
        from resnets.bench import PlainOpenVINO
        from resnets.inference.graph import onnx_bytes
        from resnets.models.weights import WeightsMeta

        return PlainOpenVINO(onnx_bytes(model, WeightsMeta(model=model_name), size)), model
    if variant == "eager-fp32":
        return model, model
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    cl = create_model(model_name).eval().to(memory_format=torch.channels_last)
    cl.load_state_dict(model.state_dict())
    if variant == "eager-bf16-cl":

        def eager_bf16(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return cl(x.contiguous(memory_format=torch.channels_last))

        return eager_bf16, model
    if variant == "compiled-bf16-cl":
        compiled = torch.compile(cl)

        def compiled_bf16(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return compiled(x.contiguous(memory_format=torch.channels_last))

        return compiled_bf16, model
    if variant in VARIANTS and variant.startswith("compiled-bf16-weights"):
        options = {}
        if variant.endswith("-cpp"):
            inductor_config.cpp_wrapper = True
        if variant.endswith("-autotune"):
            options = {"mode": "max-autotune-no-cudagraphs"}
        compiled_half = torch.compile(cl.to(torch.bfloat16), **options)

        def compiled_weights(x):
            return compiled_half(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))

        return compiled_weights, model
    raise SystemExit(f"--variant {variant}: one of {', '.join(VARIANTS)}")


def worker(args: argparse.Namespace) -> None:
    """Build one variant, answer 'ready' with its top-1 agreement, then time a round of
    ``steps`` calls per line read from stdin; exit at end of input."""
    import torch

    torch.set_num_threads(args.threads)
    fn, reference = build(args.variant, args.model, args.size)
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        expected = reference(x).argmax(1)
        for _ in range(2):  # warm-up: compilation, prepacking, the runtime's first calls
            out = torch.as_tensor(fn(x)).float()
    agree = float((out.argmax(1) == expected).float().mean())
    print(json.dumps({"ready": True, "agreement": agree}), flush=True)
    for line in sys.stdin:
        steps = int(line)
        with torch.no_grad():
            started = time.perf_counter()
            for _ in range(steps):
                fn(x)
            elapsed = time.perf_counter() - started
        print(json.dumps({"seconds": elapsed / steps}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # a worker's own
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        worker(args)
        return
    names = args.variants.split(",")
    print(f"{args.model} at {args.size}, {args.threads} threads, {args.rounds} rounds")
    for batch in (int(b) for b in args.batches.split(",")):
        steps = max(3, 48 // batch)
        workers = {}
        for name in names:  # started one after another: a compile never overlaps a timing
            proc = subprocess.Popen(
                [sys.executable, __file__, "--variant", name, "--batch", str(batch)]
                + ["--model", args.model, "--size", str(args.size)]
                + ["--threads", str(args.threads)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            ready = json.loads(proc.stdout.readline())
            print(
                f"  batch {batch:>2} {name:<22} top-1 agreement with fp32 {ready['agreement']:.0%}"
            )
            workers[name] = proc
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name, proc in workers.items():
                proc.stdin.write(f"{steps}\n")
                proc.stdin.flush()
                times[name].append(json.loads(proc.stdout.readline())["seconds"])
        for proc in workers.values():
            proc.stdin.close()
            proc.wait(timeout=60)
        base = batch / statistics.median(times[names[0]])
        for name, t in times.items():
            rate = batch / statistics.median(t)
            print(
                f"  batch {batch:>2} {name:<22} {rate:8.1f} img/s  {rate / base:5.2f}x {names[0]}"
            )


if __name__ == "__main__":
    main()
