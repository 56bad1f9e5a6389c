"""Golden outputs of every weights set shipped inside the package: the logits of a fixed
small input, committed in ``golden_logits.json`` beside this file (as timm pins its pretrained
test models), so that a change that moves the numbers fails the suite without ``../shared``.

The input is computed, not drawn from a random generator: 4 uint8 images of 32x32 made of
smooth colour gradients and stripes, then the weights' own test view (``LoadedModel.views``)
normalises them, so the preprocessing stored with the weights is pinned too.

Beside them, ``held_out_hits.json`` records, per shipped CIFAR-10 weights set, which of its
5,000 held-out images it gets right (fp32, its own test-time views; made with ``../shared``).
Its sum is the accuracy the weights' record states, and the suite re-scores every
``SAMPLE_EVERY``-th image against it: 500 images per set instead of 5,000 (issue 45).

Regenerate (after a change that is meant to move the numbers, with the reason in the commit;
the hits need ``../shared``)::

    python tests/models/golden.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).with_name("golden_logits.json")
HITS = Path(__file__).with_name("held_out_hits.json")
SHARED_CIFAR = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg" / "train"
)
#: the suite re-scores every this-many-th held-out image of each set (500 of 5,000)
SAMPLE_EVERY = 10
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


def indices_digest(indices: np.ndarray) -> str:
    """SHA-256 of a held-out split's image indices, in order (int64): the same split or not."""
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()


_SELECTIONS: dict[tuple, object] = {}


def held_out_hits(name: str, data: Path, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the held-out split of weights set ``name`` on ``data``, and whether its
    top-1 class is right on every ``every``-th of them (fp32, the test-time views its record
    names: the path of :func:`resnets.eval.predict.score`)."""
    from resnets.eval.metrics import evaluate
    from resnets.eval.predict import scoring_selection
    from resnets.inference import TestTime, load_weights

    loaded = load_weights(name, device="cpu", backend="torch")
    test = TestTime().for_record(loaded.meta.tta, loaded.meta.temperature)
    # sets trained on the same data with the same split are scored on one decoded selection
    # (decoding their 5,000 held-out JPEGs again costs 2 s a set on Zen 3)
    key = (
        str(data),
        loaded.image_size,
        tuple(test.scales),
        json.dumps(loaded.meta.split, sort_keys=True),
        loaded.meta.data_fingerprint,
        tuple(loaded.classes),
    )
    if key not in _SELECTIONS:
        _SELECTIONS[key] = scoring_selection(loaded, str(data), subset="val", scales=test.scales)
    selection = _SELECTIONS[key]
    result = evaluate(
        loaded.model,
        selection.data.images,
        selection.labels,
        selection.indices[::every],
        views=loaded.views,
        num_classes=len(loaded.classes),
        test=test,
    )
    return np.asarray(selection.indices), np.asarray(result.hits, dtype=bool)


def unpack_hits(record: dict) -> np.ndarray:
    """The per-image hits of one ``held_out_hits.json`` entry."""
    packed = np.frombuffer(bytes.fromhex(record["hits"]), dtype=np.uint8)
    return np.unpackbits(packed, count=record["n"]).astype(bool)


def write() -> None:
    from resnets.models.catalogue import get_pretrained

    record = {name: logits_of(name).tolist() for name in shipped()}
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{GOLDEN}: {', '.join(record)}", file=sys.stderr)
    if not SHARED_CIFAR.is_dir():
        print(f"{HITS}: not rewritten (../shared's CIFAR-10 is not here)", file=sys.stderr)
        return
    hits = {}
    for name in shipped():
        indices, got = held_out_hits(name, SHARED_CIFAR)
        hits[name] = {
            "sha256": get_pretrained(name).sha256,
            "indices_sha256": indices_digest(indices),
            "n": len(got),
            "hits": np.packbits(got).tobytes().hex(),
        }
    HITS.write_text(json.dumps(hits, indent=1) + "\n")
    print(f"{HITS}: {', '.join(hits)}", file=sys.stderr)


if __name__ == "__main__":
    torch.set_num_threads(1)
    write()
