"""``resnets train`` and ``resnets config``: one ``--name`` option per TrainConfig field, a recipe,
a config file and ``--set`` overrides, resolved by train/config.py."""

from __future__ import annotations

import argparse
import sys
import typing
from dataclasses import fields

from ..argtypes import add_json, add_no_progress, json_line
from ..errors import ConfigError
from ..train import build_config, train
from ..train.config import (
    TrainConfig,
    build_detect_config,
    choices_of,
    field_docs,
    parse_set,
    read_config_file,
)
from ..train.config_docs import config_markdown
from ..train.recipes import RECIPES

#: what a resumed run may change: where it runs, never what it computes
RESUME_MAY_CHANGE = {"device", "threads", "workers", "log_every"}
#: the fields shown first in ``resnets train --help``
COMMON_FIELDS = {
    "model",
    "data",
    "recipe",
    "epochs",
    "iters",
    "batch_size",
    "lr",
    "seed",
    "device",
    "workers",
    "val_split",
}


def add_config_options(
    parser: argparse.ArgumentParser,
    cls: type = TrainConfig,
    common_fields: set[str] = COMMON_FIELDS,
    default_note: str = " (default: from the recipe)",
) -> None:
    """One ``--name`` option per field of the config class ``cls`` (any recipe field is
    overridable), its help from the field's metadata; the value lands in ``cfg_NAME``."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    common = parser.add_argument_group("common options")
    others = parser.add_argument_group("every other config field (see docs/config.md)")
    defaults = cls()
    for f in fields(cls):
        kind = hints[f.name]
        choices = choices_of(f.name, cls)
        if kind is bool:
            metavar = "BOOL"
        elif choices:
            metavar = "{" + ",".join(c for c in choices if c) + "}"
        elif typing.get_origin(kind) is list:
            metavar = "LIST"
        elif typing.get_origin(kind) is dict:
            metavar = "JSON"
        else:
            metavar = f.name.split("_")[-1].upper()
        if f.name == "recipe":
            doc = f"named recipe: {', '.join(RECIPES)} (default digits)"
        else:
            doc = docs.get(f.name, "") + default_note.format(default=getattr(defaults, f.name))
        group = common if f.name in common_fields else others
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"cfg_{f.name}",
            default=None,
            metavar=metavar,
            help=doc,
        )


def _train(args: argparse.Namespace) -> int:
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    file_values = read_config_file(args.config) if args.config else {}
    recipe = given.pop("recipe", None)
    strings = dict(given)
    strings.update(parse_set(args.set or []))
    if args.resume:
        # a resumed run continues with its own config; only where it runs may change
        fixed = sorted(set(strings) - RESUME_MAY_CHANGE) + (["--config"] if args.config else [])
        fixed += ["--recipe"] if recipe else []
        if fixed:
            raise ConfigError(
                f"--resume continues with the run's own config; these cannot change: "
                f"{', '.join(fixed)} (only {', '.join(sorted(RESUME_MAY_CHANGE))} can)"
            )
    # (build_config: --epochs replaces the recipe's iteration count, and --iters the epochs)
    cfg = build_config(recipe, file_values, None, strings)
    command = "resnets " + " ".join(sys.argv[1:]) if sys.argv else None
    if args.stop_after is not None and args.stop_after < 1:
        raise ConfigError(f"--stop-after {args.stop_after}: must be >= 1")
    result = train(
        cfg,
        args.resume or args.out,
        resume=bool(args.resume),
        progress=not args.no_progress,
        command=command,
        stop_after=args.stop_after,
    )
    resume_hint = f"resume with: resnets train --resume {result.run_dir}"
    if result.stopped == "signal":
        print(f"resnets: interrupted; {resume_hint}", file=sys.stderr)
        return result.exit_code
    if result.stopped:
        print(
            f"resnets: stopped at iteration {result.iters} as asked; {resume_hint}", file=sys.stderr
        )
        return 0
    if args.json:
        print(json_line(result.summary()))
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(config_markdown(), end="")
        return 0
    file_values = read_config_file(args.config) if args.config else {}
    if args.detection:
        if args.recipe:
            raise ConfigError("--recipe: a classification recipe; a detection config has none")
        cfg = build_detect_config(file_values, parse_set(args.set or []))
    else:
        cfg = build_config(args.recipe, file_values, None, parse_set(args.set or []))
    print(json_line(cfg.to_dict(), indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add train and config to ``resnets``."""
    p = sub.add_parser(
        "train",
        help="train a model (default: ResNet-20 on the bundled digits, ~15 s)",
        description="Train a model. With no options: the 'digits' recipe.",
    )
    p.add_argument(
        "--out", metavar="RUN_DIR", help="new run directory (default runs/<model>-<data>-<time>)"
    )
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run exactly where it stopped"
    )
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of config keys")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)"
    )
    add_no_progress(p)
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="ITERS",
        help="end this session after ITERS iterations with a checkpoint (time-sliced jobs); resume later",
    )
    add_json(p, what="a JSON summary of the run")
    add_config_options(p)
    p.set_defaults(fn=_train)

    p = sub.add_parser(
        "config",
        help="print a resolved training config (JSON), or every field's documentation",
        description="Resolve a recipe, a config file and --set overrides as `resnets train` "
        "would, and print the result; --markdown prints docs/config.md.",
    )
    p.add_argument("--recipe", default=None, help=f"named recipe: {', '.join(RECIPES)}")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of config keys")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    p.add_argument(
        "--detection",
        action="store_true",
        help="a detection config (`resnets detect train`'s) instead of a training one",
    )
    p.add_argument(
        "--markdown", action="store_true", help="every field's type, default, meaning and unit"
    )
    p.set_defaults(fn=_config)
