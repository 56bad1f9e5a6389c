"""How fast can one CPU training step of a CIFAR ResNet get, whatever the trainer does?

Plain-PyTorch variants of one SGD step (forward, cross-entropy, backward, update) on a fixed
synthetic batch, beside the plain fp32 eager NCHW loop, all in one process and in alternating
rounds so a noisy machine slows every variant alike. It bounds what the trainer's step can
reach on this machine (issue 9 asks for >= 2.5x the fp32 loop for ResNet-20 at batch 128):

* ``eager bf16 autocast, NHWC``: what ``resnets train`` runs without compiling
* ``eager bf16 autocast, NCHW``: the same without channels_last
* ``eager bf16 weights, NHWC``: the whole model in bf16 (no autocast casts; not a recipe, as
  its SGD update would lose precision; only for the speed)
* ``eager fp32, oneDNN bf16 fpmath``: fp32 tensors, oneDNN computing convolutions in bf16
* ``compiled bf16 autocast, NHWC``: ``torch.compile`` of the forward (the trainer's default
  from 5,000 iterations)
* ``compiled whole step + compiled autograd``: forward, backward and update compiled as one,
  the backward traced by compiled autograd (a private PyTorch API)

    python benchmarks/step_ceiling.py [--model resnet20] [--batch-size 128] [--rounds 5]
        [--steps 8] [--skip-compiled]

Prints img/s and the ratio to the fp32 loop per variant; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from resnets.models import create_model, get_spec

Step = Callable[[], None]


def _sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    # the paper's CIFAR optimiser: momentum 0.9, weight decay 1e-4 (lr does not change speed)
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def build_variants(name: str, bs: int, compiled: bool) -> dict[str, Step]:
    spec = get_spec(name)
    size, classes = spec.default_image_size, spec.default_num_classes
    torch.manual_seed(0)
    x = torch.randn(bs, 3, size, size)
    y = torch.randint(0, classes, (bs,))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    mkldnn = torch.backends.mkldnn

    def model(channels_last: bool, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
        torch.manual_seed(0)
        m = create_model(name, num_classes=classes).to(dtype)
        return m.to(memory_format=torch.channels_last) if channels_last else m

    def loop(
        m: torch.nn.Module,
        xin: torch.Tensor,
        autocast: bool,
        fpmath: str = "none",
        compile_fwd: bool = False,
    ) -> Step:
        opt = _sgd(m)

        def loss_of(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return F.cross_entropy(m(a).float(), b)

        fwd = torch.compile(loss_of) if compile_fwd else loss_of

        def step() -> None:
            # the fpmath mode is process-wide: set it for this variant's steps only
            mkldnn.conv.fp32_precision = mkldnn.matmul.fp32_precision = fpmath
            try:
                loss = fwd(xin, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            finally:
                mkldnn.conv.fp32_precision = mkldnn.matmul.fp32_precision = "none"

        return step

    def whole_step_compiled() -> Step:
        m = model(True)
        opt = _sgd(m)

        def inner() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(m(x_cl).float(), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        fn = torch.compile(inner)
        from torch._dynamo import compiled_autograd

        def step() -> None:
            with compiled_autograd._enable(torch.compile()):
                fn()

        return step

    v: dict[str, Step] = {
        "fp32 eager loop (reference)": loop(model(False), x, autocast=False),
        "eager bf16 autocast, NHWC": loop(model(True), x_cl, autocast=True),
        "eager bf16 autocast, NCHW": loop(model(False), x, autocast=True),
        "eager bf16 weights, NHWC": loop(
            model(True, torch.bfloat16), x_cl.bfloat16(), autocast=False
        ),
        "eager fp32, oneDNN bf16 fpmath": loop(model(True), x_cl, autocast=False, fpmath="bf16"),
    }
    if compiled:
        v["compiled bf16 autocast, NHWC"] = loop(model(True), x_cl, True, compile_fwd=True)
        v["compiled whole step + compiled autograd"] = whole_step_compiled()
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--skip-compiled", action="store_true")
    a = ap.parse_args()
    fns = build_variants(a.model, a.batch_size, not a.skip_compiled)
    for f in fns.values():  # warm-up, compilation included
        for _ in range(3):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(a.rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            for _ in range(a.steps):
                f()
            times[k].append((time.perf_counter() - t) / a.steps)
    ips = {k: a.batch_size / statistics.median(v) for k, v in times.items()}
    ref = ips["fp32 eager loop (reference)"]
    for k, v in ips.items():
        print(f"{k:<42} {v:8.1f} img/s  {v / ref:5.2f}x")
    print(
        json.dumps(
            {
                "model": a.model,
                "batch_size": a.batch_size,
                "threads": torch.get_num_threads(),
                "images_per_sec": ips,
                "ratio": {k: v / ref for k, v in ips.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
