"""The 15 common corruptions: each changes an image by a measured amount that grows with
severity, draws are fixed by the seed, a trained model's accuracy falls with severity, and
the command writes its table, CSV and figure."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from resnets.cli import main
from resnets.eval.corruptions import CORRUPTIONS, corrupt

pytestmark = pytest.mark.slow


def _photos(n: int = 6, size: int = 32) -> np.ndarray:
    """Smooth, textured colour images (gradients, a disc, some noise): no flat picture that
    a corruption could leave unchanged."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0.2, 0.8, 3)
        disc = ((yy - a) ** 2 + (xx - b) ** 2 < 0.05).astype(float)
        img = np.stack([a * xx + 0.3 * disc, b * yy + 0.2, c * (1 - xx) + 0.4 * disc], 2)
        img += rng.normal(0, 0.03, img.shape)
        out.append(np.uint8(np.clip(img, 0, 1) * 255))
    return np.stack(out)


def _change(name: str, severity: int, images: np.ndarray) -> float:
    out = np.stack([corrupt(im, name, severity, 0, i) for i, im in enumerate(images)])
    return float(np.abs(out.astype(float) - images).mean())


#: the paper's parameters make the pixel change grow at every step for these; glass blur's
#: pixel shuffle and frost's blend dominate their change (it still grows from 1 to 5), and
#: elastic_transform trades a global warp (severity 1) for local displacement (severity 5)
MONOTONE = [n for n in CORRUPTIONS if n not in ("glass_blur", "frost", "elastic_transform")]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_changes_the_image_more_at_higher_severity(name):
    images = _photos()
    changes = [_change(name, s, images) for s in range(1, 6)]
    assert min(changes) > 0.3, changes  # every severity changes the picture
    if name in MONOTONE:
        assert all(b >= a for a, b in zip(changes, changes[1:])), changes
    if name != "elastic_transform":
        assert changes[-1] > changes[0], changes


def test_draws_are_fixed_by_seed_and_index():
    image = _photos(1)[0]
    a = corrupt(image, "gaussian_noise", 3, seed=0, index=5)
    assert np.array_equal(a, corrupt(image, "gaussian_noise", 3, seed=0, index=5))
    assert not np.array_equal(a, corrupt(image, "gaussian_noise", 3, seed=1, index=5))
    assert not np.array_equal(a, corrupt(image, "gaussian_noise", 3, seed=0, index=6))


def test_accuracy_falls_with_severity_and_the_command_reports_it(patch_run, tmp_path, capsys):
    run, data, _ = patch_run
    names = "gaussian_noise,defocus_blur,contrast,fog,pixelate,snow"
    assert (
        main(
            [
                "eval",
                "--weights",
                str(run),
                "--data",
                str(data),
                "--subset",
                "val",
                "--corruptions",
                names,
                "--out",
                str(tmp_path),
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(tmp_path / "corruptions.csv")))
    assert len(rows) == 6 * 5
    by_severity = {
        s: np.mean([float(r["top1"]) for r in rows if r["severity"] == str(s)]) for s in range(1, 6)
    }
    assert by_severity[5] < by_severity[1] - 0.05, by_severity
    report = json.loads((tmp_path / "eval.json").read_text())["corruptions"]
    assert report["regenerated"] and report["mean_top1"] == pytest.approx(
        np.mean([float(r["top1"]) for r in rows]), abs=1e-6
    )
    assert line["corruption_mean_top1"] == pytest.approx(report["mean_top1"])
    assert report["clean_top1"] >= by_severity[1]
    assert (tmp_path / "corruptions.png").stat().st_size > 10_000


def test_eval_decodes_the_data_once_unless_scales_decoded_it_larger(
    patch_run, tmp_path, monkeypatch, capsys
):
    """The corruptions reuse the images ``score`` decoded; after multi-scale testing (decoded
    at the largest scale) they decode again at the model's own size, as without scales. Multi-
    scale testing of the held-out split works: the split is checked by the fingerprint the files
    have at the training size, without decoding them at that size."""
    import importlib

    predict = importlib.import_module("resnets.eval.predict")  # the module, not the function
    run, data, _ = patch_run
    sizes = []
    real = predict.load_dataset

    def counting(*args, **kwargs):
        sizes.append(kwargs["image_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(predict, "load_dataset", counting)
    argv = ["eval", "--weights", str(run), "--data", str(data), "--subset", "val"]
    argv += ["--corruptions", "contrast", "--severities", "1", "--no-progress", "--json"]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    plain_sizes, sizes[:] = list(sizes), []
    assert main([*argv, "--scales", "48", "--out", str(tmp_path / "scales")]) == 0, (
        capsys.readouterr()
    )
    # scored at 48; the held-out split checked by the files' fingerprints at the model's size
    # (no decode at that size), and the corruptions run at the model's size
    assert len(plain_sizes) == 1 and sizes == [48, plain_sizes[0]], (plain_sizes, sizes)
    read = [
        json.loads((tmp_path / d / "eval.json").read_text())["corruptions"]
        for d in ("plain", "scales")
    ]
    assert read[0]["clean_top1"] == read[1]["clean_top1"]  # the same images at the same size


def test_an_unknown_corruption_is_a_one_line_error(patch_run, capsys):
    run, data, _ = patch_run
    assert (
        main(["eval", "--weights", str(run), "--data", str(data), "--corruptions", "fog,sandstorm"])
        == 2
    )
    err = capsys.readouterr().err
    assert "'sandstorm': not a corruption" in err and len(err.strip().splitlines()) == 1
    assert (
        main(
            [
                "eval",
                "--weights",
                str(run),
                "--data",
                str(data),
                "--corruptions",
                "all",
                "--severities",
                "0,6",
            ]
        )
        == 2
    )


def test_a_corrupted_subset_spreads_over_every_class():
    """Held-out indices come grouped by class: N of them are taken evenly spaced, so a
    1,000-image subset of a 10-class split holds 100 of each, not two classes."""
    from resnets.eval.corruptions import spread_subset

    grouped = np.repeat(np.arange(10), 500)  # labels of a class-sorted 5,000-image split
    picked = spread_subset(np.arange(5000), 1000)
    assert len(picked) == 1000 and np.bincount(grouped[picked]).tolist() == [100] * 10
    assert spread_subset(np.arange(7), 0).tolist() == list(range(7))
