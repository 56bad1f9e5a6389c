"""torchrun with 2 CPU processes (gloo on 127.0.0.1) means the same as one process.

torchrun itself launches the runs that test its launches (one node, two nodes) and its death;
the runs that test the arithmetic of several processes (sync-BN, detection) start their ranks
as torchrun would, from its environment, forked from a warm interpreter (tests/warm.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from resnets import create_model

from ..conftest import train_here
from ..warm import warm_resnets

pytestmark = pytest.mark.slow  # subprocess and multi-run tests: seconds each

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


def _ranks(tag: str) -> dict[int, str]:
    """The live processes started with ``RESNETS_TEST_RUN=tag`` in their environment (pid ->
    command line): torchrun and its ranks, wherever they were re-parented."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if f"RESNETS_TEST_RUN={tag}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found[int(proc.name)] = cmd
        except (OSError, ValueError):  # gone meanwhile, not ours to read, or not a process
            continue
    return found


def _kill_all(tag: str) -> dict[int, str]:
    """SIGKILL every live process of the run tagged ``tag``; returns those it found."""
    found = _ranks(tag)
    for pid in found:
        os.kill(pid, signal.SIGKILL)
    return found


def _rank_env() -> dict[str, str]:
    """Every rank's environment here: 2 processes on 2 cores, one thread each; a collective
    left waiting on a rank fails after 120 s, with a traceback, rather than hanging until a
    test's time-out."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "RESNETS_DIST_TIMEOUT": "120"}


def _start(nproc: int, tag: str, *args: str) -> subprocess.Popen:
    """`resnets train ARGS` under torchrun with ``nproc`` processes on one node, every process
    tagged with ``tag`` in its environment (see _ranks)."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    launcher += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    launcher += ["-m", "resnets", "train"]
    return subprocess.Popen(
        [*launcher, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**_rank_env(), "RESNETS_TEST_RUN": tag},
        start_new_session=True,
    )


def _finish(p: subprocess.Popen, tag: str, timeout: float = 300) -> str:
    """Wait for ``p``; on a time-out kill every tagged process and fail. Either way, no process
    of the run may be left: torchrun starts each rank in a session of its own, so killing
    torchrun's process group would not reach them."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_all(tag)
        out, _ = p.communicate()
        pytest.fail(f"the run did not finish in {timeout:.0f} s:\n{out[-3000:]}")
    deadline = time.monotonic() + 10
    while _ranks(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _kill_all(tag)
    assert not left, f"processes left after the run ended: {left}\n{out[-3000:]}"
    return out


def _run(nproc: int, *args: str) -> str:
    """`resnets train ARGS` to the end under torchrun with ``nproc`` processes on one node;
    returns what it printed."""
    tag = uuid.uuid4().hex
    p = _start(nproc, tag, *args)
    out = _finish(p, tag)
    assert p.returncode == 0, out[-3000:]
    return out


def _run_ranks(nproc: int, *args: str, command: tuple[str, ...] = ("train",)) -> str:
    """`resnets COMMAND ARGS` as ``nproc`` ranks joined over gloo on 127.0.0.1 from the
    environment torchrun gives its ranks (``env://``), each a process forked from the warm
    server (tests/warm.py): the DDP arithmetic, without torchrun's agent and 3.5 s of imports
    a rank (torchrun itself is launched by the tests of its launches and of its death)."""
    port = _free_port()
    ranks = []
    for rank in range(nproc):
        env = _rank_env()
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(nproc))
        env.update(RANK=str(rank), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nproc))
        ranks.append(warm_resnets(*command, *args, env=env))
    outputs = []
    for p in ranks:
        try:
            outputs.append("".join(p.communicate(timeout=300)))
        except subprocess.TimeoutExpired:
            for q in ranks:
                q.kill()
            pytest.fail(f"rank {p.pid} did not finish in 300 s")
    assert [p.returncode for p in ranks] == [0] * nproc, "\n".join(o[-2000:] for o in outputs)
    return "\n".join(outputs)


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The run of ARGS in one process: what every multi-process run here must end with."""
    out = tmp_path_factory.mktemp("one-process") / "run"
    train_here("--out", str(out), *ARGS)
    return out


def test_ranks_stop_with_a_checkpoint_when_torchrun_is_killed(tmp_path):
    """torchrun killed outright (SIGKILL: the OOM killer, a scheduler's time-out) cannot pass
    a signal on to its ranks, which run in sessions of their own: each rank sees its parent
    gone, both stop together with a checkpoint, and none is left running."""
    tag = uuid.uuid4().hex
    run = tmp_path / "orphaned"
    long_run = [*ARGS]
    long_run[long_run.index("--epochs") + 1] = "200"  # 4,400 iterations: minutes, never reached
    p = _start(2, tag, "--out", str(run), *long_run)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metrics.exists(), "no evaluation was written in 240 s"
    os.kill(p.pid, signal.SIGKILL)  # torchrun alone
    out = _finish(p, tag, timeout=120)
    assert "the launcher (pid" in out and "exited: stopping with a checkpoint" in out, out[-3000:]
    assert (run / "last.ckpt").exists() and not (run / "model.safetensors").exists()
    # the checkpoint resumes (here in one process, which may take over a 2-process run)
    train_here("--resume", str(run), "--no-progress", "--stop-after", "1")


def test_sync_bn_over_gloo_matches_one_process(tmp_path):
    """ResNet-20 with BatchNorm, fp32: 2 CPU processes with sync_bn end with the weights and
    running statistics of 1 process (which sees the whole batch) within 1e-4. Three steps:
    each step agrees to float rounding (6e-7 after one), but in this net rounding differences
    grow about 2x per step: after 10 steps 1 and 2 processes differ by 4e-4, as much as one
    process run with 1 and with 2 threads (4.5e-4, measured), so longer runs cannot be compared
    at 1e-4 whatever the reduction."""
    bn = [
        "--model",
        "resnet20",
        "--iters",
        "3",
        "--epochs",
        "0",
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
    train_here("--out", str(tmp_path / "one"), *bn)
    _run_ranks(2, "--out", str(tmp_path / "two"), *bn, "--sync-bn", "true")
    one = load_file(tmp_path / "one" / "model.safetensors")
    assert sum(k.endswith("running_var") for k in one) == 19
    assert _max_diff(tmp_path / "one", tmp_path / "two") < 1e-4
    # without it, each process normalises by its own half batch: the weights differ
    _run_ranks(2, "--out", str(tmp_path / "local"), *bn)
    assert _max_diff(tmp_path / "one", tmp_path / "local") > 1e-3


def test_dist_timeout_from_the_environment(monkeypatch):
    import datetime

    from resnets.errors import ConfigError
    from resnets.runtime import _pg_timeout

    monkeypatch.delenv("RESNETS_DIST_TIMEOUT", raising=False)
    assert _pg_timeout() == {}
    monkeypatch.setenv("RESNETS_DIST_TIMEOUT", "90")
    assert _pg_timeout() == {"timeout": datetime.timedelta(seconds=90)}
    for bad in ("0", "-3", "soon"):
        monkeypatch.setenv("RESNETS_DIST_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="RESNETS_DIST_TIMEOUT"):
            _pg_timeout()


def test_release_ddp_frees_the_wrapper_while_the_group_lives():
    """The gloo destructor deadlock's mend: after a step, release_ddp leaves no DDP wrapper
    (nor its reducer) alive while the process group is still registered, so the group's last
    reference goes through destroy_process_group. One process, world size 1, on 127.0.0.1."""
    import gc
    import weakref

    import torch.distributed as torch_dist
    from torch import nn

    from resnets.train.step import Trainee

    torch_dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        model = nn.Linear(4, 2)
        wrapper = nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        trainee = Trainee(model, wrapper, optimizer, False, [1.0])
        loss = trainee.forward(torch.randn(8, 4)).sum()
        loss.backward()  # the reducer has run: its buckets and the graph hold references
        alive = weakref.ref(wrapper)
        reducer = weakref.ref(wrapper.reducer)
        del wrapper
        trainee.release_ddp()
        assert trainee.forward is model and trainee.local_forward is model
        gc.collect()
        assert alive() is None and reducer() is None
        assert torch_dist.is_initialized()
        trainee.release_ddp()  # no wrapper: nothing to do
    finally:
        torch_dist.destroy_process_group()


def _two_nodes(tag: str, *args: str) -> None:
    """`resnets train ARGS` as two torchrun launchers of one process each (``--nnodes 2``), as
    on two machines, joined by a c10d rendezvous on 127.0.0.1; both must finish with exit 0."""
    port, run_id = _free_port(), uuid.uuid4().hex[:8]
    node = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        run_id,
        "-m",
        "resnets",
        "train",
        *args,
    ]
    env = {**_rank_env(), "RESNETS_TEST_RUN": tag}
    launchers = [
        subprocess.Popen(
            node,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    outputs = [_finish(p, tag) for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]


def test_one_node_then_two_nodes_then_one_process_match_one_process(tmp_path, one_process):
    """One run resumed across launchers and world sizes: 5 steps as one torchrun node of 2
    processes (``--nproc-per-node 2``), 5 more as two torchrun nodes of one process each
    (``--nnodes 2``, as on two machines: what a user who outgrows one machine runs), the rest
    in one process. It ends with the weights of one process run straight through: two
    processes mean one, however they were launched, and a checkpoint moves between them."""
    tag = uuid.uuid4().hex
    run = tmp_path / "chain"
    _run(2, "--out", str(run), *ARGS, "--stop-after", "5")
    assert (run / "last.ckpt").exists() and not (run / "model.safetensors").exists()
    _two_nodes(tag, "--resume", str(run), "--no-progress", "--stop-after", "5")
    assert not (run / "model.safetensors").exists()
    log = (run / "train.log").read_text()
    assert log.count("stopped at iteration 5 ") == 1 and log.count("stopped at iteration 10 ") == 1
    train_here("--resume", str(run), "--no-progress")
    assert _max_diff(one_process, run) < 1e-4
    # the weights did move: the comparison is not between two untouched initialisations
    torch.manual_seed(0)
    init = create_model("resnet8", num_classes=10, in_chans=1, batchnorm=False).state_dict()
    trained = load_file(one_process / "model.safetensors")
    assert max(float((init[k] - trained[k]).abs().max()) for k in init) > 1e-3
    # rank 0 alone wrote the run directory: one metrics line per evaluation, not two
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_detection_run_on_two_processes_resumes_bit_identically(tmp_path):
    """Detection on several processes comes from the one loop: rank 0 claims the folder and alone
    writes it (one log, one metrics line per evaluation, the losses averaged over the ranks),
    each rank trains on its slice of the global batch, and a run stopped mid-way and resumed
    on 2 processes ends with the bytes of the run left alone."""
    import json

    from resnets.detection.coco import SyntheticSpec, generate_from_cifar

    from ..conftest import make_image_folder

    src = make_image_folder(tmp_path / "src", per_class=8, size=32)
    spec = SyntheticSpec(size=64, max_objects=2, min_side=12, max_side=40)
    folders = [
        generate_from_cifar(src, tmp_path / split, images=n, split=split, spec=spec)
        for split, n in (("train", 8), ("val", 4))
    ]
    small = {"fpn_channels": 16, "box_head_width": 32, "rpn_pre_nms": 200, "rpn_post_nms_test": 50}
    detect = ("detect", "train")
    args = ["--train", str(folders[0]), "--val", str(folders[1]), "--epochs", "1"]
    args += [
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--no-progress",
        "--detector",
        json.dumps(small),
    ]
    args += ["--set", "warmup_iters=1", "--set", "milestones=1"]
    out = _run_ranks(2, "--out", str(tmp_path / "straight"), *args, command=detect)
    log = (tmp_path / "straight" / "train.log").read_text()
    assert "2 processes" in log and log.count("epoch 1/1:") == 1, out[-2000:]
    (row,) = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").open()]
    assert row["step"] == 2 and "loss_classifier" in row  # 8 images, 4 a step, 2 per rank
    _run_ranks(2, "--out", str(tmp_path / "cut"), *args, "--stop-after", "1", command=detect)
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    _run_ranks(2, "--resume", str(tmp_path / "cut"), "--no-progress", command=detect)
    weights = [(tmp_path / r / "model.safetensors").read_bytes() for r in ("straight", "cut")]
    assert weights[0] == weights[1]
