"""The paper's numbers, in one place: every report reads them from here.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (2015), section 4.2 and
Table 6 for CIFAR-10, Table 3 for the shortcut options; He et al. 2016, "Identity Mappings in
Deep Residual Networks", Table 3 for pre-activation units.
"""

from __future__ import annotations

#: Section 4.2: 64k iterations of batch 128, learning rate 0.1 divided by 10 at 32k and 48k.
PAPER_ITERS = 64000
PAPER_MILESTONES = (32000, 48000)
#: Section 4.2, ResNet-110: lr 0.01 until the training error is below 80% (about 400 iterations).
PAPER_WARMUP_ERROR = 0.80
PAPER_WARMUP_ITERS = 400

#: Table 6: CIFAR-10 test error (%) and parameters.
PAPER_TABLE6 = {
    "resnet20": (8.75, "0.27M"),
    "resnet32": (7.51, "0.46M"),
    "resnet44": (7.17, "0.66M"),
    "resnet56": (6.97, "0.85M"),
    "resnet110": (6.43, "1.7M"),
    "resnet1202": (7.93, "19.4M"),
}
#: Table 6 reports ResNet-110 as "best (mean +- std)" over 5 runs: 6.43 (6.61 +- 0.16).
PAPER_RESNET110_MEAN_STD = (6.61, 0.16)

#: Table 3 (ImageNet val, 10-crop top-1 error %), the shortcut comparison on 34-layer nets.
PAPER_TABLE3 = {"plain34": 28.54, "resnet34 A": 25.03, "resnet34 B": 24.52, "resnet34 C": 24.19}

#: Identity Mappings (2016), Table 3: CIFAR-10 test error (%), original -> pre-activation unit.
PAPER_PREACT = {110: (6.61, 6.37), 164: (5.93, 5.46), 1001: (7.61, 4.92)}


def scaled_milestones(budget: float) -> list[float]:
    """The learning-rate milestones at ``budget`` of the schedule: always 50% and 75%."""
    return [max(1.0, m * budget) for m in PAPER_MILESTONES]


def budget_iters(budget: float) -> int:
    """Iterations at ``budget`` of the paper's 64k."""
    return max(1, round(PAPER_ITERS * budget))


#: Table 8: Faster R-CNN on COCO val (mAP %), VGG-16 against ResNet-101 as the backbone:
#: (mAP@.5, mAP@[.5, .95]). ResNet-101's mAP@[.5, .95] is 28% higher, the paper's "relative
#: improvement of 28%".
PAPER_COCO_DETECTION = {"VGG-16": (41.5, 21.2), "ResNet-101": (48.4, 27.2)}
