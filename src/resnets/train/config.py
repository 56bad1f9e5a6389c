"""Training configuration: one dataclass, named recipes, strict parsing.

Every hyperparameter lives in :class:`TrainConfig`, with its unit. A recipe is a named set of
overrides of the defaults. Values come, in order of precedence, from: the recipe, a ``--config``
file (JSON or TOML), then command-line options. Unknown keys, wrong types and out-of-range values
are :class:`ConfigError` before any data is read or any compute starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass
class TrainConfig:
    """All settings of one training run. Units in the comments."""

    # --- what to train on what
    model: str = "resnet20"  # registered name (see `resnets models`)
    data: str = "digits"  # digits | cifar10[:PATH] | cifar100[:PATH] | folder of class folders
    recipe: str = "digits"  # the named recipe these values started from
    shortcut: str = ""  # A, B or C ("": A for CIFAR nets, B for ImageNet nets)
    zero_init_residual: bool = False  # start each block's last BN at gamma = 0
    stride_in_1x1: bool = False  # bottleneck stride in the first 1x1 (the paper) instead of the 3x3
    batchnorm: bool = True  # False: the no-BN variant (gradient-flow studies only)

    # --- data
    val_split: float = 0.2  # held-out validation samples: a count (>= 1) or a fraction (< 1)
    image_size: int = 0  # decoded size (short side, square crop); 0 = native when uniform
    augment: str = "cifar"  # cifar | crop | flip | none | scale | rrc
    pad: int = 4  # pixels of padding for the cifar/crop augmentation
    crop_size: int = 0  # training crop for scale/rrc (pixels); 0 = the decoded size
    eval_size: int = 0  # evaluation centre crop (pixels); 0 = the decoded size
    skip_bad: bool = False  # skip (and list) unreadable images instead of failing
    workers: int = 0  # data threads preparing the next batches (0 = in the training loop)
    data_mode: str = "auto"  # memory (decode once, cached) | stream (decode per batch) | auto
    decode_workers: int = 0  # streaming: JPEG-decoding processes (0 = one per core)

    # --- optimisation (SGD with momentum, paper section 3.4)
    batch_size: int = 128  # images per step
    lr: float = 0.1  # learning rate after warm-up
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = False  # Nesterov momentum (modern recipes)
    weight_decay: float = 1e-4  # L2 on every parameter, as the paper
    label_smoothing: float = 0.0  # cross-entropy label smoothing (0 = off, as the paper)
    iters: int = 0  # total training iterations (steps); 0 = derived from epochs
    epochs: float = 0.0  # total epochs, used when iters == 0
    schedule: str = "step"  # step | cosine | linear (to 0 at the end) | plateau | constant
    # step schedule: lr x lr_decay at these iterations (values < 1: fractions of iters)
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # iterations or fractions
    lr_decay: float = 0.1  # step/plateau: multiply lr by this at each milestone/plateau
    ramp_iters: int = 0  # linear ramp of lr from 0 over these iterations (modern recipes)
    ramp_epochs: float = 0.0  # the same ramp in epochs (used when ramp_iters == 0)
    plateau_patience: int = 3  # plateau: evaluations without validation improvement
    warmup: str = "auto"  # paper's ResNet-110 warm-up: auto (depth >= 110) | on | off
    warmup_lr: float = 0.01  # lr during warm-up
    warmup_until_err: float = 0.8  # warm-up ends once the training error falls below this
    warmup_window: int = 50  # iterations over which that training error is averaged
    warmup_max_iters: int = 2000  # warm-up ends after this many iterations regardless

    # --- run
    seed: int = 0  # seeds the weight init, the split, the data order and every augmentation
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | bf16 | fp32 (auto: bf16 autocast where the hardware has it)
    channels_last: bool = True
    compile: bool = False  # torch.compile the model
    compile_mode: str = (
        "default"  # default | reduce-overhead (CUDA graphs) | max-autotune[-no-cudagraphs]
    )
    fused_optimizer: str = "auto"  # SGD kernel: on (fused) | off (foreach) | auto (fused on CUDA)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch
    eval_every: int = 0  # iterations between evaluations; 0 = once per epoch
    tta: str = "none"  # test-time augmentation in evaluations: none | flip (mean of both logits)
    checkpoint_every: int = 0  # iterations between checkpoints; 0 = at every evaluation
    log_every: int = 10  # iterations between progress-bar updates (each costs a host sync)
    on_nonfinite: str = "stop"  # stop | rollback (to the last checkpoint, with lr halved)
    max_rollbacks: int = 3

    def validate(self) -> TrainConfig:
        """Check ranges and choices; raises :class:`ConfigError`. Returns self."""
        from ..models import get_spec

        get_spec(self.model)

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        choice = {
            "shortcut": ("", "A", "B", "C"),
            "augment": ("cifar", "crop", "flip", "none", "scale", "rrc"),
            "schedule": ("step", "cosine", "linear", "plateau", "constant"),
            "tta": ("none", "flip"),
            "data_mode": ("auto", "memory", "stream"),
            "compile_mode": (
                "default",
                "reduce-overhead",
                "max-autotune",
                "max-autotune-no-cudagraphs",
            ),
            "fused_optimizer": ("auto", "on", "off"),
            "warmup": ("auto", "on", "off"),
            "precision": ("auto", "bf16", "fp32"),
            "on_nonfinite": ("stop", "rollback"),
        }
        for k, allowed in choice.items():
            need(
                getattr(self, k) in allowed,
                f"{k}={getattr(self, k)!r}: must be one of {list(allowed)}",
            )
        need(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            f"device={self.device!r}: must be auto, cpu, cuda or cuda:N",
        )
        need(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")
        for k in ("lr", "warmup_lr"):
            v = getattr(self, k)
            need(math.isfinite(v) and v > 0, f"{k}={v}: must be > 0")
        need(0 <= self.momentum < 1, f"momentum={self.momentum}: must be in [0, 1)")
        need(self.weight_decay >= 0, f"weight_decay={self.weight_decay}: must be >= 0")
        need(
            0 <= self.label_smoothing < 1,
            f"label_smoothing={self.label_smoothing}: must be in [0, 1)",
        )
        need(0 < self.lr_decay <= 1, f"lr_decay={self.lr_decay}: must be in (0, 1]")
        need(self.iters >= 0, f"iters={self.iters}: must be >= 0")
        need(math.isfinite(self.epochs) and self.epochs >= 0, f"epochs={self.epochs}: must be >= 0")
        need(
            math.isfinite(self.ramp_epochs) and self.ramp_epochs >= 0,
            f"ramp_epochs={self.ramp_epochs}: must be >= 0",
        )
        need(self.iters > 0 or self.epochs > 0, "set iters or epochs (> 0)")
        need(
            all(math.isfinite(m) and m > 0 for m in self.milestones),
            f"milestones={self.milestones}: must be > 0",
        )
        need(self.val_split >= 0, f"val_split={self.val_split}: must be >= 0")
        for k in (
            "image_size",
            "pad",
            "crop_size",
            "eval_size",
            "workers",
            "decode_workers",
            "eval_every",
            "checkpoint_every",
            "ramp_iters",
            "warmup_window",
            "warmup_max_iters",
            "max_rollbacks",
        ):
            need(getattr(self, k) >= 0, f"{k}={getattr(self, k)}: must be >= 0")
        need(self.log_every >= 1, f"log_every={self.log_every}: must be >= 1")
        need(self.plateau_patience >= 1, f"plateau_patience={self.plateau_patience}: must be >= 1")
        need(
            0 < self.warmup_until_err <= 1,
            f"warmup_until_err={self.warmup_until_err}: must be in (0, 1]",
        )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RECIPES: dict[str, dict[str, Any]] = {
    # Default job: scikit-learn's 8x8 digits, a ResNet-20 with a 1-channel stem. Small random
    # translations (pad 1 + crop, no flip: digits are not mirror-symmetric).
    "digits": dict(
        model="resnet20",
        data="digits",
        val_split=0.2,
        augment="crop",
        pad=1,
        batch_size=64,
        lr=0.1,
        weight_decay=5e-4,
        epochs=30,
        schedule="cosine",
        ramp_iters=50,
        eval_every=0,
    ),
    # He et al. 2015, section 4.2, exactly: batch 128, SGD momentum 0.9, lr 0.1, /10 at 32k and
    # 48k iterations, stop at 64k, weight decay 1e-4, 45k/5k split, pad-4 crop + flip; for
    # ResNet-110 (and 1202) lr 0.01 until training error < 80% (~400 iterations), then 0.1.
    "he2015-cifar": dict(
        model="resnet20",
        data="cifar10",
        val_split=5000,
        image_size=32,
        augment="cifar",
        pad=4,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        iters=64000,
        epochs=0.0,
        schedule="step",
        milestones=[32000, 48000],
        lr_decay=0.1,
        warmup="auto",
        warmup_lr=0.01,
        warmup_until_err=0.8,
    ),
    # He et al. 2015, section 3.4: scale augmentation (shorter side 256..480, 224 crop, flip),
    # batch 256, lr 0.1 divided by 10 when the validation error plateaus, weight decay 1e-4,
    # momentum 0.9, up to 60e4 iterations. Evaluation: 224 centre crop of the 256 image.
    "he2015-imagenet": dict(
        model="resnet50",
        val_split=10000,
        image_size=256,
        augment="scale",
        crop_size=224,
        eval_size=224,
        batch_size=256,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        iters=600000,
        epochs=0.0,
        schedule="plateau",
        lr_decay=0.1,
        plateau_patience=3,
        eval_every=5000,
        warmup="off",
    ),
    # A modern ImageNet recipe (Goyal et al. 2017; He et al. 2019 "Bag of tricks"): random-resized
    # crops, lr 0.1 per 256 images with a 5-epoch linear ramp, cosine decay, label smoothing 0.1,
    # zero-initialised last BN of each block, Nesterov momentum, 90 epochs.
    "imagenet-modern": dict(
        model="resnet50",
        val_split=10000,
        image_size=256,
        augment="rrc",
        crop_size=224,
        eval_size=224,
        batch_size=256,
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-5,
        label_smoothing=0.1,
        zero_init_residual=True,
        epochs=90,
        iters=0,
        schedule="cosine",
        ramp_epochs=5,
        warmup="off",
        eval_every=5000,
    ),
    # Fast CIFAR-10 (issue 5): a compact wide residual net (models/fast.py) with a whitening stem
    # set from the data, large batches, a short linear ramp then linear decay to 0, Nesterov
    # momentum, label smoothing 0.2 and flip test-time augmentation: the ingredients of the
    # CIFAR-10 speed runs (Page 2018, "How to train your ResNet"; Jordan 2024, airbench), with
    # our own values. Translations of 2 pixels: short schedules need milder augmentation.
    "fast-cifar": dict(
        model="fast_resnet8",
        data="cifar10",
        val_split=5000,
        image_size=32,
        augment="cifar",
        pad=2,
        batch_size=512,
        # (lr 0.8, weight decay 5e-3) won a 3-epoch comparison but lost over 10 epochs
        # (79.9% against 88.8%): kept at (0.4, 5e-4), BENCHMARKS.md has both runs
        lr=0.4,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        label_smoothing=0.2,
        epochs=10,
        iters=0,
        schedule="linear",
        ramp_epochs=2,
        warmup="off",
        tta="flip",
    ),
    # A short CIFAR schedule for CPUs: the paper's network and augmentation, 15 epochs, cosine.
    "quick": dict(
        model="resnet20",
        data="cifar10",
        val_split=5000,
        image_size=32,
        augment="cifar",
        pad=4,
        batch_size=128,
        lr=0.1,
        weight_decay=5e-4,
        epochs=15,
        iters=0,
        schedule="cosine",
        ramp_iters=200,
        warmup="off",
        nesterov=True,
    ),
}


def list_recipes() -> list[str]:
    return list(RECIPES)


def _type_of(f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(TrainConfig)
    return hints[f.name]


def _coerce(name: str, typ: Any, value: Any, from_string: bool) -> Any:
    """Check (or, for command-line strings, parse) ``value`` as ``typ``."""
    origin = typing.get_origin(typ)
    if origin in (list, tuple):
        (inner,) = typing.get_args(typ)[:1]
        if from_string and isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(name, inner, v, from_string) for v in value]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{name}: unsupported type")  # pragma: no cover
    if typ is bool:
        if isinstance(value, bool):
            return value
        if from_string and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_string and isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
            if f.is_integer():
                return int(f)
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            v = float(value)
        elif from_string and isinstance(value, str):
            try:
                v = float(value)
            except ValueError:
                raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        else:
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if math.isnan(v):
            raise ConfigError(f"{name}: expected a number, got NaN")
        return v
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{name}: unsupported type {typ}")  # pragma: no cover


def field_docs() -> dict[str, str]:
    """Each field's trailing comment in the TrainConfig source: its meaning and unit."""
    import inspect

    docs = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        code, _, comment = line.partition("  # ")
        name = code.strip().split(":", 1)[0]
        if comment and name.isidentifier() and ":" in code:
            docs[name] = comment.strip()
    return docs


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def apply_overrides(
    base: dict[str, Any], overrides: dict[str, Any], *, from_string: bool = False
) -> dict[str, Any]:
    """``base`` updated with ``overrides``, each key checked and each value type-checked."""
    known = {f.name: f for f in fields(TrainConfig)}
    out = dict(base)
    for k, v in overrides.items():
        key = k.replace("-", "_")
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown config key {k!r}{hint}")
        out[key] = _coerce(key, _type_of(known[key]), v, from_string)
    return out


def build_config(
    recipe: str | None = None,
    file_values: dict[str, Any] | None = None,
    cli_values: dict[str, Any] | None = None,
    string_values: dict[str, Any] | None = None,
) -> TrainConfig:
    """Resolve a config: defaults < recipe < config file < command line; then validate."""
    file_values = dict(file_values or {})
    recipe = (
        recipe or file_values.pop("recipe", None) or (cli_values or {}).get("recipe") or "digits"
    )
    file_values.pop("recipe", None)
    if recipe not in RECIPES:
        close = difflib.get_close_matches(recipe, list(RECIPES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(RECIPES)}"
        raise ConfigError(f"unknown recipe {recipe!r}{hint}")
    values = dataclasses.asdict(TrainConfig())
    values = apply_overrides(values, RECIPES[recipe])
    values["recipe"] = recipe
    values = apply_overrides(values, file_values)
    cli = dict(cli_values or {})
    cli.pop("recipe", None)
    # --epochs on the command line replaces the recipe's iteration count, and vice versa
    given = set(cli) | set(string_values or {})
    if "epochs" in given and "iters" not in given:
        values["iters"] = 0
    if "iters" in given and "epochs" not in given:
        values["epochs"] = 0.0
    values = apply_overrides(values, cli)
    values = apply_overrides(values, string_values or {}, from_string=True)
    return TrainConfig(**values).validate()


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or TOML file of config keys (a resolved ``config.json`` of a run works too)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file ({e.strerror or e})") from None
    if p.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: invalid TOML ({e})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a table/object of config keys")
    if "config" in data and isinstance(data["config"], dict):  # a run's config.json
        data = data["config"]
    return data


def parse_set(items: list[str]) -> dict[str, str]:
    """``["lr=0.05", "milestones=100,200"]`` -> dict; ConfigError on a malformed item."""
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k.strip():
            raise ConfigError(f"--set {it!r}: expected KEY=VALUE")
        out[k.strip()] = v.strip()
    return out
