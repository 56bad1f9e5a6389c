"""The command line: the default job, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from resnets.cli import main

from .conftest import cli_in_fresh_process


@pytest.mark.slow
def test_default_train_job_reaches_97_percent(tmp_path, monkeypatch, capsys):
    """`resnets train` with no arguments: digits, a ResNet-20, >= 97% validation accuracy."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--no-progress", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["val_err"] <= 0.03, out
    run = tmp_path / out["run_dir"]
    assert (run / "model.safetensors").is_file() and (run / "curves.png").is_file()


def test_models_and_summary(capsys):
    assert main(["models", "resnet5*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    r50 = next(r for r in rows if r["name"] == "resnet50")
    assert r50["params"] == 25_557_032 and round(r50["macs"] / 1e9, 2) == 4.09
    assert main(["summary", "resnet20"]) == 0
    text = capsys.readouterr().out
    assert "layer3" in text and "[1, 64, 8, 8]" in text and "269,722" in text


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--lr", "0"], "lr=0.0: must be > 0"),
        (["train", "--batch-size", "0"], "batch_size=0"),
        (["train", "--model", "resnet51"], "unknown model 'resnet51'; did you mean"),
        (["train", "--data", "/no/such/folder"], "/no/such/folder: no such data folder"),
        (["train", "--set", "colour=red"], "unknown config key 'colour'"),
        (["train", "--recipe", "he2016"], "unknown recipe"),
        (["eval", "--weights", "/no/such.safetensors", "--data", "digits"], "no such weights file"),
        (["train", "--resume", "/no/such/run"], "nothing to resume"),
        # --out through or onto a file: refused before any work (issue 23)
        (
            ["export", "--weights", "resnet20.cifar10", "--format", "onnx", "--out", "f/x.onnx"],
            "f is a file, not a folder",
        ),
        (
            ["explain", "--weights", "resnet20.cifar10", "f", "--out", "f"],
            "exists and is not a folder",
        ),
        (
            ["eval", "--weights", "resnet20.cifar10", "--data", "digits", "--out", "f"],
            "exists and is not a folder",
        ),
        (["weights", "package", ".", "--name", "a.b", "--out", "f/w"], "f is a file"),
        (["train", "--out", "f"], "exists and is not a folder"),
    ],
)
def test_bad_input_is_one_line_error(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("a file where a folder is asked for")
    assert main(argv + (["--no-progress"] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("resnets: error:") and match.split(":")[0] in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    import re

    assert re.search(match, err), err


def test_python_dash_m_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "resnets", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.startswith("resnets ")


@pytest.mark.parametrize("what", ["train", "infer", "data"])
def test_benchmark_json_last_line(what, capsys, image_folder, monkeypatch):
    argv = [
        "benchmark",
        what,
        "--model",
        "resnet8",
        "--batch-size",
        "8",
        "--steps",
        "1",
        "--rounds",
        "1",
        "--device",
        "cpu",
        "--json",
    ]
    if what == "data":
        argv += ["--data", str(image_folder)]
    calls = []
    if what == "train":  # the benchmark must time the trainer's own step
        from resnets.train.step import TrainStep

        real = TrainStep.__call__
        monkeypatch.setattr(TrainStep, "__call__", lambda s, *a: calls.append(1) or real(s, *a))
        argv += ["--set", "compile=off"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["images_per_sec"] > 0
    if what == "train":
        from resnets.runtime import hold_freed_memory, use_bf16

        # its loops ran with the allocator as training sets it here (mallopt again: a no-op)
        assert ("memory held" in out["allocator"]) == hold_freed_memory().held
        res = out["results"]
        assert len(calls) == 2 + 1  # warm-up steps + one timed round of one step
        assert res["trainer"]["bf16"] == use_bf16("auto", torch.device("cpu"))
        assert res["trainer"]["channels_last"] and not res["trainer"]["compile"]
        assert not res["fp32-eager"]["bf16"] and not res["fp32-eager"]["channels_last"]
        assert out["images_per_sec"] == res["trainer"]["images_per_sec"]
        ratio = res["trainer"]["images_per_sec"] / res["fp32-eager"]["images_per_sec"]
        assert out["speedup"] == pytest.approx(ratio)
        assert 0 < res["fp32-eager"]["fraction_of_peak"] < 1.5
        assert "matmul" in out["peak_yardstick"]
        # where the CPU has bf16, the better plain loop too: bf16 autocast + channels_last
        if use_bf16("auto", torch.device("cpu")):
            assert res["bf16-eager"]["bf16"] and res["bf16-eager"]["channels_last"]
            against = res["trainer"]["images_per_sec"] / res["bf16-eager"]["images_per_sec"]
            assert out["speedup_vs_bf16_loop"] == pytest.approx(against)
        else:
            assert "bf16-eager" not in res and out["speedup_vs_bf16_loop"] is None


def test_a_run_logged_to_a_file_has_plain_lines_without_bar_frames(tmp_path):
    """Output to a file or a pipe: no progress-bar frames (carriage returns), only the
    periodic plain lines; on a terminal the bars come back (io.progress_bar)."""
    from .warm import warm_run

    r = warm_run("train", "--out", str(tmp_path / "r"), "--epochs", "2")  # output to files
    text = r.stdout + r.stderr
    assert r.returncode == 0 and "\r" not in text
    assert text.count("iter ") >= 2 and "done in" in text


def test_models_lists_every_model_without_building_one(monkeypatch, capsys):
    """`resnets models` reads the recorded costs: nothing is built (the table is checked
    against fresh builds in tests/models)."""
    import resnets.models.summary as summary

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(summary, "measure_cost", refuse)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "resnet1202" in out and "0.27" not in out.split("resnet20 ")[0]
    assert " 269,722 " in out.split("\nresnet20 ")[1].splitlines()[0]


def test_help_imports_no_heavy_package():
    """`resnets --help` answers from the command table: no torch, no optional package."""
    printed, loaded = cli_in_fresh_process(["--help"])
    heavy = {"torch", "torchvision", "sympy", "matplotlib", "onnx", "openvino", "fastapi"}
    heavy |= {"captum", "numpy", "scipy", "torchmetrics"}
    assert not loaded & heavy, loaded & heavy
    assert "train    " in printed and "reproduce" in printed


def test_the_command_table_is_what_the_families_register():
    from resnets.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == {name: help_ for name, (_, help_) in COMMANDS.items()}
    # each command's own parser is built by the family the table names
    for name, (module, _) in COMMANDS.items():
        own = next(a for a in build_parser(name)._actions if a.dest == "command").choices[name]
        nested = [a for a in own._actions if isinstance(a.choices, dict)]  # weights list, ...
        handler = own.get_default("fn") or next(iter(nested[0].choices.values())).get_default("fn")
        assert handler.__module__ == module, name
