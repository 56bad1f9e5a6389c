"""Every subcommand with random and broken arguments and files: exit 0 or 2, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnets.cli import main

pytestmark = pytest.mark.slow

JUNK = {"junk.safetensors": b"not a safetensors file", "empty.ckpt": b"",
        "bad.png": b"\x89PNG\r\n\x1a\n broken", "cfg.json": b"\xff\xfe{", "text.txt": b"hello"}  # fmt: skip

values = st.one_of(
    st.integers(-(2**65), 2**65).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "1",
            "nan",
            "inf",
            "abc",
            "resnet20",
            "digits",
            "A",
            "on",
            "true",
            "1,2,x",
            "..",
            "/",
            "/no/such/path",
            "resnet50.tv9",
            "cifar10:/no",
        ]
    ),  # fmt: skip
    st.text(max_size=12),
)


def _argv(tmp, draw_cmd, extra):
    files = {k: str(tmp / k) for k in JUNK}
    choose = {**files, "RUN": str(tmp / "run"), "OUT": str(tmp / "out")}
    return [choose.get(t, t) for t in draw_cmd + extra]


COMMANDS = [
    ["models", "--no-macs"],
    ["summary"],
    ["config"],
    ["config", "--set"],
    ["weights", "info"],
    ["weights", "list"],
    ["eval", "--weights", "junk.safetensors", "--data"],
    ["eval", "--data", "digits", "--weights"],
    ["eval", "--weights", "empty.ckpt", "--data", "digits", "--batch-size"],
    ["predict", "--weights", "junk.safetensors", "bad.png", "--topk"],
    ["data", "info"],
    ["train", "--config", "cfg.json"],
    ["train", "--no-progress", "--iters", "1", "--out", "OUT", "--set"],
    ["train", "--no-progress", "--iters", "1", "--out", "OUT", "--model"],
    ["train", "--no-progress", "--iters", "1", "--out", "OUT", "--lr"],
    ["train", "--no-progress", "--iters", "1", "--out", "OUT", "--freeze"],
    ["train", "--no-progress", "--iters", "1", "--out", "OUT", "--classes"],
    ["train", "--resume"],
    ["reproduce", "transfer", "--data", "digits", "--no-progress", "--out", "OUT", "--labels"],
    ["reproduce", "shortcuts", "--out", "text.txt", "--budget"],
    ["benchmark", "data", "--data"],
    ["summary", "resnet20", "--image-size"],
    ["summary", "resnet20", "--in-chans"],
    ["eval", "--weights", "RUN", "--data", "digits", "--scales"],
    ["data", "shard", "text.txt"],
    ["data", "verify"],
    ["train", "--no-progress", "--iters", "1", "--out", "OUT", "--set", "threads=1", "--init"],
    ["export", "--weights", "junk.safetensors", "--out", "OUT", "--calib-size"],
    ["export", "--weights", "RUN", "--format"],
    ["explain", "--weights", "junk.safetensors", "bad.png", "--out", "OUT", "--method"],
    ["explain", "--weights", "RUN", "bad.png", "--out", "OUT", "--target"],
    ["serve", "--weights", "junk.safetensors", "--port"],
    ["serve", "--weights", "empty.ckpt", "--max-batch"],
    ["weights", "package", "RUN", "--out", "OUT", "--name"],
]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cmd=st.sampled_from(COMMANDS), vals=st.lists(values, min_size=1, max_size=2))
def test_cli_never_tracebacks(tmp_path_factory, monkeypatch, cmd, vals):
    tmp = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(tmp)  # a default output folder never lands in the repository
    for name, data in JUNK.items():
        (tmp / name).write_bytes(data)
    argv = _argv(tmp, cmd, vals)
    rc = main(argv)  # an exception here is a traceback a user would see
    assert rc in (0, 2), (argv, rc)
