"""The paper's experiments as data and functions: one registry, one Settings checked once, and
the Python door (`resnets.reproduce`) giving what the command gives."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest

import resnets
import resnets.analysis.experiments  # noqa: F401  (registers every experiment)
from resnets.analysis.registry import EXPERIMENTS, Settings, get_experiment, run_experiment
from resnets.cli import build_parser, main
from resnets.errors import ConfigError


def _subcommands(parser, command: str) -> dict:
    sub = next(a for a in parser._actions if a.dest == "command")
    inner = next(a for a in sub.choices[command]._actions if a.dest in ("experiment", "analysis"))
    return inner.choices


def test_every_command_is_a_registered_experiment():
    parser = build_parser()
    for command in ("reproduce", "analyze"):
        for name, p in _subcommands(parser, command).items():
            assert p.get_default("name") == name and EXPERIMENTS[name].command == command
            # its flags are made from its registration: each option's help and default, once
            experiment = EXPERIMENTS[name]
            flags = {a.dest: a for a in p._actions}
            for option, default in experiment.defaults.items():
                assert flags[option].help == experiment.option_help[option]
                shown = ",".join(map(str, default)) if isinstance(default, list) else default
                if option in experiment.required:
                    assert flags[option].required
                else:
                    assert flags[option].default == (False if default is False else shown)
            # and the Settings fields it takes, no others (--no-progress is `progress`)
            taken = {"progress" if d == "no_progress" else d for d in flags} - {"help", "fn"}
            assert taken - set(experiment.defaults) == set(experiment.flags), name
    # every experiment is registered and has a subcommand, the compositions and re-readings
    # (paper, detection, verdicts) as well
    listed = {n for c in ("reproduce", "analyze") for n in _subcommands(parser, c)}
    assert listed == set(EXPERIMENTS) >= {"paper", "detection", "verdicts"}
    assert all(e.help and (e.main or (e.runs and e.report)) for e in EXPERIMENTS.values())
    with pytest.raises(ValueError, match="every option needs its help"):
        dataclasses.replace(EXPERIMENTS["degradation"], option_help={})


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"budget": 0}, "--budget 0: must be > 0"),
        ({"budget": float("nan")}, "must be > 0"),
        ({"seeds": 0}, "--seeds 0: must be >= 1"),
    ],
)
def test_settings_are_checked_once_when_made(settings, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**settings)


def test_an_empty_registry_says_what_fills_it(monkeypatch):
    """The registry module alone holds no experiment (each one's file registers itself)."""
    from resnets.analysis import registry

    monkeypatch.setattr(registry, "EXPERIMENTS", {})
    with pytest.raises(ConfigError, match="none registered; import resnets.analysis.experiments"):
        registry.get_experiment("degradation")


def test_unknown_experiments_and_options_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="experiment 'fig9': one of cifar-table"):
        get_experiment("fig9")
    with pytest.raises(ConfigError, match="degradation: no option widths"):
        run_experiment("degradation", Settings(out=tmp_path, options={"widths": [1]}))
    assert not (tmp_path / "experiment.json").exists()  # refused before anything is written


def _table_from_python(out):
    return resnets.reproduce(
        "cifar-table", data="digits", budget=0.0001, out=out, depths=[8], progress=False
    )


def test_reproduce_from_python_gives_what_the_command_gives(tmp_path, capsys):
    """The same experiment from Python and from the command: the command, given the runs the
    Python call trained, takes them as its own (a run made with another config is refused),
    writes the same table from them, and the page states the schedule each run's record holds."""
    path = _table_from_python(tmp_path / "py")
    argv = ["reproduce", "cifar-table", "--depths", "8", "--data", "digits", "--budget", "0.0001"]
    runs_from = ["--runs-from", str(tmp_path / "py")]
    assert main([*argv, "--out", str(tmp_path / "cli"), *runs_from, "--no-progress"]) == 0
    assert not (tmp_path / "cli" / "runs").exists()  # nothing trained again
    rows = {
        where: [row for row in csv.DictReader(open(tmp_path / where / "runs.csv"))]
        for where in ("py", "cli")
    }
    assert rows["py"] == rows["cli"] and len(rows["py"]) == 1
    config = json.loads((tmp_path / "py" / "runs" / "resnet8-s0" / "config.json").read_text())
    iters, milestones = config["config"]["iters"], config["config"]["milestones"]
    text = path.read_text()
    stated = f"the runs trained {iters:,} iterations (lr /10 at "
    assert stated + " and ".join(f"{round(m):,}" for m in milestones) in text
    assert "resnets.reproduce('cifar-table'" in text
    record = json.loads((tmp_path / "py" / "experiment.json").read_text())
    assert record["experiment"] == "cifar-table" and record["args"]["depths"] == [8]
    # a second call finds the run finished; another experiment is refused that folder
    again = _table_from_python(tmp_path / "py")
    assert again == path
    with pytest.raises(ConfigError, match="holds the results of 'cifar-table', not 'degradation'"):
        resnets.reproduce("degradation", data="digits", budget=0.0001, out=tmp_path / "py")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"depths": []}, "depths=\\[\\]: must not be empty"),
        ({"depths": ["20"]}, "each item must be a number"),
        ({"depths": True}, "must be a list, not a bool"),
        ({"depths": [21]}, "6n\\+2 layers"),
        ({"budget": True}, "--budget True: must be > 0"),
        ({"seeds": True}, "--seeds True: must be >= 1"),
        ({"budget": float("nan")}, "--budget nan"),
    ],
)
def test_a_refused_call_writes_nothing(tmp_path, options, message):
    """Issue 44, P04: every option (its type too) is checked before anything is written."""
    out = tmp_path / "o"
    kwargs = {"data": "digits", "budget": 2e-5, "out": out, "progress": False, **options}
    with pytest.raises(ConfigError, match=message) as caught:
        resnets.reproduce("degradation", **kwargs)
    assert "\n" not in str(caught.value)
    assert not out.exists()


def test_paper_from_python_while_other_workers_hold_its_runs(tmp_path):
    """``resnets.reproduce("paper")`` trains the queue's free runs; runs held by workers of the
    command elsewhere leave it without a report, which it says in one line."""
    from resnets.analysis.runs import paper_queue
    from resnets.rundir import RunDir

    store = tmp_path / "out" / "runs-store" / "runs"
    held = [RunDir(store / name) for name in paper_queue(1, 1, False, 1)]
    for run in held:  # another worker's claim on every run (a second open file: flock refuses)
        run.claim()
    try:
        with pytest.raises(ConfigError, match="paper: 0/7 runs finished, the rest are held") as e:
            resnets.reproduce("paper", data="digits", budget=0.0001, seeds=1, out=tmp_path / "out")
        assert "\n" not in str(e.value)
    finally:
        for run in held:
            run.release()
    assert not (tmp_path / "out" / "RESULTS.md").exists()


def test_paper_report_only_before_the_runs_exist_exits_1_and_trains_nothing(tmp_path, capsys):
    """The generated ``reproduce paper`` keeps its workers' exit codes: --report-only with runs
    missing says so in one line and exits 1 (a worker's script waits on it); the two modes
    together are refused."""
    argv = ["reproduce", "paper", "--data", "digits", "--budget", "0.0001", "--seeds", "1"]
    out = tmp_path / "paper"
    assert main([*argv, "--out", str(out), "--report-only", "--no-progress"]) == 1
    assert "paper: 0/7 runs finished: no report yet" in capsys.readouterr().err
    assert not list(out.glob("runs-store/runs/*/last.ckpt"))  # nothing trained
    both = ["--report-only", "--train-only"]
    assert main([*argv, "--out", str(out), *both]) == 2
    assert "exclude each other" in capsys.readouterr().err
