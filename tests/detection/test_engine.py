"""Detection runs: a run folder like classification's, resumed bit for bit, scored by COCO mAP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnets.detection.coco import SyntheticSpec, generate_from_cifar
from resnets.detection.engine import DetectTrainConfig, train_detector
from resnets.errors import CheckpointError, ConfigError, DataError, WeightsError
from resnets.models.record import read_meta

from ..conftest import make_image_folder

SMALL = {"fpn_channels": 16, "box_head_width": 32, "rpn_pre_nms": 200, "rpn_post_nms_test": 50}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    src = make_image_folder(root / "src", per_class=8, size=32)
    spec = SyntheticSpec(size=64, max_objects=2, min_side=12, max_side=40)
    train_dir = generate_from_cifar(src, root / "train", images=8, split="train", spec=spec)
    val_dir = generate_from_cifar(src, root / "val", images=4, split="val", spec=spec)
    return train_dir, val_dir


@pytest.fixture(scope="module")
def trained(folders, tmp_path_factory):
    """One finished 1-epoch run (``runs/resnet18-s0``, as the claims report names runs) and its
    summary, shared by the tests that only read it."""
    run = tmp_path_factory.mktemp("trained") / "runs" / "resnet18-s0"
    return run, train_detector(_cfg(folders, epochs=1), run, progress=False)


def _cfg(folders, **changes) -> DetectTrainConfig:
    values = dict(
        train=str(folders[0]),
        val=str(folders[1]),
        epochs=2,
        batch_size=4,
        warmup_iters=2,
        milestones=(1,),
        threads=1,
        detector=SMALL,
    )
    return DetectTrainConfig(**{**values, **changes})


def test_a_run_resumed_mid_epoch_ends_with_the_same_weights(folders, tmp_path):
    """Through the one training loop, with the weights' average on (EMA comes from the loop
    for detection too: scored beside the raw weights, kept in the checkpoint, saved as the
    final weights with ema_final)."""
    import torch
    from safetensors.torch import load_file

    from resnets.checkpoint import load_checkpoint

    averaged = {"ema": 0.5, "ema_final": True}
    straight = train_detector(_cfg(folders, **averaged), tmp_path / "straight", progress=False)
    assert 0.0 <= straight["map"] <= 1.0 and straight["epoch"] == 2
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in rows] == [1, 2] and "loss_classifier" in rows[0]
    assert straight["map"] == rows[-1]["ema_map"]  # the final weights are the average
    raw = load_checkpoint(tmp_path / "straight" / "last.ckpt")["model"]
    saved = load_file(tmp_path / "straight" / "model.safetensors")
    assert not all(torch.equal(raw[k], saved[k]) for k in saved)  # not the raw last weights
    cut = train_detector(
        _cfg(folders, **averaged), tmp_path / "cut", progress=False, stop_after=3
    )  # mid epoch 2
    assert (
        cut["stopped"] == 3
        and cut["by"] == "stop_after"
        and not (tmp_path / "cut" / "model.safetensors").exists()
    )
    with pytest.raises(ConfigError, match="already holds a run"):
        train_detector(_cfg(folders, **averaged), tmp_path / "cut", progress=False)
    resumed = train_detector(None, tmp_path / "cut", resume=True, progress=False)
    assert resumed["map"] == straight["map"]
    a = (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "cut" / "model.safetensors").read_bytes()
    # one weights format: the classifier's record, task "detection", its mAP in the metrics
    record = read_meta(tmp_path / "cut" / "model.safetensors")
    assert (record.task, record.model, record.classes) == (
        "detection",
        "resnet18",
        ["cat", "dog", "frog"],
    )
    assert record.metrics["box_map"] == straight["map"] and record.metrics["n"] == 4
    assert record.detector == SMALL and record.final["train_config"]["epochs"] == 2
    # the log says where it stopped and that it resumed; metrics hold each epoch once
    log = (tmp_path / "cut" / "train.log").read_text()
    assert "stopped at iteration 3" in log and "resumed" in log
    # every metrics line the same too, each loss's mean over the epoch included
    lines = {name: (tmp_path / name / "metrics.jsonl").read_text() for name in ("straight", "cut")}
    assert lines["cut"] == lines["straight"] and [json.loads(x)["epoch"] for x in lines["cut"].splitlines()] == [1, 2]  # fmt: skip


def test_a_detection_run_in_bf16_autocast_trains_and_differs_from_fp32(folders, trained, tmp_path):
    """precision=bf16: the step runs under bf16 autocast (the detector's RoIAlign keeps the
    features' dtype), evaluation stays fp32; the weights are not the fp32 run's (the autocast
    did something), the run ends with a scored file."""
    from safetensors.torch import load_file

    summary = train_detector(
        _cfg(folders, epochs=1, precision="bf16"), tmp_path / "b", progress=False
    )
    assert 0.0 <= summary["map"] <= 1.0
    fp32 = load_file(trained[0] / "model.safetensors")
    bf16 = load_file(tmp_path / "b" / "model.safetensors")
    assert fp32.keys() == bf16.keys() and any((fp32[k] != bf16[k]).any() for k in fp32)


def test_a_detection_checkpoint_of_the_format_before_the_one_loop_is_named(folders, tmp_path):
    """Old detection run folders: their checkpoint is refused in one line that says what it
    is and what to do, and the claim on the folder is given back."""
    import torch

    from resnets.checkpoint import save_checkpoint

    cut = train_detector(_cfg(folders), tmp_path / "run", progress=False, stop_after=1)
    assert cut["stopped"] == 1
    old = {"model": {}, "optimizer": {}, "state": {"epoch": 0, "batch": 1, "step": 1},
           "rng": torch.get_rng_state()}  # fmt: skip
    save_checkpoint(tmp_path / "run" / "last.ckpt", old)
    for _ in range(2):  # refused twice: the first refusal left no claim behind
        with pytest.raises(CheckpointError, match="format before the one training loop") as e:
            train_detector(None, tmp_path / "run", resume=True, progress=False)
        assert "\n" not in str(e.value)


def test_bad_settings_and_mismatched_folders_are_one_line_errors(folders, tmp_path):
    with pytest.raises(ConfigError, match="not fields of DetectorConfig"):
        train_detector(_cfg(folders, detector={"fpn_width": 3}), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="epochs=0: a whole number in 1..10000"):
        train_detector(_cfg(folders, epochs=0), tmp_path / "b", progress=False)
    # issue 44, C12: every detector setting range-checked before the run folder is made
    for bad, message in (
        ({"roi_size": 100000}, "roi_size=100000: a whole number in 1..14"),
        ({"fpn_channels": 100000}, "fpn_channels=100000"),
        ({"box_nms": float("nan")}, "box_nms=nan"),
        ({"aspect_ratios": []}, "aspect_ratios=\\[\\]"),
        ({"rpn_batch": True}, "rpn_batch=True"),
    ):
        with pytest.raises(ConfigError, match=message):
            train_detector(_cfg(folders, detector=bad), tmp_path / "e", progress=False)
        assert not (tmp_path / "e").exists()
    with pytest.raises(ConfigError, match="lr=0.0"):
        train_detector(_cfg(folders, lr=0.0), tmp_path / "f", progress=False)
    with pytest.raises(ConfigError, match="ema_final needs ema > 0"):
        train_detector(_cfg(folders, ema_final=True), tmp_path / "g", progress=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train_detector(None, tmp_path / "nothing", resume=True, progress=False)
    other = tmp_path / "other"
    src = make_image_folder(tmp_path / "src2", classes=("ant", "bee"), per_class=4, size=32)
    generate_from_cifar(src, other, images=2, spec=SyntheticSpec(size=64, max_side=30))
    with pytest.raises(DataError, match="are not the training set's"):
        train_detector(_cfg(folders, val=str(other)), tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="weights of resnet20, not of --backbone resnet18"):
        train_detector(_cfg(folders, init="resnet20.cifar10"), tmp_path / "d", progress=False)


def test_the_detect_commands_end_to_end(tmp_path, capsys):
    from resnets.cli import main

    src = make_image_folder(tmp_path / "src", per_class=8, size=32)
    for split, n in (("train", 6), ("val", 3)):
        argv = ["detect", "data", str(src), str(tmp_path / split), "--images", str(n)]
        assert main([*argv, "--split", split, "--size", "64", "--json"]) == 0
        info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert info["images"] == n and info["objects"] >= n
    argv = ["detect", "train", "--train", str(tmp_path / "train"), "--val", str(tmp_path / "val")]
    argv += ["--out", str(tmp_path / "run"), "--epochs", "1", "--threads", "1", "--no-progress"]
    argv += ["--set", "warmup_iters=2"]  # any config key, as `resnets train --set` takes
    assert main([*argv, "--detector", json.dumps(SMALL), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert (stored["warmup_iters"], stored["epochs"], stored["detector"]) == (2, 1, SMALL)
    resume = ["detect", "train", "--resume", str(tmp_path / "run"), "--lr", "0.5"]
    assert main(resume) == 2  # a resumed run keeps its own config
    assert "these cannot change: lr" in capsys.readouterr().err
    argv = ["detect", "eval", "--weights", str(tmp_path / "run"), "--data", str(tmp_path / "val")]
    assert main([*argv, "--no-progress", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the saved weights, loaded and scored again, give the run's own last evaluation
    assert scores["map"] == summary["map"] and scores["images"] == 3
    figure = tmp_path / "figs" / "val.png"
    assert main([*argv, "--no-progress", "--figure", str(figure), "--threshold", "0"]) == 0
    assert "mAP@[.5:.95]" in capsys.readouterr().out
    from PIL import Image

    with Image.open(figure) as im:  # 3 images of 64 px, drawn at twice the size, 4 columns
        assert im.size == (4 * 128, 128)
    # predict: image files in, objects out (JSON), a picture per image
    image = tmp_path / "val" / "images" / "000000.png"
    argv = ["detect", "predict", "--weights", str(tmp_path / "run"), str(image)]
    assert main([*argv, "--threshold", "0", "--out", str(tmp_path / "drawn"), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert result["image"] == str(image)
    assert all(
        o["class"] in ("cat", "dog", "frog") and len(o["box"]) == 4 for o in result["objects"]
    )
    assert (tmp_path / "drawn" / "000000.boxes.png").is_file()
    # issue 44: two inputs of one name get two pictures, and a picture never replaces an
    # input that bears its name (the classification side's naming helper, shared)
    twin = tmp_path / "twin" / "000000.png"
    twin.parent.mkdir()
    twin.write_bytes(image.read_bytes())
    planted = tmp_path / "drawn2" / "000000.boxes.png"
    planted.parent.mkdir()
    planted.write_bytes(image.read_bytes())
    argv2 = [*argv, str(twin), str(planted), "--threshold", "0", "--out", str(planted.parent)]
    assert main([*argv2, "--json"]) == 0
    capsys.readouterr()
    assert planted.read_bytes() == image.read_bytes()  # the input is untouched
    drawn = sorted(p.name for p in planted.parent.iterdir())
    assert drawn == ["000000-2.boxes.png", "000000-3.boxes.png", "000000.boxes.boxes.png",
                     "000000.boxes.png"]  # fmt: skip
    assert main([*argv[:-1], str(tmp_path / "nothing.png")]) == 2
    assert "nothing.png" in capsys.readouterr().err
    tall = tmp_path / "tall.png"
    Image.new("RGB", (40, 1100)).save(tall)
    assert main([*argv[:-1], str(tall)]) == 2
    assert "up to 1024 px a side" in capsys.readouterr().err
    # bad input: one line each, exit code 2
    bad = ["detect", "train", "--train", "x", "--val", "y", "--out", str(tmp_path / "r2")]
    assert main([*bad, "--detector", "{oops"]) == 2
    assert "detector: expected a JSON object of settings" in capsys.readouterr().err
    assert main(["detect", "eval", "--weights", str(tmp_path / "src"), "--data", "x"]) == 2
    assert "holds no model.safetensors" in capsys.readouterr().err
    (tmp_path / "fake.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert (
        main(["detect", "eval", "--weights", str(tmp_path / "fake.safetensors"), "--data", "x"])
        == 2
    )
    assert "holds no resnets detector record" in capsys.readouterr().err
    assert main(["detect", "data", str(src), str(tmp_path / "train")]) == 2  # not empty
    assert "not an empty folder" in capsys.readouterr().err


def test_a_tampered_detector_file_is_refused_before_loading(trained, tmp_path):
    import os

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from resnets.inference import load_weights

    def load(path):
        return load_weights(path, task="detection")

    run = trained[0]
    good = run / "model.safetensors"
    # the classifier commands' loader says what the file is, in one line, before any tensor
    for source in (good, run):
        with pytest.raises(WeightsError, match="a resnets detector's weights") as caught:
            load_weights(source)
        assert "\n" not in str(caught.value)
    with pytest.raises(WeightsError, match="a classifier's weights \\(resnet20\\), not a detector"):
        load("resnet20.cifar10")
    with safe_open(str(good), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(good))
    name = "cls_score.weight"

    def tampered(file: str, state=tensors, record=None) -> str:
        save_file(state, str(tmp_path / file), metadata={"resnets": record or metadata["resnets"]})
        return str(tmp_path / file)

    with pytest.raises(WeightsError, match=f"the file's {name} is \\[8, 32\\]"):
        load(tampered("rows.safetensors", {**tensors, name: tensors[name].repeat(2, 1)}))
    with pytest.raises(WeightsError, match="shape mismatch .*bbox_pred.weight"):
        load(tampered("shape.safetensors", {**tensors, "bbox_pred.weight": tensors[name].clone()}))
    with pytest.raises(WeightsError, match=f"wrong dtype: {name} float64"):
        load(tampered("dtype.safetensors", {**tensors, name: tensors[name].double()}))
    with pytest.raises(WeightsError, match="unexpected keys: surprise"):
        load(tampered("extra.safetensors", {**tensors, "surprise": tensors[name].clone()}))
    with pytest.raises(WeightsError, match="malformed resnets metadata"):
        load(tampered("record.safetensors", record="{not json"))
    # a record asking for a detector far larger than its tensors is refused by its bounds
    # before anything is built; an unknown setting and a NaN weight are refused too
    record = json.loads(metadata["resnets"])
    huge = {**record, "detector": {**record["detector"], "fpn_channels": 100000}}
    with pytest.raises(WeightsError, match="malformed detector record .*fpn_channels=100000"):
        load(tampered("huge.safetensors", record=json.dumps(huge)))
    odd = {**record, "detector": {"fpn_width": 3}}
    with pytest.raises(WeightsError, match="\\['fpn_width'\\] are not fields of DetectorConfig"):
        load(tampered("odd.safetensors", record=json.dumps(odd)))
    nan = {**tensors, name: tensors[name].clone().fill_(float("nan"))}
    with pytest.raises(WeightsError, match="non-finite values"):
        load(tampered("nan.safetensors", nan))
    # the classification side's file check: a FIFO is refused without a read (no hang)
    os.mkfifo(tmp_path / "fifo.safetensors")
    with pytest.raises(WeightsError, match="not a regular file"):
        load(tmp_path / "fifo.safetensors")
    loaded = load(run)
    assert loaded.classes == ["cat", "dog", "frog"] and not loaded.model.training


def test_a_detector_file_of_the_format_before_loads_and_detects_the_same(
    folders, trained, tmp_path
):
    """Detectors saved before the one weights format (their record under resnets_detector,
    the images normalised outside the network) load, and find the same boxes."""
    import torch
    from safetensors.torch import load_file, save_file

    from resnets.detection.coco import collate, read_coco
    from resnets.inference import load_weights

    run = trained[0]
    now = load_weights(run, task="detection")
    config = json.loads((run / "config.json").read_text())["config"]
    before = {"config": config, "classes": now.classes}
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(run / "model.safetensors")), str(old),
              metadata={"resnets_detector": json.dumps(before)})  # fmt: skip
    then = load_weights(old, task="detection")
    assert then.meta.task == "detection" and then.classes == now.classes
    images, _ = collate(read_coco(folders[1]), [0, 1, 2, 3])
    with torch.no_grad():
        for a, b in zip(now.model(images), then.model(images)):
            assert all(torch.equal(a[k], b[k]) for k in ("boxes", "scores", "labels"))
    with pytest.raises(WeightsError, match="a resnets detector's weights"):
        load_weights(old)


def test_a_flipped_training_image_keeps_its_boxes_on_its_objects(folders):
    """Horizontal flips move each box with its object: the pixels inside the flipped box are
    the mirror image of those inside the original box."""
    import torch

    from resnets.detection.coco import collate, read_coco

    data = read_coco(folders[0])
    plain, plain_targets = collate(data, [0, 1])
    flipped, flipped_targets = collate(data, [0, 1], flips=[True, False])
    assert torch.equal(flipped[1], plain[1]) and torch.equal(
        flipped_targets[1]["boxes"], plain_targets[1]["boxes"]
    )
    assert torch.equal(flipped[0], plain[0].flip(2))
    for before, after in zip(plain_targets[0]["boxes"].long(), flipped_targets[0]["boxes"].long()):
        x1, y1, x2, y2 = before.tolist()
        fx1, fy1, fx2, fy2 = after.tolist()
        assert (fy1, fy2) == (y1, y2) and fx2 - fx1 == x2 - x1
        assert torch.equal(flipped[0][:, fy1:fy2, fx1:fx2], plain[0][:, y1:y2, x1:x2].flip(2))


def test_sigterm_stops_a_detection_run_with_a_checkpoint(folders, tmp_path):
    import os
    import signal
    import time

    from ..conftest import finish
    from ..warm import warm_resnets

    run = tmp_path / "run"
    argv = ["detect", "train", "--train", str(folders[0]), "--val", str(folders[1])]
    argv += ["--out", str(run), "--epochs", "500", "--threads", "1"]
    argv += ["--detector", json.dumps(SMALL), "--no-progress"]
    proc = warm_resnets(*argv)  # a process of its own, without the interpreter's start-up
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        log = run / "train.log"
        if log.is_file() and "epoch 1/500" in log.read_text():
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = finish(proc, 120, "a detection run stopping on SIGTERM")
    assert proc.returncode == 143, err  # as `resnets train` exits on SIGTERM
    assert (run / "last.ckpt").is_file() and not (run / "model.safetensors").exists()
    assert "stopped at iteration" in (run / "train.log").read_text()
    # the checkpoint resumes (one more step here)
    assert train_detector(None, run, resume=True, progress=False, stop_after=1)["stopped"] >= 3


def test_the_claims_report_draws_each_backbones_detections(trained, tmp_path):
    """Every backbone's seed 0 is drawn (here the one run, and a copy of it standing for a
    second backbone: each picture is made from its own folder)."""
    import shutil

    from PIL import Image

    from resnets.analysis.experiments.detection import write_detection_report

    runs = tmp_path / "runs"
    shutil.copytree(trained[0], runs / "resnet18-s0")
    shutil.copytree(trained[0], runs / "resnet34-s0")
    config = json.loads((runs / "resnet34-s0" / "config.json").read_text())
    config["config"]["backbone"] = "resnet34"
    (runs / "resnet34-s0" / "config.json").write_text(json.dumps(config))
    verdict = write_detection_report(runs, tmp_path / "report")
    assert verdict.outcome == "missing"  # no plain18 run
    text = (tmp_path / "report" / "RESULTS.md").read_text()
    for run in ("resnet18-s0", "resnet34-s0"):
        assert f"![boxes-{run}.png](boxes-{run}.png)" in text
        with Image.open(tmp_path / "report" / f"boxes-{run}.png") as im:
            assert im.size == (4 * 128, 128)  # the 4 validation images at twice their size


def test_a_detector_is_a_weights_file_like_any_other(
    folders, trained, tmp_path, monkeypatch, capsys
):
    """Issue 43, item 2: packaged by name, listed, described, loaded by load_weights and
    torch.hub, carded, and an --init for a classifier (its backbone) or a detector."""
    import importlib.util

    import torch

    from resnets.cli import main
    from resnets.inference import load_weights
    from resnets.models import catalogue, create_model
    from resnets.train import build_config
    from resnets.train.detection import new_detector
    from resnets.train.run_files import RunLog
    from resnets.train.transfer import load_backbone, read_init

    (run, summary), shipped = trained, tmp_path / "weights"
    name = "fasterrcnn_resnet18_fpn.toy"
    argv = ["weights", "package", str(run), "--out", str(shipped)]
    assert main([*argv, "--name", "resnet18.toy"]) == 2
    assert "its name starts fasterrcnn_resnet18_fpn." in capsys.readouterr().err
    assert main([*argv, "--name", name, "--json"]) == 0
    packaged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = read_meta(shipped / f"{name}.safetensors")
    # measured again in fp32 on the validation folder: the run's own last evaluation
    assert packaged["box_map"] == record.metrics["box_map"] == summary["map"]
    assert (shipped / f"{name}.sha256").read_text().split()[0] == packaged["sha256"]

    # registered by name as the package's own files are (here from a temporary folder)
    monkeypatch.setattr(catalogue, "PACKAGE_WEIGHTS", shipped)
    monkeypatch.setattr(catalogue, "_PRETRAINED", dict(catalogue._PRETRAINED))
    monkeypatch.setattr(catalogue, "_DEFAULT_TAG", dict(catalogue._DEFAULT_TAG))
    catalogue._register_shipped()
    assert main(["weights", "list", "fasterrcnn*", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["task"], row["box_map"], row["top1"]) == ("detection", summary["map"], None)
    assert main(["weights", "info", name, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["task"] == "detection" and info["classes"] == ["cat", "dog", "frog"]
    loaded = load_weights(name, task="detection")
    spec = importlib.util.spec_from_file_location(
        "hubconf", Path(__file__).parents[2] / "hubconf.py"
    )
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    from_hub = getattr(hub, name)()
    assert from_hub.weights_meta.task == "detection" and not from_hub.training
    image = torch.rand(3, 64, 48)  # any size in [0, 1]: the detector pads and normalises it
    with torch.no_grad():
        (a,), (b,) = loaded.model([image]), from_hub([image])
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])

    # the card: COCO mAP measured now, on the folder the record's figure came from
    assert main(["weights", "card", name, "--data", str(folders[1]), "--out", str(tmp_path / "card"), "--no-progress"]) == 0  # fmt: skip
    card = (tmp_path / "card" / "CARD.md").read_text()
    assert f"| **{record.metrics['box_map']:.3f}** |" in card and "| cat |" in card
    assert (tmp_path / "card" / "detections.png").is_file()

    # --init: a classifier gets the detector's backbone, its head fresh for its own classes
    cfg = build_config("digits", cli_values={"model": "resnet18", "init": name})
    classifier = create_model("resnet18", num_classes=10)
    load_backbone(
        classifier,
        *read_init(cfg),
        [str(i) for i in range(10)],
        name,
        RunLog(tmp_path / "log", echo=False),
    )
    assert torch.equal(
        classifier.layer4[1].conv2.weight, loaded.model.backbone.layer4[1].conv2.weight
    )
    with pytest.raises(ConfigError, match="a detector on resnet18, not on --model resnet34"):
        read_init(build_config("digits", cli_values={"model": "resnet34", "init": name}))
    # ... and a detector every layer of it, less the class outputs for other classes
    tuned = new_detector(_cfg(folders, init=name), ["cat", "dog", "frog"])
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in tuned.state_dict().items())
    other = new_detector(_cfg(folders, init=name), ["ant", "bee"]).state_dict()
    assert other["cls_score.weight"].shape[0] == 3
    assert torch.equal(other["fpn.layer.0.weight"], loaded.model.state_dict()["fpn.layer.0.weight"])
