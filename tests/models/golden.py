"""Golden outputs of every weights set shipped inside the package: the logits of a fixed
small input, committed in ``golden_logits.json`` beside this file (as timm pins its pretrained
test models), so that a change that moves the numbers fails the suite without ``../shared``.

The input is computed, not drawn from a random generator: 4 uint8 images of 32x32 made of
smooth colour gradients and stripes, then the weights' own test view (``LoadedModel.views``)
normalises them, so the preprocessing stored with the weights is pinned too.

Regenerate (after a change that is meant to move the numbers, with the reason in the commit)::

    python tests/models/golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).with_name("golden_logits.json")
#: fp32 on another CPU's kernels (AVX2 against AVX-512/AMX, another thread count) moves logits
#: by about 1e-5 relative; a change of the model or its preprocessing moves them by far more
RTOL, ATOL = 1e-4, 1e-4


def golden_images(n: int = 4, size: int = 32) -> np.ndarray:
    """``n`` uint8 ``(size, size, 3)`` images: gradients and stripes at other phases each."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    images = []
    for k in range(n):
        red = 0.5 + 0.5 * np.sin(2 * np.pi * (x * (k + 1) + 0.1 * k))
        green = 0.5 + 0.5 * np.cos(2 * np.pi * (y * (k + 2) - 0.2 * k))
        blue = (x + y + 0.25 * k) % 1.0
        images.append(np.stack([red, green, blue], axis=-1))
    return np.rint(np.stack(images) * 255).astype(np.uint8)


def shipped() -> list[str]:
    """The weights sets whose files are inside the package (no download)."""
    from resnets.models.catalogue import get_pretrained, list_pretrained

    return [name for name in list_pretrained() if get_pretrained(name).url is None]


def logits_of(name: str) -> torch.Tensor:
    """The fp32 logits of the golden images through the weights' own test view."""
    from resnets.inference import load_weights

    loaded = load_weights(name, device="cpu", backend="torch")
    views = loaded.views
    batch = torch.cat([views.image(img, label=f"golden {i}")[1] for i, img in
                       enumerate(golden_images())])  # fmt: skip
    with torch.inference_mode():
        return loaded.logits(batch).float()


def write() -> None:
    record = {name: logits_of(name).tolist() for name in shipped()}
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{GOLDEN}: {', '.join(record)}", file=sys.stderr)


if __name__ == "__main__":
    torch.set_num_threads(1)
    write()
