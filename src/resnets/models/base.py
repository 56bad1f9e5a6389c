"""What every network of the package shares: a stem, named stages, a pooled head.

:class:`StagedNet` gives :class:`~resnets.models.ResNet` and
:class:`~resnets.models.fast.FastResNet` one interface, with timm's meanings:

* ``forward_features(x)``: the final feature map (after the last stage, before pooling);
* ``forward_head(x, pre_logits=False)``: pool and classify that map (``pre_logits``: the
  pooled vector);
* ``forward_intermediates(x, indices=None)``: ``(final map, [the maps at indices])``, where
  index 0 is the stem's output and 1..S the stages' (as ``feature_info``);
* ``stages()``, ``blocks()``, ``stage_names``, ``reset_classifier(num_classes)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError


class StagedNet(nn.Module):
    """Base class: subclasses set ``stage_names``, ``num_features`` and ``fc`` and implement
    :meth:`forward_stem`, :meth:`pool_features` and :meth:`classify`."""

    stage_names: list[str]
    num_features: int
    num_classes: int
    fc: nn.Module

    # -- what a subclass provides
    def forward_stem(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def pool_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def classify(self, pooled: Tensor) -> Tensor:
        return self.fc(pooled)

    def new_classifier(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    # -- shared
    def stages(self) -> list[nn.Module]:
        return [getattr(self, n) for n in self.stage_names]

    def blocks(self) -> list[nn.Module]:
        """Every residual (or plain) block, in order."""
        out: list[nn.Module] = []
        for s in self.stages():
            out.extend(list(s) if isinstance(s, nn.Sequential) else [s])
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        """The final feature map, before pooling (timm's meaning)."""
        x = self.forward_stem(x)
        for stage in self.stages():
            x = stage(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool the final map and classify it; ``pre_logits`` returns the pooled vector."""
        x = torch.flatten(self.pool_features(x), 1)
        return x if pre_logits else self.classify(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        *,
        intermediates_only: bool = False,
        stop_early: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The maps at ``indices`` (0 = stem, 1..S = stages; an int n: the last n; None: all),
        with the final map first unless ``intermediates_only``. ``stop_early`` skips the
        stages after the last index asked for (and then returns that stage's map as final)."""
        take = self._feature_indices(indices)
        maps = []
        x = self.forward_stem(x)
        if 0 in take:
            maps.append(x)
        last = max(take)
        for i, stage in enumerate(self.stages(), start=1):
            if stop_early and i > last:
                break
            x = stage(x)
            if i in take:
                maps.append(x)
        return maps if intermediates_only else (x, maps)

    def _feature_indices(self, indices: int | Sequence[int] | None) -> list[int]:
        n = len(self.stage_names) + 1
        if indices is None:
            return list(range(n))
        if isinstance(indices, int):
            if not 1 <= indices <= n:
                raise ConfigError(f"indices={indices}: between 1 and {n} (the last n maps)")
            return list(range(n - indices, n))
        out = sorted({int(i) + n if int(i) < 0 else int(i) for i in indices})
        if not out or out[0] < 0 or out[-1] >= n:
            raise ConfigError(
                f"indices {list(indices)}: each in 0..{n - 1} (0 = stem, 1..{n - 1} = stages)"
            )
        return out

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer, e.g. for transfer learning to ``num_classes`` classes."""
        self.num_classes = num_classes
        self.fc = self.new_classifier(num_classes)
