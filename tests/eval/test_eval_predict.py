"""Evaluation, 10-crop, prediction, and weights loading on a real trained run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from resnets.cli import main
from resnets.data import load_dataset
from resnets.errors import DataError, WeightsError
from resnets.eval import Scoring, predict, score
from resnets.inference import TestTime, load_weights, model_from_weights
from resnets.models import create_model
from resnets.models.weights import read_weights


def test_eval_val_subset_matches_training_log(digits_run):
    lm = load_weights(digits_run)
    res, _ = score(lm, "digits", subset="val")
    last = json.loads((digits_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert res.n == 359
    assert res.err == pytest.approx(last["val_err"], abs=1.5 / 359)  # same data, same split
    assert res.top5 >= res.top1
    assert res.confusion.sum() == 359 and res.confusion.shape == (10, 10)


def test_ten_crop_averages_the_softmax_of_the_ten_views(digits_run):
    """10-crop testing (paper 3.4/4.2) is the mean of the ten views' softmax outputs: the
    evaluated loss and hits equal those computed view by view here."""
    import torch.nn.functional as F

    from resnets.data.augment import normalize_nchw
    from resnets.eval.metrics import evaluate

    lm = load_weights(digits_run)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (24, 8, 8, 1), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, 24))
    idx = np.arange(24)
    ten = evaluate(
        lm.model,
        images,
        labels,
        idx,
        views=dataclasses.replace(lm.views, pad=1),
        num_classes=10,
        test=TestTime(ten_crop=True),
        run=Scoring(batch_size=10),
    )
    # the reference views, cut by hand: 8x8 digits zero-padded by 1 to 10x10, 8x8 crops at the
    # corners (rows/cols 0 or 2) and the centre (1, 1), then the same five mirrored
    padded = F.pad(images.permute(0, 3, 1, 2), (1, 1, 1, 1))
    corners = [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]
    views = [padded[..., top : top + 8, left : left + 8] for top, left in corners]
    views += [v.flip(-1) for v in views]
    with torch.no_grad():
        lm.model.eval()
        probs = (
            sum(
                lm.model(normalize_nchw(v, torch.tensor(lm.mean), torch.tensor(lm.std))).softmax(1)
                for v in views
            )
            / 10
        )
    assert ten.correct1 == int((probs.argmax(1) == labels).sum())
    assert ten.loss_sum == pytest.approx(
        float(F.nll_loss(probs.log(), labels, reduction="sum")), rel=1e-5
    )
    one, _ = score(lm, "digits", subset="val")
    ten_val, _ = score(lm, "digits", subset="val", test=TestTime(ten_crop=True))
    assert abs(one.top1 - ten_val.top1) < 0.03  # a trained model: both views agree closely


def test_eval_cli_json_last_line_and_confusion_png(digits_run, tmp_path, capsys):
    rc = main(
        [
            "eval",
            "--weights",
            str(digits_run),
            "--data",
            "digits",
            "--json",
            "--out",
            str(tmp_path / "e"),
            "--no-progress",
        ]
    )
    assert rc == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last) >= {"top1", "top5", "n"} and last["n"] == 1797
    assert (tmp_path / "e" / "confusion.png").stat().st_size > 1000


def test_predict_cli(digits_run, tmp_path, capsys):
    d = load_dataset("digits")
    i = int(np.flatnonzero(d.labels == 3)[0])
    img = tmp_path / "three.png"
    Image.fromarray(d.images[i, :, :, 0]).resize((32, 32)).save(img)
    assert main(["predict", "--weights", str(digits_run), str(img), "--topk", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out[0]["top"]) == 3
    assert sum(t["prob"] for t in out[0]["top"]) <= 1.0 + 1e-6
    lm = load_weights(digits_run)
    assert predict(lm, [str(img)])[0]["top"][0]["class"] in lm.classes


def test_class_mismatch_is_an_error(digits_run, image_folder):
    lm = load_weights(digits_run)
    with pytest.raises(DataError, match="channels|class lists differ"):
        score(lm, str(image_folder))


def test_folder_with_some_of_the_classes_is_scored_by_name(tmp_path, monkeypatch):
    """A test folder lacking a class, in its own order, is scored against the model's classes."""
    from resnets.eval.predict import map_classes
    from resnets.train import build_config, train
    from tests.conftest import make_image_folder

    root = make_image_folder(tmp_path / "tr", classes=("a", "b", "c"), per_class=8)
    cfg = build_config(
        "digits",
        cli_values={
            "data": str(root),
            "epochs": 1.0,
            "iters": 0,
            "val_split": 3,
            "batch_size": 7,
            "augment": "none",
        },
    )
    train(cfg, tmp_path / "run", progress=False, echo=False)
    lm = load_weights(tmp_path / "run")
    sub = make_image_folder(tmp_path / "te", classes=("c", "a"), per_class=3)
    res, selection = score(lm, str(sub))
    assert res.n == 6 and res.confusion[1].sum() == 0  # no "b" images
    assert res.confusion[0].sum() == 3 and res.confusion[2].sum() == 3
    np.testing.assert_array_equal(map_classes(selection.data.classes, ["a", "b", "c"], "x"), [0, 2])
    bad = make_image_folder(tmp_path / "bad", classes=("a", "zebra"), per_class=2)
    import sys

    predict_module = sys.modules[
        "resnets.eval.predict"
    ]  # (the package's `predict` is the function)
    # the class names are checked before any image is decoded
    monkeypatch.setattr(
        predict_module, "load_dataset", lambda *a, **k: pytest.fail("decoded first")
    )
    with pytest.raises(DataError, match=r"in the data only: \['zebra'\]"):
        score(lm, str(bad))


def test_torchvision_style_pth_loads_strict_and_gives_same_outputs(tmp_path):
    """A plain state_dict .pth (torchvision's file format) loads with weights_only=True."""
    torch.manual_seed(0)
    src = create_model("resnet18").eval()
    torch.save(src.state_dict(), tmp_path / "resnet18-test.pth")
    net, meta = model_from_weights(tmp_path / "resnet18-test.pth", model="resnet18")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), src(x))
    assert meta.model == "resnet18"


def test_wrong_architecture_lists_mismatched_keys(tmp_path):
    torch.save(create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(WeightsError, match="missing keys: .*layer1.0.conv3"):
        model_from_weights(tmp_path / "r18.pth", model="resnet50")
    with pytest.raises(WeightsError, match="shape mismatch.*fc.weight"):
        model_from_weights(tmp_path / "r18.pth", model="resnet18", num_classes=10)


def test_weights_that_would_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"conv1.weight": torch.zeros(1), "x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="refused to load"):
        read_weights(tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="no such weights file"):
        read_weights(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        read_weights(tmp_path / "junk.safetensors")


def test_multi_scale_testing_averages_scales_and_mirrors(digits_run, capsys):
    """Paper 3.4 (Table 4): whole images at several sizes and their mirrors, softmax averaged."""
    import torch.nn.functional as F

    from resnets.data.augment import to_float_nchw
    from resnets.eval.metrics import evaluate

    lm = load_weights(digits_run)
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, 12))
    res = evaluate(
        lm.model,
        images,
        labels,
        np.arange(12),
        views=lm.views,
        num_classes=10,
        test=TestTime(scales=(8, 12)),
    )
    x = to_float_nchw(images, torch.tensor(lm.mean), torch.tensor(lm.std))
    with torch.no_grad():
        lm.model.eval()
        views = []
        for s in (8, 12):
            xs = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            views += [xs, xs.flip(3)]
        probs = sum(lm.model(v).softmax(1) for v in views) / 4
    assert res.correct1 == int((probs.argmax(1) == labels).sum())
    assert res.loss_sum == pytest.approx(
        float(F.nll_loss(probs.log(), labels, reduction="sum")), rel=1e-5
    )
    with pytest.raises(ValueError, match="pick one"):
        TestTime(scales=(8,), ten_crop=True)
    assert (
        main(
            [
                "eval",
                "--weights",
                str(digits_run),
                "--data",
                "digits",
                "--scales",
                "8,12",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scales"] == [8, 12]
    assert main(["eval", "--weights", str(digits_run), "--data", "digits", "--scales", "0"]) == 2


def test_a_backend_that_fails_at_import_is_probed_not_trusted(tmp_path):
    """Issue 44, E02: an openvino that is installed but breaks at import (a missing shared
    library) is left out of --backend auto, and named in one line when asked for."""
    import os
    import subprocess
    import sys

    from PIL import Image

    fake = tmp_path / "site" / "openvino"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('libopenvino.so.2540: cannot open')\n")
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (120, 30, 60)).save(image)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }

    def run(*backend: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "resnets", "predict", "--weights", "resnet20.cifar10"]
        return subprocess.run(
            [*argv, *backend, str(image)], env=env, capture_output=True, text=True, timeout=300
        )

    auto = run("--backend", "auto")
    assert auto.returncode == 0, auto.stderr[-2000:]
    asked = run("--backend", "openvino")
    assert asked.returncode == 2
    assert (
        "--backend openvino: installed but fails to import (ImportError: libopenvino"
        in asked.stderr
    )
    assert "Traceback" not in asked.stderr and len(asked.stderr.strip().splitlines()) == 1


def test_a_held_out_split_is_scored_decoding_only_its_images(patch_run, tmp_path, monkeypatch):
    """`--subset val` on a folder never decoded here decodes its held-out images alone (no
    cache is written, no other row can be read) and scores them as the whole decoded folder
    does: the same images, the same hits."""
    import resnets.data.folder as folder

    run, data, _ = patch_run
    lm = load_weights(run)
    monkeypatch.setenv("RESNETS_CACHE", str(tmp_path / "cache"))
    decoded = []
    real = folder._decode_one
    monkeypatch.setattr(folder, "_decode_one", lambda job: decoded.append(job[0]) or real(job))
    part, selection = score(lm, str(data), subset="val")
    assert isinstance(selection.data.images, folder.DecodedRows)
    held_out, every = part.n, len(selection.data)
    assert len(decoded) == len(selection.indices) == held_out == every // 5  # val_split 0.2
    assert not (tmp_path / "cache").exists()
    paths = [str(data / selection.data.paths[i]) for i in selection.indices]
    assert sorted(decoded) == sorted(paths)
    other = int(np.setdiff1d(np.arange(len(selection.data)), selection.indices)[0])
    with pytest.raises(IndexError, match=f"row {other} was not decoded"):
        selection.data.images[[int(selection.indices[0]), other]]
    # the whole folder decoded into the cache (one process: the counting patch is not pickled)
    load_dataset(str(data), image_size=lm.image_size, workers=1, progress=False)
    full, again = score(lm, str(data), subset="val")
    assert isinstance(again.data.images, np.memmap) and len(decoded) == held_out + every
    np.testing.assert_array_equal(again.indices, selection.indices)
    np.testing.assert_array_equal(full.hits, part.hits)
    assert full.top1 == part.top1 and full.loss_sum == pytest.approx(part.loss_sum, rel=1e-6)
    np.testing.assert_array_equal(
        again.data.images[again.indices], selection.data.images[selection.indices]
    )
