"""Class subsets, labelled images per class, and classes left without training images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from resnets.data.select import select_samples
from resnets.errors import ConfigError

LABELS = np.repeat(np.arange(4), 30)  # 4 classes x 30 images
NAMES = ["a", "b", "c", "d"]


def test_all_classes_is_the_plain_stratified_split():
    from resnets.data.pipeline import stratified_split

    sel = select_samples(LABELS, NAMES, val_split=20, seed=3)
    tr, va = stratified_split(LABELS, 20, 3)
    assert np.array_equal(sel.train_idx, tr) and np.array_equal(sel.val_idx, va)
    assert sel.classes == NAMES and np.array_equal(sel.labels, LABELS)


def test_class_subset_remaps_labels_in_the_given_order():
    sel = select_samples(LABELS, NAMES, val_split=8, seed=0, classes=["d", "b"])
    assert sel.classes == ["d", "b"]
    used = np.concatenate([sel.train_idx, sel.val_idx])
    assert set(LABELS[used]) == {1, 3}  # only b and d
    assert set(sel.labels[used]) == {0, 1} and (sel.labels[LABELS == 0] == -1).all()
    assert (sel.labels[LABELS == 3] == 0).all()  # d is class 0 now
    assert np.bincount(sel.labels[sel.val_idx]).tolist() == [4, 4]


def test_per_class_subsets_are_nested_and_exact():
    small = select_samples(LABELS, NAMES, val_split=20, seed=1, per_class=5)
    large = select_samples(LABELS, NAMES, val_split=20, seed=1, per_class=20)
    assert np.bincount(LABELS[small.train_idx]).tolist() == [5] * 4
    assert set(small.train_idx) <= set(large.train_idx)
    assert np.array_equal(small.val_idx, large.val_idx)  # the same held-out images
    with pytest.raises(ConfigError, match="per_class=26: class 'a' has only 25"):
        select_samples(LABELS, NAMES, val_split=20, seed=1, per_class=26)


def test_bad_class_lists_and_empty_classes():
    with pytest.raises(ConfigError, match=r"\['z'\] are not in the data"):
        select_samples(LABELS, NAMES, val_split=8, seed=0, classes=["a", "z"])
    with pytest.raises(ConfigError, match="names a class twice"):
        select_samples(LABELS, NAMES, val_split=8, seed=0, classes=["a", "a"])
    few = np.array([0, 0, 0, 1, 2, 2, 2])  # class 1 has one image: it goes to validation
    with pytest.raises(ConfigError, match=r"without a single training image .*\['b'\]"):
        select_samples(few, ["a", "b", "c"], val_split=3, seed=0)


@pytest.mark.slow
def test_training_on_a_class_subset_and_scoring_its_validation_split(tmp_path, capsys):
    from resnets.cli import main
    from resnets.train import build_config, train

    cfg = build_config(
        "digits",
        cli_values={
            "classes": ["3", "1", "7"],
            "per_class": 60,
            "epochs": 3.0,
            "iters": 0,
            "val_split": 60,
        },
    )
    res = train(cfg, tmp_path / "r", progress=False, echo=False)
    conf = json.loads((tmp_path / "r" / "config.json").read_text())
    assert conf["resolved"]["train_size"] == 180 and conf["resolved"]["num_classes"] == 3
    assert (
        main(
            [
                "eval",
                "--weights",
                str(tmp_path / "r"),
                "--data",
                "digits",
                "--subset",
                "val",
                "--json",
                "--no-progress",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the same 60 held-out images; the training's validation and eval run the same weights
    # through bf16 kernels chosen apart (by layout and thread count), and this 3-epoch model
    # has near-ties: one image may flip (it does on one thread), so they agree to one image
    assert out["n"] == 60 and abs(out["top1"] - (1 - res.final_val_err)) <= 1 / 60 + 1e-9
