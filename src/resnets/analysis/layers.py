"""Layer responses (the paper's Fig. 7) and gradient flow through plain and residual networks.

* :func:`response_stds`: the standard deviation of the output of every 3x3 convolution's BN
  (after BN, before the addition and the ReLU), over a data set, in layer order;
  :func:`response_stds_by_image` the same per image, for a test paired over images.
* :func:`gradient_norms`: the L2 norm of the loss gradient of every convolution's weight.
* :func:`shattered_correlation`: Balduzzi et al. (2017), "The shattered gradients problem":
  the correlation between the input gradients of nearby inputs on a line through input space.
  White-noise-like (shattered) gradients have correlation near 0; smooth ones near 1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.resnet import ResNet


def response_layers(model: ResNet) -> list[tuple[str, nn.Module]]:
    """(name, module) of the layer after each 3x3 convolution, in forward order."""
    names = {id(m): n for n, m in model.named_modules()}
    out = []
    for blk in model.blocks():
        for m in blk.response_layers():
            out.append((names[id(m)], m))
    return out


def _each_response(
    model: ResNet, batches: Iterable[Tensor], record: Callable[[int, Tensor], None]
) -> list[str]:
    """Run ``batches`` through ``model`` in eval mode, calling ``record(i, response)`` with the
    output of the ``i``-th 3x3 layer's BN each time; the layers' names, in forward order."""
    layers = response_layers(model)
    handles = [
        m.register_forward_hook(lambda _m, _inp, out, i=i: record(i, out.detach().double()))
        for i, (_, m) in enumerate(layers)
    ]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return [name for name, _ in layers]


def response_stds(model: ResNet, batches: Iterable[Tensor]) -> list[tuple[str, float]]:
    """Std of each 3x3 layer's response over all batches (all samples, channels and positions)."""
    sums: dict[int, float] = defaultdict(float)
    squares: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)

    def record(i: int, out: Tensor) -> None:
        sums[i] += float(out.sum())
        squares[i] += float((out * out).sum())
        counts[i] += out.numel()

    names = _each_response(model, batches, record)
    res = []
    for i, name in enumerate(names):
        n = max(counts[i], 1)
        mean = sums[i] / n
        res.append((name, math.sqrt(max(squares[i] / n - mean * mean, 0.0))))
    return res


def response_stds_by_image(model: ResNet, batches: Iterable[Tensor]) -> Tensor:
    """``(images, layers)``: the std of each 3x3 layer's response to each image alone (over its
    channels and positions), the per-image measurement a paired test over images needs."""
    rows: dict[int, list[Tensor]] = defaultdict(list)
    names = _each_response(
        model,
        batches,
        lambda i, out: rows[i].append(out.flatten(1).std(dim=1, correction=0).cpu()),
    )
    return torch.stack([torch.cat(rows[i]) for i in range(len(names))], dim=1)


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every convolution on the main path, in forward order (shortcut projections left out)."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and "downsample" not in n
    ]


def gradient_norms(model: nn.Module) -> list[tuple[str, float]]:
    """L2 norm of each main-path convolution's weight gradient (after a backward pass)."""
    out = []
    for n, m in conv_layers(model):
        g = m.weight.grad
        out.append((n, float(g.norm()) if g is not None else float("nan")))
    return out


def gradient_norms_at(model: nn.Module, x: Tensor, y: Tensor) -> list[tuple[str, float]]:
    """One forward/backward in training mode (batch statistics), then :func:`gradient_norms`."""
    was = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    res = gradient_norms(model)
    model.zero_grad(set_to_none=True)
    model.train(was)
    return res


@torch.no_grad()
def calibrate_bn(model: nn.Module, batches: Iterable[Tensor]) -> None:
    """Set BN running statistics to the exact averages over ``batches`` (for eval-mode analysis
    of an untrained network, whose running statistics are still the initial 0/1)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was = model.training
    model.train()
    for x in batches:
        model(x)
    model.train(was)
    for m, (mom, _) in zip(bns, saved):
        m.momentum = mom


def shattered_correlation(
    model: nn.Module, x0: Tensor, n_points: int = 128, radius: float = 1.0, seed: int = 0
) -> dict[str, float]:
    """Correlation of input gradients along a line through ``x0`` (one ``(C, H, W)`` input).

    The points are ``x0 + t * d`` for ``n_points`` values of ``t`` evenly spaced in
    ``[-radius, radius]`` along a random unit direction ``d`` scaled to the input's norm per pixel.
    The output differentiated is the logit of the class predicted at ``x0``. Returns the mean
    correlation between the gradients of neighbouring points (lag 1) and at lag 8, in eval mode.
    """
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(x0.shape, generator=g).to(x0.device)
    d = d / d.norm() * math.sqrt(x0.numel())  # unit variance per pixel
    t = torch.linspace(-radius, radius, n_points, device=x0.device)
    xs = (x0[None] + t[:, None, None, None] * d[None]).detach().requires_grad_(True)
    with torch.no_grad():
        cls = int(model(x0[None]).argmax(1))
    out = model(xs)[:, cls].sum()
    (grad,) = torch.autograd.grad(out, xs)
    model.train(was)
    gr = grad.flatten(1).double()
    gr = gr - gr.mean(1, keepdim=True)
    gr = gr / gr.norm(dim=1, keepdim=True).clamp_min(1e-30)

    def lag(k: int) -> float:
        return float((gr[:-k] * gr[k:]).sum(1).mean())

    return {"lag1": lag(1), "lag8": lag(min(8, n_points - 1))}
