"""The one way to load weights: :func:`load_weights` returns a :class:`LoadedModel` (the model,
its record, its preprocessing, and the runtime it runs on), whatever the source.

Sources: a weights name (``resnet20.cifar10``, ``resnet50.tv2_in1k``), a weights file (resnets'
``.safetensors``, or torchvision's ``.pth`` with ``model=``), a run folder (its
``model.safetensors``, else its best or last checkpoint), or an exported model (an ``.onnx`` file,
an OpenVINO folder). Backends are chosen here and nowhere else (:func:`choose_backend`); weights
asked for on ONNX Runtime or OpenVINO are exported to ONNX in memory first.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError, WeightsError
from ..models.catalogue import (
    class_names,
    get_pretrained,
    is_weights_name,
    resolve_weights_path,
)
from ..models.class_index import IMAGENET_CLASS_INDEX, cached_class_index
from ..models.detector import build_detector
from ..models.factory import create_model
from ..models.registry import get_spec
from ..models.weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsMeta,
    check_finite,
    check_state_fits_record,
    load_state_dict_checked,
    read_meta,
    read_weights,
    stored_dtype_of,
)
from .graph import onnx_bytes
from .runtimes import (
    BACKENDS,
    ExternalModel,
    available_backends,
    import_problem,
    is_exported,
    read_exported_meta,
)
from .views import TestViews

log = logging.getLogger(__name__)

#: one spelling of each precision, everywhere: ``fp32``; ``bf16``; ``auto`` (the runtime's own
#: choice: OpenVINO runs bf16 where the CPU has it)
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class LoadedModel:
    """A model ready for inference: call :meth:`logits` on a preprocessed batch.

    ``model`` is a PyTorch module, or for ``backend`` ``onnxruntime`` / ``openvino`` an
    :class:`~resnets.inference.runtimes.ExternalModel` called the same way. Pixel statistics are
    in 0..255 units; ``image_size`` is the short side images are resized to (0: as stored) and
    ``eval_size`` the centre crop (0: none)."""

    model: nn.Module
    meta: WeightsMeta
    classes: list[str]
    mean: list[float]
    std: list[float]
    image_size: int
    eval_size: int
    in_chans: int
    pad: int = 4
    backend: str = "torch"
    source: str = ""  # what it was loaded from (a name, file, run folder or export)

    @functools.cached_property
    def views(self) -> TestViews:
        """The test-time views its record describes (the one preprocessing every command
        shares: predict, serve, explain, eval, calibrate, card, export)."""
        return TestViews(
            tuple(self.mean),
            tuple(self.std),
            self.image_size,
            self.eval_size,
            self.in_chans,
            self.pad,
        )

    @property
    def exported(self) -> bool:
        """Loaded from an exported model: no PyTorch weights, so no gradients."""
        return bool(self.source) and is_exported(self.source)

    @torch.no_grad()
    def logits(self, batch: Tensor) -> Tensor:
        """Float logits of a normalised NCHW batch, on whichever runtime holds the model."""
        return self.model(batch).float()

    def gradient_copy(self) -> LoadedModel | None:
        """A PyTorch copy for gradient-based explanations, sharing nothing with this one (so
        hooks never meet a batch of predictions); None for an exported model."""
        if self.backend == "torch":
            return replace(self, model=copy.deepcopy(self.model))
        if self.exported:
            return None
        return load_weights(self.source, model=self.meta.model)


def choose_backend(weights: str | os.PathLike, backend: str | None, device: torch.device) -> str:
    """The runtime for ``weights``: ``None`` means torch for weights and the export's own runtime
    for an exported model; ``auto`` the fastest installed. Only torch runs off the CPU."""
    if backend not in (*BACKENDS, "auto", None):
        raise ConfigError(f"--backend {backend!r}: one of {', '.join(BACKENDS)}, auto")
    exported = is_exported(weights)
    if backend is None:
        backend = "auto" if exported else "torch"
    if backend == "auto":  # an export runs on the runtime its format was made for
        if exported:
            backend = "openvino" if Path(weights).is_dir() else "onnxruntime"
        elif device.type != "cpu":
            backend = "torch"
        else:
            backend = available_backends()[0]
    if backend != "torch" and device.type != "cpu":
        raise ConfigError(f"--backend {backend}: runs on the CPU (--device cpu)")
    problem = import_problem(backend) if backend != "torch" else None
    if problem is not None:
        raise ConfigError(f"--backend {backend}: {problem} (pip install 'resnets[deploy]')")
    if exported and backend == "torch":
        raise ConfigError(f"{weights}: an exported model runs on onnxruntime or openvino")
    if exported and backend == "onnxruntime" and Path(weights).is_dir():
        raise ConfigError(f"{weights}: an OpenVINO folder runs on --backend openvino")
    return backend


def load_weights(
    weights: str | os.PathLike,
    *,
    backend: str | None = "torch",
    model: str | None = None,
    num_classes: int | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    threads: int = 0,
    task: str | None = "classification",
) -> LoadedModel:
    """Load weights (a name, a file, a run folder) or an exported model, ready to run.

    Args:
        backend: ``torch``, ``onnxruntime``, ``openvino``, ``auto`` (the fastest installed), or
            None (torch for weights, the export's runtime for an exported model).
        model: the architecture, for a file without a resnets record (torchvision's ``.pth``);
            ``num_classes`` too if its head is not the file's.
        precision: for ONNX Runtime / OpenVINO: ``fp32``, ``bf16`` or ``auto`` (the runtime's
            choice). PyTorch weights load in float32; autocast is the caller's choice.
        threads: the runtime's threads (0: its default).
        task: ``classification`` (every classifier command), ``detection`` (a Faster R-CNN
            file: ``model`` is then the detector, called on images in [0, 1]), or None (either).
            Weights of another task are a one-line error before a tensor is read.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    backend = choose_backend(weights, backend, device)
    label = str(weights)
    if is_exported(weights):
        if task == "detection":
            raise WeightsError(f"{weights}: an exported classifier, not a detector's weights")
        meta = read_exported_meta(weights)
        p = Path(weights)
        graph = str(p / "model.xml") if p.is_dir() else str(p)
        try:
            runner = ExternalModel(backend, graph, meta, threads=threads, precision=precision)
        except RuntimeError as e:  # the runtime cannot read or compile this graph
            first = str(e).strip().splitlines()
            raise WeightsError(
                f"{weights}: {backend} cannot run this model "
                f"({first[-1][:200] if first else type(e).__name__})"
            ) from None
        return _with_preprocessing(runner, meta, label, backend)
    net, meta = model_from_weights(weights, model=model, num_classes=num_classes, task=task)
    check_finite(net.state_dict(), str(weights))
    net = net.eval()
    if meta.task == "detection" and backend != "torch":
        raise ConfigError(f"--backend {backend}: a detector runs on torch")
    if backend == "torch":
        return _with_preprocessing(net.to(device), meta, label, backend)
    loaded = _with_preprocessing(net, meta, label, backend)  # the preprocessing decides the size
    graph = onnx_bytes(net, meta, loaded.eval_size or loaded.image_size or 32)
    runner = ExternalModel(backend, graph, meta, threads=threads, precision=precision)
    return replace(loaded, model=runner)


def _with_preprocessing(net: nn.Module, meta: WeightsMeta, label: str, backend: str) -> LoadedModel:
    """A model with the preprocessing its record names (torchvision's preset for a file
    without a record)."""
    # a detector's classes are its object classes, one output fewer (its background)
    k = net.cfg.num_classes - 1 if meta.task == "detection" else net.num_classes
    classes = list(meta.classes or [str(i) for i in range(k)])
    if len(classes) != k:
        raise WeightsError(
            f"{label}: metadata lists {len(classes)} classes but the model has {k} outputs"
        )
    foreign = meta.mean is None  # a file without metadata: torchvision's ImageNet preset
    return LoadedModel(
        model=net,
        meta=meta,
        classes=classes,
        mean=list(meta.mean or IMAGENET_MEAN),
        std=list(meta.std or IMAGENET_STD),
        image_size=meta.image_size or (256 if foreign else 0),
        eval_size=meta.eval_size or (224 if foreign else 0),
        in_chans=net.in_chans,
        pad=meta.pad,
        backend=backend,
        source=label,
    )


def wrap_module(net: nn.Module, meta: WeightsMeta, label: str = "") -> LoadedModel:
    """A model already in memory (a fresh or just-trained network) as a :class:`LoadedModel`."""
    return _with_preprocessing(net, meta, label, "torch")


def model_from_weights(
    spec: str | os.PathLike,
    *,
    model: str | None = None,
    num_classes: int | None = None,
    task: str | None = "classification",
) -> tuple[nn.Module, WeightsMeta]:
    """The PyTorch network and record of weights (a name, a file or a run folder): the step of
    :func:`load_weights` that builds the architecture and fills it, strictly. ``task`` as
    :func:`load_weights` takes it (a detector's record builds its Faster R-CNN).

    For a file without resnets metadata (e.g. torchvision's ``resnet50-0676ba61.pth``), name the
    architecture with ``model`` (and ``num_classes`` if not 1000).
    """
    named = str(spec) if is_weights_name(str(spec)) else None
    path = resolve_weights_path(spec)
    state, meta = read_weights(path, task)
    if meta is not None and meta.task == "detection":
        return build_detector(meta, state, str(path)), meta
    if meta is None and named:
        meta = get_pretrained(named).meta
    name = model or (meta.model if meta else None)
    if not name:
        raise WeightsError(
            f"{path}: no resnets metadata in the file; name the architecture (--model)"
        )
    meta = meta or WeightsMeta(model=name)
    kwargs = dict(meta.model_kwargs)
    check_state_fits_record(state, kwargs, str(path))  # before the record's sizes allocate
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    elif "num_classes" not in kwargs:
        head = next((k for k in ("fc.weight", "classifier.weight") if k in state), None)
        if head is not None:
            kwargs["num_classes"] = int(state[head].shape[0])
    stem = next((k for k in ("conv1.weight", "features.conv0.weight") if k in state), None)
    if "in_chans" not in kwargs and stem is not None:
        kwargs["in_chans"] = int(state[stem].shape[1])
    net = create_model(name, **kwargs)
    load_state_dict_checked(net, state, str(path), stored_dtype_of(meta))
    meta = _with_class_names(meta, named, net.num_classes)
    return net, replace(meta, model=get_spec(name).name)


def weights_task(weights: str | os.PathLike) -> str:
    """What weights (a name, a file, a run folder, an export) do, ``classification`` or
    ``detection``, from their record alone: no tensor is read."""
    if is_exported(weights):
        return "classification"
    if is_weights_name(str(weights)):
        return get_pretrained(str(weights)).meta.task
    path = resolve_weights_path(weights)
    meta = read_meta(path) if path.suffix == ".safetensors" else None
    return meta.task if meta is not None else "classification"


def _with_class_names(meta: WeightsMeta, name: str | None, num_classes: int) -> WeightsMeta:
    """Fill in the class names of ImageNet weights from the class index, downloading it for
    named weights; without it (offline), predictions show class indices and the log says why."""
    if meta.classes is not None or num_classes != 1000:
        return meta
    try:
        # a 1000-way file without metadata (torchvision's): the cached index, if any
        got = class_names(name) if name else cached_class_index(IMAGENET_CLASS_INDEX)
    except WeightsError as e:
        log.warning(
            "%s: class names unavailable, predictions show class indices (%s)",
            name or "ImageNet weights",
            e,
        )
        return meta
    if got is None:
        return meta
    ids, names = got
    return replace(meta, classes=names, class_ids=ids)
