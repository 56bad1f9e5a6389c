"""Every write lands whole or not at all: a full disk (simulated with a file-size limit) and a
SIGKILL leave the old state or nothing at the target, never a half-written file or folder a
later command would trust, and a full disk is a one-line error, not a traceback or a SIGBUS."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import make_image_folder

pytestmark = pytest.mark.slow


def _disk_full_at(limit_bytes: int):
    """preexec_fn: any file write past ``limit_bytes`` fails with EFBIG, as a full disk
    would fail with ENOSPC (SIGXFSZ ignored, so the write returns an error)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def _resnets(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESNETS_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "resnets", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".tmp-" in p.name)


def test_shards_on_a_full_disk_leave_nothing_and_say_so_in_one_line(tmp_path):
    src = make_image_folder(tmp_path / "imgs", per_class=40, size=32)
    r = _resnets(
        ["data", "shard", str(src), str(tmp_path / "shards"), "--shard-size", "20"],
        tmp_path,
        preexec_fn=_disk_full_at(8192),
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "File too large" in r.stderr or "No space" in r.stderr
    assert not (tmp_path / "shards").exists() and _leftovers(tmp_path) == []
    # with room, the same command succeeds
    r = _resnets(
        ["data", "shard", str(src), str(tmp_path / "shards"), "--shard-size", "20"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "shards" / "dataset.json").is_file()


def test_a_killed_shard_writer_leaves_no_folder_a_later_command_trusts(tmp_path):
    src = make_image_folder(tmp_path / "imgs", per_class=300, size=64)
    env = {**os.environ, "RESNETS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resnets",
            "data",
            "shard",
            str(src),
            str(tmp_path / "shards"),
            "--shard-size",
            "10",
        ],
        cwd=tmp_path,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".shards.partial-*/shard-*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "shards").exists()  # only the hidden partial folder, if anything
    r = _resnets(
        ["data", "shard", str(src), str(tmp_path / "shards"), "--shard-size", "100"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert _leftovers(tmp_path) == []  # the dead writer's partial folder was cleared
    r = _resnets(["data", "verify", str(tmp_path / "shards")], tmp_path)
    assert r.returncode == 0, r.stderr


def test_the_decoded_cache_on_a_full_disk_is_one_line_and_no_cache(tmp_path):
    src = make_image_folder(tmp_path / "imgs", per_class=40, size=32)
    r = _resnets(["data", "info", str(src)], tmp_path, preexec_fn=_disk_full_at(16384))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.rglob("meta.json")]
