"""Every write has an owner: a command writes where the user pointed it or to a default of its
own, refuses (exit 2, one line, before any work) a target that belongs to something else, and
two commands writing one target at once do not both succeed. Data is what the user named."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from resnets.cli import main
from resnets.cli.weights import default_card_folder
from resnets.data import load_dataset
from resnets.data.load import parse_spec
from resnets.errors import ConfigError, DataError
from resnets.eval.calibration import calibration_target
from resnets.io import PACKAGE_DIR, check_owner, exclusive_target

from .conftest import make_image_folder


def _digest(path: Path) -> bytes:
    return path.read_bytes()


def test_calibrate_refuses_another_runs_file(digits_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(digits_run, other)  # a second run, with its own marker
    before = _digest(other / "model.safetensors")
    argv = ["calibrate", "--weights", str(digits_run), "--data", "digits"]
    assert main([*argv, "--out", str(other / "model.safetensors"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "inside the run folder" in err and len(err.strip().splitlines()) == 1
    assert _digest(other / "model.safetensors") == before
    # into a file of the user's own, and in place in the run it came from: both fine
    assert main([*argv, "--out", str(tmp_path / "mine.safetensors"), "--no-progress"]) == 0
    assert (tmp_path / "mine.safetensors").is_file()


def test_a_named_set_is_calibrated_into_a_user_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNETS_WEIGHTS", str(tmp_path / "weights-cache"))
    dest = calibration_target("resnet20.cifar10", None, "somewhere")
    assert dest == tmp_path / "weights-cache" / "calibrated" / "resnet20.cifar10.safetensors"
    assert PACKAGE_DIR not in dest.parents
    # --out into the installed package is refused, whatever the source
    with pytest.raises(ConfigError, match="inside the installed resnets package"):
        calibration_target(
            "resnet20.cifar10", str(PACKAGE_DIR / "weights" / "x.safetensors"), "somewhere"
        )


def test_the_package_and_the_data_being_read_are_not_targets(tmp_path):
    data = make_image_folder(tmp_path / "data")
    with pytest.raises(ConfigError, match="inside the installed resnets package"):
        check_owner(PACKAGE_DIR / "weights" / "new.safetensors")
    check_owner(PACKAGE_DIR / "weights" / "new.safetensors", package_ok=True)
    with pytest.raises(ConfigError, match="the data this command reads"):
        check_owner(data / "cat" / "figures", reading=(str(data),))
    check_owner(tmp_path / "elsewhere", reading=(str(data),))
    check_owner(tmp_path / "x", reading=("digits",))  # a data set name is no folder


def test_eval_out_inside_the_data_is_refused_before_any_work(digits_run, tmp_path, capsys):
    data = make_image_folder(tmp_path / "data")
    argv = ["eval", "--weights", str(digits_run), "--data", str(data), "--out", str(data / "cat")]
    assert main(argv) == 2
    assert "the data this command reads" in capsys.readouterr().err
    assert sorted(p.suffix for p in (data / "cat").iterdir()) == [".jpg"] * 6 + [".png"] * 6


def test_a_card_per_weights_file(tmp_path):
    a, b = tmp_path / "a" / "run1", tmp_path / "b" / "run1"
    for run in (a, b):
        run.mkdir(parents=True)
        (run / ".resnets-run").write_text("x")
        (run / "model.safetensors").write_bytes(b"")
    first = default_card_folder(str(a / "model.safetensors"))
    second = default_card_folder(str(b / "model.safetensors"))
    assert first != second and first.name.startswith("run1-") and second.name.startswith("run1-")
    assert default_card_folder(str(a / "model.safetensors")) == first  # the same source: same card
    assert default_card_folder("resnet20.cifar10") == Path("cards/resnet20.cifar10")


def test_two_writers_of_one_target(tmp_path):
    target = tmp_path / "model-int8"
    with exclusive_target(target):
        with pytest.raises(ConfigError, match="another resnets command is writing it now"):
            with exclusive_target(tmp_path / "." / "model-int8"):  # the same path, spelt otherwise
                pass
        with exclusive_target(tmp_path / "other"):  # another target is free
            pass
    with exclusive_target(target):  # released on exit
        pass


def test_a_bundled_name_that_is_also_a_folder_here_is_ambiguous(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_spec("digits") == ("digits", None)
    make_image_folder(tmp_path / "digits")
    with pytest.raises(DataError, match="names both the bundled data set and the path ./digits"):
        parse_spec("digits")
    assert parse_spec("digits:") == ("digits", None)
    assert parse_spec("./digits") == ("folder", "./digits")
    assert load_dataset("./digits", progress=False).classes == ["cat", "dog", "frog"]
    assert len(load_dataset("digits:", progress=False)) == 1797


def test_linked_class_folders_never_load_an_image_twice(tmp_path):
    data = make_image_folder(tmp_path / "data")
    elsewhere = make_image_folder(tmp_path / "more", classes=("bird",))
    os.symlink(elsewhere / "bird", data / "bird")  # a linked class folder: fine
    assert load_dataset(str(data), progress=False).classes == ["bird", "cat", "dog", "frog"]
    os.symlink(data, data / "everything")  # a class folder that is the root itself
    with pytest.raises(DataError, match="everything: a link to .* which holds the data root"):
        load_dataset(str(data), progress=False)
    (data / "everything").unlink()
    os.symlink(data / "cat", data / "cat" / "again")  # a loop inside a class
    with pytest.raises(DataError, match="a link to a folder already read"):
        load_dataset(str(data), progress=False)
    (data / "cat" / "again").unlink()
    os.symlink(data / "dog" / "000.jpg", data / "cat" / "999.jpg")  # one file, two labels
    with pytest.raises(DataError, match="the same file as"):
        load_dataset(str(data), progress=False)


def test_runs_and_results_never_nest_inside_a_run(digits_run, tmp_path, capsys):
    """Issue 44, R22: a new run, or an experiment's results, inside a run folder is refused in
    one line before anything is written; through the CLI and through Python alike."""
    import resnets
    from resnets.errors import ConfigError
    from resnets.train import build_config, train

    argv = ["train", "--data", "digits", "--iters", "2", "--no-progress"]
    assert main([*argv, "--out", str(digits_run / "sub")]) == 2
    err = capsys.readouterr().err
    assert "inside the run folder" in err and len(err.strip().splitlines()) == 1
    assert not (digits_run / "sub").exists()
    with pytest.raises(ConfigError, match="runs do not nest"):
        train(build_config("digits", cli_values={"iters": 2}), digits_run / "a" / "b")
    assert not (digits_run / "a").exists()
    with pytest.raises(ConfigError, match="inside the run folder"):
        resnets.reproduce("degradation", data="digits", budget=2e-5, out=digits_run / "res")
    assert not (digits_run / "res").exists()


def test_an_output_never_lands_on_a_file_being_read(digits_run, tmp_path, capsys):
    """Issue 44, C04: file inputs are guarded as folders are: `export --out` onto the weights
    it exports (by its path, or by another name for the same file) is refused, the file
    untouched."""
    weights = digits_run / "model.safetensors"
    before = _digest(weights)
    link = tmp_path / "same.safetensors"
    link.symlink_to(weights)
    for target in (weights, link):
        argv = ["export", "--weights", str(weights), "--format", "onnx", "--out", str(target)]
        assert main(argv) == 2
        assert "a file this command reads" in capsys.readouterr().err
    assert _digest(weights) == before


def test_every_python_door_checks_ownership_itself(digits_run, tmp_path):
    """Issue 43, item 4: the write check lives at the library's doors, not in the CLI, so the
    Python API gets the README's promise too: train(), resnets.reproduce(), export_model() and
    detection training each refuse, before writing anything, an output inside the data they
    read, inside the installed package, or inside a run folder they were not given."""
    import resnets
    from resnets.deploy.export import export_model
    from resnets.detection.engine import DetectTrainConfig, train_detector
    from resnets.io import RUN_MARKER
    from resnets.train import build_config, train

    data = make_image_folder(tmp_path / "data")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    on_folder = build_config("quick", cli_values={"data": str(data), "model": "resnet8"})
    with pytest.raises(ConfigError, match="inside .*data, the data this command reads"):
        train(on_folder, data / "cat" / "run", progress=False, echo=False)
    on_digits = build_config("digits", cli_values={"iters": 2})
    with pytest.raises(ConfigError, match="inside the installed resnets package"):
        train(on_digits, PACKAGE_DIR / "a-run", progress=False, echo=False)
    assert not (PACKAGE_DIR / "a-run").exists()
    with pytest.raises(ConfigError, match="the data this command reads"):
        resnets.reproduce("degradation", data=str(data), budget=2e-5, out=data / "results")
    with pytest.raises(ConfigError, match="the data this command reads"):
        train_detector(DetectTrainConfig(train=str(data), val=str(data)), data / "det")
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # nothing written

    weights = digits_run / "model.safetensors"
    with pytest.raises(ConfigError, match="inside the installed resnets package"):
        export_model(weights, "onnx", PACKAGE_DIR / "model.onnx")
    other_run = tmp_path / "other-run"
    other_run.mkdir()
    (other_run / RUN_MARKER).write_text("a resnets run folder\n")
    with pytest.raises(ConfigError, match="inside the run folder"):
        export_model(weights, "onnx", other_run / "model.onnx")
    with pytest.raises(ConfigError, match="the data this command reads"):
        export_model(weights, "onnx", data / "model.onnx", check_data=str(data))
    assert not list(PACKAGE_DIR.glob("model.onnx")) and not (other_run / "model.onnx").exists()
