"""The run folder's protocol, owned by RunDir: its states, its claim, its two ways in."""

from __future__ import annotations

import pytest

from resnets.errors import CheckpointError, ConfigError
from resnets.rundir import RunDir, RunStatus


def _files(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x")


def test_each_state_is_read_from_the_folder(tmp_path):
    assert RunDir(tmp_path / "none").status is RunStatus.NEW
    _files(tmp_path / "empty")
    assert RunDir(tmp_path / "empty").status is RunStatus.NEW
    _files(tmp_path / "user", "notes.txt")
    assert RunDir(tmp_path / "user").status is RunStatus.FOREIGN
    _files(tmp_path / "early", RunDir.MARKER, RunDir.CONFIG, RunDir.LOG, ".lock")
    assert RunDir(tmp_path / "early").status is RunStatus.ABANDONED
    _files(tmp_path / "odd", RunDir.MARKER, RunDir.BEST)
    assert RunDir(tmp_path / "odd").status is RunStatus.DAMAGED
    _files(tmp_path / "cut", RunDir.MARKER, RunDir.LAST)
    assert RunDir(tmp_path / "cut").status is RunStatus.INTERRUPTED
    _files(tmp_path / "done", RunDir.MARKER, RunDir.LAST, RunDir.SUMMARY)
    assert RunDir(tmp_path / "done").status is RunStatus.FINISHED


def test_the_claim_is_exclusive_reentrant_and_released(tmp_path):
    run, other = RunDir(tmp_path / "r"), RunDir(tmp_path / "r")
    run.claim()
    run.claim()  # the queue's claim, then the trainer's: one process, nested
    assert run.held and other.holder() is not None
    assert other.status is RunStatus.RUNNING
    with pytest.raises(ConfigError, match="in use by process"):
        other.claim()
    assert not other.try_claim()
    run.release()
    assert other.holder() is not None  # the outer claim still holds
    run.release()
    assert other.holder() is None and other.status is RunStatus.NEW
    other.claim()
    with other.releasing():
        assert not run.try_claim()
    assert run.try_claim()
    run.release()


def test_create_clears_an_abandoned_run_and_refuses_the_rest(tmp_path):
    early = tmp_path / "early"
    _files(early, RunDir.MARKER, RunDir.CONFIG, RunDir.LOG)
    run = RunDir(early).create()
    assert run.held and sorted(p.name for p in early.iterdir()) == [".lock", RunDir.MARKER]
    run.release()
    _files(tmp_path / "user", "notes.txt")
    with pytest.raises(ConfigError, match="not a resnets run folder"):
        RunDir(tmp_path / "user").create()
    assert sorted(p.name for p in (tmp_path / "user").iterdir()) == ["notes.txt"]  # untouched
    _files(tmp_path / "done", RunDir.MARKER, RunDir.LAST, RunDir.SUMMARY)
    with pytest.raises(ConfigError, match="already holds a run; resume it with --resume"):
        RunDir(tmp_path / "done").create()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        RunDir(tmp_path / "file").create()


def test_open_for_resume_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        RunDir(tmp_path / "none").open_for_resume()
    _files(tmp_path / "done", RunDir.MARKER, RunDir.LAST, RunDir.SUMMARY)
    with pytest.raises(ConfigError, match="this run has finished"):
        RunDir(tmp_path / "done").open_for_resume()
    _files(tmp_path / "early", RunDir.MARKER, RunDir.LOG)
    with pytest.raises(CheckpointError, match="start it again with --out"):
        RunDir(tmp_path / "early").open_for_resume()
    _files(tmp_path / "user", "notes.txt")
    with pytest.raises(CheckpointError, match="no last.ckpt there"):
        RunDir(tmp_path / "user").open_for_resume()
    assert sorted(p.name for p in (tmp_path / "user").iterdir()) == ["notes.txt"]
    _files(tmp_path / "cut", RunDir.MARKER, RunDir.LAST)
    (tmp_path / "cut" / RunDir.CONFIG).write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: unreadable"):
        RunDir(tmp_path / "cut").open_for_resume()
    assert RunDir(tmp_path / "cut").holder() is None  # a refused resume keeps no claim


def test_the_weights_a_run_folder_means(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.trained_weights() is None
    _files(run.path, RunDir.LAST)
    assert run.trained_weights() == run.last
    _files(run.path, RunDir.BEST)
    assert run.trained_weights() == run.best
    _files(run.path, RunDir.WEIGHTS)
    assert run.trained_weights() == run.weights
    assert run / "x" == run.path / "x" and str(run) == str(run.path)


# ---------------------------------------------------------------------------------------------
# the claim never follows a link and never waits on a special file (issue 44, R02)


def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's words\n")
    (run / RunDir.LOCK).symlink_to(victim)
    with pytest.raises(ConfigError, match=r"\.lock is a symbolic link; remove it") as caught:
        RunDir(run).claim("--resume")
    assert "\n" not in str(caught.value)
    assert victim.read_text() == "the user's words\n"
    assert RunDir(run).holder() is None  # reading the claim does not follow it either


def test_a_lock_that_is_a_fifo_is_refused_at_once(tmp_path):
    import os

    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / RunDir.LOCK)
    with pytest.raises(ConfigError, match=r"\.lock is not a regular file"):
        RunDir(run).claim()
    assert RunDir(run).holder() is None


def test_locks_of_commands_live_in_a_folder_of_this_user(tmp_path, monkeypatch):
    """E15: another user's shared lock folder does not stand in the way; a folder of this
    user's name that is not this user's is refused in one line."""
    import os
    import shutil
    import tempfile

    from resnets.io import exclusive_target, lock_folder

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    shared = tmp_path / "resnets-locks"  # the old shared folder, another user's, 0755
    shared.mkdir(mode=0o755)
    os.chown(shared, 4242, 4242) if os.geteuid() == 0 else None
    with exclusive_target(tmp_path / "model.onnx"):
        pass
    mine = lock_folder()
    assert mine.name == f"resnets-locks-{os.getuid()}" and (mine.stat().st_mode & 0o777) == 0o700
    shutil.rmtree(mine)
    mine.symlink_to(shared)
    with pytest.raises(ConfigError, match="not a folder of this user's"):
        lock_folder()
