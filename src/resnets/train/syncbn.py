"""BatchNorm with statistics over the global batch of a ``torchrun`` job, on any backend.

PyTorch's ``SyncBatchNorm`` runs on CUDA only; this one reduces the per-channel sums with a
differentiable all-reduce, so it works over gloo on CPUs too (and its backward pass reduces the
gradients of those sums, which is what makes it exact). Used for ``sync_bn=true`` on the CPU.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics (and running estimates) are those of the
    batches of every process together; the same parameters, buffers and state_dict keys."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        xf = x.double()  # sums of many values: float64 keeps E[x^2] - E[x]^2 accurate
        count = torch.full((1,), x.numel() / c, dtype=torch.float64, device=x.device)
        stats = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count])
        stats = dist_fn.all_reduce(stats)  # sums over every process; gradients flow back
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(m * mean.to(self.running_mean.dtype))
            unbiased = var * n / (n - 1).clamp_min(1)
            self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
        shape = (1, c, 1, 1)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.double().view(shape) + self.bias.double().view(shape)
        return y.to(x.dtype)


def convert_global_bn(module: nn.Module) -> nn.Module:
    """Every ``BatchNorm2d`` of ``module`` replaced by a :class:`GlobalBatchNorm2d` that keeps
    its parameters (the same objects, so an optimizer built before still updates them) and
    buffers."""
    if type(module) is nn.BatchNorm2d:
        new = GlobalBatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_global_bn(child))
    return module
