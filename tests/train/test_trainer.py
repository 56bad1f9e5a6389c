"""End-to-end training on digits: outputs, schedule, warm-up, non-finite loss, run directories."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from resnets.checkpoint import load_checkpoint
from resnets.errors import ConfigError, TrainingDiverged
from resnets.train import build_config, train
from resnets.train.config import TrainConfig
from resnets.train.schedule import lr_at, warmup_update
from resnets.train.state import RunState


def small(**kw) -> TrainConfig:
    cli = {"epochs": 2.0, "iters": 0}
    cli.update(kw)
    return build_config("digits", cli_values=cli)


def test_run_directory_contents(digits_run):
    for f in (
        "config.json",
        "metrics.jsonl",
        "last.ckpt",
        "best.ckpt",
        "model.safetensors",
        "curves.png",
        "train.log",
        "summary.json",
    ):
        assert (digits_run / f).is_file(), f
    rows = [json.loads(x) for x in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4  # one evaluation per epoch
    for k in ("epoch", "step", "train_loss", "train_err", "val_err", "lr", "images_per_sec"):
        assert k in rows[-1]
    assert rows[-1]["epoch"] == 4 and rows[-1]["val_err"] < 0.2  # 4 epochs already learn digits
    cfg = json.loads((digits_run / "config.json").read_text())
    assert cfg["config"]["recipe"] == "digits" and cfg["resolved"]["val_size"] == 359
    from resnets.models.weights import read_weights

    _, meta = read_weights(digits_run / "model.safetensors")
    assert meta.classes == [str(i) for i in range(10)] and meta.model == "resnet20"
    assert len(meta.mean) == 1  # one grey channel
    # the record says what was measured where, and how the weights were made
    rows = [json.loads(x) for x in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert meta.metrics["top1"] == pytest.approx(1 - rows[-1]["val_err"])
    assert meta.metrics["top5"] == pytest.approx(1 - rows[-1]["val_top5_err"])
    assert "held out of digits" in meta.metrics["split"] and meta.schema_version == 1
    conf = json.loads((digits_run / "config.json").read_text())
    assert meta.command == conf["command"] and meta.source == "resnets"


def test_split_seed_holds_out_the_same_images_for_every_training_seed(tmp_path):
    """Two training seeds on one split_seed: different weights, the same held-out images (so
    a paired test scores both on them); without split_seed the split follows the seed."""
    from resnets.data import load_dataset
    from resnets.eval.predict import recorded_split
    from resnets.models.weights import read_weights

    data = load_dataset("digits", "train")

    def run(name: str, **kw):
        train(small(iters=2, epochs=0.0, **kw), tmp_path / name, progress=False, echo=False)
        weights, meta = read_weights(tmp_path / name / "model.safetensors")
        return weights, meta, recorded_split(meta.split, data.labels, data.classes).val_idx

    w0, meta0, held0 = run("s0", seed=0)
    w1, meta1, held1 = run("s1", seed=1, split_seed=0)
    assert meta0.split["seed"] == meta1.split["seed"] == 0 and np.array_equal(held0, held1)
    assert not torch.equal(w0["conv1.weight"], w1["conv1.weight"])  # the init is the seed's
    # without split_seed the split follows the seed, as before split_seed existed
    assert small(seed=1).held_out_seed == 1 and small(seed=1, split_seed=3).held_out_seed == 3
    other = recorded_split({**meta1.split, "seed": 1}, data.labels, data.classes).val_idx
    assert not np.array_equal(held0, other)
    with pytest.raises(ConfigError, match="split_seed=-2: must be between -1 and"):
        small(split_seed=-2).validate()


def test_existing_run_directory_is_never_overwritten(digits_run):
    before = (digits_run / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(small(), digits_run, progress=False, echo=False)
    assert (digits_run / "model.safetensors").read_bytes() == before


def test_step_schedule_and_paper_warmup():
    cfg = build_config("he2015-cifar", cli_values={"model": "resnet110"})
    st = RunState()
    assert lr_at(cfg, 0, 64000, st, warmup=True) == 0.01
    st.warmup_done = True
    assert lr_at(cfg, 0, 64000, st, True) == 0.1
    assert lr_at(cfg, 31999, 64000, st, True) == pytest.approx(0.1)
    assert lr_at(cfg, 32000, 64000, st, True) == pytest.approx(0.01)
    assert lr_at(cfg, 48000, 64000, st, True) == pytest.approx(0.001)
    c = build_config("digits")
    assert lr_at(c, 10**6, 10**6, RunState(), False) == pytest.approx(0.0, abs=1e-9)


def test_warmup_window_decides_on_the_mean_error_of_the_window():
    cfg = small(warmup="on", warmup_until_err=0.8, warmup_window=50, warmup_max_iters=2000)
    st = RunState(step=10)
    # sums arrive at every host sync; the decision waits for the window's end (iteration 50)
    assert warmup_update(cfg, st, True, err_sum=100.0, n=640) is None and not st.warmup_done
    assert (st.warmup_err_sum, st.warmup_n) == (100.0, 640)
    st.step = 50  # window: 600 wrong of 3,200 = 18.75% < 80%
    assert warmup_update(cfg, st, True, err_sum=500.0, n=2560) == pytest.approx(600 / 3200)
    assert st.warmup_done and (st.warmup_err_sum, st.warmup_n) == (0.0, 0)
    high = RunState(step=50)  # 90% wrong: warm-up goes on, and the window starts afresh
    assert warmup_update(cfg, high, True, err_sum=2880.0, n=3200) is None
    assert not high.warmup_done and high.warmup_n == 0
    assert warmup_update(cfg, RunState(step=50), False, 1.0, 1) is None  # warm-up off


def test_warmup_ends_when_training_error_drops(tmp_path):
    # an error threshold of 100%: the first window (5 iterations) always ends warm-up
    cfg = small(
        warmup="on",
        warmup_until_err=1.0,
        warmup_window=5,
        eval_every=5,
        epochs=1.0,
        schedule="constant",
        ramp_iters=0,
    )
    train(cfg, tmp_path / "w", progress=False, echo=False)
    log = (tmp_path / "w" / "train.log").read_text()
    assert "warm-up done at iteration 5 " in log
    rows = [json.loads(x) for x in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 5 and rows[0]["lr"] == pytest.approx(0.01)  # iteration 5: 0.01
    assert rows[-1]["lr"] == pytest.approx(0.1)  # back at the full rate


def test_warmup_always_ends_at_its_cap(tmp_path):
    # an impossible threshold: warm-up must still end (at warmup_max_iters), not last forever
    cfg = small(
        warmup="on", warmup_until_err=1e-9, warmup_window=5, warmup_max_iters=12, epochs=1.0
    )
    train(cfg, tmp_path / "cap", progress=False, echo=False)
    assert "warm-up done at iteration 12" in (tmp_path / "cap" / "train.log").read_text()


def test_nonfinite_loss_stops_with_clear_message(tmp_path):
    cfg = small(lr=1e12, ramp_iters=0, epochs=1.0, log_every=2)
    with pytest.raises(TrainingDiverged, match="loss became"):
        train(cfg, tmp_path / "nan", progress=False, echo=False)
    assert not (tmp_path / "nan" / "model.safetensors").exists()
    assert not (tmp_path / "nan" / "best.ckpt").exists()  # NaN weights are never saved as best


def test_nonfinite_loss_rollback_restores_weights_and_halves_lr(tmp_path):
    """A NaN gradient once, at iteration 6: the run rolls back to its checkpoint of iteration
    4 (the very weights it had there), halves the learning rate and finishes."""
    cfg = small(
        schedule="constant",
        ramp_iters=0,
        epochs=1.0,
        log_every=1,
        checkpoint_every=4,
        eval_every=10,
        on_nonfinite="rollback",
    )
    seen: dict[int, list[torch.Tensor]] = {}
    poisoned: list[int] = []

    def hook(model, step):
        seen.setdefault(step, []).append(model.conv1.weight.detach().clone())
        if step == 5 and not poisoned:
            poisoned.append(step)
            model.conv1.weight.grad.fill_(float("nan"))

    res = train(cfg, tmp_path / "rb", progress=False, echo=False, on_backward=hook)
    log = (tmp_path / "rb" / "train.log").read_text()
    assert "rolled back to iteration 4, lr x0.5 (roll-back 1)" in log
    assert len(seen[4]) == 2 and torch.equal(seen[4][0], seen[4][1])  # weights of iteration 4
    assert len(seen[3]) == 1  # iterations before the checkpoint are not redone
    rows = [json.loads(x) for x in (tmp_path / "rb" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["lr"] == pytest.approx(0.05) for r in rows)  # every evaluation after it
    assert res.final_val_err is not None and math.isfinite(res.final_train_err)


def test_nonfinite_loss_rollbacks_are_capped(tmp_path):
    cfg = small(
        lr=1e12,
        ramp_iters=0,
        epochs=1.0,
        log_every=1,
        checkpoint_every=1,
        on_nonfinite="rollback",
        max_rollbacks=2,
    )
    with pytest.raises(TrainingDiverged, match="loss became"):
        train(cfg, tmp_path / "rb", progress=False, echo=False)
    assert (tmp_path / "rb" / "train.log").read_text().count("rolled back") == 2


@pytest.mark.slow
def test_resume_is_bit_identical_in_process(tmp_path):
    cfg = small(epochs=2.0, checkpoint_every=7)
    full = train(cfg, tmp_path / "full", progress=False, echo=False)
    part = train(cfg, tmp_path / "part", progress=False, echo=False, stop_after=17)  # mid-epoch 1
    assert part.stopped == "stop_after" and part.iters == 17
    rest = train(cfg, tmp_path / "part", resume=True, progress=False, echo=False)
    # the summary's rate covers the whole run (both sessions), not this session's images alone
    s = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert s["iters"] == full.iters and rest.images_per_sec == pytest.approx(
        s["iters"] * cfg.batch_size / s["train_time"]
    )
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["train_loss"], r["val_err"]) for r in ra] == [
        (r["step"], r["train_loss"], r["val_err"]) for r in rb
    ]
    assert full.final_val_err == rb[-1]["val_err"]


@pytest.mark.slow
def test_resume_negative_control_detects_a_wrong_data_position(tmp_path):
    """If the data position were not restored, the weights would differ: the check has teeth."""
    from resnets.checkpoint import load_checkpoint, save_checkpoint

    cfg = small(epochs=2.0)
    train(cfg, tmp_path / "ref", progress=False, echo=False)
    train(cfg, tmp_path / "bad", progress=False, echo=False, stop_after=17)
    state = load_checkpoint(tmp_path / "bad" / "last.ckpt")
    state["run_state"]["epoch_step"] = 0  # forget where in the epoch we were
    save_checkpoint(tmp_path / "bad" / "last.ckpt", state)
    train(cfg, tmp_path / "bad", resume=True, progress=False, echo=False)
    a = load_file(tmp_path / "ref" / "model.safetensors")
    b = load_file(tmp_path / "bad" / "model.safetensors")
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_image_folder_training_and_shortcut_option(tmp_path, image_folder):
    cfg = build_config(
        "digits",
        cli_values={
            "data": str(image_folder),
            "epochs": 2.0,
            "iters": 0,
            "val_split": 6,
            "batch_size": 8,
            "shortcut": "B",
            "augment": "cifar",
            "pad": 2,
        },
    )
    res = train(cfg, tmp_path / "f", progress=False, echo=False)
    assert res.final_val_err is not None and math.isfinite(res.final_train_err)
    sd = load_file(tmp_path / "f" / "model.safetensors")
    assert "layer2.0.downsample.0.weight" in sd


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["he2015-imagenet", "imagenet-modern"])
def test_imagenet_recipes_run_on_a_folder(recipe, tmp_path, image_folder):
    cfg = build_config(
        recipe,
        cli_values={
            "data": str(image_folder),
            "model": "resnet18",
            "iters": 3,
            "epochs": 0.0,
            "image_size": 40,
            "crop_size": 32,
            "eval_size": 32,
            "batch_size": 8,
            "val_split": 6,
            "eval_every": 3,
        },
    )
    res = train(cfg, tmp_path / recipe, progress=False, echo=False)
    assert res.iters == 3 and res.final_val_err is not None
    conf = json.loads((tmp_path / recipe / "config.json").read_text())
    row = json.loads((tmp_path / recipe / "metrics.jsonl").read_text().splitlines()[-1])
    if recipe == "he2015-imagenet":  # paper 3.4: lr 0.1 until the validation error plateaus
        assert conf["config"]["schedule"] == "plateau" and row["lr"] == pytest.approx(0.1)
        assert conf["config"]["augment"] == "scale" and not conf["config"]["nesterov"]
    else:  # a 5-epoch ramp (3 steps per epoch here: 15 iterations), label smoothing
        c = conf["config"]
        assert c["ramp_iters"] == 5 * conf["resolved"]["steps_per_epoch"] == 15
        # the lr of iteration 3 (index 2): ramp 3/15 times cosine over the 3-iteration run
        assert row["lr"] == pytest.approx(0.1 * 3 / 15 * 0.5 * (1 + math.cos(math.pi * 2 / 3)))
        assert c["label_smoothing"] == 0.1 and c["augment"] == "rrc" and c["nesterov"]
        # zero-initialised residual BN: the trained model's last BN gammas stayed near 0
        sd = load_file(tmp_path / recipe / "model.safetensors")
        assert sd["layer1.0.bn2.weight"].abs().max() < 0.05
    from resnets.eval import score
    from resnets.inference import TestTime, load_weights

    lm = load_weights(tmp_path / recipe)
    assert (lm.image_size, lm.eval_size) == (40, 32)
    r, _ = score(lm, str(image_folder), test=TestTime(ten_crop=True))
    assert r.n == 36


def test_linear_schedule_and_time_to_accuracy():
    cfg = small(schedule="linear", ramp_iters=10, lr=0.4)
    st = RunState()
    lrs = [lr_at(cfg, s, 100, st, False) for s in range(100)]
    assert lrs[0] == 0.4 * 0.1 and max(lrs) < 0.4 and lrs[-1] < 0.005
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:]))  # decays linearly to 0 after the ramp
    from resnets.train.run_files import time_to_accuracy

    rows = [
        {"step": 10, "epoch": 1.0, "time": 3.0, "val_err": 0.3},
        {"step": 20, "epoch": 2.0, "time": 6.0, "val_err": 0.09},
        {"step": 30, "epoch": 3.0, "time": 9.0, "val_err": 0.05},
    ]
    t = time_to_accuracy(rows)
    assert t["0.80"] == t["0.90"] == {"seconds": 6.0, "step": 20, "epoch": 2.0}
    assert t["0.93"]["step"] == t["0.94"]["step"] == 30
    assert time_to_accuracy(rows[:1]) == {"0.80": None, "0.90": None, "0.93": None, "0.94": None}


@pytest.mark.slow
def test_fast_cifar_recipe_on_digits_resumes_bit_identically(tmp_path):
    """The fast recipe end to end: data-initialised stem, flip TTA, resume restores the stem."""
    # the digits' own 8x8: each of the three pooling stages still halves a map (8, 4, 2, 1),
    # at a quarter of the 16x16 run's cost (2.8 s against 7.1 s a run on Zen 3)
    cli = {"data": "digits", "val_split": 0.2, "pad": 1, "batch_size": 64, "epochs": 2.0}
    cli["image_size"] = 8  # not the recipe's 32
    cfg = build_config("fast-cifar", cli_values=cli)
    assert cfg.model == "fast_resnet8" and cfg.tta == "flip" and cfg.schedule == "linear"
    full = train(cfg, tmp_path / "full", progress=False, echo=False)
    assert full.final_val_err < 0.2
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["time_to_accuracy"]["0.80"] is not None
    train(cfg, tmp_path / "part", progress=False, echo=False, stop_after=9)
    train(cfg, tmp_path / "part", resume=True, progress=False, echo=False)
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    from resnets.models import create_model

    torch.manual_seed(cfg.seed)
    fresh = create_model("fast_resnet8", num_classes=10, in_chans=1)
    assert not torch.allclose(a["stem.weight"], fresh.stem.weight)  # set from the data
    from resnets.eval import Scoring, score
    from resnets.inference import TestTime, load_weights

    lm = load_weights(tmp_path / "full")
    assert lm.meta.tta == "flip"
    resolved = json.loads((tmp_path / "full" / "config.json").read_text())["resolved"]
    # evaluated as in training (bf16 where the CPU has it): exactly the logged accuracy
    r_flip, _ = score(lm, "digits", subset="val", run=Scoring(bf16=resolved["bf16"]))
    r_none, _ = score(lm, "digits", subset="val", test=TestTime(tta="none"))
    n_val = resolved["val_size"]
    assert r_flip.n == r_none.n == n_val
    assert abs(r_flip.top1 - (1 - full.final_val_err)) < 1e-9  # auto = the TTA used in training


def test_tensorboard_events_hold_the_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = small(epochs=2.0, tensorboard=True)
    train(cfg, tmp_path / "tb", progress=False, echo=False)
    rows = [json.loads(x) for x in (tmp_path / "tb" / "metrics.jsonl").read_text().splitlines()]
    ea = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    ea.Reload()
    for key in ("train_loss", "val_err", "lr", "images_per_sec"):
        events = ea.Scalars(key)
        assert [e.step for e in events] == [r["step"] for r in rows]
        assert [e.value for e in events] == pytest.approx([r[key] for r in rows], rel=1e-6)


def test_ema_is_evaluated_beside_the_raw_weights_saved_and_resumed_bit_exactly(tmp_path):
    """--ema: the average (parameters and BatchNorm buffers) is evaluated at every
    evaluation, kept in the checkpoint, resumed bit-exactly, and with ema_final it is the
    final model.safetensors."""
    cfg = small(epochs=2.0, checkpoint_every=7, ema=0.9, ema_final=True)
    full = train(cfg, tmp_path / "full", progress=False, echo=False)
    part = train(cfg, tmp_path / "part", progress=False, echo=False, stop_after=17)
    assert part.stopped == "stop_after"
    train(cfg, tmp_path / "part", resume=True, progress=False, echo=False)
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["ema_val_err"] is not None for r in rows)
    assert full.final_val_err == rows[-1]["ema_val_err"]  # the final weights are the average
    # the average differs from the raw weights, and its BatchNorm statistics are averaged too
    raw = load_checkpoint(tmp_path / "full" / "last.ckpt")["model"]
    bn = next(k for k in a if k.endswith("running_var"))
    assert not torch.equal(a[bn], raw[bn]) and not torch.equal(a["fc.weight"], raw["fc.weight"])


@pytest.mark.parametrize(
    "values, match",
    [({"ema": 1.0}, "ema=1.0"), ({"ema": 0.2}, "ema=0.2"), ({"ema_final": True}, "needs ema")],
)
def test_bad_ema_settings_are_refused(values, match):
    with pytest.raises(ConfigError, match=match):
        small(**values)
