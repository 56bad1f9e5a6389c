"""The bottom of the package: files written atomically, file digests, verified downloads, who
may write where. Imports nothing of resnets but its error types, and no torch (checkpoints,
which need it, are ``resnets.checkpoint``)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from .errors import ConfigError, DataError, ResnetsError

#: the largest weights or checkpoint file read (ResNet-152's checkpoint is ~0.5 GB)
MAX_WEIGHTS_BYTES = 4 * 2**30


def read_bounded(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. Its kind and size are checked
    before reading, so a FIFO, a device such as /dev/zero or a huge sparse file is a one-line
    error instead of a read without end."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        raise DataError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise DataError(f"{path}: {kind} ({what}: a regular file expected)")
    if st.st_size > limit:
        raise DataError(f"{path}: {st.st_size:,} bytes, over the {limit:,}-byte limit ({what})")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise DataError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if len(data) > limit:  # grew while being read
        raise DataError(f"{path}: over the {limit:,}-byte limit ({what})")
    return data


#: written first into every run folder (resnets.rundir.RunDir): a folder that holds it belongs to a run
RUN_MARKER = ".resnets-run"
#: the installed package's own folder: its files (shipped weights, the web page) are no
#: command's output
PACKAGE_DIR = Path(__file__).resolve().parent


def package_is_checkout() -> bool:
    """Whether the package runs from a source checkout (``src/resnets`` beside pyproject.toml),
    where the developers' `weights package` and calibration of shipped weights write."""
    return (PACKAGE_DIR.parent.parent / "pyproject.toml").is_file()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def run_folder_of(path: str | os.PathLike) -> Path | None:
    """The run folder ``path`` lies in (itself or the nearest folder above with the run
    marker), or None."""
    resolved = Path(path).expanduser().resolve()
    return next((f for f in (resolved, *resolved.parents) if (f / RUN_MARKER).is_file()), None)


def check_owner(
    target: str | os.PathLike,
    option: str = "--out",
    *,
    reading: tuple[str | os.PathLike, ...] = (),
    own: tuple[str | os.PathLike, ...] = (),
    package_ok: bool = False,
    runs: bool = True,
) -> None:
    """Refuse, before any work, a ``target`` that belongs to something else: a file or folder
    being read (``reading``: the data, the weights; a file by its path or as the same file
    under another name), the installed package's files (unless ``package_ok``), or a run
    folder the command was not given (``own``: the runs and folders it may write into;
    ``runs=False`` for a run folder's own door, :meth:`resnets.rundir.RunDir.create`, which
    words that case itself)."""
    resolved = Path(target).expanduser().resolve()
    for source in reading:
        root = Path(source).expanduser()
        if root.is_file() and (
            resolved == root.resolve() or (resolved.exists() and os.path.samefile(resolved, root))
        ):
            raise ConfigError(
                f"{option} {target}: is {source}, a file this command reads; write somewhere else"
            )
        if root.is_dir() and _inside(resolved, root.resolve()):
            raise ConfigError(
                f"{option} {target}: inside {source}, the data this command reads (its folders "
                "would gain files that load as images or classes); write somewhere else"
            )
    mine = [Path(o).expanduser().resolve() for o in own]
    if any(_inside(resolved, o) for o in mine):
        return
    if not package_ok and _inside(resolved, PACKAGE_DIR):
        raise ConfigError(
            f"{option} {target}: inside the installed resnets package, whose files no command "
            "replaces; give a path of your own"
        )
    run = run_folder_of(resolved) if runs else None
    if run is not None:
        raise ConfigError(
            f"{option} {target}: inside the run folder {run}, which this command was not given; "
            "write somewhere else"
        )


def own_run(weights: str | os.PathLike) -> tuple[Path, ...]:
    """The run folder the weights given by path come from: a command may write into it (an
    evaluation's figures beside the run), never into another run's."""
    if not Path(weights).exists():
        return ()
    run = run_folder_of(weights)
    return (run,) if run is not None else ()


def claim_output_name(stem: str, out: Path, taken: set[Path], suffixes: Sequence[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``...: the first name whose files in ``out`` (the name
    plus each of ``suffixes``) are all outside ``taken`` (resolved paths: the inputs and what
    this command wrote already); its files join ``taken``. One helper for every command that
    names its outputs after its inputs (explain, detect predict): an output never replaces an
    input nor another output."""
    name, k = stem, 1
    while any(out / f"{name}{suffix}" in taken for suffix in suffixes):
        k += 1
        name = f"{stem}-{k}"
    taken.update(out / f"{name}{suffix}" for suffix in suffixes)
    return name


def open_lock_file(path: str | os.PathLike, what: str) -> int:
    """Open (creating it) the lock file ``path`` for ``flock`` and return its descriptor. The
    open never follows a symbolic link (a link planted there cannot make this truncate or
    write another file), never blocks (a FIFO there is opened without waiting) and the result
    must be a regular file: anything else is a one-line ConfigError naming ``what``."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(
                f"{what}: its lock {path} is a symbolic link; remove it (resnets never follows one)"
            ) from None
        raise ConfigError(f"{what}: cannot open its lock {path} ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{what}: its lock {path} is not a regular file; remove it")
    return fd


def lock_folder() -> Path:
    """This user's folder for the locks of :func:`exclusive_target`: ``$XDG_RUNTIME_DIR`` or
    ``resnets-locks-UID`` in the temporary folder, made private (0700). One user's folder never
    stands in another's way; a folder of that name owned by someone else, or a link, is
    refused in one line."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        base = Path(runtime) / "resnets-locks"
    else:
        base = Path(tempfile.gettempdir()) / f"resnets-locks-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(base)
    except OSError as e:
        raise ConfigError(f"lock folder {base}: cannot make it ({e.strerror or e})") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(
            f"lock folder {base}: not a folder of this user's (a link, a file, or another "
            "user's); remove it or set XDG_RUNTIME_DIR"
        )
    return base


def take_claim(lock: str | os.PathLike, where: str, busy: str) -> BinaryIO:
    """The one claim of resnets: hold the lock file ``lock`` (``flock``, released by the kernel
    on any exit) for this process and record its PID there; returns the open handle, held as
    long as the claim. Taken by another process: a one-line ConfigError, ``where`` naming
    the path, then the holder's PID and ``busy`` saying what to do. Run folders hold their
    lock inside (:class:`~resnets.rundir.RunDir`), single outputs in :func:`lock_folder`."""
    handle = os.fdopen(open_lock_file(lock, where), "r+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = claim_holder_in(handle)
        handle.close()
        who = f"process {holder}" if holder else "another process"
        raise ConfigError(f"{where}: in use by {who} ({busy})") from None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


def claim_holder_in(handle: BinaryIO) -> int:
    """The PID recorded in a claim's lock file (0 where none is)."""
    handle.seek(0)
    text = handle.read(64).decode(errors="replace").split()
    return int(text[0]) if text and text[0].isdigit() else 0


@contextlib.contextmanager
def exclusive_target(target: str | os.PathLike, option: str = "--out"):
    """Hold ``target`` for this process while it is written: a second command writing the same
    target at the same time stops at once with one line, instead of both reporting success
    over each other's files. The claim (:func:`take_claim`) lives in this user's lock folder
    (:func:`lock_folder`), keyed by the resolved path."""
    resolved = str(Path(target).expanduser().resolve())
    key = hashlib.sha256(resolved.encode()).hexdigest()[:32]
    busy = "another resnets command is writing it now; wait for it or give another path"
    with take_claim(lock_folder() / f"{key}.lock", f"{option} {target}", busy):
        yield


def check_writable(
    target: str | os.PathLike,
    option: str = "--out",
    *,
    folder: bool,
    reading: tuple[str | os.PathLike, ...] = (),
    own: tuple[str | os.PathLike, ...] = (),
    package_ok: bool = False,
) -> None:
    """Before any work: ``target`` (a file, or a ``folder``) can be written where it is asked
    for, and belongs to nothing else (:func:`check_owner`). A path through a file, a file
    where a folder is wanted (or the reverse), a read-only or full file system are one-line
    errors now, not after minutes of work."""
    check_owner(target, option, reading=reading, own=own, package_ok=package_ok)
    target = Path(target)
    if target.exists() and target.is_dir() != folder:
        raise ConfigError(f"{option} {target}: exists and is {'not ' if folder else ''}a folder")
    base = target if folder else target.parent
    existing = next((p for p in (base, *base.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{option} {target}: {existing} is a file, not a folder")
    probe_dir = base if base.exists() else existing
    if probe_dir is None:
        return
    probe = probe_dir / f".resnets-write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"probe")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise ConfigError(f"{option} {target}: cannot write there ({e.strerror or e})") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/[^\s`'\"|,;)]+")


def relative_paths(text: str, start: str | os.PathLike | None = None) -> str:
    """``text`` with every absolute path in it written relative to ``start`` (the working
    folder: the repository, for the docs it writes), so that shipped pages name no machine's
    folders: ``/work/shared/data/x`` from ``/work/main`` reads ``../shared/data/x``."""
    base = os.path.abspath(start or os.getcwd())
    return _ABSOLUTE_PATH.sub(lambda m: os.path.relpath(m.group(0), base), text)


def env_folder(variable: str, default: Path) -> Path:
    """The folder an environment variable names (``default`` when unset or empty), checked
    before any work: a path through or to a file is a one-line error naming the variable."""
    value = os.environ.get(variable, "").strip()
    folder = Path(value).expanduser() if value else default
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise ConfigError(f"${variable}={value or folder}: {part} is a file, not a folder")
            break
    return folder


def progress_bar(*, disable: bool = False, **kwargs: Any) -> tqdm:
    """A tqdm bar on a terminal only: output going to a file or a pipe gets no bar frames
    (carriage returns), just the plain lines the commands log."""
    return tqdm(disable=disable or not sys.stderr.isatty(), **kwargs)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers only ever see the old or the complete new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """An indented JSON file, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks of ``chunk`` bytes (never the whole file at once)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is alive (someone else's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_tree(folder: Path) -> None:
    """fsync every file in ``folder`` (recursively) and the folders themselves."""
    for path in sorted(Path(folder).rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(Path(folder))


def partial_folder(dest: Path) -> Path:
    """A new hidden folder beside ``dest`` to build it in (removed by :func:`replace_folder`
    or by the caller on failure): a reader never sees a half-built ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):  # left by a killed process
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def replace_folder(tmp: Path, dest: Path) -> None:
    """Put the complete folder ``tmp`` at ``dest``: files fsynced, then renamed in one step
    when ``dest`` is absent or empty; an existing ``dest`` is moved aside first and removed
    after, so ``dest`` holds the complete old folder or the complete new one."""
    tmp, dest = Path(tmp), Path(dest)
    fsync_tree(tmp)
    if dest.is_dir() and any(dest.iterdir()):
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    fsync_dir(dest.parent)


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (empty when it has none)."""
    lines = str(e).strip().splitlines()
    return lines[0][:limit] if lines else ""


class DownloadError(ResnetsError):
    """A download that failed or did not verify; nothing was left under the final name."""


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256_prefix: str = "",
    md5: str = "",
    timeout: float = 30.0,
    progress: bool = True,
    offline_hint: str = "",
) -> Path:
    """Fetch ``url`` into ``dest`` atomically, verifying its checksum.

    The bytes go to a temporary file beside ``dest`` (fsync'ed), are checked against the
    expected SHA-256 (or its leading hex digits, as torchvision's file names carry them) or
    MD5, and only then renamed to ``dest``. A refused connection, a time-out, a short body
    (fewer bytes than Content-Length) or a checksum mismatch raises :class:`DownloadError` and
    leaves no file under ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    hint = offline_hint or f"Offline? Put {dest.name} in {dest.parent}"
    sha, md = hashlib.sha256(), hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            got = 0
            with progress_bar(
                total=total or None,
                unit="B",
                unit_scale=True,
                disable=not progress,
                desc=f"download {dest.name}",
            ) as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    sha.update(chunk)
                    md.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total and got != total:
                raise DownloadError(f"download of {url} ended after {got} of {total} bytes; {hint}")
            f.flush()
            os.fsync(f.fileno())
        if sha256_prefix and not sha.hexdigest().startswith(sha256_prefix.lower()):
            raise DownloadError(
                f"downloaded {url}: SHA-256 {sha.hexdigest()[:16]}... does not start with the "
                f"expected {sha256_prefix}; the file was discarded"
            )
        if md5 and md.hexdigest() != md5.lower():
            raise DownloadError(
                f"downloaded {url}: MD5 {md.hexdigest()} does not match the expected {md5}"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
        raise DownloadError(
            f"could not download {url} ({getattr(e, 'reason', None) or e}). {hint}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)
    return dest
