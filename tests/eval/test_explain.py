"""Explanations that mean something: Grad-CAM points at what decides the class."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from resnets.cli import main
from resnets.data.images import decode_image
from resnets.data.select import select_samples
from resnets.eval.explain import explain_image, overlay, overlay_png
from resnets.inference import load_weights
from resnets.models import create_model

from ..conftest import needs

pytestmark = needs("captum")


def _val_files(lm, boxes):
    """The files of the validation split the run held out (class folders in sorted order)."""
    files = sorted(boxes)
    classes = sorted({f.split("/")[0] for f in files})
    labels = np.array([classes.index(f.split("/")[0]) for f in files])
    sp = lm.meta.split
    sel = select_samples(labels, classes, val_split=sp["val_split"], seed=sp["seed"])
    return [files[i] for i in sel.val_idx]


def _hit_rate(lm, data, boxes, files, method="gradcam"):
    hits = 0
    for f in files:
        e = explain_image(lm, decode_image(data / f), f, methods=(method,))
        r, c = e.peak(method)
        r0, c0, side = boxes[f]
        hits += r0 <= r < r0 + side and c0 <= c < c0 + side
    return hits / len(files)


@pytest.mark.slow
def test_gradcam_peak_falls_inside_the_patch_that_decides_the_class(patch_run):
    run, data, boxes = patch_run
    lm = load_weights(run)
    assert lm.meta.metrics["top1"] > 0.95  # the model did learn the task
    files = _val_files(lm, boxes)
    assert len(files) == 120
    trained = _hit_rate(lm, data, boxes, files)
    assert trained >= 0.8, trained
    # control: the same architecture untrained points at the patch far less often, so the
    # hit rate measures what the training learned, not the patch's contrast alone
    untrained = load_weights(run)
    untrained.model.load_state_dict(create_model("resnet8", num_classes=4).state_dict())
    assert _hit_rate(untrained, data, boxes, files[:40]) < trained - 0.3


def test_integrated_gradients_add_up_and_mark_the_patch(patch_run):
    run, data, boxes = patch_run
    lm = load_weights(run)
    f = _val_files(lm, boxes)[0]
    e = explain_image(lm, decode_image(data / f), f, methods=("ig",))
    assert e.ig_delta is not None and e.ig_delta < 0.05 * max(1.0, abs(e.top[0]["prob"]))
    m = e.maps["ig"]
    r0, c0, side = boxes[f]
    inside = m[r0 : r0 + side, c0 : c0 + side].mean()
    assert inside > 2 * m.mean()  # attribution concentrates on the patch
    assert m.shape == (32, 32) and 0 <= m.min() and m.max() <= 1


def test_explain_command_writes_figures_overlays_and_json(patch_run, tmp_path, capsys):
    run, data, boxes = patch_run
    imgs = [data / "red" / "0000.png", data / "blue" / "0001.png"]
    out = tmp_path / "why"
    assert main(["explain", "--weights", str(run), *map(str, imgs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2  # one line per image: its top classes, its figure, its target
    for line, img, target in zip(printed, imgs, ("red", "blue")):
        assert line.startswith(f"{img}: ") and f" -> {out}" in line, line
        assert line.endswith(f"(explaining '{target}')"), line
    rows = json.loads((out / "explain.json").read_text())
    assert [r["target"] for r in rows] == ["red", "blue"]
    for r in rows:
        assert r["top"][0]["class"] == r["target"] and len(r["top"]) == 4
        fig = Image.open(out / r["figure"])
        assert fig.size[0] > fig.size[1] > 200  # input, two overlays and the bars, side by side
        for m in ("gradcam", "ig"):
            ov = np.asarray(Image.open(out / r["overlays"][m]))
            assert ov.shape == (224, 224, 3)
    # the figure is not blank: it holds the image's colours
    assert (
        len(
            np.unique(
                np.asarray(Image.open(out / rows[0]["figure"]).convert("RGB")).reshape(-1, 3),
                axis=0,
            )
        )
        > 100
    )
    # a chosen target class
    assert (
        main(
            [
                "explain",
                "--weights",
                str(run),
                str(imgs[0]),
                "--out",
                str(out / "t"),
                "--target",
                "green",
                "--method",
                "gradcam",
                "--json",
            ]
        )
        == 0
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]
    assert row["target"] == "green" and set(row["overlays"]) == {"gradcam"}


def test_overlay_is_the_image_where_the_heat_is_zero():
    view = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    ov = overlay(view, np.zeros((8, 8), np.float32), alpha=0.0, min_side=16)
    assert ov.shape == (16, 16, 3) and (ov[::2, ::2] == view).all()
    hot = overlay(view, np.ones((8, 8), np.float32), alpha=1.0, min_side=8)
    assert (hot == hot[0, 0]).all()  # one colour: the top of the colour map


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--method", "lime"], "--method 'lime'"),
        (["--target", "zebra"], "--target 'zebra'"),
    ],
)
def test_bad_explain_options_are_one_line_errors(patch_run, tmp_path, capsys, argv, msg):
    run, data, _ = patch_run
    code = main(
        [
            "explain",
            "--weights",
            str(run),
            str(data / "red" / "0000.png"),
            "--out",
            str(tmp_path / "o"),
            *argv,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_explaining_an_exported_model_says_why_it_cannot(patch_run, tmp_path, capsys):
    _, data, _ = patch_run
    exported = tmp_path / "model.onnx"
    exported.write_bytes(b"not read: refused on its kind")
    out = tmp_path / "o"
    code = main(
        ["explain", "--weights", str(exported), str(data / "red" / "0000.png"), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "need gradients" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_overlay_png_is_a_png(patch_run):
    run, data, _ = patch_run
    lm = load_weights(run)
    e = explain_image(lm, decode_image(data / "green" / "0002.png"), methods=("gradcam",))
    png = overlay_png(e)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "name", ["preact_resnet110", "densenet_bc_100_12", "concat20", "fast_resnet8", "wrn_16_4"]
)
def test_every_family_can_be_explained(name):
    from resnets.inference import wrap_module
    from resnets.models.weights import WeightsMeta

    net = create_model(name, num_classes=10).eval()
    lm = wrap_module(net, WeightsMeta(model=name, mean=[128.0] * 3, std=[64.0] * 3), name)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    e = explain_image(lm, img, methods=("gradcam",))
    assert e.maps["gradcam"].shape == (32, 32) and np.isfinite(e.maps["gradcam"]).all()


def test_explain_never_overwrites_an_input_or_its_own_outputs(patch_run, tmp_path):
    """--out in the images' own folder, and inputs whose output names collide (same stem,
    a stem that looks like another's overlay): every input survives byte for byte and every
    output is a file of its own."""
    run, data, _ = patch_run
    folder = tmp_path / "pics"
    folder.mkdir()
    src = data / "red" / "0000.png"
    names = ["cat.png", "cat.jpg", "cat.gradcam.png", "cat-2.png", "explain.png"]
    for n in names:
        Image.open(src).convert("RGB").save(folder / n)
    before = {n: (folder / n).read_bytes() for n in names}
    assert (
        main(
            [
                "explain",
                "--weights",
                str(run),
                *(str(folder / n) for n in names),
                "--out",
                str(folder),
                "--method",
                "gradcam",
            ]
        )
        == 0
    )
    assert {n: (folder / n).read_bytes() for n in names} == before
    rows = json.loads((folder / "explain.json").read_text())
    outputs = [r["figure"] for r in rows] + [f for r in rows for f in r["overlays"].values()]
    assert len(outputs) == len(set(outputs)) == 2 * len(names)
    assert not set(outputs) & set(names)
    for f in outputs:
        assert Image.open(folder / f).size[0] > 100
    # an input named explain.json in --out is refused, not replaced
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "explain.json").write_bytes(src.read_bytes())
    assert (
        main(
            [
                "explain",
                "--weights",
                str(run),
                str(tmp_path / "j" / "explain.json"),
                "--out",
                str(tmp_path / "j"),
            ]
        )
        == 2
    )
    assert (tmp_path / "j" / "explain.json").read_bytes() == src.read_bytes()
