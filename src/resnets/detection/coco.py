"""COCO-format detection folders: read and validated, or generated from CIFAR-10 images.

A folder is ``ROOT/instances.json`` (COCO's ``images``, ``annotations`` and ``categories``) and
the images it names, relative to ``ROOT/images``. Boxes are stored as COCO's ``[x, y, w, h]``
and given to the detector as ``(x1, y1, x2, y2)``; category ids map to labels ``1..K`` in the
order of their ids (label 0 is the background of a two-stage detector).

Since no detection set is available offline here, :func:`generate_from_cifar` builds one
reproducibly: CIFAR-10 images (each an object of its class) resized to several sizes and
pasted without overlap on smooth random backgrounds, so every box is known exactly. Its
training and validation images draw their objects from disjoint halves of the source files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.images import decode_image
from ..errors import DataError
from ..io import atomic_write_json, partial_folder, replace_folder

ANNOTATIONS = "instances.json"
IMAGES = "images"
MAX_SIDE = 8192  # an image side beyond this is a corrupt record, not a photograph
MAX_OBJECTS = 1000  # per image (COCO's most crowded image has 93 annotations)


@dataclass
class CocoImage:
    """One image of a detection set and its objects (``boxes``: ``(n, 4)`` x1, y1, x2, y2)."""

    id: int
    path: Path
    width: int
    height: int
    boxes: torch.Tensor
    labels: torch.Tensor  # 1..K


@dataclass
class CocoSet:
    """A validated COCO-format folder."""

    root: Path
    images: list[CocoImage]
    category_ids: list[int]  # label k (1-based) is category_ids[k - 1]
    category_names: list[str]
    dataset: dict = field(repr=False, default_factory=dict)  # the JSON, for pycocotools

    @property
    def num_classes(self) -> int:
        """Categories plus the background."""
        return len(self.category_ids) + 1

    def load(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Image ``index`` as a float ``(3, H, W)`` tensor in [0, 1] and torchvision's target
        dict (``boxes``, ``labels``, ``image_id``); an unreadable file or one whose size is not
        its record's is a one-line error naming it."""
        rec = self.images[index]
        # the one decoder of every path (classification, predict, serve, detection): size and
        # bomb bounds, and the EXIF orientation applied, so training, scoring and predicting
        # see an image the same way up
        try:
            image = decode_image(rec.path)
        except DataError as e:
            raise DataError(f"{rec.path}: not a readable image ({e})") from None
        if image.shape[:2] != (rec.height, rec.width):
            turned = image.shape[:2] == (rec.width, rec.height)
            raise DataError(
                f"{rec.path}: {image.shape[1]}x{image.shape[0]} pixels"
                + (" once turned upright by its EXIF orientation" if turned else "")
                + f", but {ANNOTATIONS} records {rec.width}x{rec.height}"
            )
        tensor = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255
        target = {"boxes": rec.boxes, "labels": rec.labels, "image_id": torch.tensor(rec.id)}
        return tensor, target


def _fail(where: Path, what: str) -> DataError:
    return DataError(f"{where}: {what}")


def _int_field(entry: dict, key: str, where: Path, what: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, f"{what} has no integer {key!r} ({value!r})")
    return value


def read_coco(root: str | os.PathLike) -> CocoSet:
    """Read and check ``root`` (``instances.json`` + ``images/``) in full before any training:
    unreadable JSON, missing fields, duplicate ids, missing image files, unknown categories and
    boxes that are empty, not finite or outside their image are each one line naming the file
    and the entry."""
    root = Path(root)
    ann_path = root / ANNOTATIONS
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (a COCO-format folder: {ANNOTATIONS} + {IMAGES}/)")
    if not ann_path.is_file():
        raise _fail(ann_path, "missing (a COCO-format folder holds instances.json)")
    try:
        data = json.loads(ann_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(ann_path, f"not readable JSON ({e})") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise _fail(ann_path, "needs the lists 'images', 'annotations' and 'categories'")

    categories: dict[int, str] = {}
    for cat in data["categories"]:
        if not isinstance(cat, dict):
            raise _fail(ann_path, f"category {cat!r} is not an object")
        cid = _int_field(cat, "id", ann_path, "a category")
        if cid in categories:
            raise _fail(ann_path, f"category id {cid} appears twice")
        categories[cid] = str(cat.get("name", cid))
    if not categories:
        raise _fail(ann_path, "no categories")
    category_ids = sorted(categories)
    label_of = {cid: k + 1 for k, cid in enumerate(category_ids)}

    image_dir = root / IMAGES
    images: dict[int, dict] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict):
            raise _fail(ann_path, f"image entry {entry!r} is not an object")
        iid = _int_field(entry, "id", ann_path, "an image")
        if iid in images:
            raise _fail(ann_path, f"image id {iid} appears twice")
        name = entry.get("file_name")
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in name:
            raise _fail(ann_path, f"image {iid}: file_name {name!r} must be a path inside images/")
        width = _int_field(entry, "width", ann_path, f"image {iid}")
        height = _int_field(entry, "height", ann_path, f"image {iid}")
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise _fail(ann_path, f"image {iid}: size {width}x{height} out of 1..{MAX_SIDE}")
        path = image_dir / name
        if not path.is_file():
            raise _fail(path, f"missing (image {iid} of {ANNOTATIONS})")
        images[iid] = {"path": path, "width": width, "height": height, "boxes": [], "labels": []}

    annotation_ids: dict[int, int] = {}
    for n, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise _fail(ann_path, f"annotation #{n} is not an object")
        if "id" in ann:  # optional; where given, unique (pycocotools matches by it)
            aid = _int_field(ann, "id", ann_path, f"annotation #{n}")
            if aid in annotation_ids:
                raise _fail(
                    ann_path,
                    f"annotation #{n}: id {aid} appears twice (first at #{annotation_ids[aid]})",
                )
            annotation_ids[aid] = n
        # every field the reader turns into a decision is type-checked: "0" is not 0
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, (bool, float)):
            raise _fail(ann_path, f"annotation #{n}: iscrowd {crowd!r} must be the integer 0 or 1")
        area = ann.get("area")
        if area is not None and (
            not isinstance(area, (int, float))
            or isinstance(area, bool)
            or not math.isfinite(area)
            or area < 0
        ):
            raise _fail(ann_path, f"annotation #{n}: area {area!r} must be a number >= 0")
        iid = _int_field(ann, "image_id", ann_path, f"annotation #{n}")
        cid = _int_field(ann, "category_id", ann_path, f"annotation #{n}")
        if iid not in images:
            raise _fail(ann_path, f"annotation #{n}: image_id {iid} is not an image of the set")
        if cid not in categories:
            raise _fail(ann_path, f"annotation #{n}: unknown category_id {cid}")
        box = ann.get("bbox")
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
            or not all(math.isfinite(v) for v in box)
        ):
            raise _fail(ann_path, f"annotation #{n}: bbox {box!r} is not 4 finite numbers")
        x, y, w, h = (float(v) for v in box)
        img = images[iid]
        if w <= 0 or h <= 0:
            raise _fail(
                ann_path, f"annotation #{n}: empty box {box} (width and height must be > 0)"
            )
        if x < 0 or y < 0 or x + w > img["width"] + 0.5 or y + h > img["height"] + 0.5:
            raise _fail(
                ann_path,
                f"annotation #{n}: box {box} leaves image {iid} ({img['width']}x{img['height']})",
            )
        if crowd:  # crowd regions are ignored by COCO's scoring, not learned
            continue
        if len(img["boxes"]) >= MAX_OBJECTS:
            raise _fail(ann_path, f"image {iid}: more than {MAX_OBJECTS} objects")
        img["boxes"].append((x, y, x + w, y + h))
        img["labels"].append(label_of[cid])

    records = [
        CocoImage(
            id=iid,
            path=img["path"],
            width=img["width"],
            height=img["height"],
            boxes=torch.tensor(img["boxes"], dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor(img["labels"], dtype=torch.int64),
        )
        for iid, img in sorted(images.items())
    ]
    return CocoSet(
        root=root,
        images=records,
        category_ids=category_ids,
        category_names=[categories[c] for c in category_ids],
        dataset=data,
    )


# ---------------------------------------------------------------------------------------------
# a detection set generated from the shared CIFAR-10 images


@dataclass(frozen=True)
class SyntheticSpec:
    """How :func:`generate_from_cifar` draws its images. Object sides are log-uniform between
    ``min_side`` and ``max_side`` pixels, so all three of COCO's size ranges appear (small:
    area < 32^2, medium: < 96^2, large: above) on a ``size`` x ``size`` canvas."""

    size: int = 160
    min_objects: int = 1
    max_objects: int = 4
    min_side: int = 12
    max_side: int = 112
    aspect: float = 1.33  # width / height drawn between 1/aspect and aspect
    gap: int = 2  # pixels kept free between two objects


def _source_files(cifar_root: Path, split: str) -> tuple[list[str], list[list[Path]]]:
    """Class names and each class's files of ``split``: train the files of even position in
    the sorted class folder, val the odd ones, so no object appears in both."""
    classes = sorted(p.name for p in cifar_root.iterdir() if p.is_dir() and p.name[0] != ".")
    if not classes:
        raise DataError(f"{cifar_root}: no class folders (expected ROOT/<class>/<image>)")
    parity = 0 if split == "train" else 1
    files = []
    for c in classes:
        listed = sorted(p for p in (cifar_root / c).iterdir() if p.is_file() and p.name[0] != ".")
        chosen = listed[parity::2]
        if not chosen:
            raise DataError(f"{cifar_root / c}: no images for the {split} half")
        files.append(chosen)
    return classes, files


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth random colour field with fine noise: clutter with no object in it."""
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.float32)
    noisy = smooth + rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def _place(
    rng: np.random.Generator, spec: SyntheticSpec, taken: list[tuple[int, int, int, int]]
) -> tuple[int, int, int, int] | None:
    """A box (x1, y1, x2, y2) of a drawn size that keeps ``gap`` pixels from every taken box,
    or None after 30 tries."""
    for _ in range(30):
        side = math.exp(rng.uniform(math.log(spec.min_side), math.log(spec.max_side)))
        ratio = math.exp(rng.uniform(-math.log(spec.aspect), math.log(spec.aspect)))
        w = max(4, min(spec.size, round(side * math.sqrt(ratio))))
        h = max(4, min(spec.size, round(side / math.sqrt(ratio))))
        x = int(rng.integers(0, spec.size - w + 1))
        y = int(rng.integers(0, spec.size - h + 1))
        box = (x, y, x + w, y + h)
        if all(_apart(box, other, spec.gap) for other in taken):
            return box
    return None


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    """Whether boxes ``a`` and ``b`` are at least ``gap`` pixels apart on some axis."""
    return a[0] >= b[2] + gap or b[0] >= a[2] + gap or a[1] >= b[3] + gap or b[1] >= a[3] + gap


def generate_from_cifar(
    cifar_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    images: int,
    split: str = "train",
    seed: int = 0,
    spec: SyntheticSpec | None = None,
) -> Path:
    """Write ``images`` generated images and their ``instances.json`` to ``out`` (built beside
    it and renamed into place: never half written). Image ``i`` depends only on ``seed``,
    ``split`` and ``i``: the same call gives byte-identical files."""
    spec = spec or SyntheticSpec()
    if split not in ("train", "val"):
        raise DataError(f"split {split!r}: train or val")
    if images < 1:
        raise DataError(f"--images {images}: must be >= 1")
    cifar_root, out = Path(cifar_root), Path(out)
    if not cifar_root.is_dir():
        raise DataError(f"{cifar_root}: no such folder (the CIFAR-10 class folders)")
    classes, files = _source_files(cifar_root, split)
    tmp = partial_folder(out)
    try:
        (tmp / IMAGES).mkdir()
        entries, annotations = [], []
        split_code = 0 if split == "train" else 1
        for i in range(images):
            rng = np.random.default_rng([seed, split_code, i])
            canvas = _background(rng, spec.size)
            taken: list[tuple[int, int, int, int]] = []
            for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
                box = _place(rng, spec, taken)
                if box is None:
                    continue
                label = int(rng.integers(len(classes)))
                source = files[label][int(rng.integers(len(files[label])))]
                try:
                    with Image.open(source) as im:
                        obj = im.convert("RGB").resize(
                            (box[2] - box[0], box[3] - box[1]), Image.BILINEAR
                        )
                except OSError as e:
                    raise DataError(f"{source}: not a readable image ({e})") from None
                canvas.paste(obj, box[:2])
                taken.append(box)
                x1, y1, x2, y2 = box
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": label + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
            name = f"{i:06d}.png"
            canvas.save(tmp / IMAGES / name)
            entries.append(
                {"id": i + 1, "file_name": name, "width": spec.size, "height": spec.size}
            )
        atomic_write_json(
            tmp / ANNOTATIONS,
            {
                "info": {
                    "description": f"resnets detection set generated from {cifar_root.name} "
                    f"({split} half of its files), seed {seed}",
                    "generator": {"split": split, "seed": seed, **spec.__dict__},
                },
                "images": entries,
                "annotations": annotations,
                "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)],
            },
        )
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def collate(data: CocoSet, indices: list[int], flips: list[bool] | None = None):
    """The images (``(3, H, W)`` in [0, 1], sizes as stored: the detector pads and normalises
    them) and their targets, each flipped left to right where ``flips`` says."""
    images, targets = [], []
    for k, (img, target) in enumerate(data.load(i) for i in indices):
        boxes = target["boxes"].clone()
        if flips and flips[k]:
            img = img.flip(2)
            width = img.shape[2]
            boxes = torch.stack(
                (width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]), dim=1
            )
        images.append(img)
        targets.append({**target, "boxes": boxes})
    return images, targets
