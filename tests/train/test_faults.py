"""Nothing lost: kill -9, SIGTERM/SIGINT, failing disks, corrupt checkpoints, concurrent runs.

The runs that are killed, signalled or run side by side are processes of their own running
the CLI (`resnets train`) on the digits data, forked from a warm interpreter (tests/warm.py:
without 3.5 s of imports each on Zen 3); a run only compared with them (the reference, a
resume, the other seed) runs the same CLI in this one-thread process, and must give the same
bits.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from resnets import io as resnets_io
from resnets.checkpoint import load_checkpoint, save_checkpoint
from resnets.errors import CheckpointError
from resnets.train import build_config, train

from ..conftest import finish, train_here
from ..warm import WarmProcess, warm_resnets, warm_run

pytestmark = pytest.mark.slow  # multi-process and multi-run tests: seconds each

#: every run here: 3 epochs of digits' 22 steps, a checkpoint every 5 steps (a kill lands
#: between two of them, and the resumed run has most of its steps still to take)
EPOCHS, STEPS_PER_EPOCH = 3, 22
ARGS = ["--epochs", str(EPOCHS), "--checkpoint-every", "5", "--log-every", "1", "--no-progress"]


def _args(out: Path, *extra: str) -> list[str]:
    """`resnets train`'s arguments for a run of this module into ``out``."""
    return ["--out", str(out), *ARGS, *extra]


def _one_thread() -> dict[str, str]:
    # every run of this module on one thread: runs compared bit for bit (the shared reference
    # among them) use the same count, and two at once on 2 cores never wait on a descheduled
    # OpenMP thread
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("ref") / "run"
    train_here(*_args(out))
    return _weights(out)


def _start(*argv: str) -> WarmProcess:
    """`resnets train ARGV`: a process of its own, on one thread."""
    return warm_resnets("train", *argv, env=_one_thread())


def _start_and_wait_for_checkpoint(out: Path, *extra: str) -> WarmProcess:
    p = _start(*_args(out, *extra))
    deadline = time.time() + 120
    while not (out / "last.ckpt").exists():
        if p.poll() is not None or time.time() > deadline:
            raise AssertionError(f"no checkpoint appeared: {p.communicate()[1]}")
        time.sleep(0.02)
    return p


@pytest.mark.parametrize("workers", ["0", "2"])
def test_kill_9_mid_epoch_then_resume_is_bit_identical(reference, tmp_path, workers):
    out = tmp_path / "run"
    p = _start_and_wait_for_checkpoint(out, "--workers", workers)
    time.sleep(0.05 + 0.1 * int(workers))  # some steps past the checkpoint: their work is lost
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists(), "the run finished before the kill"
    step = load_checkpoint(out / "last.ckpt")["run_state"]["step"]
    assert 0 < step < EPOCHS * STEPS_PER_EPOCH
    train_here("--resume", str(out), "--workers", workers, "--no-progress")
    assert _same(_weights(out), reference)


def test_negative_control_other_seed_differs(reference, tmp_path):
    train_here(*_args(tmp_path / "s1", "--seed", "1"))
    assert not _same(_weights(tmp_path / "s1"), reference)


def _stop_with(p: WarmProcess, sig: signal.Signals, code: int, out: Path) -> int:
    """Send ``sig`` to a run; it must exit with ``code``, say how to resume, print no traceback,
    and leave a checkpoint mid-run. Returns the checkpoint's step."""
    p.send_signal(sig)
    _, err = finish(p, 120, f"the run's exit after {sig.name}")
    assert p.returncode == code, err
    assert "resume with" in err and "Traceback" not in err
    step = load_checkpoint(out / "last.ckpt")["run_state"]["step"]
    assert 0 < step < EPOCHS * STEPS_PER_EPOCH
    return step


def test_sigterm_and_ctrl_c_checkpoint_and_exit_cleanly(reference, tmp_path):
    """SIGTERM (143) stops a run with a checkpoint; the resumed run, stopped again by Ctrl-C
    (SIGINT, 130) once it has checkpointed further, resumes once more to the weights of the
    run left alone: both signals in one chain of runs."""
    out = tmp_path / "run"
    first = _stop_with(_start_and_wait_for_checkpoint(out), signal.SIGTERM, 143, out)
    again = ["--resume", str(out), "--no-progress"]
    stopped_at = (out / "last.ckpt").stat().st_mtime_ns
    p = _start(*again)
    deadline = time.time() + 120
    while (out / "last.ckpt").stat().st_mtime_ns == stopped_at:  # replaced atomically
        if p.poll() is not None or time.time() > deadline:
            raise AssertionError(f"the resumed run wrote no checkpoint: {p.communicate()[1]}")
        time.sleep(0.02)
    assert _stop_with(p, signal.SIGINT, 130, out) > first
    train_here(*again)
    assert _same(_weights(out), reference)


def test_concurrent_runs_do_not_interfere(reference, tmp_path):
    """Two runs at once end bit-identical to the same run alone (the shared reference)."""
    procs = [_start(*_args(tmp_path / f"c{i}")) for i in range(2)]
    for i, p in enumerate(procs):
        _, err = finish(p, 300, f"concurrent run c{i}")
        assert p.returncode == 0, err
    assert _same(_weights(tmp_path / "c0"), reference)
    assert _same(_weights(tmp_path / "c1"), reference)


def test_two_runs_into_one_directory_one_refused(tmp_path):
    out = tmp_path / "same"
    procs = [_start(*_args(out, "--epochs", "1")) for _ in range(2)]
    for i, p in enumerate(procs):
        finish(p, 300, f"run {i} of two into one folder")
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2]


# ---------------------------------------------------------------------------------------------
# checkpoint files


def _state() -> dict:
    return {"model": {"w": torch.arange(10.0)}, "run_state": {"step": 3}}


def test_flipped_byte_and_truncation_are_detected(tmp_path):
    p = tmp_path / "a.ckpt"
    save_checkpoint(p, _state())
    raw = bytearray(p.read_bytes())
    raw[-20] ^= 0x01
    p.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(p)
    save_checkpoint(p, _state())
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(p)
    p.write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(CheckpointError, match="not a resnets checkpoint"):
        load_checkpoint(p)


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_failure_during_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, where):
    p = tmp_path / "last.ckpt"
    save_checkpoint(p, _state())
    good = p.read_bytes()
    full = OSError(errno.ENOSPC, "No space left on device")

    if where == "write":
        real_open = open

        class HalfFile:
            def __init__(self, f):
                self.f = f

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                raise full

            def __getattr__(self, k):
                return getattr(self.f, k)

            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.f.close()

        monkeypatch.setattr(
            "builtins.open",
            lambda f, m="r", *a, **k: (
                HalfFile(real_open(f, m, *a, **k)) if "w" in m else real_open(f, m, *a, **k)
            ),
        )
    elif where == "fsync":
        monkeypatch.setattr(resnets_io.os, "fsync", lambda fd: (_ for _ in ()).throw(full))
    else:
        monkeypatch.setattr(resnets_io.os, "replace", lambda a, b: (_ for _ in ()).throw(full))
    with pytest.raises(OSError):
        save_checkpoint(p, {"model": {"w": torch.zeros(10)}, "run_state": {"step": 4}})
    monkeypatch.undo()
    assert p.read_bytes() == good
    assert load_checkpoint(p)["run_state"]["step"] == 3
    assert [x.name for x in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_full_disk_during_training_then_resume(tmp_path, monkeypatch):
    cfg = build_config("digits", cli_values={"epochs": 2.0, "iters": 0, "checkpoint_every": 5})
    ref = train(cfg, tmp_path / "ref", progress=False, echo=False)
    assert ref.iters == 44
    calls = {"n": 0}
    real = resnets_io.atomic_write_bytes

    def flaky(path, data):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    import resnets.checkpoint

    monkeypatch.setattr(resnets_io, "atomic_write_bytes", flaky)
    monkeypatch.setattr(resnets.checkpoint, "atomic_write_bytes", flaky)  # checkpoints' writer
    with pytest.raises(
        CheckpointError, match="No space left on device.*previous checkpoint is intact"
    ):
        train(cfg, tmp_path / "run", progress=False, echo=False)
    monkeypatch.undo()
    state = load_checkpoint(tmp_path / "run" / "last.ckpt")
    assert state["run_state"]["step"] > 0
    train(cfg, tmp_path / "run", resume=True, progress=False, echo=False)
    assert _same(_weights(tmp_path / "run"), _weights(tmp_path / "ref"))


def test_resume_of_a_corrupt_checkpoint_is_a_clear_error(tmp_path):
    cfg = build_config("digits", cli_values={"epochs": 1.0, "iters": 0})
    train(cfg, tmp_path / "r", progress=False, echo=False, stop_after=5)
    p = tmp_path / "r" / "last.ckpt"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    r = warm_run("train", "--resume", str(tmp_path / "r"), "--no-progress", env=_one_thread())
    assert r.returncode == 2 and "checksum mismatch" in r.stderr and "Traceback" not in r.stderr
    assert os.environ.get("RESNETS_CACHE")  # the isolated cache is inherited by the process
