"""Shared fixtures: isolated caches, small generated data sets, one short trained run."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pytest_configure(config):
    """Under pytest-xdist (`-n 2`: the README's test command), each worker is one of two
    processes on 2 cores: one thread each, and so each process it starts, since two workers of
    2 threads each would wait on descheduled OpenMP threads (issue 11: throughput collapses)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def _processes() -> list[tuple[int, int, str]]:
    """(pid, start time in clock ticks since boot, command line) of every process we can see."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        out.append((int(entry.name), int(fields[19]), cmd.strip()))
    return out


def _ticks_now() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


_SESSION_START = _ticks_now() if Path("/proc/uptime").is_file() else None


def pytest_sessionfinish(session, exitstatus):
    """No process outlives its test (issue 44): once every test has run, a resnets process
    started during the run that is still alive (a server a skipped test left, say) is killed,
    named, and fails the run. Checked once, by the controlling process."""
    import signal

    from .warm import stop_warm_server

    stop_warm_server()  # a worker's own, before it reports its session finished (xdist)
    if _SESSION_START is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    me = os.getpid()
    left = [
        (pid, cmd)
        for pid, start, cmd in _processes()
        if pid != me and start >= _SESSION_START and "resnets" in cmd and "pytest" not in cmd
    ]
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if left:
        names = "; ".join(f"{pid}: {cmd[:300]}" for pid, cmd in left)
        print(f"\nprocesses left running after the tests (killed): {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Fixtures that train or export once per worker process (a session's or a module's): under
# `--dist loadgroup` (pyproject's addopts) every test using one goes to the same worker, so it
# is built once per run instead of once on each of the two workers (patch_run: ~13 s).
SHARED_BUILDS = ("patch_run", "reference", "exports", "one_process")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    # modules with slow tests first (each module kept whole, in its order): the two workers
    # then share out the long tests early and end on short ones, not on a 25 s stray
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)
    for item in items:
        used = [name for name in SHARED_BUILDS if name in getattr(item, "fixturenames", ())]
        if used:
            item.add_marker(pytest.mark.xdist_group(used[0]))


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory):
    """Decoded caches and downloads go to a temporary folder, never the user's home."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("resnets-home")
    mp.setenv("RESNETS_CACHE", str(root / "cache"))
    mp.setenv("RESNETS_DATA", str(root / "data"))
    mp.setenv("MPLBACKEND", "Agg")
    # a fixed thread count, so runs compared bit for bit never pick different ones by load
    import torch

    mp.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads())))
    yield root
    mp.undo()


def needs(*modules: str) -> pytest.MarkDecorator:
    """Skip unless every one of ``modules`` (top-level names) is installed, found without
    importing it: ``pytest.importorskip`` at a module's top imports it while each worker
    collects the tests (captum: 0.9 s a worker on Zen 3), even on the worker that runs none."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


def make_image_folder(
    root: Path, classes=("cat", "dog", "frog"), per_class: int = 12, size: int = 16, seed: int = 0
) -> Path:
    """A class-folder data set of small PNG/JPEG images whose class is visible in the colour."""
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(classes):
        d = root / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            arr[..., ci % 3] += 150
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(arr).save(d / f"{i:03d}.{ext}")
    return root


def make_cifar_archive(
    path: Path,
    n_train_per_batch: int = 20,
    n_test: int = 20,
    classes: int = 10,
    seed: int = 0,
    cifar100: bool = False,
) -> Path:
    """A small archive in the official CIFAR python layout (pickled dicts of numpy arrays)."""
    rng = np.random.default_rng(seed)
    folder = "cifar-100-python" if cifar100 else "cifar-10-batches-py"
    label_key = "fine_labels" if cifar100 else "labels"
    members = {}

    def batch(n):
        labels = (np.arange(n) % classes).tolist()
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        return pickle.dumps(
            {b"data": data, label_key.encode(): labels, b"batch_label": b"x"}, protocol=2
        )

    if cifar100:
        members["train"] = batch(n_train_per_batch * 5)
        members["test"] = batch(n_test)
        members["meta"] = pickle.dumps(
            {b"fine_label_names": [f"c{i}".encode() for i in range(classes)]}, protocol=2
        )
    else:
        for i in range(1, 6):
            members[f"data_batch_{i}"] = batch(n_train_per_batch)
        members["test_batch"] = batch(n_test)
        members["batches.meta"] = pickle.dumps(
            {
                b"label_names": [f"class{i}".encode() for i in range(classes)],
                b"num_cases_per_batch": n_train_per_batch,
            },
            protocol=2,
        )
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


PATCH_COLOURS = {
    "red": (230, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 60, 230),
    "yellow": (230, 220, 30),
}


def make_patch_folder(
    root: Path, per_class: int = 150, size: int = 32, patch: int = 8, seed: int = 0
) -> dict[str, tuple[int, int, int]]:
    """Images of grey noise whose class is decided only by a small solid patch of the class's
    colour at a random position. Returns each file's patch box ``(row, col, side)`` by its path
    relative to ``root`` ("red/0003.png")."""
    rng = np.random.default_rng(seed)
    boxes = {}
    for name, rgb in PATCH_COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            grey = rng.integers(40, 216, (size, size, 1))
            img = np.clip(grey + rng.integers(-25, 26, (size, size, 3)), 0, 255).astype(np.uint8)
            r, c = (int(v) for v in rng.integers(0, size - patch + 1, 2))
            img[r : r + patch, c : c + patch] = rgb
            Image.fromarray(img).save(root / name / f"{i:04d}.png")
            boxes[f"{name}/{i:04d}.png"] = (r, c, patch)
    return boxes


@pytest.fixture(scope="session")
def patch_run(tmp_path_factory) -> tuple[Path, Path, dict[str, tuple[int, int, int]]]:
    """ResNet-8 trained (20 epochs of 480 images, ~14 s on Zen 3) on :func:`make_patch_folder`:
    (run dir, data folder, patch boxes)."""
    from resnets.train import build_config, train

    root = tmp_path_factory.mktemp("patches")
    boxes = make_patch_folder(root / "data")
    cfg = build_config(
        "quick",
        cli_values={
            "data": str(root / "data"),
            "model": "resnet8",
            "epochs": 20.0,
            "val_split": 0.2,
        },
    )
    train(cfg, root / "run", progress=False, echo=False)
    return root / "run", root / "data", boxes


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "imgs")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A short real training run on digits, shared by the eval/predict/CLI tests."""
    from resnets.train import build_config, train

    out = tmp_path_factory.mktemp("runs") / "digits"
    cfg = build_config("digits", cli_values={"epochs": 4.0, "iters": 0})
    train(cfg, out, progress=False, echo=False)
    return out


def train_here(*argv: str) -> None:
    """`resnets train ARGV` in this test process (one thread under xdist), to exit 0: for a
    run only compared with others, which needs no process of its own (nor its 3.5 s of
    imports on Zen 3)."""
    from resnets.cli import main

    assert main(["train", *argv]) == 0


def finish(proc, timeout: float, what: str) -> tuple[str, str]:
    """``proc.communicate()`` within ``timeout`` seconds; past it the process is killed (its
    output collected) and the test fails naming ``what`` it waited for, so no test hangs and
    none leaves a process behind."""
    import subprocess

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        tail = (out or "")[-2000:] + (err or "")[-2000:]
        pytest.fail(f"{what}: not finished after {timeout:.0f} s (killed)\n{tail}")
    return out or "", err or ""


def cli_in_fresh_process(*argvs: list[str]) -> tuple[str, set[str]]:
    """Each ``resnets ARGV`` of ``argvs`` in turn, in one fresh interpreter (each must exit 0):
    what they printed, and the top-level modules the interpreter had imported by then."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from resnets.cli import main\n"
        f"for argv in {[list(a) for a in argvs]!r}:\n"
        "    assert main(argv) == 0, argv\n"
        "print(','.join(sorted(m for m in sys.modules if '.' not in m)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *printed, modules = done.stdout.strip().splitlines()
    return "\n".join(printed), set(modules.split(","))


def built_for_counting(name: str):
    """Model ``name`` built only to count its parameters or layers: an ImageNet-sized one on the
    meta device (nothing allocated or drawn: wide_resnet101_2 in 0.1 s, not 1.2 s), a CIFAR-sized
    one for real, which beats the meta tensors' bookkeeping on 1,202 layers (as
    ``resnets.models.summary.measure_cost`` decides)."""
    import torch

    from resnets.models import create_model, get_spec
    from resnets.models.summary import META_ABOVE

    big = get_spec(name).default_image_size > META_ABOVE
    with torch.device("meta" if big else "cpu"):
        return create_model(name)
