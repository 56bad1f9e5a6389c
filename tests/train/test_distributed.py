"""torchrun with 2 CPU processes (gloo on 127.0.0.1) means the same as one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

ARGS = [
    "--model",
    "resnet8",
    "--batchnorm",
    "false",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--lr",
    "0.02",
    "--precision",
    "fp32",
    "--no-progress",
    "--device",
    "cpu",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_two_process_run_matches_one_process(tmp_path):
    one = subprocess.run(
        [sys.executable, "-m", "resnets", "train", "--out", str(tmp_path / "one"), *ARGS],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
            "-m",
            "resnets",
            "train",
            "--out",
            str(tmp_path / "two"),
            *ARGS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_file(tmp_path / "one" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-4, worst
    # the weights did move: the comparison is not between two untouched initialisations
    torch.manual_seed(0)
    from resnets import create_model

    init = create_model("resnet8", num_classes=10, in_chans=1, batchnorm=False).state_dict()
    assert max(float((init[k] - a[k]).abs().max()) for k in a) > 1e-3
    # rank 0 alone wrote the run directory: one metrics line per evaluation, not two
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_across_a_change_of_world_size(tmp_path):
    """Stopped as 2 processes, finished as 1: the same weights as 1 process all along."""
    ref = subprocess.run(
        [sys.executable, "-m", "resnets", "train", "--out", str(tmp_path / "ref"), *ARGS],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert ref.returncode == 0, ref.stderr
    part = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
            "-m",
            "resnets",
            "train",
            "--out",
            str(tmp_path / "mix"),
            *ARGS,
            "--stop-after",
            "9",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert part.returncode == 0, part.stderr[-3000:]
    assert not (tmp_path / "mix" / "model.safetensors").exists()
    rest = subprocess.run(
        [
            sys.executable,
            "-m",
            "resnets",
            "train",
            "--resume",
            str(tmp_path / "mix"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert rest.returncode == 0, rest.stderr
    a = load_file(tmp_path / "ref" / "model.safetensors")
    b = load_file(tmp_path / "mix" / "model.safetensors")
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-4
