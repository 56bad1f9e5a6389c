"""Training configuration: one dataclass, named recipes, strict parsing.

Every hyperparameter lives in :class:`TrainConfig`, with its unit. A recipe is a named set of
overrides of the defaults. Values come, in order of precedence, from: the recipe, a ``--config``
file (JSON or TOML), then command-line options. Unknown keys, wrong types and out-of-range values
are :class:`ConfigError` before any data is read or any compute starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
import types
import typing

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..argtypes import MAX_BATCH, MAX_IMAGE_SIDE
from ..errors import ConfigError, DataError
from ..io import read_bounded
from ..models import get_spec
from ..models.detector_config import DETECTOR_FIELDS, DetectorConfig, detector_weights_name
from .recipes import RECIPES

Shortcut = Literal["", "A", "B", "C"]
Augment = Literal["cifar", "crop", "flip", "none", "scale", "rrc"]
Schedule = Literal["step", "cosine", "linear", "plateau", "constant"]
DataMode = Literal["auto", "memory", "stream"]
Switch = Literal["auto", "on", "off"]
Precision = Literal["auto", "bf16", "fp32"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
TTA = Literal["none", "flip"]
OnNonfinite = Literal["stop", "rollback"]

# the largest integer any count or seed may take (torch seeds and numpy indices are 64-bit)
INT_MAX = 2**63 - 1


def opt(default: Any, help: str, *, unit: str = "", group: str = "") -> Any:
    """A config field with its meaning and unit in the field's metadata: the one source of
    the CLI help, ``docs/config.md`` and the error messages. ``group`` starts a new section."""
    meta = {"help": help, "unit": unit, "group": group}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


#: the one training loop's own settings, the same for every task's config: each written once
#: here (default, meaning, unit) and a field of TrainConfig and of DetectTrainConfig
LOOP_SETTINGS: dict[str, tuple[Any, str, str]] = {
    "eval_every": (0, "iterations between evaluations; 0 = once per epoch", "iterations"),
    "checkpoint_every": (
        0, "iterations between checkpoints; 0 = at every evaluation", "iterations"
    ),
    "log_every": (
        10, "iterations between progress-bar updates (each costs a host sync)", "iterations"
    ),
    "on_nonfinite": (
        "stop", "on a non-finite loss: stop, or rollback (to the last checkpoint, with lr halved)", ""
    ),
    "max_rollbacks": (3, "roll-backs allowed before a non-finite loss stops the run", "roll-backs"),
    "ema": (
        0.0,
        "exponential moving average of the weights, decay per step (e.g. 0.999; 0 = off); "
        "BatchNorm buffers are averaged too (torch.optim.swa_utils, use_buffers)",
        "",
    ),
    "ema_final": (False, "save the averaged weights as the final ones (with ema > 0)", ""),
}  # fmt: skip


def loop_opt(name: str) -> Any:
    """The config field of one of the loop's own settings (:data:`LOOP_SETTINGS`)."""
    default, help, unit = LOOP_SETTINGS[name]
    return opt(default, help, unit=unit)


@dataclass
class TrainConfig:
    """All settings of one training run; each field's help and unit are in its metadata."""

    model: str = opt(
        "resnet20", "registered name (see `resnets models`)", group="what to train on what"
    )
    data: str = opt(
        "digits",
        "digits / cifar10[:PATH] / cifar100[:PATH] / folder of class folders / folder of tar shards",
    )
    recipe: str = opt("digits", "the named recipe these values started from")
    shortcut: Shortcut = opt(
        "",
        "A (zero-padding), B (projection where the shape changes) or C (all projections); empty: A for CIFAR nets, B for ImageNet nets",
    )
    zero_init_residual: bool = opt(False, "start each block's last BN at gamma = 0")
    stride_in_1x1: bool = opt(
        False, "bottleneck stride in the first 1x1 (the paper) instead of the 3x3"
    )
    batchnorm: bool = opt(True, "False: the no-BN variant (gradient-flow studies only)")
    base_width: int = opt(
        0,
        "first-stage width of the concatenating nets (concat*); 0: the model's own (16)",
        unit="channels",
    )
    dropout: float = opt(
        0.0,
        "dropout inside each unit of wide, pre-activation and dense nets (WRN: 0.3); 0: none",
        unit="probability",
    )

    init: str = opt(
        "",
        "start from these weights (MODEL.TAG, a file or a run directory; a detector's give their backbone): the backbone is loaded, the head replaced where the classes differ; their normalisation and input size are used unless given",
        group="transfer learning",
    )
    freeze: str = opt(
        "none",
        "parameters kept fixed: none, stem, stages:N (the stem and the first N stages) or backbone (all but the classifier: a linear probe)",
    )
    backbone_lr_scale: float = opt(
        1.0,
        "learning rate of the backbone relative to the classifier's (discriminative fine-tuning)",
    )
    freeze_bn: bool = opt(
        False, "BatchNorm layers use and keep their running statistics (stay in eval mode)"
    )

    val_split: float = opt(
        0.2,
        "held-out validation samples: a count (>= 1) or a fraction (< 1)",
        unit="images or fraction",
        group="data",
    )
    classes: list[str] = opt(
        [],
        "train on these classes only (names, in this order); empty: every class of the data",
    )
    per_class: int = opt(
        0,
        "labelled training images kept per class (a seeded subset of the training split); 0: all",
        unit="images",
    )
    image_size: int = opt(
        0, "decoded size (short side, square crop); 0 = native when uniform", unit="pixels"
    )
    augment: Augment = opt(
        "cifar",
        "training augmentation: cifar (pad + crop + flip), crop, flip, none, scale (short side 256-480 + crop + flip), rrc (random-resized crop + flip)",
    )
    pad: int = opt(4, "padding for the cifar/crop augmentation", unit="pixels")
    crop_size: int = opt(0, "training crop for scale/rrc; 0 = the decoded size", unit="pixels")
    eval_size: int = opt(0, "evaluation centre crop; 0 = the decoded size", unit="pixels")
    skip_bad: bool = opt(False, "skip (and list) unreadable images instead of failing")
    workers: int = opt(
        0, "threads preparing the next batches (0 = in the training loop)", unit="threads"
    )
    data_mode: DataMode = opt(
        "auto", "memory (decode once, cached), stream (decode per batch) or auto"
    )
    decode_workers: int = opt(
        0, "streaming: JPEG-decoding processes (0 = one per core)", unit="processes"
    )

    batch_size: int = opt(
        128,
        "images per step (the global batch under torchrun)",
        unit="images",
        group="optimisation (SGD with momentum, paper section 3.4)",
    )
    lr: float = opt(0.1, "learning rate after warm-up")
    momentum: float = opt(0.9, "SGD momentum")
    nesterov: bool = opt(False, "Nesterov momentum (modern recipes)")
    weight_decay: float = opt(1e-4, "L2 penalty on every parameter, as the paper")
    label_smoothing: float = opt(0.0, "cross-entropy label smoothing (0 = off, as the paper)")
    ema: float = loop_opt("ema")
    ema_final: bool = loop_opt("ema_final")
    iters: int = opt(0, "total training iterations; 0 = derived from epochs", unit="iterations")
    epochs: float = opt(0.0, "total epochs, used when iters == 0", unit="epochs")
    schedule: Schedule = opt(
        "step",
        "step (x lr_decay at milestones), cosine, linear (to 0 at the end), plateau (x lr_decay when validation stalls) or constant",
    )
    milestones: list[float] = opt(
        [0.5, 0.75],
        "step schedule: iterations where lr is multiplied by lr_decay (values < 1: fractions of the total)",
        unit="iterations or fractions",
    )
    lr_decay: float = opt(0.1, "step/plateau: factor applied to lr at each milestone or plateau")
    ramp_iters: int = opt(
        0, "linear ramp of lr from 0 over these iterations (modern recipes)", unit="iterations"
    )
    ramp_epochs: float = opt(
        0.0, "the same ramp in epochs (used when ramp_iters == 0)", unit="epochs"
    )
    plateau_patience: int = opt(
        3, "plateau: evaluations without validation improvement before lr drops", unit="evaluations"
    )
    warmup: Switch = opt(
        "auto", "the paper's ResNet-110 warm-up at warmup_lr: auto (CIFAR depth >= 110), on or off"
    )
    warmup_lr: float = opt(0.01, "learning rate during warm-up")
    warmup_until_err: float = opt(
        0.8, "warm-up ends once the training error falls below this", unit="fraction"
    )
    warmup_window: int = opt(
        50, "iterations over which that training error is averaged", unit="iterations"
    )
    warmup_max_iters: int = opt(
        2000, "warm-up ends after this many iterations regardless", unit="iterations"
    )

    seed: int = opt(
        0,
        "seeds the weight init, the data order, every augmentation and (unless split_seed) the split",
        group="run",
    )
    split_seed: int = opt(
        -1,
        "seeds the held-out split and the per_class subset; -1: the seed. Runs of several seeds with one split_seed are scored on the same held-out images (paired tests)",
    )
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    threads: int = opt(
        0,
        "CPU threads; 0: $OMP_NUM_THREADS if set, else the cores other processes leave idle at the start (a resumed run keeps its count unless given one; on another count it is no longer bit-identical to an uninterrupted run)",
        unit="threads",
    )
    precision: Precision = opt(
        "auto", "auto (bf16 autocast where the hardware has it), bf16 or fp32"
    )
    channels_last: bool = opt(
        True,
        "NHWC memory layout for the model and batches (faster convolutions on CPUs and tensor cores)",
    )
    compile: Switch = opt(
        "auto",
        "torch.compile the model: on, off, or auto (on for jobs of >= 5,000 iterations, where the compile time pays back)",
    )
    compile_mode: CompileMode = opt(
        "default",
        "torch.compile mode: default, reduce-overhead (CUDA graphs), max-autotune or max-autotune-no-cudagraphs",
    )
    fused_optimizer: Switch = opt(
        "auto", "SGD kernel: on (fused), off (foreach) or auto (fused on CUDA)"
    )
    sync_bn: bool = opt(False, "under torchrun: BatchNorm statistics over the global batch")
    tensorboard: bool = opt(
        False,
        "also write the metrics (losses, errors, lr, images/s) as TensorBoard events in RUN_DIR/tensorboard (pip install 'resnets[tensorboard]')",
    )
    eval_every: int = loop_opt("eval_every")
    tta: TTA = opt(
        "none", "test-time augmentation in evaluations: none or flip (mean of both logits)"
    )
    checkpoint_every: int = loop_opt("checkpoint_every")
    log_every: int = loop_opt("log_every")
    on_nonfinite: OnNonfinite = loop_opt("on_nonfinite")
    max_rollbacks: int = loop_opt("max_rollbacks")

    def validate(self) -> TrainConfig:
        """Check types, choices and ranges; raises :class:`ConfigError`. Returns self."""
        get_spec(self.model)
        for f in fields(self):  # types and Literal choices, from the annotations alone
            setattr(self, f.name, _coerce(f.name, _hints()[f.name], getattr(self, f.name), False))

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            f"device={self.device!r}: must be auto, cpu, cuda or cuda:N",
        )
        need(
            1 <= self.batch_size <= MAX_BATCH,
            f"batch_size={self.batch_size}: must be from 1 to {MAX_BATCH}",
        )
        for k in ("image_size", "crop_size", "eval_size"):  # sizes bound before any decode
            need(
                0 <= getattr(self, k) <= MAX_IMAGE_SIDE,
                f"{k}={getattr(self, k)}: must be from 0 to {MAX_IMAGE_SIDE} pixels",
            )
        need(0 <= self.pad <= 256, f"pad={self.pad}: must be from 0 to 256 pixels")
        need(
            self.workers <= 64 and self.decode_workers <= 256,
            f"workers={self.workers}, decode_workers={self.decode_workers}: at most 64 and 256",
        )
        for k in ("lr", "warmup_lr"):
            v = getattr(self, k)
            need(math.isfinite(v) and v > 0, f"{k}={v}: must be > 0")
        need(0 <= self.momentum < 1, f"momentum={self.momentum}: must be in [0, 1)")
        need(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            f"weight_decay={self.weight_decay}: must be >= 0",
        )
        need(
            0 <= self.label_smoothing < 1,
            f"label_smoothing={self.label_smoothing}: must be in [0, 1)",
        )
        need(0 <= self.dropout < 1, f"dropout={self.dropout}: must be in [0, 1)")
        need(self.ema == 0 or 0.5 <= self.ema < 1, f"ema={self.ema}: 0 (off) or in [0.5, 1)")
        need(not self.ema_final or self.ema > 0, "ema_final=true needs ema > 0")
        need(self.base_width >= 0, f"base_width={self.base_width}: must be >= 0")
        kind = get_spec(self.model).kind
        need(
            not self.dropout or kind in ("preact", "dense"),
            f"dropout={self.dropout}: {self.model} has no dropout (wide, pre-act and dense nets do)",
        )
        need(
            not self.base_width or kind == "concat",
            f"base_width={self.base_width}: only the concat* nets take it, not {self.model}",
        )
        need(0 < self.lr_decay <= 1, f"lr_decay={self.lr_decay}: must be in (0, 1]")
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
        need(
            math.isfinite(self.val_split) and self.val_split >= 0,
            f"val_split={self.val_split}: must be >= 0",
        )
        for f in fields(self):
            v = getattr(self, f.name)
            low = -1 if f.name == "split_seed" else 0  # -1: the split follows the seed
            if _hints()[f.name] is int:
                need(low <= v <= INT_MAX, f"{f.name}={v}: must be between {low} and {INT_MAX}")
        need(self.log_every >= 1, f"log_every={self.log_every}: must be >= 1")
        need(
            math.isfinite(self.backbone_lr_scale) and self.backbone_lr_scale >= 0,
            f"backbone_lr_scale={self.backbone_lr_scale}: must be >= 0",
        )
        need(
            re.fullmatch(r"none|stem|backbone|stages:[1-9]\d*", self.freeze) is not None,
            f"freeze={self.freeze!r}: must be none, stem, stages:N (N >= 1) or backbone",
        )
        need(self.plateau_patience >= 1, f"plateau_patience={self.plateau_patience}: must be >= 1")
        need(
            0 < self.warmup_until_err <= 1,
            f"warmup_until_err={self.warmup_until_err}: must be in (0, 1]",
        )
        return self

    @property
    def held_out_seed(self) -> int:
        """The seed of the held-out split (and the per_class subset): ``split_seed``, or the
        run's ``seed`` when that is -1."""
        return self.seed if self.split_seed < 0 else self.split_seed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DetectTrainConfig:
    """All settings of one detection run (``resnets detect train``), in the same config system
    as :class:`TrainConfig`: each field's help and unit in its metadata, settable by its own
    flag, a ``--config`` file or ``--set``, documented in docs/config.md. The recipe is
    torchvision's detection reference (SGD, momentum 0.9, weight decay 1e-4, a linear warm-up,
    lr / 10 at two milestones), scaled to the images and batches a CPU trains."""

    train: str = opt(
        "", "a COCO-format folder (instances.json + images/) to train on", group="data"
    )
    val: str = opt("", "a COCO-format folder of the same categories, scored after every epoch")
    flip: bool = opt(True, "horizontal flips of training images, their boxes flipped with them")
    backbone: str = opt("resnet18", "the resnets model under the detector", group="model")
    init: str = opt(
        "",
        "start from these weights (MODEL.TAG, a file or a run directory): a classifier's give the "
        "backbone, a detector's every layer (its class outputs too when its classes are these); "
        "empty: from scratch",
    )
    detector: dict[str, Any] = opt(
        {}, 'DetectorConfig fields to change, as JSON (e.g. {"fpn_channels": 64})'
    )
    epochs: int = opt(12, "passes over the training folder", unit="epochs", group="optimisation")
    batch_size: int = opt(4, "images per SGD step", unit="images")
    lr: float = opt(
        0.01,
        "SGD learning rate at this batch size (torchvision's 0.02 at 16 images, kept lower for "
        "stability)",
    )
    momentum: float = opt(0.9, "SGD momentum")
    weight_decay: float = opt(1e-4, "L2 penalty on every parameter")
    milestones: list[int] = opt([8, 11], "epochs after which the learning rate is divided by 10")
    warmup_iters: int = opt(200, "linear warm-up from lr / 1000 to lr", unit="iterations")
    seed: int = opt(0, "seeds the weight init, the image order and the flips", group="run")
    threads: int = opt(0, "CPU threads (0: torch's default)")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N (under torchrun: each rank its own GPU)")
    precision: Precision = opt(
        "fp32",
        "the training step's: fp32 (the default), bf16 autocast, or auto (bf16 where the hardware "
        "has it); evaluations are in fp32",
    )
    eval_every: int = loop_opt("eval_every")
    checkpoint_every: int = loop_opt("checkpoint_every")
    log_every: int = loop_opt("log_every")
    on_nonfinite: OnNonfinite = loop_opt("on_nonfinite")
    max_rollbacks: int = loop_opt("max_rollbacks")
    ema: float = loop_opt("ema")
    ema_final: bool = loop_opt("ema_final")

    def check(self) -> DetectTrainConfig:
        """Every setting range-checked in one line, before a run folder is made."""
        for name, low, high in (("epochs", 1, 10_000), ("batch_size", 1, 256),
                                ("warmup_iters", 0, 1_000_000), ("threads", 0, 1024),
                                ("eval_every", 0, INT_MAX), ("checkpoint_every", 0, INT_MAX),
                                ("log_every", 1, INT_MAX), ("max_rollbacks", 0, 1000)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(
                    f"detection setting {name}={value!r}: a whole number in {low}..{high}"
                )
        for name, low, high in (("lr", 0.0, 10.0), ("momentum", 0.0, 1.0),
                                ("weight_decay", 0.0, 1.0)):  # fmt: skip
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not low <= value <= high
                or (name == "lr" and value == 0)
            ):
                raise ConfigError(f"detection setting {name}={value!r}: a number in {low}..{high}")
        if len(self.milestones) > 100 or not all(
            isinstance(m, int) and not isinstance(m, bool) and 0 < m <= 10_000
            for m in self.milestones
        ):
            raise ConfigError(f"milestones {list(self.milestones)}: epochs in 1..10000")
        if not isinstance(self.detector, dict):
            raise ConfigError(f"detector settings {self.detector!r}: a JSON object")
        unknown = sorted(set(self.detector) - DETECTOR_FIELDS)
        if unknown:
            raise ConfigError(f"detector settings {unknown}: not fields of DetectorConfig")
        DetectorConfig(backbone=self.backbone, **self.detector)  # its own bounds, one line
        if not (self.ema == 0 or 0.5 <= self.ema < 1) or (self.ema_final and not self.ema):
            raise ConfigError(
                f"ema={self.ema}, ema_final={self.ema_final}: ema 0 (off) or in [0.5, 1); "
                "ema_final needs ema > 0"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def model(self) -> str:
        """What the progress bar and the logs call the run."""
        return detector_weights_name(self.backbone)


def build_detect_config(
    file_values: dict[str, Any] | None = None, string_values: dict[str, Any] | None = None
) -> DetectTrainConfig:
    """A detection config: defaults < config file (or a run's stored config) < command line,
    every key and value checked as :func:`build_config` checks a classification one's."""
    cls = DetectTrainConfig
    values = apply_overrides(dataclasses.asdict(cls()), file_values or {}, cls=cls)
    values = apply_overrides(values, string_values or {}, from_string=True, cls=cls)
    return cls(**values).check()


@functools.cache
def _hints(cls: type = None) -> dict[str, Any]:  # type: ignore[assignment]
    return typing.get_type_hints(cls or TrainConfig)


def choices_of(name: str, cls: type | None = None) -> tuple[str, ...] | None:
    """The allowed values of a field (of ``cls``, default TrainConfig) typed with ``Literal``,
    else None."""
    typ = _hints(cls)[name]
    return typing.get_args(typ) if typing.get_origin(typ) is Literal else None


def _coerce(name: str, typ: Any, value: Any, from_string: bool) -> Any:
    """Check (or, for command-line strings, parse) ``value`` as ``typ``."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        allowed = typing.get_args(typ)
        if isinstance(value, bool) and "on" in allowed:  # configs written when this was a bool
            value = "on" if value else "off"
        if from_string and isinstance(value, str):
            low = value.strip().lower()
            value = (
                {"true": "on", "false": "off"}.get(low, value.strip())
                if "on" in allowed
                else value.strip()
            )
            if value.lower() in allowed:
                value = value.lower()
        if value not in allowed:
            raise ConfigError(f"{name}={value!r}: must be one of {list(allowed)}")
        return value
    if origin in (list, tuple):
        (inner,) = typing.get_args(typ)[:1]
        if from_string and isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(name, inner, v, from_string) for v in value]
    if origin is dict:
        if from_string and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{name}: expected a JSON object of settings, got {value!r:.80}")
        return dict(value)
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


def field_help(name: str, cls: type | None = None) -> str:
    """A field's meaning, unit and (for fixed choices) allowed values, from its metadata."""
    meta = next(f.metadata for f in fields(cls or TrainConfig) if f.name == name)
    text = meta["help"]
    if meta["unit"]:
        text += f" [{meta['unit']}]"
    return text


def field_docs(cls: type | None = None) -> dict[str, str]:
    """Every field's help text (see :func:`field_help`), of ``cls`` (default TrainConfig)."""
    return {f.name: field_help(f.name, cls) for f in fields(cls or TrainConfig)}


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def apply_overrides(
    base: dict[str, Any],
    overrides: dict[str, Any],
    *,
    from_string: bool = False,
    cls: type | None = None,
) -> dict[str, Any]:
    """``base`` updated with ``overrides``, each key checked against the fields of ``cls``
    (default TrainConfig) and each value type-checked."""
    known = {f.name: f for f in fields(cls or TrainConfig)}
    out = dict(base)
    for k, v in overrides.items():
        key = k.replace("-", "_")
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown config key {k!r}{hint}")
        out[key] = _coerce(key, _hints(cls)[key], v, from_string)
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
        text = read_bounded(p, 2**20, "config file").decode("utf-8")
    except DataError as e:
        raise ConfigError(str(e)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {e.start}); save the config as UTF-8"
        ) from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file ({e.strerror or e})") from None
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML ({e})") from None
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


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A validated config from a saved dict (a run's ``config.json`` or checkpoint): unknown
    keys and wrong types are errors, as for any other source."""
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a table of keys, got {type(values).__name__}")
    merged = apply_overrides(dataclasses.asdict(TrainConfig()), values)
    return TrainConfig(**merged).validate()
