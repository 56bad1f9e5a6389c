"""Which samples a run trains and validates on: an optional subset of the classes, the
stratified validation split, and an optional number of labelled training images per class.

Training and ``resnets eval --subset val`` both call :func:`select_samples` with the values
recorded in the run, so the held-out images are the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .pipeline import seed_for, stratified_split


@dataclass
class Selection:
    """Indices into the data set, labels remapped to the selected classes (-1: not used)."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    labels: np.ndarray
    classes: list[str]


def select_samples(
    labels: np.ndarray,
    all_classes: Sequence[str],
    *,
    val_split: float,
    seed: int,
    classes: Sequence[str] = (),
    per_class: int = 0,
) -> Selection:
    """Restrict to ``classes`` (names, in that order; empty: all), hold out ``val_split``
    stratified, then keep ``per_class`` training images of each class (a seeded subset; the
    images kept for a smaller count are among those kept for a larger one)."""
    labels = np.asarray(labels)
    if classes:
        unknown = [c for c in classes if c not in all_classes]
        if unknown:
            raise ConfigError(
                f"classes: {unknown} are not in the data (it has {list(all_classes)[:20]})"
            )
        if len(set(classes)) != len(classes):
            raise ConfigError(f"classes: {list(classes)} names a class twice")
        remap = np.full(len(all_classes), -1, dtype=np.int64)
        remap[[list(all_classes).index(c) for c in classes]] = np.arange(len(classes))
        new_labels = remap[labels]
        names = list(classes)
    else:
        new_labels, names = labels.astype(np.int64), list(all_classes)
    used = np.flatnonzero(new_labels >= 0)
    tr, va = stratified_split(new_labels[used], val_split, seed)
    train_idx, val_idx = used[tr], used[va]
    if per_class:
        g = torch.Generator().manual_seed(seed_for(seed, 0x9C1A55))
        keep = []
        for c in range(len(names)):
            idx = train_idx[new_labels[train_idx] == c]
            if len(idx) < per_class:
                raise ConfigError(
                    f"per_class={per_class}: class {names[c]!r} has only {len(idx)} training images"
                )
            keep.append(idx[torch.randperm(len(idx), generator=g).numpy()[:per_class]])
        train_idx = np.sort(np.concatenate(keep))
    counts = np.bincount(new_labels[train_idx], minlength=len(names))
    empty = [names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise ConfigError(
            f"classes without a single training image after the validation split: {empty[:10]} "
            f"({len(empty)} in all); use a smaller val_split or drop them with --classes"
        )
    return Selection(train_idx, val_idx, new_labels, names)
