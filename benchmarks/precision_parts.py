"""Where bf16 autocast loses precision in a deep CIFAR ResNet (issue 35, item 2).

For each depth, one batch of 128 real CIFAR-10 training images goes through the freshly
initialised net (train mode, the trainer's channels_last) in fp32 and under bf16 autocast with
one part kept in fp32 at a time:

- ``autocast``: what the trainer runs (convolutions and the classifier in bf16; BatchNorm then
  takes bf16 inputs, so the activations, and the sums of every residual addition, stay bf16);
- ``bn-fp32``: every BatchNorm computed on an fp32 copy of its input, so the normalised
  activations and the residual additions are fp32 (only the convolutions run in bf16);
- ``add-fp32``: only the residual additions in fp32 (BatchNorm as in autocast);
- ``fc-fp32``: only the classifier in fp32.

It prints the relative error of the loss gradient, ``|g - g_fp32| / |g_fp32|`` over every
parameter, and of the loss, the median over ``--batches`` batches, with the step time of each
variant (2 threads unless told); and, as the yardstick, ``sgd-noise``: how much the fp32
gradients of two different batches differ by the same measure. Usage:

    python benchmarks/precision_parts.py --data ../shared/data/cifar10-jpeg/train --depths 20,56,110
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from resnets import create_model
from resnets.data import load_dataset
from resnets.models.resnet import BasicBlock

VARIANTS = ("autocast", "bn-fp32", "add-fp32", "fc-fp32")


@contextlib.contextmanager
def patched(variant: str):
    """Keep one part of the net in fp32 under autocast, by patching its forward."""
    bn_forward, block_forward = nn.BatchNorm2d.forward, BasicBlock.forward
    linear_forward = nn.Linear.forward
    if variant == "bn-fp32":

        def forward_bn(self, x):
            with torch.autocast("cpu", enabled=False):
                return bn_forward(self, x.float())

        nn.BatchNorm2d.forward = forward_bn
    elif variant == "add-fp32":
        original_add = torch.Tensor.__add__

        def forward_block(self, x):
            torch.Tensor.__add__ = lambda a, b: original_add(a.float(), b.float())
            try:
                return block_forward(self, x)
            finally:
                torch.Tensor.__add__ = original_add

        BasicBlock.forward = forward_block
    elif variant == "fc-fp32":

        def forward_linear(self, x):
            with torch.autocast("cpu", enabled=False):
                return linear_forward(self, x.float())

        nn.Linear.forward = forward_linear
    try:
        yield
    finally:
        nn.BatchNorm2d.forward, BasicBlock.forward = bn_forward, block_forward
        nn.Linear.forward = linear_forward


def gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool):
    model.zero_grad(set_to_none=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN statistics unchanged
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    seconds = time.perf_counter() - started
    model.load_state_dict(state)
    grad = torch.cat([p.grad.flatten().float() for p in model.parameters()])
    return loss.item(), grad, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--depths", default="20,56,110")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data, progress=False)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(args.batches):
        idx = torch.randint(len(data), (128,), generator=generator).numpy()
        x = torch.from_numpy(data.images[idx]).permute(0, 3, 1, 2).float() / 255
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        batches.append((x, torch.from_numpy(data.labels[idx]).long()))
    print(f"{'depth':>5} {'variant':>9} {'grad rel err':>13} {'loss rel err':>13} {'ms/step':>8}")
    for depth in (int(d) for d in args.depths.split(",")):
        torch.manual_seed(0)
        model = create_model(f"resnet{depth}").to(memory_format=torch.channels_last).train()
        reference = [gradient(model, x, y, False) for x, y in batches]
        # the yardstick: SGD's own noise, the fp32 gradient of one batch against the next's
        noise = [
            float((a[1] - b[1]).norm() / b[1].norm()) for a, b in zip(reference, reference[1:])
        ]
        print(f"{depth:>5} {'sgd-noise':>9} {statistics.median(noise):>13.4f}")
        for variant in VARIANTS:
            errs, loss_errs, times = [], [], []
            with patched(variant):
                for (x, y), (loss32, grad32, _) in zip(batches, reference):
                    loss, grad, seconds = gradient(model, x, y, True)
                    errs.append(float((grad - grad32).norm() / grad32.norm()))
                    loss_errs.append(abs(loss - loss32) / abs(loss32))
                    times.append(seconds)
            print(
                f"{depth:>5} {variant:>9} {statistics.median(errs):>13.4f} "
                f"{statistics.median(loss_errs):>13.2e} {1000 * statistics.median(times):>8.1f}"
            )


if __name__ == "__main__":
    main()
