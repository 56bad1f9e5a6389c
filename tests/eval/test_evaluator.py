"""One evaluator interface for every task (issue 43, item 2): classification's top-1 and
detection's COCO mAP are both reset, fed batch by batch, and evaluated, as Detectron2's
``DatasetEvaluator``."""

from __future__ import annotations

import pytest
import torch

from resnets.eval.metrics import Evaluator, TopOneEvaluator


def _classification():
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(0, 5, (8,), generator=gen), torch.randn(8, 5, generator=gen))
        for _ in range(2)
    ]
    return TopOneEvaluator(5, torch.device("cpu")), batches, lambda r: (r.n, r.correct1, r.loss)


def _detection(tmp_path):
    pytest.importorskip("pycocotools")
    from resnets.detection.coco import read_coco
    from resnets.detection.metrics import CocoEvaluator
    from tests.detection.test_coco import _folder

    truth = read_coco(_folder(tmp_path))
    perfect = [
        {"boxes": img.boxes.clone(), "scores": torch.ones(len(img.boxes)), "labels": img.labels}
        for img in truth.images
    ]
    missed = {
        "boxes": torch.zeros(0, 4),
        "scores": torch.zeros(0),
        "labels": perfect[1]["labels"][:0],
    }
    batches = [([truth.images[0].id], [perfect[0]]), ([truth.images[1].id], [missed])]
    return CocoEvaluator(truth), batches, lambda r: (r[0].images, r[0].map, r[0].detections)


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_every_task_is_scored_through_one_evaluator_interface(task, tmp_path):
    evaluator, batches, numbers = (
        _classification() if task == "classification" else _detection(tmp_path)
    )
    assert isinstance(evaluator, Evaluator)
    for targets, outputs in batches:
        evaluator.process(targets, outputs)
    whole = numbers(evaluator.evaluate())
    evaluator.reset()  # a second pass starts from zero: the same batches, the same numbers
    for targets, outputs in batches:
        evaluator.process(targets, outputs)
    assert numbers(evaluator.evaluate()) == whole
    evaluator.reset()
    evaluator.process(*batches[0])  # one batch alone is another result
    assert numbers(evaluator.evaluate()) != whole
