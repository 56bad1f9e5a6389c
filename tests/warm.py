"""`resnets` command processes without the interpreter's start-up: a warm server per test
worker has imported torch, torch._dynamo (which torch.optim's first step imports) and
resnets, and forks one child per command.

A fresh `python -m resnets train` spends 3.5 s of CPU on those imports on the Zen 3 before its
first step; the suite starts dozens. A forked child is a real process of its own (its pid, its
signals, its exit status, its own files), running the same `resnets.cli.main` that
`python -m resnets` runs, so the tests of killing, signalling and running side by side hold
for it. What only a fresh interpreter shows (the entry point, what a command imports) is
tested with fresh interpreters elsewhere.

The server has run no torch operation (so no OpenMP pool exists to be lost by a fork) and runs
on one thread: every command it starts does (`OMP_NUM_THREADS=1`, the test workers' count).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: seconds: the longest any wait here lasts (a command, the server's start, its answer)
LONGEST = 600.0

_SERVER = r"""
import atexit, json, os, signal, sys, traceback
import torch, torch._dynamo, resnets.cli

ENTRY = os.path.join(os.path.dirname(os.path.dirname(resnets.cli.__file__)), "__main__.py")
STATUS = os.path.join(sys.argv[1], "{}.status")


def reap(*_):  # each child's exit status, as subprocess reports it (-N: killed by signal N)
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        path = STATUS.format(pid)
        with open(path + ".tmp", "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))
        os.replace(path + ".tmp", path)


def child(req):
    for sig, handler in ((signal.SIGCHLD, signal.SIG_DFL), (signal.SIGTERM, signal.SIG_DFL),
                         (signal.SIGINT, signal.default_int_handler)):
        signal.signal(sig, handler)
    if req["new_session"]:
        os.setsid()
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    sys.argv = [ENTRY, *req["argv"]]
    code = 1
    try:
        code = resnets.cli.main(req["argv"])
    except SystemExit as e:  # as the interpreter turns sys.exit's argument into a status
        code = e.code if isinstance(e.code, int) or e.code is None else 1
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:  # the interpreter's way: a traceback, then death by SIGINT
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


signal.signal(signal.SIGCHLD, reap)
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(request)
    print(pid, flush=True)
"""


class WarmProcess:
    """A command forked by the warm server, with the part of ``subprocess.Popen``'s interface
    the tests use: ``pid``, ``returncode``, ``poll``, ``wait``, ``communicate`` (its whole
    output, as text, once it has exited), ``send_signal``, ``terminate`` and ``kill``."""

    def __init__(self, pid: int, folder: Path, argv: list[str], out: Path, err: Path) -> None:
        self.pid = pid
        self.args = ["resnets", *argv]
        self.returncode: int | None = None
        self._status = folder / f"{pid}.status"
        self._out, self._err = out, err

    def poll(self) -> int | None:
        if self.returncode is None and self._status.exists():
            self.returncode = int(self._status.read_text())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        # no wait without end: a child whose status never comes (its server gone) fails the
        # test after LONGEST seconds rather than hanging it
        limit = LONGEST if timeout is None else timeout
        deadline = time.monotonic() + limit
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, limit)
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self._out.read_text(errors="replace"), self._err.read_text(errors="replace")

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # never a signal to a pid that may have been reused
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Server:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="resnets-warm-"))
        self.count = 0
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(self.folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        if self._answer() != "ready":
            self.stop()
            raise RuntimeError("the warm resnets server did not start")

    def _answer(self) -> str:
        """The server's next line, or "" if none comes within LONGEST seconds (or it died)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], LONGEST)
        return self.proc.stdout.readline().strip() if ready else ""  # type: ignore[union-attr]

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, new_session: bool):
        self.count += 1
        out, err = self.folder / f"{self.count}.out", self.folder / f"{self.count}.err"
        request = {
            "argv": argv,
            "env": env,
            "cwd": str(cwd),
            "stdout": str(out),
            "stderr": str(err),
            "new_session": new_session,
        }
        self.proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        answer = self._answer()
        if not answer.isdigit():
            raise RuntimeError(f"the warm resnets server failed: {answer!r}")
        return WarmProcess(int(answer), self.folder, argv, out, err)

    def stop(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_server: _Server | None = None


def warm_resnets(
    *argv: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
) -> WarmProcess:
    """`resnets ARGV` as a process forked from this worker's warm server (started on first
    use), with ``env`` (default: this process's) and ``cwd``; ``new_session`` as Popen's
    ``start_new_session``. Its output is read with ``communicate`` once it has exited."""
    global _server
    if _server is None or _server.proc.poll() is not None:
        _server = _Server()
        atexit.register(stop_warm_server)
    env = dict(os.environ if env is None else env)
    return _server.start(list(argv), env, Path(cwd or os.getcwd()), new_session)


def warm_run(*argv: str, env: dict[str, str] | None = None, timeout: float = 300):
    """`resnets ARGV` to its end (``subprocess.run``'s ``CompletedProcess``, text output);
    past ``timeout`` seconds it is killed and the test fails (conftest's ``finish``)."""
    from .conftest import finish

    proc = warm_resnets(*argv, env=env)
    out, err = finish(proc, timeout, f"resnets {' '.join(argv)}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def stop_warm_server() -> None:
    """Stop this worker's warm server (its children, if any, go on to their end)."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
