"""Every subcommand with random and broken arguments and files: exit 0 or 2, never a traceback.

The draw is fixed (derandomized: the same 200 examples on every machine, every run), and each
example runs under a memory ceiling, so one drawn size can neither fail the suite by chance
nor take the machine's memory: an option that would allocate past it fails the test instead.
A deeper random run: ``RESNETS_FUZZ_EXAMPLES=5000 pytest tests/test_cli_fuzz.py``.
"""

from __future__ import annotations

import os
import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnets.cli import main

pytestmark = pytest.mark.slow

JUNK = {
    "junk.safetensors": b"not a safetensors file",
    "empty.ckpt": b"",
    "bad.png": b"\x89PNG\r\n\x1a\n broken",
    "cfg.json": b"\xff\xfe{",
    "text.txt": b"hello",
}

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
    ),
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


DEEP = int(os.environ.get("RESNETS_FUZZ_EXAMPLES", "0"))
#: memory an example may add to the test process (the suite stays under 6 GB)
HEADROOM = 3 * 2**30


@pytest.fixture
def memory_ceiling():
    """Cap this process's data segment (heap and private mappings) at its size now plus
    HEADROOM for the test, then restore the old limit."""
    vm_data = next(
        int(line.split()[1]) * 1024
        for line in open("/proc/self/status")
        if line.startswith("VmData:")
    )
    old = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (vm_data + HEADROOM, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, old)


@settings(
    max_examples=DEEP or 200,
    derandomize=not DEEP,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cmd=st.sampled_from(COMMANDS), vals=st.lists(values, min_size=1, max_size=2))
def test_cli_never_tracebacks(tmp_path_factory, monkeypatch, memory_ceiling, cmd, vals):
    tmp = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(tmp)  # a default output folder never lands in the repository
    for name, data in JUNK.items():
        (tmp / name).write_bytes(data)
    argv = _argv(tmp, cmd, vals)
    rc = main(argv)  # an exception here is a traceback a user would see
    assert rc in (0, 2), (argv, rc)


def test_negative_control_a_planted_traceback_is_found(tmp_path_factory, monkeypatch):
    """The fuzz can fail: with a bug planted in one command (a traceback on any argument),
    the same fixed draw finds it."""
    import resnets.cli.models

    def planted(args):
        raise ValueError("planted bug")

    monkeypatch.setattr(resnets.cli.models, "_summary", planted)
    with pytest.raises(ValueError, match="planted bug"):
        test_cli_never_tracebacks(tmp_path_factory, monkeypatch, None)


def test_negative_control_the_memory_ceiling_stops_a_runaway_allocation(memory_ceiling):
    """An example that allocates past the ceiling fails (an exception, so a failed test)
    instead of growing the process until the kernel kills it."""
    import torch

    with pytest.raises(RuntimeError):
        torch.empty(HEADROOM + 2**30, dtype=torch.uint8).fill_(1)
