"""Faster R-CNN with a feature pyramid on any resnets backbone (Ren et al. 2015; Lin et al. 2017).

The paper's detection results (section 4.3, appendix A) replace VGG-16 by ResNet-101 in
Faster R-CNN. This is that detector with torchvision's conventions and defaults, so its users
recognise it: ``model(images, targets)`` returns the four losses in training and, in eval
mode, one dict per image with ``boxes`` (x1, y1, x2, y2), ``scores`` and ``labels`` (1..K).
The pyramid takes the backbone's stages (``features_only``), adds one level by max-pooling the
last (``pool``), and feeds a region proposal network (RPN) and a RoIAlign box head. Only the
sizes are scaled to the small images a CPU can train on (``DetectorConfig``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, WeightsError
from .box_ops import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    roi_align,
)
from .detector_config import DETECTOR_FIELDS, DetectorConfig
from .factory import create_model
from .record import IMAGENET_MEAN, IMAGENET_STD, WeightsMeta
from .weights import load_state_dict_checked, stored_dtype_of

RPN_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # Fast R-CNN's box coder (torchvision's default)


class DetectorTransform(nn.Module):
    """What torchvision's ``GeneralizedRCNNTransform`` does before the backbone, less the
    resizing: images in [0, 1] (a list of ``(3, H, W)`` tensors of any sizes, or one
    ``(N, 3, H, W)`` batch) become one batch, padded with black on the right and bottom (box
    coordinates stay as they are) and then normalised. Inside the detector, so that a weights
    file works alone; the statistics are not in the state_dict (the record holds them)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor | list[Tensor]) -> Tensor:
        if isinstance(images, (list, tuple)):
            if not images or any(im.dim() != 3 or im.shape[0] != 3 for im in images):
                raise ValueError("a detector takes (3, H, W) images in [0, 1]")
            h = max(im.shape[1] for im in images)
            w = max(im.shape[2] for im in images)
            batch = images[0].new_zeros(len(images), 3, h, w)
            for k, im in enumerate(images):
                batch[k, :, : im.shape[1], : im.shape[2]] = im
            images = batch
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"a detector takes (N, 3, H, W) images, not {tuple(images.shape)}")
        return (images - self.mean) / self.std


class FeaturePyramid(nn.Module):
    """FPN (Lin et al. 2017): a 1x1 lateral convolution per stage, the coarser level upsampled
    (nearest) and added, a 3x3 convolution on each sum; plus ``pool``, the last level
    subsampled by 2 (torchvision's ``LastLevelMaxPool``)."""

    def __init__(self, in_channels: list[int], channels: int) -> None:
        super().__init__()
        self.inner = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.layer = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, maps: list[Tensor]) -> list[Tensor]:
        last = self.inner[-1](maps[-1])
        out = [self.layer[-1](last)]
        for i in range(len(maps) - 2, -1, -1):
            lateral = self.inner[i](maps[i])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            out.insert(0, self.layer[i](last))
        out.append(F.max_pool2d(out[-1], 1, 2))
        return out


def _anchors(
    sizes: list[tuple[int, int]], strides: list[int], cfg: DetectorConfig, device
) -> list[Tensor]:
    """Anchors of every level, ``(H * W * A, 4)``, ordered position-major as the heads'
    outputs are flattened: one square of side ``anchor_scale x stride`` per ratio, centred on
    each position's top-left corner (torchvision's convention)."""
    out = []
    ratios = torch.tensor(cfg.aspect_ratios, device=device)
    for (h, w), stride in zip(sizes, strides):
        side = cfg.anchor_scale * stride
        hr = torch.sqrt(ratios)
        ws, hs = side / hr, side * hr
        base = torch.stack((-ws, -hs, ws, hs), dim=1) / 2  # (A, 4)
        ys = torch.arange(h, device=device, dtype=torch.float32) * stride
        xs = torch.arange(w, device=device, dtype=torch.float32) * stride
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack((x, y, x, y), dim=-1).reshape(-1, 1, 4)
        out.append((shifts + base[None]).reshape(-1, 4).round())
    return out


def _match(iou: Tensor, fg: float, bg: float, low_quality: bool) -> Tensor:
    """For each column (anchor or proposal), the row (ground-truth box) it is assigned to, -1
    for background (best IoU < ``bg``) and -2 to ignore (between ``bg`` and ``fg``). With
    ``low_quality``, each ground truth also keeps the columns of its highest IoU, so no object
    goes without a positive (Faster R-CNN's rule)."""
    best, rows = iou.max(dim=0)
    matched = rows.clone()
    matched[best < fg] = -2
    matched[best < bg] = -1
    if low_quality:
        highest = iou.max(dim=1, keepdim=True).values
        cols = ((iou == highest) & (highest > 0)).nonzero()[:, 1]
        matched[cols] = rows[cols]
    return matched


def _sample(matched: Tensor, batch: int, fraction: float, generator=None) -> tuple[Tensor, Tensor]:
    """Random positives (up to ``fraction`` of ``batch``) and negatives to fill it."""
    pos = (matched >= 0).nonzero().flatten()
    neg = (matched == -1).nonzero().flatten()
    n_pos = min(len(pos), int(batch * fraction))
    n_neg = min(len(neg), batch - n_pos)
    pos = pos[torch.randperm(len(pos), generator=generator, device=pos.device)[:n_pos]]
    neg = neg[torch.randperm(len(neg), generator=generator, device=neg.device)[:n_neg]]
    return pos, neg


class FasterRCNN(nn.Module):
    """Faster R-CNN + FPN on a resnets backbone (see the module's docstring)."""

    def __init__(self, cfg: DetectorConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_chans = 3
        self.transform = DetectorTransform(cfg.image_mean, cfg.image_std)
        self.backbone = backbone or create_model(cfg.backbone, features_only=True)
        info = self.backbone.feature_info
        self.strides = [int(r) for r in info.reduction()] + [int(info.reduction()[-1]) * 2]
        self.fpn = FeaturePyramid(list(info.channels()), cfg.fpn_channels)
        a = len(cfg.aspect_ratios)
        c = cfg.fpn_channels
        self.rpn_conv = nn.Conv2d(c, c, 3, padding=1)
        self.rpn_cls = nn.Conv2d(c, a, 1)
        self.rpn_box = nn.Conv2d(c, 4 * a, 1)
        for m in (self.rpn_conv, self.rpn_cls, self.rpn_box):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
        width = cfg.box_head_width
        self.box_head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * cfg.roi_size**2, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
        )
        self.cls_score = nn.Linear(width, cfg.num_classes)
        self.bbox_pred = nn.Linear(width, 4 * cfg.num_classes)

    # -- the forward pass ----------------------------------------------------------------------
    def forward(
        self, images: Tensor | list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """``images``: in [0, 1], a list of ``(3, H, W)`` tensors or an ``(N, 3, H, W)`` batch
        (padded and normalised here, :class:`DetectorTransform`). In training, ``targets`` (one
        dict of ``boxes`` and ``labels`` per image) gives the losses; in eval mode, detections."""
        if self.training and targets is None:
            raise ValueError("training needs targets (boxes and labels per image)")
        images = self.transform(images)
        size = images.shape[-2:]
        maps = self.fpn(self.backbone(images))
        anchors = _anchors([m.shape[-2:] for m in maps], self.strides, self.cfg, images.device)
        objectness, deltas = [], []
        for m in maps:  # the RPN head, shared by every level
            t = F.relu(self.rpn_conv(m))
            objectness.append(self.rpn_cls(t).permute(0, 2, 3, 1).flatten(1))
            deltas.append(self.rpn_box(t).permute(0, 2, 3, 1).reshape(len(m), -1, 4))
        proposals = self._proposals(anchors, objectness, deltas, size)
        losses: dict[str, Tensor] = {}
        if self.training:
            losses.update(self._rpn_losses(anchors, objectness, deltas, targets))
            proposals, labels, box_targets = self._roi_targets(proposals, targets)
        features = self._pool(maps, proposals)
        hidden = self.box_head(features)
        class_logits, box_deltas = self.cls_score(hidden), self.bbox_pred(hidden)
        if self.training:
            losses.update(self._box_losses(class_logits, box_deltas, labels, box_targets))
            return losses
        return self._detections(class_logits, box_deltas, proposals, size)

    # -- region proposals ----------------------------------------------------------------------
    @torch.no_grad()
    def _proposals(self, anchors, objectness, deltas, size) -> list[Tensor]:
        """Per image: the top-scoring anchors of each level, decoded, clipped and de-duplicated
        by NMS across levels (each level apart, as torchvision does)."""
        cfg = self.cfg
        post = cfg.rpn_post_nms_train if self.training else cfg.rpn_post_nms_test
        out = []
        for i in range(objectness[0].shape[0]):
            boxes, scores, levels = [], [], []
            for level, (anc, obj, dlt) in enumerate(zip(anchors, objectness, deltas)):
                top = obj[i].detach().topk(min(cfg.rpn_pre_nms, obj.shape[1])).indices
                decoded = decode_boxes(dlt[i, top].detach(), anc[top], RPN_WEIGHTS)
                boxes.append(clip_boxes(decoded, int(size[0]), int(size[1])))
                scores.append(obj[i, top].detach())
                levels.append(torch.full_like(top, level))
            boxes_i, scores_i, levels_i = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
            keep = ((boxes_i[:, 2] - boxes_i[:, 0]) >= cfg.min_size) & (
                (boxes_i[:, 3] - boxes_i[:, 1]) >= cfg.min_size
            )
            boxes_i, scores_i, levels_i = boxes_i[keep], scores_i[keep], levels_i[keep]
            kept = batched_nms(boxes_i, scores_i, levels_i, cfg.rpn_nms, limit=post)
            out.append(boxes_i[kept])
        return out

    def _rpn_losses(self, anchors, objectness, deltas, targets) -> dict[str, Tensor]:
        """Binary cross-entropy on sampled anchors and smooth-L1 on the positives' deltas."""
        cfg = self.cfg
        all_anchors = torch.cat(anchors)
        obj = torch.cat(objectness, dim=1)
        dlt = torch.cat(deltas, dim=1)
        cls_losses, box_losses, count = [], [], 0
        for i, target in enumerate(targets):
            gt = target["boxes"]
            if len(gt) == 0:
                matched = torch.full((len(all_anchors),), -1, device=obj.device)
            else:
                iou = box_iou(gt, all_anchors)
                matched = _match(iou, cfg.rpn_fg_iou, cfg.rpn_bg_iou, low_quality=True)
            pos, neg = _sample(matched, cfg.rpn_batch, cfg.rpn_positive_fraction)
            picked = torch.cat((pos, neg))
            truth = torch.cat((torch.ones(len(pos)), torch.zeros(len(neg)))).to(obj)
            cls_losses.append(
                F.binary_cross_entropy_with_logits(obj[i, picked], truth, reduction="sum")
            )
            if len(pos):
                goal = encode_boxes(gt[matched[pos]], all_anchors[pos], RPN_WEIGHTS)
                box_losses.append(F.smooth_l1_loss(dlt[i, pos], goal, beta=1 / 9, reduction="sum"))
            count += len(picked)
        count = max(count, 1)
        box = torch.stack(box_losses).sum() if box_losses else dlt.sum() * 0
        return {
            "loss_objectness": torch.stack(cls_losses).sum() / count,
            "loss_rpn_box": box / count,
        }

    # -- the box head --------------------------------------------------------------------------
    @torch.no_grad()
    def _roi_targets(self, proposals, targets):
        """The sampled proposals of each image (its ground truth added, as Fast R-CNN trains),
        their class (0: background) and their box deltas."""
        cfg = self.cfg
        sampled, labels, goals = [], [], []
        for props, target in zip(proposals, targets):
            gt, gt_labels = target["boxes"], target["labels"]
            props = torch.cat((props, gt))
            if len(gt) == 0:
                matched = torch.full((len(props),), -1, device=props.device)
            else:
                matched = _match(box_iou(gt, props), cfg.box_fg_iou, cfg.box_fg_iou, False)
            pos, neg = _sample(matched, cfg.box_batch, cfg.box_positive_fraction)
            picked = torch.cat((pos, neg))
            cls = torch.zeros(len(picked), dtype=torch.int64, device=props.device)
            cls[: len(pos)] = gt_labels[matched[pos]]
            goal = torch.zeros(len(picked), 4, device=props.device)
            if len(pos):
                goal[: len(pos)] = encode_boxes(gt[matched[pos]], props[pos], BOX_WEIGHTS)
            sampled.append(props[picked])
            labels.append(cls)
            goals.append(goal)
        return sampled, torch.cat(labels), torch.cat(goals)

    def _pool(self, maps, proposals) -> Tensor:
        """RoIAlign each proposal on its pyramid level: level 4 for a 224-pixel box, one level
        per factor of 2 (FPN's eq. 1), within the levels the pyramid has (``pool`` excluded)."""
        levels = maps[:-1]
        rois = torch.cat(
            [
                torch.cat((torch.full((len(p), 1), float(i)).to(p), p), 1)
                for i, p in enumerate(proposals)
            ]
        )
        # in the features' dtype (bfloat16 under autocast), whatever the boxes' precision
        size = (len(rois), maps[0].shape[1], self.cfg.roi_size, self.cfg.roi_size)
        out = rois.new_zeros(size, dtype=maps[0].dtype)
        if len(rois) == 0:
            return out
        k_min = int(math.log2(self.strides[0]))
        k_max = k_min + len(levels) - 1
        scale = torch.sqrt(box_area(rois[:, 1:]).clamp(min=0))
        k = torch.floor(4 + torch.log2(scale / 224 + 1e-6)).clamp(k_min, k_max).long() - k_min
        for level, feature in enumerate(levels):
            pick = (k == level).nonzero().flatten()
            if pick.numel():
                out[pick] = roi_align(
                    feature, rois[pick], (self.cfg.roi_size,) * 2, 1 / self.strides[level], 2
                ).to(out.dtype)
        return out

    def _box_losses(self, logits, deltas, labels, goals) -> dict[str, Tensor]:
        """Cross-entropy over the classes and smooth-L1 on the true class's deltas, averaged
        over every sampled proposal (torchvision's ``fastrcnn_loss``)."""
        pos = (labels > 0).nonzero().flatten()
        per_class = deltas.reshape(len(deltas), -1, 4)
        box = F.smooth_l1_loss(per_class[pos, labels[pos]], goals[pos], beta=1 / 9, reduction="sum")
        return {
            "loss_classifier": F.cross_entropy(logits, labels),
            "loss_box_reg": box / max(len(labels), 1),
        }

    @torch.no_grad()
    def _detections(self, logits, deltas, proposals, size) -> list[dict[str, Tensor]]:
        """Per image: every class's decoded box for each proposal, kept above the score
        threshold, NMS within each class, the best ``detections_per_image``."""
        cfg = self.cfg
        counts = [len(p) for p in proposals]
        out = []
        for props, lg, dl in zip(proposals, logits.split(counts), deltas.split(counts)):
            scores = F.softmax(lg, dim=1)[:, 1:]
            boxes = decode_boxes(dl, props, BOX_WEIGHTS).reshape(len(props), -1, 4)[:, 1:]
            boxes = clip_boxes(boxes, int(size[0]), int(size[1]))
            labels = torch.arange(1, cfg.num_classes, device=lg.device).expand_as(scores)
            boxes, scores, labels = boxes.reshape(-1, 4), scores.flatten(), labels.flatten()
            keep = scores > cfg.score_threshold
            wide = (boxes[:, 2] - boxes[:, 0] >= cfg.min_size) & (
                boxes[:, 3] - boxes[:, 1] >= cfg.min_size
            )
            keep &= wide
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            kept = batched_nms(boxes, scores, labels, cfg.box_nms, limit=cfg.detections_per_image)
            out.append({"boxes": boxes[kept], "scores": scores[kept], "labels": labels[kept]})
        return out


def build_detector(meta: WeightsMeta, state: dict[str, torch.Tensor], label: str) -> FasterRCNN:
    """The detector a ``task="detection"`` record describes, filled with ``state``: the
    record's sizes are range-checked (:class:`DetectorConfig`) and its class count checked
    against the file's classifier head before the network is allocated, then every tensor's
    name, shape and dtype (:func:`load_state_dict_checked`)."""
    classes = meta.classes or []
    extra = dict(meta.detector or {})
    if not extra.keys() <= DETECTOR_FIELDS:
        raise WeightsError(
            f"{label}: detector settings {sorted(set(extra) - DETECTOR_FIELDS)} are not "
            "fields of DetectorConfig"
        )
    try:
        cfg = DetectorConfig(
            backbone=meta.model,
            num_classes=len(classes) + 1,
            image_mean=tuple(m / 255 for m in meta.mean or IMAGENET_MEAN),
            image_std=tuple(s / 255 for s in meta.std or IMAGENET_STD),
            **extra,
        )
    except (ConfigError, TypeError) as e:
        raise WeightsError(f"{label}: a malformed detector record ({e})") from None
    head = state.get("cls_score.weight")
    if head is None or head.dim() != 2 or head.shape[0] != cfg.num_classes:
        found = "none" if head is None else list(head.shape)
        raise WeightsError(
            f"{label}: the record names {len(classes)} classes (+ background), the file's "
            f"cls_score.weight is {found}"
        )
    model = FasterRCNN(cfg)
    load_state_dict_checked(model, state, label, stored_dtype_of(meta))
    return model.eval()
