"""Pictures of detections: boxes drawn on images (Pillow only), and a grid of them."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ..io import atomic_write_bytes

# one colour per class, distinct on the generated set's backgrounds
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
]  # fmt: skip


def top_detections(detections: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """The ``k`` highest-scoring detections of one image (boxes, labels, scores), best first."""
    order = torch.argsort(detections["scores"], descending=True)[:k]
    return {key: detections[key][order] for key in ("boxes", "labels", "scores")}


def draw_detections(
    image: torch.Tensor,
    detections: dict[str, torch.Tensor],
    names: list[str],
    *,
    threshold: float = 0.5,
    truth: torch.Tensor | None = None,
    scale: int = 2,
) -> Image.Image:
    """``image`` (``(3, H, W)`` in [0, 1]) enlarged ``scale`` times, with every detection
    scoring at least ``threshold`` as a box in its class's colour, labelled with the class name
    and score; ``truth`` boxes, when given, in thin white."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    canvas = Image.fromarray(pixels).resize(
        (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST
    )
    pen = ImageDraw.Draw(canvas)
    if truth is not None:
        for box in truth.tolist():
            pen.rectangle([v * scale for v in box], outline=(255, 255, 255), width=1)
    keep = detections["scores"] >= threshold
    for box, label, score in zip(
        detections["boxes"][keep].tolist(),
        detections["labels"][keep].tolist(),
        detections["scores"][keep].tolist(),
    ):
        colour = PALETTE[(label - 1) % len(PALETTE)]
        x1, y1, x2, y2 = (v * scale for v in box)
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        pen.text((x1 + 2, y1 + 1), f"{names[label - 1]} {score:.2f}", fill=colour)
    return canvas


def save_grid(pictures: list[Image.Image], path: str | Path, columns: int = 4) -> Path:
    """The pictures in rows of ``columns``, as one PNG written atomically."""
    width = max(p.width for p in pictures)
    height = max(p.height for p in pictures)
    rows = -(-len(pictures) // columns)
    sheet = Image.new("RGB", (columns * width, rows * height), (0, 0, 0))
    for i, picture in enumerate(pictures):
        sheet.paste(picture, ((i % columns) * width, (i // columns) * height))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
