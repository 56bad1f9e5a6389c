"""The run folder's one owner: its file names, its state, and the claim that lets one process
at a time write it. Training (classification and detection), the experiment queue, the zoo's
packaging and weights resolution all ask a :class:`RunDir` instead of looking for files.

::

    RUN_DIR/.resnets-run       written first: only a folder holding it is ever treated as a run
    RUN_DIR/.lock              the claim (``flock``; the kernel releases it on any exit)
    RUN_DIR/config.json        the resolved config (+ command, versions, data split)
    RUN_DIR/metrics.jsonl      one JSON line per evaluation
    RUN_DIR/last.ckpt          everything needed to resume (atomic, SHA-256 checked)
    RUN_DIR/best.ckpt          the best weights by validation error
    RUN_DIR/model.safetensors  the final weights with metadata (classes, normalisation, ...)
    RUN_DIR/curves.png         training (thin dashed) and validation (bold) error vs iterations
    RUN_DIR/summary.json       final numbers, training time, time to accuracy: the run finished
    RUN_DIR/train.log          the log

A run folder is in one of the states of :class:`RunStatus`; :meth:`RunDir.create` and
:meth:`RunDir.open_for_resume` are the only ways into one for writing, and both hold the claim.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import CheckpointError, ConfigError
from .io import (
    RUN_MARKER,
    atomic_write_bytes,
    check_owner,
    claim_holder_in,
    pid_alive,
    run_folder_of,
    take_claim,
)


class RunStatus(enum.Enum):
    """Where a run folder stands."""

    NEW = "new"  # no folder, or one holding nothing (or only a released claim)
    FOREIGN = "foreign"  # a non-empty folder resnets never made: never touched
    ABANDONED = "abandoned"  # stopped before its first checkpoint, no process holds it
    RUNNING = "running"  # a live process holds the claim
    INTERRUPTED = "interrupted"  # a checkpoint to resume from, not finished
    FINISHED = "finished"  # summary.json: nothing left to train
    DAMAGED = "damaged"  # a run's files, but neither a checkpoint nor a summary


class RunDir(os.PathLike):
    """One run folder. Usable wherever a path is (``os.fspath``, ``/``)."""

    MARKER = RUN_MARKER
    LOCK = ".lock"
    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    LAST = "last.ckpt"
    BEST = "best.ckpt"
    WEIGHTS = "model.safetensors"
    CURVES = "curves.png"
    SUMMARY = "summary.json"
    LOG = "train.log"
    #: what a run writes before its first checkpoint: a run folder holding only these (and no
    #: live claim) is abandoned, and cleared when a run is started into it again
    EARLY = frozenset({LOCK, MARKER, CONFIG, LOG, METRICS, "tensorboard"})

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._handle: IO[bytes] | None = None
        self._depth = 0

    # -- a path
    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # -- its files
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def last(self) -> Path:
        return self.path / self.LAST

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def weights(self) -> Path:
        return self.path / self.WEIGHTS

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    # -- its state
    def is_run(self) -> bool:
        """Whether resnets made this folder a run folder (it holds the marker)."""
        return (self.path / self.MARKER).is_file()

    @property
    def finished(self) -> bool:
        return self.summary.is_file()

    @property
    def status(self) -> RunStatus:
        """Where the folder stands now (see :class:`RunStatus`)."""
        if not self.path.is_dir():
            return RunStatus.NEW
        if self.holder() is not None:
            return RunStatus.RUNNING
        if self.finished:
            return RunStatus.FINISHED
        if self.last.is_file():
            return RunStatus.INTERRUPTED
        names = {p.name for p in self.path.iterdir() if not _is_temporary(p.name)}
        if names <= {self.LOCK}:
            return RunStatus.NEW
        if not self.is_run():
            return RunStatus.FOREIGN
        return RunStatus.ABANDONED if names <= self.EARLY else RunStatus.DAMAGED

    def trained_weights(self) -> Path | None:
        """The weights a user means by this folder: the final ``model.safetensors``, else the
        best checkpoint, else the last one (None: none yet)."""
        return next((p for p in (self.weights, self.best, self.last) if p.is_file()), None)

    # -- its records
    def read_config(self) -> dict[str, Any]:
        """``config.json``; a missing or corrupt one is a one-line error."""
        return _read_object(self.config, f"is {self.path} a resnets run directory?")

    @property
    def kind(self) -> str:
        """The task the run trains: its ``config.json``'s ``kind`` (a detection run's says
        ``detection``), else ``classification``."""
        if not self.config.is_file():
            return "classification"
        kind = self.read_config().get("kind", "classification")
        return kind if isinstance(kind, str) else "classification"

    def read_summary(self) -> dict[str, Any]:
        """``summary.json`` of a finished run; a missing or corrupt one is a one-line error."""
        return _read_object(self.summary, f"has the run in {self.path} finished?")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl`` (a line cut by a crash is skipped)."""
        rows = []
        if not self.metrics.is_file():
            return rows
        for line in self.metrics.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash; the checkpoint decides what counts
        return rows

    # -- the claim: one process writes a run folder at a time
    def holder(self) -> int | None:
        """The process holding the claim (its PID, 0 where unrecorded), or None. This process's
        own claim counts only through :meth:`held`."""
        if self._handle is not None:
            return None
        lock = self.path / self.LOCK
        try:  # never a link, never a wait on a FIFO: only a regular file can hold a claim
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        with os.fdopen(fd, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return claim_holder_in(handle)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None

    @property
    def held(self) -> bool:
        """Whether this object holds the claim."""
        return self._handle is not None

    def claim(self, option: str | None = None) -> None:
        """Take the folder for this process (creating it), or raise ConfigError naming the
        process that has it. Re-entrant: a claim taken again by the same object nests, and
        the folder is released when the outermost :meth:`release` runs. ``option`` names the
        flag the path came from in the error."""
        if self._handle is not None:
            self._depth += 1
            return
        where = f"{option} {self.path}" if option else str(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{where}: cannot write there ({e.strerror or e})") from None
        handle = take_claim(self.path / self.LOCK, where, "a run is training there")
        self._handle, self._depth = handle, 1  # held for the run
        self._clear_temporaries()

    def release(self) -> None:
        """Give the claim back (the outermost release closes it)."""
        if self._handle is None:
            return
        self._depth -= 1
        if self._depth <= 0:
            self._handle.close()
            self._handle, self._depth = None, 0

    @contextlib.contextmanager
    def releasing(self) -> Iterator[RunDir]:
        """``with run.releasing(): ...``: give back the claim already taken (by :meth:`create`
        or :meth:`open_for_resume`) when the block ends, however it ends."""
        try:
            yield self
        finally:
            self.release()

    def try_claim(self) -> bool:
        """Take the claim if no other process has it (the experiment queue's workers)."""
        try:
            self.claim()
        except ConfigError:
            return False
        return True

    # -- the two ways in for writing
    def create(self, reading: tuple[str | os.PathLike, ...] = ()) -> RunDir:
        """Claim a new run here; never reuse a folder that holds a run (that is a resume). A
        folder left by a run that stopped before its first checkpoint is cleared and reused;
        a folder resnets never made is refused whole. The door every trainer goes through, so
        it checks ownership itself (the CLI and the Python API alike): never inside the
        data being read (``reading``), the installed package, or another run."""
        where = f"--out {self.path}"
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{where}: exists and is not a folder")
        check_owner(self.path, "--out", reading=reading, runs=False)
        # runs never nest: a new run inside another run's folder (at any depth) is refused
        # here, at the door every trainer and the experiment queue go through
        outer = run_folder_of(self.path.expanduser().resolve().parent)
        if outer is not None:
            raise ConfigError(
                f"{where}: inside the run folder {outer}; runs do not nest, pick another --out"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{where}: cannot create the folder ({e.strerror or e})") from None
        foreign = f"{where}: not empty and not a resnets run folder; pick a new or empty folder"
        if self.status is RunStatus.FOREIGN:  # refused before anything is written there
            raise ConfigError(foreign)
        self.claim("--out")
        try:
            status = self.status  # decided again under the claim: no other process changes it
            if status is RunStatus.ABANDONED:
                for p in self.path.iterdir():  # only the run's own early files
                    if p.name != self.LOCK:
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
            elif status is RunStatus.FOREIGN:
                raise ConfigError(foreign)
            elif status is not RunStatus.NEW:
                raise ConfigError(
                    f"{where}: already holds a run; resume it with --resume {self.path} or pick "
                    "another --out"
                )
            try:
                atomic_write_bytes(
                    self.path / self.MARKER, b"a resnets run folder (see train.log)\n"
                )
            except OSError as e:
                raise ConfigError(f"{where}: cannot write there ({e.strerror or e})") from None
        except BaseException:
            self.release()
            raise
        return self

    def open_for_resume(self) -> RunDir:
        """Claim an interrupted run to continue it; refuse a missing, finished, held or
        checkpoint-less one with a line that says what to do."""
        where = f"--resume {self.path}"
        if not self.path.is_dir():
            raise ConfigError(f"{where}: no such run directory (nothing to resume)")
        if self.status in (RunStatus.INTERRUPTED, RunStatus.RUNNING):
            self.claim()  # (a held run is refused here, naming its process)
        try:
            status = self.status
            if status is RunStatus.FINISHED:
                raise ConfigError(
                    f"{where}: this run has finished (summary.json); nothing to resume"
                )
            if status is not RunStatus.INTERRUPTED:
                hint = (
                    f"; it stopped before its first checkpoint: start it again with --out {self.path}"
                    if status is RunStatus.ABANDONED
                    else ""
                )
                raise CheckpointError(f"{where}: no last.ckpt there (nothing to resume){hint}")
            if self.config.exists():
                self.read_config()  # a corrupt one is an error now, not after the training
        except BaseException:
            self.release()
            raise
        return self

    def _clear_temporaries(self) -> None:
        """Temporary files of an interrupted atomic write whose process is gone."""
        for tmp in self.path.glob(".*.tmp-*"):
            pid = tmp.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


def _read_object(path: Path, hint: str) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing ({hint})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: unreadable ({e})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: not a JSON object")
    return obj
