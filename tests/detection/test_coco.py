"""COCO-format folders: the generated set's boxes are exact and reproducible, bad folders are
one-line errors, and COCO mAP (pycocotools) gives the hand-computed values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from resnets.detection.coco import SyntheticSpec, generate_from_cifar, read_coco
from resnets.detection.metrics import coco_scores
from resnets.errors import DataError

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


def _solid_sources(root: Path, per_class: int = 6) -> Path:
    """A CIFAR-like class folder whose images are each one flat colour: a pasted object is
    then exactly its colour inside its box, whatever size it was resized to."""
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (32, 32), colour).save(root / name / f"{i:04d}.png")
    return root


def test_generated_boxes_are_exact_and_cover_every_size(tmp_path):
    src = _solid_sources(tmp_path / "src")
    spec = SyntheticSpec()  # the default: 160 x 160, 1-4 objects of sides 12-112
    out = generate_from_cifar(src, tmp_path / "det", images=40, seed=3, spec=spec)
    data = read_coco(out)
    assert data.category_names == sorted(COLOURS) and data.num_classes == 4
    assert len(data.images) == 40
    areas = []
    for index, rec in enumerate(data.images):
        image, target = data.load(index)
        assert image.shape == (3, spec.size, spec.size) and target["image_id"].item() == rec.id
        pixels = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        for box, label in zip(target["boxes"].tolist(), target["labels"].tolist()):
            x1, y1, x2, y2 = (int(v) for v in box)
            colour = COLOURS[data.category_names[label - 1]]
            # every pixel inside the box is the object's colour...
            assert (pixels[y1:y2, x1:x2] == colour).all()
            # ...and the box is tight: the ring around it (inside the canvas) is not all that colour
            ring = [pixels[y1:y2, x] for x in (x1 - 1, x2) if 0 <= x < spec.size]
            ring += [pixels[y, x1:x2] for y in (y1 - 1, y2) if 0 <= y < spec.size]
            assert all(not (side == colour).all() for side in ring)
            areas.append((x2 - x1) * (y2 - y1))
        boxes = target["boxes"]
        if len(boxes) > 1:  # no two objects overlap
            from resnets.models.box_ops import box_iou

            iou = box_iou(boxes, boxes)
            assert torch.equal(iou - torch.diag(iou.diagonal()), torch.zeros_like(iou))
    # COCO's three size ranges all occur
    assert min(areas) < 32**2 and any(32**2 <= a < 96**2 for a in areas) and max(areas) >= 96**2


def test_generation_is_reproducible_and_halves_are_disjoint(tmp_path):
    src = _solid_sources(tmp_path / "src")
    spec = SyntheticSpec(size=64, max_side=40)
    a = generate_from_cifar(src, tmp_path / "a", images=5, seed=1, spec=spec)
    b = generate_from_cifar(src, tmp_path / "b", images=5, seed=1, spec=spec)
    c = generate_from_cifar(src, tmp_path / "c", images=5, seed=2, spec=spec)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "instances.json").read_bytes() != (c / "instances.json").read_bytes()
    # the validation half draws its objects from the other files of each class
    from resnets.detection.coco import _source_files

    _, train = _source_files(src, "train")
    _, val = _source_files(src, "val")
    assert all(not set(t) & set(v) for t, v in zip(train, val))
    # no half-written folder is left beside the output
    assert not list(tmp_path.glob(".*partial*"))
    with pytest.raises(DataError, match="split 'test'"):
        generate_from_cifar(src, tmp_path / "d", images=1, split="test")


def _folder(tmp_path: Path, **changes) -> Path:
    """A valid two-image folder, with ``changes`` applied to its JSON."""
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), (9, 9, 9)).save(root / "images" / name)
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 10, 5]},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 40, 30]},
        ],
        "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}],
    }
    for key, value in changes.items():
        section, index, field = key.split("__")
        data[section][int(index)][field] = value
    (root / "instances.json").write_text(json.dumps(data))
    return root


def test_a_valid_folder_reads_with_labels_in_category_id_order(tmp_path):
    data = read_coco(_folder(tmp_path))
    assert data.category_ids == [3, 7] and data.category_names == ["dog", "cat"]
    assert data.images[0].boxes.tolist() == [[1, 2, 11, 7]]  # [x, y, w, h] -> x1, y1, x2, y2
    assert data.images[0].labels.tolist() == [2] and data.images[1].labels.tolist() == [1]


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"annotations__0__bbox": [1, 2, 0, 5]}, "annotation #0: empty box"),
        ({"annotations__0__bbox": [35, 2, 10, 5]}, "leaves image 1"),
        ({"annotations__0__bbox": [1, 2, float("nan"), 5]}, "not 4 finite numbers"),
        ({"annotations__0__bbox": [1, 2, 3]}, "not 4 finite numbers"),
        ({"annotations__1__category_id": 99}, "annotation #1: unknown category_id 99"),
        ({"annotations__1__image_id": 5}, "image_id 5 is not an image"),
        ({"images__1__id": 1}, "image id 1 appears twice"),
        ({"images__0__file_name": "gone.png"}, "gone.png: missing"),
        ({"images__0__file_name": "../x.png"}, "must be a path inside images/"),
        ({"images__0__width": 0}, "size 0x30"),
        ({"categories__1__id": 7}, "category id 7 appears twice"),
        # issue 44, D14 and D29: duplicate annotation ids, and fields of the wrong type
        ({"annotations__1__id": 1}, "annotation #1: id 1 appears twice"),
        ({"annotations__0__iscrowd": "0"}, "iscrowd '0' must be the integer 0 or 1"),
        ({"annotations__0__iscrowd": True}, "iscrowd True must be the integer 0 or 1"),
        ({"annotations__0__iscrowd": 2}, "iscrowd 2 must be the integer 0 or 1"),
        ({"annotations__0__area": "50"}, "area '50' must be a number >= 0"),
        ({"annotations__0__id": "1"}, "annotation #0 has no integer 'id'"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, changes, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(")) as caught:
        read_coco(_folder(tmp_path, **changes))
    assert "\n" not in str(caught.value)


def test_unreadable_annotations_and_images_are_named(tmp_path):
    root = _folder(tmp_path)
    (root / "instances.json").write_text("{not json")
    with pytest.raises(DataError, match="instances.json: not readable JSON"):
        read_coco(root)
    (root / "instances.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="needs the lists"):
        read_coco(root)
    with pytest.raises(DataError, match="no such folder"):
        read_coco(tmp_path / "nowhere")
    root = _folder(tmp_path / "again")
    Image.new("RGB", (20, 30)).save(root / "images" / "a.png")  # not the recorded 40 x 30
    with pytest.raises(DataError, match="a.png: 20x30 pixels, but instances.json records 40x30"):
        read_coco(root).load(0)
    (root / "images" / "b.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="b.png: not a readable image"):
        read_coco(root).load(1)
    shutil.rmtree(root)


def test_coco_map_of_hand_made_detections(tmp_path):
    """One 40 x 40 object (COCO's 'medium'): a detection at IoU 0.62 is a hit at the IoU
    thresholds 0.50, 0.55 and 0.60 and a miss at the seven above, so mAP@[.5:.95] is 3/10."""
    root = tmp_path / "one"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (100, 100)).save(root / "images" / "x.png")
    (root / "instances.json").write_text(
        json.dumps(
            {
                "images": [{"id": 4, "file_name": "x.png", "width": 100, "height": 100}],
                "annotations": [
                    {"id": 1, "image_id": 4, "category_id": 2, "bbox": [10, 10, 40, 40]}
                ],
                "categories": [{"id": 2, "name": "thing"}],
            }
        )
    )
    truth = read_coco(root)

    def det(box, score=0.9, label=1):
        return {
            "boxes": torch.tensor([box], dtype=torch.float32),
            "scores": torch.tensor([score]),
            "labels": torch.tensor([label]),
        }

    # shifted 9.4 px: intersection 30.6 x 40 = 1224, union 3200 - 1224 = 1976, IoU 0.619
    shifted = coco_scores(truth, [det([19.4, 10, 59.4, 50])])
    assert shifted.map == pytest.approx(0.3) and shifted.map_50 == pytest.approx(1.0)
    assert shifted.map_75 == 0.0 and shifted.map_medium == pytest.approx(0.3)
    assert shifted.map_small == -1.0 and shifted.map_large == -1.0  # no such objects
    exact = coco_scores(truth, [det([10, 10, 50, 50])])
    assert exact.map == pytest.approx(1.0) and exact.detections == 1
    # a higher-scoring false detection first: at recall 1 the precision is 1/2
    two = {
        "boxes": torch.tensor([[60.0, 60, 90, 90], [10, 10, 50, 50]]),
        "scores": torch.tensor([0.95, 0.9]),
        "labels": torch.tensor([1, 1]),
    }
    assert coco_scores(truth, [two]).map == pytest.approx(0.5)
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}
    assert coco_scores(truth, [empty]).map == 0.0


def test_perfect_detections_score_1_whatever_the_annotation_ids(tmp_path):
    """D14: a converted set numbers its annotations from 0; pycocotools takes id 0 for "no
    match", so scored as given perfect detections came out below 1. Scoring renumbers them."""
    root = _folder(tmp_path, annotations__0__id=0, annotations__1__id=1)
    truth = read_coco(root)
    perfect = [
        {
            "boxes": img.boxes.clone(),
            "scores": torch.ones(len(img.boxes)),
            "labels": img.labels.clone(),
        }
        for img in truth.images
    ]
    assert coco_scores(truth, perfect).map == pytest.approx(1.0)


def test_an_exif_rotated_image_is_read_upright_as_predict_reads_it(tmp_path):
    """Issue 44, D22: one decoder for training, scoring and predicting. A JPEG stored 40x30
    with EXIF orientation 6 is a 30x40 image upright: its record must say 30x40 (a record of
    the stored 40x30 is a one-line error that says why)."""
    from resnets.data.images import decode_image

    root = _folder(tmp_path, images__0__file_name="r.jpg", images__0__width=30,
                   images__0__height=40, annotations__0__bbox=[1, 2, 10, 5])  # fmt: skip
    stored = Image.new("RGB", (40, 30), (200, 10, 10))
    stored.paste((10, 10, 200), (0, 0, 20, 30))  # left half blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    stored.save(root / "images" / "r.jpg", exif=exif, quality=95)
    image, _ = read_coco(root).load(0)
    upright = decode_image(root / "images" / "r.jpg")
    assert image.shape == (3, 40, 30) and upright.shape == (40, 30, 3)
    assert torch.equal(
        (image * 255).round().to(torch.uint8), torch.from_numpy(upright).permute(2, 0, 1)
    )
    data = json.loads((root / "instances.json").read_text())
    data["images"][0].update(width=40, height=30)
    (root / "instances.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="once turned upright by its EXIF orientation"):
        read_coco(root).load(0)
