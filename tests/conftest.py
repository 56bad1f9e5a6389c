"""Shared fixtures: isolated caches, small generated data sets, one short trained run."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory):
    """Decoded caches and downloads go to a temporary folder, never the user's home."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("resnets-home")
    mp.setenv("RESNETS_CACHE", str(root / "cache"))
    mp.setenv("RESNETS_DATA", str(root / "data"))
    mp.setenv("MPLBACKEND", "Agg")
    # a fixed thread count, so runs compared bit for bit never pick different ones by load
    import torch

    mp.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads())))
    yield root
    mp.undo()


def make_image_folder(
    root: Path, classes=("cat", "dog", "frog"), per_class: int = 12, size: int = 16, seed: int = 0
) -> Path:
    """A class-folder data set of small PNG/JPEG images whose class is visible in the colour."""
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(classes):
        d = root / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            arr[..., ci % 3] += 150
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(arr).save(d / f"{i:03d}.{ext}")
    return root


def make_cifar_archive(
    path: Path,
    n_train_per_batch: int = 20,
    n_test: int = 20,
    classes: int = 10,
    seed: int = 0,
    cifar100: bool = False,
) -> Path:
    """A small archive in the official CIFAR python layout (pickled dicts of numpy arrays)."""
    rng = np.random.default_rng(seed)
    folder = "cifar-100-python" if cifar100 else "cifar-10-batches-py"
    label_key = "fine_labels" if cifar100 else "labels"
    members = {}

    def batch(n):
        labels = (np.arange(n) % classes).tolist()
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        return pickle.dumps(
            {b"data": data, label_key.encode(): labels, b"batch_label": b"x"}, protocol=2
        )

    if cifar100:
        members["train"] = batch(n_train_per_batch * 5)
        members["test"] = batch(n_test)
        members["meta"] = pickle.dumps(
            {b"fine_label_names": [f"c{i}".encode() for i in range(classes)]}, protocol=2
        )
    else:
        for i in range(1, 6):
            members[f"data_batch_{i}"] = batch(n_train_per_batch)
        members["test_batch"] = batch(n_test)
        members["batches.meta"] = pickle.dumps(
            {
                b"label_names": [f"class{i}".encode() for i in range(classes)],
                b"num_cases_per_batch": n_train_per_batch,
            },
            protocol=2,
        )
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "imgs")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A short real training run on digits, shared by the eval/predict/CLI tests."""
    from resnets.train import build_config, train

    out = tmp_path_factory.mktemp("runs") / "digits"
    cfg = build_config("digits", cli_values={"epochs": 4.0, "iters": 0})
    train(cfg, out, progress=False, echo=False)
    return out
