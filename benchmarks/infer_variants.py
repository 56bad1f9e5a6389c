"""PyTorch inference paths against OpenVINO's default, side by side (issue 32, item 2).

One process, alternating rounds (median of rounds), ResNet-50 at 224x224 by default, batch 1
and 16, on the CPU's threads (2 unless told):

- ``openvino``: the ONNX export compiled by OpenVINO with no settings (its own precision:
  bf16 where the CPU has it, its own threads and streams);
- ``eager-fp32``: ``model(x)`` under ``inference_mode``;
- ``eager-bf16-cl``: bf16 autocast and channels_last (what `predict`/`serve` run today where
  the CPU has bf16);
- ``compiled-bf16-cl``: the same through ``torch.compile`` with Inductor's ``freezing`` (weights
  folded as constants, oneDNN's fused convolutions and prepacked weights);
- ``compiled-bf16-weights``: the model cast to bf16 outright (no autocast), channels_last,
  compiled with freezing.

Usage: python benchmarks/infer_variants.py [--model resnet50] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from resnets import create_model
from resnets.bench import PlainOpenVINO
from resnets.inference.graph import onnx_bytes
from resnets.models.weights import WeightsMeta


def timed(fn, x, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        fn(x)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    cl = create_model(args.model).eval().to(memory_format=torch.channels_last)
    cl.load_state_dict(model.state_dict())
    half = create_model(args.model).eval().to(memory_format=torch.channels_last)
    half.load_state_dict(model.state_dict())
    half = half.to(torch.bfloat16)
    compiled = torch.compile(cl)
    compiled_half = torch.compile(half)
    graph = onnx_bytes(model, WeightsMeta(model=args.model), args.size)
    vino = PlainOpenVINO(graph)

    def eager_fp32(x):
        with torch.inference_mode():
            return model(x)

    def eager_bf16(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return cl(x.contiguous(memory_format=torch.channels_last))

    def compiled_bf16(x):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return compiled(x.contiguous(memory_format=torch.channels_last))

    def compiled_weights(x):
        with torch.no_grad():
            return compiled_half(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))

    variants = {
        "openvino": vino,
        "eager-fp32": eager_fp32,
        "eager-bf16-cl": eager_bf16,
        "compiled-bf16-cl": compiled_bf16,
        "compiled-bf16-weights": compiled_weights,
    }
    print(f"{args.model} at {args.size}, {torch.get_num_threads()} threads")
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.randn(batch, 3, args.size, args.size)
        reference = eager_fp32(x).float()
        steps = max(3, 48 // batch)
        for name, fn in variants.items():  # warm-up (compilation) and agreement with fp32
            out = torch.as_tensor(fn(x)).float()
            agree = float((out.argmax(1) == reference.argmax(1)).float().mean())
            print(f"  batch {batch:>2} {name:<22} top-1 agreement with fp32 {agree:.0%}")
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name, fn in variants.items():
                times[name].append(timed(fn, x, steps))
        base = batch / statistics.median(times["openvino"])
        for name, t in times.items():
            rate = batch / statistics.median(t)
            print(f"  batch {batch:>2} {name:<22} {rate:8.1f} img/s  {rate / base:5.2f}x OpenVINO")


if __name__ == "__main__":
    main()
