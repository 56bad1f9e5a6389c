"""What every network of the package shares: a stem, named stages, a pooled head.

:class:`StagedNet` gives :class:`~resnets.models.ResNet` and
:class:`~resnets.models.fast.FastResNet` one interface, with timm's meanings:

* ``forward_features(x)``: the final feature map (after the last stage, before pooling);
* ``forward_head(x, pre_logits=False)``: pool and classify that map (``pre_logits``: the
  pooled vector);
* ``forward_intermediates(x, indices=None)``: ``(final map, [the maps at indices])``, where
  index 0 is the stem's output and 1..S the stages' (as ``feature_info``);
* ``stages()``, ``blocks()``, ``stage_names``, ``reset_classifier(num_classes)``;
* ``feature_info``: channels and reduction (stride) of each of those maps, timm-style, and
  ``set_features_only(out_indices)``: ``forward`` then returns the list of those maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError


@dataclass(frozen=True)
class FeatureInfo:
    """Channels, reduction (input side / map side) and module of each feature map, as timm's
    ``model.feature_info``: ``.channels()``, ``.reduction()``, ``.module_name()``."""

    info: tuple[dict[str, Any], ...]

    def channels(self) -> list[int]:
        return [d["num_chs"] for d in self.info]

    def reduction(self) -> list[int]:
        return [d["reduction"] for d in self.info]

    def module_name(self) -> list[str]:
        return [d["module"] for d in self.info]

    def __len__(self) -> int:
        return len(self.info)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.info[i]


class StagedNet(nn.Module):
    """Base class: subclasses set ``stage_names``, ``num_features`` and the classifier (``fc``,
    or the attribute ``head_name`` names) and implement
    :meth:`forward_stem`, :meth:`pool_features` and :meth:`classify`."""

    stage_names: list[str]
    num_features: int
    num_classes: int

    # -- what a subclass provides
    def forward_stem(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def pool_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_final(self, x: Tensor) -> Tensor:
        """Applied to the last stage's map: identity, or the final BN-ReLU of pre-activation
        nets (part of the final map, as in timm)."""
        return x

    head_name = "fc"  # the classifier's attribute (DenseNet keeps torchvision's "classifier")

    def classify(self, pooled: Tensor) -> Tensor:
        return getattr(self, self.head_name)(pooled)

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
        return self.forward_final(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool the final map and classify it; ``pre_logits`` returns the pooled vector."""
        x = torch.flatten(self.pool_features(x), 1)
        return x if pre_logits else self.classify(x)

    out_indices: tuple[int, ...] | None = None  # set: a backbone returning these maps

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if self.out_indices is not None:
            return self.forward_intermediates(
                x, self.out_indices, intermediates_only=True, stop_early=True
            )
        return self.forward_head(self.forward_features(x))

    @property
    def feature_info(self) -> FeatureInfo:
        """The maps ``forward_intermediates`` can return (all of them; only ``out_indices``
        for a features-only model), measured once on a 64x64 probe."""
        cache = self.__dict__.get("_feature_info_all")
        if cache is None:
            p = next(self.parameters())
            probe = torch.zeros(1, self.in_chans, 64, 64, device=p.device, dtype=p.dtype)
            was = self.training
            self.eval()
            with torch.no_grad():
                maps = self.forward_intermediates(probe, intermediates_only=True)
            self.train(was)
            names = ["stem", *self.stage_names]
            cache = tuple(
                {"num_chs": int(m.shape[1]), "reduction": round(64 / m.shape[-1]), "module": n}
                for m, n in zip(maps, names)
            )
            self.__dict__["_feature_info_all"] = cache
        keep = self.out_indices
        return FeatureInfo(cache if keep is None else tuple(cache[i] for i in keep))

    def set_features_only(self, out_indices: Sequence[int] | None = None) -> None:
        """Make this a backbone: ``forward`` returns the maps at ``out_indices`` (default:
        every stage, 1..S), and the classifier is dropped."""
        n = len(self.stage_names)
        self.out_indices = tuple(self._feature_indices(out_indices or range(1, n + 1)))
        self.reset_classifier(0)

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
        stages = self.stages()
        for i, stage in enumerate(stages, start=1):
            if stop_early and i > last:
                break
            x = stage(x)
            if i == len(stages):
                x = self.forward_final(x)
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
        setattr(self, self.head_name, self.new_classifier(num_classes))


def check_input_and_classes(in_chans: object, num_classes: object) -> None:
    """The constructor checks every family shares: ``in_chans`` a positive integer and
    ``num_classes`` a non-negative one (0: no classifier, a backbone)."""
    if not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1:
        raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise ConfigError(f"num_classes must be a non-negative integer, got {num_classes!r}")
