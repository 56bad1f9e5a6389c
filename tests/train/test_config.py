"""Config: recipes, precedence, strict keys/types/ranges, config files."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnets.errors import ConfigError
from resnets.train.config import (
    TrainConfig,
    build_config,
    field_names,
    parse_set,
    read_config_file,
)
from resnets.train.recipes import RECIPES


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_valid(name):
    cfg = build_config(name)
    assert cfg.recipe == name


def test_he2015_cifar_is_the_paper():
    c = build_config("he2015-cifar")
    assert (c.batch_size, c.lr, c.momentum, c.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (c.iters, c.milestones, c.lr_decay, c.val_split) == (64000, [32000, 48000], 0.1, 5000)
    assert (c.augment, c.pad, c.warmup, c.warmup_lr, c.warmup_until_err) == (
        "cifar",
        4,
        "auto",
        0.01,
        0.8,
    )


def test_precedence_recipe_file_cli():
    c = build_config("he2015-cifar", {"lr": 0.05, "seed": 3}, {"seed": 4})
    assert (c.lr, c.seed) == (0.05, 4)
    c = build_config("he2015-cifar", cli_values={"epochs": 2.0})
    assert c.iters == 0 and c.epochs == 2.0  # --epochs replaces the recipe's iteration count
    c = build_config(
        None, string_values={"milestones": "100,200", "nesterov": "true", "lr": "1e-2"}
    )
    assert c.milestones == [100.0, 200.0] and c.nesterov is True and c.lr == 0.01


@pytest.mark.parametrize(
    "values, match",
    [
        ({"lrr": 0.1}, "unknown config key 'lrr'; did you mean lr"),
        ({"lr": "fast"}, "lr: expected a number"),
        ({"batch_size": 1.5}, "batch_size: expected an integer"),
        ({"batch_size": True}, "batch_size: expected an integer"),
        ({"nesterov": "maybe"}, "nesterov: expected true or false"),
        ({"lr": 0}, "lr=0.0: must be > 0"),
        ({"lr": -1}, "must be > 0"),
        ({"batch_size": 0}, "batch_size=0: must be from 1 to 4096"),
        ({"batch_size": 10**6}, "batch_size=1000000: must be from 1 to 4096"),
        ({"image_size": 90_000}, "image_size=90000: must be from 0 to 1024 pixels"),
        ({"eval_size": 5000}, "eval_size=5000"),
        ({"pad": 10**6}, "pad=1000000: must be from 0 to 256"),
        ({"model": "resnet600002"}, "8 to 1202"),
        ({"model": "wrn_16_1000"}, "k from 1 to 32"),
        ({"model": "concat1202"}, "8 to 110"),
        ({"momentum": 1.0}, "momentum"),
        ({"model": "resnet21"}, "6n\\+2"),
        ({"model": "resnet5O"}, "did you mean"),
        ({"schedule": "exponential"}, "schedule="),
        ({"data_mode": "disk"}, "data_mode="),
        ({"compile_mode": "fast"}, "compile_mode="),
        ({"fused_optimizer": "yes"}, "fused_optimizer="),
        ({"tta": "ten"}, "tta="),
        ({"device": "tpu"}, "device="),
        ({"milestones": "a,b"}, "milestones: expected a number"),
    ],
)
def test_bad_values_are_one_line_errors(values, match):
    strings = {k: v for k, v in values.items() if isinstance(v, str)}
    typed = {k: v for k, v in values.items() if not isinstance(v, str)}
    with pytest.raises(ConfigError, match=match) as e:
        build_config("digits", typed, None, strings)
    assert "\n" not in str(e.value)


def test_unknown_recipe_and_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown recipe"):
        build_config("he2016")
    (tmp_path / "c.json").write_text(json.dumps({"recipe": "quick", "lr": 0.2}))
    c = build_config(None, read_config_file(tmp_path / "c.json"))
    assert c.recipe == "quick" and c.lr == 0.2
    (tmp_path / "c.toml").write_text('recipe = "he2015-cifar"\nseed = 5\nmilestones = [10, 20]\n')
    c = build_config(None, read_config_file(tmp_path / "c.toml"))
    assert c.seed == 5 and c.milestones == [10.0, 20.0]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON"):
        read_config_file(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["lr"])


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.sampled_from(field_names() + ["bogus", "lr_"]), values, max_size=4))
def test_fuzz_config_only_raises_config_error(d):
    try:
        cfg = build_config("digits", d)
    except ConfigError:
        return
    assert isinstance(cfg, TrainConfig)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.sampled_from(field_names()), st.text(max_size=10), max_size=3))
def test_fuzz_string_overrides_only_raise_config_error(d):
    try:
        build_config("digits", string_values=d)
    except ConfigError:
        pass


def test_negative_control_the_config_fuzzes_find_a_planted_bug(monkeypatch):
    """Both config fuzzes above reach the overrides and let an unexpected exception through:
    a bug planted where only some values go (a fractional float; a string with a digit)."""
    from resnets.train import config as config_module

    real = config_module.apply_overrides

    def planted(base, overrides, *, from_string=False):
        for value in overrides.values():
            if isinstance(value, float) and value == value and value % 1:
                raise TypeError("planted bug: a fractional float")
            if isinstance(value, str) and any(c.isdigit() for c in value):
                raise TypeError("planted bug: a digit in a string")
        return real(base, overrides, from_string=from_string)

    monkeypatch.setattr(config_module, "apply_overrides", planted)
    with pytest.raises(TypeError, match="planted bug"):
        test_fuzz_config_only_raises_config_error()
    with pytest.raises(TypeError, match="planted bug: a digit"):
        test_fuzz_string_overrides_only_raise_config_error()


def test_a_detection_config_is_a_config_of_the_same_system(tmp_path, capsys):
    """Issue 43: detection's settings are opt() fields, resolved as a training config's are
    (defaults < file < command line, each key and value checked) and printed by `config`."""
    from resnets.cli import main
    from resnets.train.config import DetectTrainConfig, build_detect_config, read_config_file

    assert build_detect_config() == DetectTrainConfig()  # the defaults are written once
    path = tmp_path / "det.toml"
    path.write_text("epochs = 3\nmilestones = [2]\n[detector]\nfpn_channels = 16\n")
    cfg = build_detect_config(
        read_config_file(path), {"lr": "0.005", "detector": '{"fpn_channels": 32}'}
    )
    assert (cfg.epochs, cfg.milestones, cfg.lr) == (3, [2], 0.005)
    assert cfg.detector == {"fpn_channels": 32}  # the command line over the file
    for values, message in (
        ({"epoch": "3"}, "unknown config key 'epoch'; did you mean epochs"),
        ({"epochs": "three"}, "epochs: expected an integer"),
        ({"epochs": "0"}, "epochs=0: a whole number in 1..10000"),
        ({"detector": "[1]"}, "detector: expected a JSON object"),
        ({"detector": '{"fpn_width": 3}'}, "\\['fpn_width'\\]: not fields of DetectorConfig"),
        ({"detector": '{"roi_size": 100}'}, "roi_size=100: a whole number in 1..14"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_detect_config(string_values=values)
    assert main(["config", "--detection", "--config", str(path), "--set", "epochs=5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["epochs"], printed["milestones"], printed["backbone"]) == (5, [2], "resnet18")
    assert main(["config", "--detection", "--recipe", "quick"]) == 2
    assert "a detection config has none" in capsys.readouterr().err
