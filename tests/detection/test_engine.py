"""Detection runs: a run folder like classification's, resumed bit for bit, scored by COCO mAP."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from resnets.detection.coco import SyntheticSpec, generate_from_cifar
from resnets.detection.engine import DetectTrainConfig, train_detector
from resnets.errors import ConfigError, DataError, WeightsError

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
    straight = train_detector(_cfg(folders), tmp_path / "straight", progress=False)
    assert 0.0 <= straight["map"] <= 1.0 and straight["epoch"] == 2
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in rows] == [1, 2] and "loss_classifier" in rows[0]
    cut = train_detector(
        _cfg(folders), tmp_path / "cut", progress=False, stop_after=3
    )  # mid epoch 2
    assert cut == {"stopped": 3} and not (tmp_path / "cut" / "model.safetensors").exists()
    with pytest.raises(ConfigError, match="already holds a run"):
        train_detector(_cfg(folders), tmp_path / "cut", progress=False)
    resumed = train_detector(None, tmp_path / "cut", resume=True, progress=False)
    assert resumed["map"] == straight["map"]
    a = (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "cut" / "model.safetensors").read_bytes()
    with safe_open(str(tmp_path / "cut" / "model.safetensors"), "pt") as f:
        record = json.loads(f.metadata()["resnets_detector"])
    assert (
        record["classes"] == ["cat", "dog", "frog"] and record["config"]["backbone"] == "resnet18"
    )
    # the log says where it stopped and that it resumed; metrics hold each epoch once
    log = (tmp_path / "cut" / "train.log").read_text()
    assert "stopped at step 3" in log and "resumed" in log
    assert [json.loads(x)["epoch"] for x in (tmp_path / "cut" / "metrics.jsonl").open()] == [1, 2]


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
    assert main([*argv, "--detector", json.dumps(SMALL), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
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
    assert "a JSON object of DetectorConfig fields" in capsys.readouterr().err
    assert main(["detect", "eval", "--weights", str(tmp_path / "src"), "--data", "x"]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "fake.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert (
        main(["detect", "eval", "--weights", str(tmp_path / "fake.safetensors"), "--data", "x"])
        == 2
    )
    assert "not a resnets detector" in capsys.readouterr().err
    assert main(["detect", "data", str(src), str(tmp_path / "train")]) == 2  # not empty
    assert "not an empty folder" in capsys.readouterr().err


def test_a_tampered_detector_file_is_refused_before_loading(folders, tmp_path):
    from safetensors.torch import load_file, save_file

    from resnets.detection.engine import load_detector

    train_detector(_cfg(folders, epochs=1), tmp_path / "run", progress=False)
    good = tmp_path / "run" / "model.safetensors"
    # the classifier's loader says what the file is, in one line, before reading a tensor
    from resnets.inference import load_weights

    for source in (good, tmp_path / "run"):
        with pytest.raises(WeightsError, match="a resnets detector's weights") as caught:
            load_weights(source)
        assert "\n" not in str(caught.value)
    from safetensors import safe_open

    with safe_open(str(good), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(good))
    name = "cls_score.weight"
    bigger = {**tensors, name: tensors[name].repeat(2, 1)}
    save_file(bigger, str(tmp_path / "shape.safetensors"), metadata=metadata)
    with pytest.raises(DataError, match=f"tensor {name} is F32"):
        load_detector(tmp_path / "shape.safetensors")
    wrong_type = {**tensors, name: tensors[name].double()}
    save_file(wrong_type, str(tmp_path / "dtype.safetensors"), metadata=metadata)
    with pytest.raises(DataError, match="is F64"):
        load_detector(tmp_path / "dtype.safetensors")
    extra = {**tensors, "surprise": tensors[name].clone()}
    save_file(extra, str(tmp_path / "extra.safetensors"), metadata=metadata)
    with pytest.raises(DataError, match="unexpected \\['surprise'\\]"):
        load_detector(tmp_path / "extra.safetensors")
    broken = {**metadata, "resnets_detector": "{not json"}
    save_file(tensors, str(tmp_path / "record.safetensors"), metadata=broken)
    with pytest.raises(DataError, match="malformed detector record"):
        load_detector(tmp_path / "record.safetensors")
    # issue 44, W01: a record asking for a detector far larger than its tensors is refused by
    # its bounds before anything is built; a NaN weight is refused too
    import json

    huge = json.loads(metadata["resnets_detector"])
    huge["config"]["detector"] = {**huge["config"]["detector"], "fpn_channels": 100000}
    save_file(tensors, str(tmp_path / "huge.safetensors"),
              metadata={**metadata, "resnets_detector": json.dumps(huge)})  # fmt: skip
    with pytest.raises(DataError, match="fpn_channels=100000"):
        load_detector(tmp_path / "huge.safetensors")
    nan = {**tensors, name: tensors[name].clone().fill_(float("nan"))}
    save_file(nan, str(tmp_path / "nan.safetensors"), metadata=metadata)
    with pytest.raises(WeightsError, match="non-finite values"):
        load_detector(tmp_path / "nan.safetensors")
    # the classification side's file check: a FIFO is refused without a read (no hang)
    import os

    os.mkfifo(tmp_path / "fifo.safetensors")
    with pytest.raises(WeightsError, match="not a regular file"):
        load_detector(tmp_path / "fifo.safetensors")
    model, record = load_detector(tmp_path / "run")
    assert record["classes"] == ["cat", "dog", "frog"] and not model.training


def test_a_flipped_training_image_keeps_its_boxes_on_its_objects(folders):
    """Horizontal flips move each box with its object: the pixels inside the flipped box are
    the mirror image of those inside the original box."""
    import torch

    from resnets.detection.coco import read_coco
    from resnets.detection.engine import collate

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
    import subprocess
    import sys
    import time

    from ..conftest import finish

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "resnets", "detect", "train", "--train", str(folders[0])]
    argv += ["--val", str(folders[1]), "--out", str(run), "--epochs", "500", "--threads", "1"]
    argv += ["--detector", json.dumps(SMALL), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        log = run / "train.log"
        if log.is_file() and "epoch 1/500" in log.read_text():
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = finish(proc, 120, "a detection run stopping on SIGTERM")
    assert proc.returncode == 130, err
    assert (run / "last.ckpt").is_file() and not (run / "model.safetensors").exists()
    assert "stopped at step" in (run / "train.log").read_text()
    # the checkpoint resumes (one more step here)
    assert train_detector(None, run, resume=True, progress=False, stop_after=1)["stopped"] >= 3


def test_the_claims_report_draws_each_backbones_detections(folders, tmp_path):
    from PIL import Image

    from resnets.analysis.detection import write_detection_report

    runs = tmp_path / "runs"
    train_detector(_cfg(folders, epochs=1), runs / "resnet18-s0", progress=False)
    verdict = write_detection_report(runs, tmp_path / "report")
    assert verdict.outcome == "missing"  # no plain18 run
    text = (tmp_path / "report" / "RESULTS.md").read_text()
    assert "![boxes-resnet18-s0.png](boxes-resnet18-s0.png)" in text
    with Image.open(tmp_path / "report" / "boxes-resnet18-s0.png") as im:
        assert im.size == (4 * 128, 128)  # the 4 validation images at twice their size
