"""COCO's detection scores, computed by pycocotools (the reference implementation the field
reports with): mAP over IoU 0.50:0.05:0.95, mAP at 0.50 and 0.75, and mAP by object size
(small: area < 32^2 pixels, medium: < 96^2, large: above), 100 detections per image."""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass

import torch

from ..errors import ConfigError
from ..io import progress_bar
from .coco import CocoSet, collate


@dataclass
class DetectionScores:
    """COCOeval's first six numbers, as fractions (-1: no object of that size in the set)."""

    map: float  # mAP@[.5:.95], COCO's primary metric
    map_50: float
    map_75: float
    map_small: float
    map_medium: float
    map_large: float
    images: int
    detections: int

    def to_dict(self) -> dict:
        return asdict(self)


def coco_scores(
    truth: CocoSet, detections: list[dict[str, torch.Tensor]], image_ids: list[int] | None = None
) -> DetectionScores:
    """Score ``detections`` against ``truth``. ``detections[i]`` holds the ``boxes`` (x1, y1, x2,
    y2), ``scores`` and ``labels`` (1..K) predicted for image ``image_ids[i]`` (default: every
    image of ``truth`` in order)."""
    evaluator, ids, found = _evaluated(truth, detections, image_ids)
    if evaluator is None:  # nothing found scores 0
        return DetectionScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, len(ids), 0)
    stats = [float(v) for v in evaluator.stats[:6]]
    return DetectionScores(*stats, images=len(ids), detections=found)


def coco_per_class(
    truth: CocoSet, detections: list[dict[str, torch.Tensor]], image_ids: list[int] | None = None
) -> dict[str, float]:
    """Each category's AP@[.5:.95] (COCO's, all sizes, 100 detections per image), by name;
    a category without a true box in the images is left out (COCO marks it -1)."""
    evaluator, _, _ = _evaluated(truth, detections, image_ids)
    if evaluator is None:
        return dict.fromkeys(truth.category_names, 0.0)
    precision = evaluator.eval["precision"]  # (IoU thresholds, recalls, classes, areas, max dets)
    out = {}
    for k, name in enumerate(truth.category_names):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        if values.size:
            out[name] = float(values.mean())
    return out


def _evaluated(truth: CocoSet, detections: list[dict[str, torch.Tensor]], image_ids):
    """pycocotools' COCOeval run over ``detections`` (None when there is none), the image ids
    and the number of detections."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ConfigError("COCO mAP needs pycocotools: pip install 'resnets[detect]'") from None
    ids = image_ids if image_ids is not None else [rec.id for rec in truth.images]
    if len(ids) != len(detections):
        raise ValueError(f"{len(detections)} detection sets for {len(ids)} images")
    results = []
    for image_id, det in zip(ids, detections):
        boxes = det["boxes"].detach().cpu().double()
        for (x1, y1, x2, y2), score, label in zip(
            boxes.tolist(), det["scores"].tolist(), det["labels"].tolist()
        ):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": truth.category_ids[int(label) - 1],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    if not results:  # pycocotools cannot load an empty result list
        return None, ids, 0
    dataset = {
        "images": truth.dataset["images"],
        # ids renumbered 1..N for scoring: pycocotools takes an annotation id of 0 for "no
        # match", so a set numbered from 0 (common in converted sets) would lose one true box
        # (read_coco has refused duplicates, so the renumbering keeps every annotation apart)
        "annotations": [
            {
                **ann,
                "id": n + 1,
                "area": ann.get("area", ann["bbox"][2] * ann["bbox"][3]),
                "iscrowd": ann.get("iscrowd", 0),
            }
            for n, ann in enumerate(truth.dataset["annotations"])
        ],
        "categories": truth.dataset["categories"],
    }
    quiet = io.StringIO()  # pycocotools prints its progress and its table
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.params.imgIds = [int(i) for i in ids]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator, ids, len(results)


class CocoEvaluator:
    """Detection's evaluator, with the interface of classification's
    (:class:`resnets.eval.metrics.Evaluator`: reset, process, evaluate): the detections of
    each batch are gathered, then scored against ``truth`` with COCO mAP (:func:`coco_scores`).
    Its result is the scores and the detections, in the order processed."""

    def __init__(self, truth: CocoSet) -> None:
        self.truth = truth
        self.reset()

    def reset(self) -> None:
        """Forget every batch processed: the next pass starts from zero."""
        self.image_ids: list[int] = []
        self.detections: list[dict[str, torch.Tensor]] = []

    def process(self, targets: list[int], outputs: list[dict[str, torch.Tensor]]) -> None:
        """One batch: ``targets`` its images' COCO ids, ``outputs`` the model's detections."""
        if len(targets) != len(outputs):
            raise ValueError(f"{len(outputs)} detection sets for {len(targets)} images")
        self.image_ids += [int(i) for i in targets]
        self.detections += list(outputs)

    def evaluate(self) -> tuple[DetectionScores, list[dict[str, torch.Tensor]]]:
        """COCO mAP over every image processed, and their detections."""
        return coco_scores(self.truth, self.detections, self.image_ids), self.detections


@torch.no_grad()
def evaluate_detector(model, data: CocoSet, batch_size: int = 8, progress: bool = False):
    """COCO mAP of ``model`` on every image of ``data``, and the detections."""
    model.eval()
    evaluator = CocoEvaluator(data)  # the evaluator interface classification's scoring has
    bar = progress_bar(
        total=len(data.images), desc="detect", unit="img", leave=False, disable=not progress
    )
    for start in range(0, len(data.images), batch_size):
        idx = list(range(start, min(start + batch_size, len(data.images))))
        images, _ = collate(data, idx)
        evaluator.process([data.images[i].id for i in idx], model(images))
        bar.update(len(idx))
    bar.close()
    return evaluator.evaluate()
