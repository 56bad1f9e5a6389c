"""Scoring a data set and predicting single images with a trained model."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.folder import scan_folder
from ..data.images import decode_image
from ..data.imageset import ImageSet
from ..data.load import data_fingerprints, load_dataset, parse_spec
from ..data.select import select_samples
from ..data.stream import is_shard_dir
from ..errors import DataError, WeightsError
from ..inference import LoadedModel
from ..inference.views import TestTime
from .metrics import EvalResult, Scoring, evaluate


def map_classes(
    data_classes: list[str], classes: list[str], label: str, ids: list[str] | None = None
) -> np.ndarray:
    """Model class index of each data class, matched by name (or by the model's class IDs,
    such as ImageNet's WordNet IDs, when the data's folders are named by them).

    A data set may hold all of the model's classes or some of them, in any folder order (a test
    folder without one class is still scored); a class the model does not know is an error.
    """
    if ids and set(data_classes) <= set(ids):
        classes = list(ids)
    if list(data_classes) == list(classes):
        return np.arange(len(classes))
    unknown = [c for c in data_classes if c not in classes]
    if unknown:
        missing = [c for c in classes if c not in data_classes]
        parts = [f"in the data only: {unknown[:10]}"]
        if missing:
            parts.append(f"in the model only: {missing[:10]}")
        raise DataError(
            f"{label}: class lists differ between the model and the data ({'; '.join(parts)})"
        )
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[c] for c in data_classes], dtype=np.int64)


def recorded_split(split: dict[str, Any], labels: np.ndarray, classes: list[str]) -> Any:
    """The training / held-out split a weights record describes, recomputed on these labels
    (every image's, in the data's order) and class names."""
    return select_samples(
        labels,
        classes,
        val_split=split["val_split"],
        seed=split["seed"],
        classes=split.get("classes", []),
        per_class=split.get("per_class", 0),
    )


def trained_on(
    lm: LoadedModel,
    data: ImageSet,
    data_spec: str,
    split: str,
    *,
    decoded_size: int,
    skip_bad: bool = False,
) -> bool:
    """Whether ``data`` (loaded from ``data_spec`` at ``decoded_size``) holds the images ``lm``
    was trained on.

    The weights record the fingerprint of their training images at the training size; data
    loaded at another size (multi-scale testing) is checked by the fingerprints the same files
    have at the training size, found without decoding them again.
    """
    recorded = lm.meta.data_fingerprint
    if not recorded:
        return False
    if decoded_size == lm.image_size:
        return data.is_data(recorded)
    at_training_size = data_fingerprints(
        data_spec, split, image_size=lm.image_size, skip_bad=skip_bad
    )
    return recorded in at_training_size


@dataclass(frozen=True)
class ScoringSelection:
    """The images a model is scored on: the decoded set, every image's label in the model's
    class order, the indices scored, and the side the images were decoded at."""

    data: ImageSet
    labels: np.ndarray
    indices: np.ndarray
    decoded_size: int


def scoring_selection(
    lm: LoadedModel,
    data_spec: str,
    *,
    subset: str = "all",
    scales: Sequence[int] = (),
    skip_bad: bool = False,
    progress: bool = False,
) -> ScoringSelection:
    """The images a model is scored on for ``subset`` (all, or the val/train split recorded
    with the weights), checked against the model's classes."""
    kind, _ = parse_spec(data_spec)
    split = "test" if kind in ("cifar10", "cifar100") and subset == "all" else "train"
    if kind == "folder" and subset == "all" and not is_shard_dir(data_spec):
        # the class names first (folder names, no decoding): a mismatch costs nothing
        names, _ = scan_folder(Path(data_spec).expanduser().resolve())
        map_classes(names, lm.classes, data_spec, lm.meta.class_ids)
    # multi-scale testing resizes from the largest scale down: decode at that size
    size = max(max(scales), lm.image_size) if scales else lm.image_size
    rows = None
    if subset in ("val", "train") and lm.meta.split:
        # a folder not decoded yet decodes only the split's images (CIFAR-10's 5,000 held out
        # of 50,000), chosen from the files' labels as the split below chooses them

        def rows(labels: np.ndarray, classes: list[str]) -> np.ndarray:
            sel = recorded_split(lm.meta.split, labels, classes)
            return sel.val_idx if subset == "val" else sel.train_idx

    data = load_dataset(
        data_spec, split, image_size=size, skip_bad=skip_bad, progress=progress, rows=rows
    )
    if data.channels != lm.in_chans:
        raise DataError(
            f"{data_spec}: images have {data.channels} channels, the model expects {lm.in_chans}"
        )
    if subset == "all":
        labels = map_classes(data.classes, lm.classes, data_spec, lm.meta.class_ids)[data.labels]
        idx = np.arange(len(data))
        if lm.meta.split and trained_on(
            lm, data, data_spec, split, decoded_size=size, skip_bad=skip_bad
        ):
            warnings.warn(
                f"{data_spec} is the data these weights were trained on: 'all' scores its "
                "training images too; --subset val scores the held-out ones",
                stacklevel=2,
            )
    else:
        sp = lm.meta.split
        if not sp:
            raise WeightsError(
                "--subset val/train needs weights trained by resnets (they record the split)"
            )
        if lm.meta.data_fingerprint and not trained_on(
            lm, data, data_spec, split, decoded_size=size, skip_bad=skip_bad
        ):
            raise DataError(
                f"{data_spec}: not the data these weights were trained on, so its held-out split is unknown"
            )
        sel = recorded_split(sp, data.labels, data.classes)
        if sel.classes != lm.classes:
            raise DataError(
                f"{data_spec}: its classes are not the ones these weights were trained on"
            )
        labels, idx = sel.labels, (sel.val_idx if subset == "val" else sel.train_idx)
    if len(idx) == 0:
        raise DataError(f"{data_spec}: no images to score (subset {subset})")
    return ScoringSelection(data, labels, idx, size)


def score(
    lm: LoadedModel,
    data_spec: str,
    *,
    subset: str = "all",
    test: TestTime = TestTime(),
    run: Scoring = Scoring(),
    skip_bad: bool = False,
) -> tuple[EvalResult, ScoringSelection]:
    """Evaluate a loaded model on a data spec, shown its weights' own test views; returns the
    result and the images scored (so a second test on the same images, the corruptions, need
    not decode them again).

    ``subset``: ``all`` (every image; for CIFAR the official test split), or ``val``/``train``:
    the split held out during training, recomputed from the seed stored with the weights (the
    data must be the one trained on). ``test``: the test-time choices; its ``tta="auto"`` and
    ``temperature=None`` are what the weights' record says.
    """
    test = test.for_record(lm.meta.tta, lm.meta.temperature)
    selection = scoring_selection(
        lm, data_spec, subset=subset, scales=test.scales, skip_bad=skip_bad, progress=run.progress
    )
    res = evaluate(
        lm.model,
        selection.data.images,
        selection.labels,
        selection.indices,
        views=lm.views,
        num_classes=len(lm.classes),
        test=test,
        run=run,
    )
    if res.nonfinite:  # checked where the scores are made: no metric, no temperature from them
        raise WeightsError(
            f"{lm.source or 'the model'}: non-finite scores (NaN or inf) on {res.nonfinite:,} "
            f"of {res.n:,} images of {data_spec}: its weights or its inputs are broken"
        )
    return res, selection


def batch_inputs(lm: LoadedModel, images: np.ndarray, label: str) -> torch.Tensor:
    """Decoded ``(N, H, W, C)`` uint8 images of a data set -> the normalised, centre-cropped
    ``(N, C, h, w)`` batch the model takes (``label`` names the data in a channel mismatch)."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images)))
    return lm.views.centre(x, label).contiguous()


def preprocess(lm: LoadedModel, path: str | Path) -> torch.Tensor:
    """One image file -> the normalised ``(1, C, H, W)`` tensor the model was trained on."""
    return lm.views.image(decode_image(path), str(path))[1]


def top_classes(lm: LoadedModel, logits: torch.Tensor, topk: int = 5) -> list[dict[str, Any]]:
    """``[{"class", "index", "prob"}, ...]``, the ``topk`` most probable classes of one row,
    with the weights' calibrated temperature applied (the order, so the class, is unchanged)."""
    probs = (logits.float() / (lm.meta.temperature or 1.0)).softmax(-1).reshape(-1)
    vals, idx = probs.topk(min(topk, probs.numel()))
    return [
        {"class": lm.classes[i], "index": int(i), "prob": float(v)}
        for v, i in zip(vals.tolist(), idx.tolist())
    ]


@torch.no_grad()
def predict(lm: LoadedModel, paths: list[str], topk: int = 5) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image."""
    out = []
    dev = getattr(lm.model, "device", None) or next(lm.model.parameters()).device
    for p in paths:
        logits = lm.model(preprocess(lm, p).to(dev))[0]
        out.append({"image": str(p), "top": top_classes(lm, logits, topk)})
    return out
