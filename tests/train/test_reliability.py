"""Run folders that never dead-end: claims of dead processes, abandoned folders, concurrent resumes, finished
runs, a failed final write; and eval/predict inputs that must not give a silent wrong result."""

from __future__ import annotations

import dataclasses
import errno
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from resnets.cli import main
from resnets.errors import CheckpointError, ConfigError, DataError
from resnets.models.weights import read_weights
from resnets.rundir import RunDir, RunStatus
from resnets.train import build_config, train
from resnets.train import report as report_mod


def small(**kw):
    return build_config("digits", cli_values={"epochs": 1.0, "iters": 0, **kw})


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_a_folder_abandoned_before_its_first_checkpoint_is_reused(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / ".resnets-run").write_text("a resnets run folder\n")  # written first by every run
    (run / ".lock").write_text(str(_dead_pid()))
    (run / "config.json").write_text("{}")
    (run / "train.log").write_text("started\n")
    with pytest.raises(CheckpointError, match=f"start it again with --out {run}"):
        train(small(), run, resume=True, progress=False, echo=False)
    res = train(small(), run, progress=False, echo=False)
    assert res.final_val_err is not None and (run / "model.safetensors").is_file()
    assert "started" not in (run / "train.log").read_text()


@pytest.mark.parametrize("own", ["config.json", "train.log", "tensorboard/events.out", "x.txt"])
def test_a_users_folder_is_never_taken_for_a_run(tmp_path, own):
    """A folder resnets never made (no run marker) is refused whole, even when it holds only
    names a run also writes: nothing of the user's is removed."""
    out = tmp_path / "exp"
    (out / own).parent.mkdir(parents=True, exist_ok=True)
    (out / own).write_text("the user's own file")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(ConfigError, match="not a resnets run folder"):
        train(small(), out, progress=False, echo=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / own).read_text() == "the user's own file"


def _hold(run) -> subprocess.Popen:
    """Another process that claims ``run`` (as a training would) and keeps it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from resnets.rundir import RunDir; "
            "run = RunDir(sys.argv[1]); run.claim(); print('held', flush=True); time.sleep(60)",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_live_claim_refuses_a_second_resume_and_a_dead_one_does_not(tmp_path):
    run = tmp_path / "r"
    train(small(), run, progress=False, echo=False, stop_after=3)
    holder = _hold(run)
    try:
        assert RunDir(run).status is RunStatus.RUNNING
        with pytest.raises(ConfigError, match=f"in use by process {holder.pid}"):
            train(small(), run, resume=True, progress=False, echo=False)
        with pytest.raises(ConfigError, match=f"in use by process {holder.pid}"):
            train(small(), run, resume="auto", progress=False, echo=False)
    finally:
        holder.kill()  # SIGKILL: no clean-up ran; the kernel released its claim
        holder.wait()
    assert RunDir(run).status is RunStatus.INTERRUPTED
    (run / f".model.safetensors.tmp-{_dead_pid()}").write_bytes(b"half")
    res = train(small(), run, resume=True, progress=False, echo=False)  # the holder is gone
    assert res.final_val_err is not None
    assert not list(run.glob(".*.tmp-*"))  # the interrupted write's leftovers are cleaned
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len({json.loads(x)["step"] for x in lines}) == len(lines)  # every line once


def test_a_finished_run_is_not_resumed(tmp_path):
    run = tmp_path / "r"
    train(small(), run, progress=False, echo=False)
    before = (run / "summary.json").read_text()
    with pytest.raises(ConfigError, match="this run has finished"):
        train(small(), run, resume=True, progress=False, echo=False)
    assert (run / "summary.json").read_text() == before

    def no_nan(c):
        raise AssertionError(f"{c} in summary.json")

    json.loads(before, parse_constant=no_nan)  # strict JSON: no NaN or Infinity


def test_a_failed_final_write_is_recovered_by_resume(tmp_path, monkeypatch):
    run = tmp_path / "r"

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_mod, "save_weights", full_disk)
    with pytest.raises(
        CheckpointError, match="could not write .*model.safetensors .*No space left"
    ):
        train(small(), run, progress=False, echo=False)
    monkeypatch.undo()
    res = train(
        small(), run, resume=True, progress=False, echo=False
    )  # no training left: just writes
    _, meta = read_weights(run / "model.safetensors")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert res.final_val_err == rows[-1]["val_err"] and meta.final["val_err"] == rows[-1]["val_err"]
    assert meta.metrics["top1"] == pytest.approx(1 - rows[-1]["val_err"])


def test_options_given_with_resume_are_refused(tmp_path, capsys):
    run = tmp_path / "r"
    train(small(), run, progress=False, echo=False, stop_after=3)
    assert main(["train", "--resume", str(run), "--lr", "0.5", "--set", "seed=3"]) == 2
    err = capsys.readouterr().err
    assert "cannot change: lr, seed" in err and len(err.strip().splitlines()) == 1


def test_a_resumed_run_moves_to_the_threads_given_and_otherwise_keeps_its_own(tmp_path):
    """--threads with --resume is where the run goes on (a machine with more cores free), like
    --device; without it the run keeps the count it was started with."""
    import torch

    from resnets.checkpoint import load_checkpoint

    run = tmp_path / "r"
    before = torch.get_num_threads()
    try:
        train(small(threads=1), run, progress=False, echo=False, stop_after=2)
        argv = ["train", "--resume", str(run), "--no-progress", "--stop-after", "2"]
        assert main([*argv, "--threads", "2"]) == 0
        assert load_checkpoint(run / "last.ckpt")["config"]["threads"] == 2
        assert "on 2 CPU threads instead of 1" in (run / "train.log").read_text()
        assert main(argv) == 0  # not given: the count it has now
        assert load_checkpoint(run / "last.ckpt")["config"]["threads"] == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_eval_and_predict_refuse_silent_wrong_results(digits_run, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    # non-finite weights
    sd = load_file(digits_run / "model.safetensors")
    sd["fc.weight"][0, 0] = float("nan")
    from safetensors import safe_open

    with safe_open(str(digits_run / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
    save_file(sd, str(tmp_path / "nan.safetensors"), metadata=metadata)
    assert main(["eval", "--weights", str(tmp_path / "nan.safetensors"), "--data", "digits"]) == 2
    assert "non-finite values (NaN/inf) in fc.weight" in capsys.readouterr().err
    # the training images scored under 'all' are named as such
    assert main(["eval", "--weights", str(digits_run), "--data", "digits", "--no-progress"]) == 0
    assert "scores its training images too" in capsys.readouterr().err
    # also when multi-scale testing loads them at another size (12 px against 8)
    argv = ["eval", "--weights", str(digits_run), "--data", "digits", "--scales", "8,12"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "scales")]) == 0
    assert "scores its training images too" in capsys.readouterr().err
    # a colour image for a grayscale model
    Image.fromarray(np.uint8(np.random.default_rng(0).integers(0, 255, (8, 8, 3)))).save(
        tmp_path / "c.png"
    )
    assert main(["predict", "--weights", str(digits_run), str(tmp_path / "c.png")]) == 2
    assert "a colour image for a model of grayscale images" in capsys.readouterr().err
    Image.fromarray(np.full((8, 8), 120, np.uint8)).save(tmp_path / "g.png")
    assert main(["predict", "--weights", str(digits_run), str(tmp_path / "g.png")]) == 0


def test_zero_images_to_score_is_an_error(tmp_path):
    from resnets.eval import score
    from resnets.inference import load_weights

    run = tmp_path / "nv"
    train(small(val_split=0), run, progress=False, echo=False)
    lm = load_weights(run)
    with pytest.raises(DataError, match="no images to score"):
        score(lm, "digits", subset="val")


def test_resume_with_a_corrupt_or_missing_config_json(tmp_path):
    run = tmp_path / "r"
    train(small(), run, progress=False, echo=False, stop_after=3)
    (run / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: unreadable"):
        train(small(), run, resume=True, progress=False, echo=False)
    (run / "config.json").unlink()  # missing: the checkpoint has the config, the run goes on
    res = train(small(), run, resume=True, progress=False, echo=False)
    assert res.final_val_err is not None and (run / "model.safetensors").is_file()


def test_resume_auto_starts_resumes_or_returns_the_finished_result(tmp_path):
    """``train(cfg, run_dir, resume="auto")``: one call whatever the folder holds."""
    run = RunDir(tmp_path / "r")
    assert run.status is RunStatus.NEW
    part = train(small(), run, resume="auto", progress=False, echo=False, stop_after=3)
    assert part.stopped == "stop_after" and run.status is RunStatus.INTERRUPTED
    done = train(small(), run, resume="auto", progress=False, echo=False)
    assert done.stopped is None and run.status is RunStatus.FINISHED
    summary = run.summary.read_bytes()
    again = train(small(), run, resume="auto", progress=False, echo=False)  # nothing trained
    assert run.summary.read_bytes() == summary
    assert (again.final_val_err, again.iters, again.best_val_err) == (
        done.final_val_err,
        done.iters,
        done.best_val_err,
    )
    # issue 44, R07: another config's run is never returned (nor continued) as this one's
    other = dataclasses.replace(small(), seed=small().seed + 1)
    with pytest.raises(ConfigError, match="holds a run of another config \\(seed"):
        train(other, run, resume="auto", progress=False, echo=False)
    assert run.summary.read_bytes() == summary
    with pytest.raises(ConfigError, match="resume='yes'"):
        train(small(), run, resume="yes", progress=False, echo=False)


def test_resume_refuses_a_data_folder_that_changed(tmp_path):
    from ..conftest import make_image_folder

    data = make_image_folder(tmp_path / "imgs", per_class=12, size=16)
    cfg = build_config(
        None, cli_values={"data": str(data), "model": "resnet8", "epochs": 3.0, "val_split": 0.25}
    )
    run = tmp_path / "r"
    train(cfg, run, progress=False, echo=False, stop_after=2)
    victim = sorted((data / "cat").iterdir())[0]
    victim.unlink()  # one image fewer: another split, another result
    with pytest.raises(ConfigError, match="changed since this run started"):
        train(cfg, run, resume=True, progress=False, echo=False)


def test_a_thread_count_chosen_from_load_is_said_with_how_to_pin_it(tmp_path, monkeypatch):
    """Issue 44: the default thread count follows the machine's load, and a seeded run's
    weights follow the thread count; the run says so at its start, and a pinned count (or a
    resume, which keeps its count) says nothing."""
    import resnets.runtime as runtime
    from resnets.train import build_config, train

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "busy_cores", lambda seconds=0.2: 1.0)
    cfg = build_config("digits", cli_values={"iters": 2})
    train(cfg, tmp_path / "free", progress=False, echo=False)
    log = (tmp_path / "free" / "train.log").read_text()
    assert "chosen from the idle cores now" in log and "pass --threads" in log
    pinned = build_config("digits", cli_values={"iters": 2, "threads": 1})
    train(pinned, tmp_path / "pinned", progress=False, echo=False)
    assert "chosen from the idle cores" not in (tmp_path / "pinned" / "train.log").read_text()
