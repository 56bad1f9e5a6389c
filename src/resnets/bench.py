"""Measurements: training/inference throughput against a reference loop in the same process,
achieved FLOP/s against the peak measured in the same run, and the data pipeline.

Every figure is a ratio against a reference run side by side (alternating rounds, so a noisy
machine slows both alike), as BENCHMARKS.md reports them.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data import AugmentSpec, BatchStream, channel_stats, load_dataset, stratified_split
from .data.folder import CACHE_ENV
from .data.images import decode_image, resize_short_center_crop
from .data.stream import decode_bytes, is_shard_dir, jpeg_decoder, stream_folder, stream_shards
from .deploy.quantize import quantize_onnx, quantize_openvino
from .inference import ExternalModel, available_backends
from .inference.graph import onnx_bytes
from .models import count_macs, create_model, get_spec
from .models.weights import WeightsMeta
from .runtime import hold_freed_memory, use_bf16
from .train.config import TrainConfig, build_config
from .train.step import TrainStep, build_for_training


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_peak_tflops(
    device: torch.device, dtype: torch.dtype, n: int | None = None, seconds: float = 1.0
) -> float:
    """Achieved TFLOP/s of a large square matmul: the practical peak of this device and dtype."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        _sync(device)
        el = time.perf_counter() - t0
        if el >= seconds and reps >= 3:
            break
    return 2 * n**3 * reps / el / 1e12


#: what the measured peak is: one square matmul, so a fraction of it says how far a net's small
#: convolutions (16-64 channels on CIFAR) are from the rate of the best-shaped work, not what
#: the hardware could do on them (AMX reaches that rate only on large tiles)
PEAK_YARDSTICK = "the rate of one {n}x{n}x{n} matmul in the same precision"


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def alternate(
    fns: dict[str, Any], steps: int, rounds: int, device: torch.device, warmup: int = 2
) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in alternating rounds of ``steps`` calls, so
    that a noisy machine slows every variant alike."""
    for fn in fns.values():  # warm-up (and compilation)
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            _sync(device)
            times[k].append((time.perf_counter() - t0) / steps)
    return times


@dataclass
class TrainBench:
    model: str
    batch_size: int
    image_size: int
    device: str
    recipe: str = ""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_tflops: dict[str, float] = field(default_factory=dict)
    speedup: float = 0.0  # against the fp32 eager loop
    speedup_vs_bf16_loop: float | None = None  # against bf16 autocast + channels_last, eager
    peak_yardstick: str = ""  # what "fraction of peak" divides by
    images_per_sec: float = 0.0
    flops_per_image: float = 0.0
    peak_memory_mb: float = 0.0
    threads: int = 0
    allocator: str = ""  # on a CPU, whether every loop ran with freed memory held, as training

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_step(
    model_name: str,
    bs: int,
    size: int,
    classes: int,
    device: torch.device,
    *,
    bf16: bool = False,
) -> Any:
    """The plain loop a user would write: eager, PyTorch's SGD (foreach). ``bf16=False``: fp32,
    NCHW; ``bf16=True``: what a competent user writes on a bf16 CPU or GPU, bf16 autocast and
    channels_last."""
    torch.manual_seed(0)
    m = create_model(model_name, num_classes=classes).to(device)
    x = torch.randn(bs, 3, size, size, device=device)
    if bf16:
        m, x = (
            m.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    y = torch.randint(0, classes, (bs,), device=device)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def trainer_step(cfg: TrainConfig, size: int, classes: int, device: torch.device, total: int):
    """The trainer's own step (``resnets.train.step``), built exactly as ``resnets train``
    builds it for ``cfg`` and a job of ``total`` iterations, on a fixed synthetic batch."""
    trainee = build_for_training(
        cfg, num_classes=classes, in_chans=3, device=device, total_iters=total
    )
    step = TrainStep(
        trainee,
        device=device,
        bf16=use_bf16(cfg.precision, device),
        label_smoothing=cfg.label_smoothing,
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch_size, 3, size, size, generator=g).to(device)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (cfg.batch_size,), generator=g).to(device)
    return (lambda: step(x, y)), trainee.compiled


def bench_train(
    model: str = "resnet20",
    batch_size: int = 128,
    device: str = "cpu",
    image_size: int = 0,
    steps: int = 10,
    rounds: int = 3,
    *,
    recipe: str = "he2015-cifar",
    overrides: dict[str, str] | None = None,
) -> TrainBench:
    """Training images/s of the trainer's step (config from ``recipe`` with ``model``,
    ``batch_size`` and string ``overrides``, as on the command line; its compile decision
    is the one for the recipe's length) against a plain fp32 eager loop, alternating rounds."""
    dev = torch.device(device)
    allocator = ""
    if dev.type == "cpu":  # as `resnets train` sets it (process-wide: the reference loops too)
        held = hold_freed_memory()
        allocator = (
            "freed memory held for the next step, in every loop"
            if held.held
            else f"glibc's own settings ({held.reason})"
        )
    spec = get_spec(model)
    size = image_size or spec.default_image_size
    classes = spec.default_num_classes
    strings = {"model": model, "batch_size": str(batch_size), "device": device, **(overrides or {})}
    cfg = build_config(recipe, string_values=strings)
    total = cfg.iters or 10**9  # an epoch-based recipe: long enough for any compile decision
    train_fn, compiled = trainer_step(cfg, size, classes, dev, total)
    bf16 = use_bf16(cfg.precision, dev)
    fns = {"fp32-eager": reference_step(model, batch_size, size, classes, dev)}
    if use_bf16("auto", dev):  # the better plain loop, where the hardware has bf16
        fns["bf16-eager"] = reference_step(model, batch_size, size, classes, dev, bf16=True)
    fns["trainer"] = train_fn
    times = alternate(fns, steps, rounds, dev, warmup=3 if compiled else 2)
    macs = count_macs(create_model(model, num_classes=classes), (1, 3, size, size))
    flops_img = 3 * 2 * macs  # forward + backward (about twice the forward)
    peak = {"fp32": measure_peak_tflops(dev, torch.float32)}
    if bf16 or "bf16-eager" in fns:
        peak["bf16"] = measure_peak_tflops(dev, torch.bfloat16)
    out = TrainBench(
        model,
        batch_size,
        size,
        str(dev),
        recipe,
        flops_per_image=flops_img,
        threads=torch.get_num_threads(),
        allocator=allocator,
    )
    settings = {
        "fp32-eager": dict(bf16=False, channels_last=False, compile=False, fused_sgd=False),
        "bf16-eager": dict(bf16=True, channels_last=True, compile=False, fused_sgd=False),
        "trainer": dict(
            bf16=bf16,
            channels_last=cfg.channels_last,
            compile=compiled,
            compile_mode=cfg.compile_mode if compiled else None,
            fused_sgd=cfg.fused_optimizer == "on"
            or (cfg.fused_optimizer == "auto" and dev.type == "cuda"),
        ),
    }
    for name, t_list in times.items():
        t = statistics.median(t_list)
        ips = batch_size / t
        tfl = ips * flops_img / 1e12
        pk = peak["bf16" if settings[name]["bf16"] else "fp32"]
        out.results[name] = {
            "images_per_sec": ips,
            "step_ms": 1000 * t,
            "tflops": tfl,
            "fraction_of_peak": tfl / pk,
            **settings[name],
        }
    out.peak_tflops = peak
    trainer = out.results["trainer"]["images_per_sec"]
    out.speedup = trainer / out.results["fp32-eager"]["images_per_sec"]
    if "bf16-eager" in out.results:
        out.speedup_vs_bf16_loop = trainer / out.results["bf16-eager"]["images_per_sec"]
    out.peak_yardstick = PEAK_YARDSTICK.format(n=2048 if dev.type != "cuda" else 8192)
    out.images_per_sec = out.results["trainer"]["images_per_sec"]
    out.peak_memory_mb = peak_memory_mb(dev)
    return out


def bench_infer(
    model: str = "resnet50",
    batch_size: int = 32,
    device: str = "cpu",
    image_size: int = 0,
    steps: int = 10,
    rounds: int = 3,
) -> dict[str, Any]:
    """Inference images/s: fp32 eager against bf16 + channels_last, alternating rounds."""
    dev = torch.device(device)
    spec = get_spec(model)
    size = image_size or spec.default_image_size
    bf16_ok = use_bf16("auto", dev)
    m = create_model(model).to(dev).eval()
    m_cl = create_model(model).to(dev).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, size, size, device=dev)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def ref():
        with torch.inference_mode():
            m(x)

    def fast():
        with (
            torch.inference_mode(),
            torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16_ok),
        ):
            m_cl(x_cl)

    times = alternate({"fp32-eager": ref, "fast": fast}, steps, rounds, dev, warmup=1)
    res = {k: batch_size / statistics.median(v) for k, v in times.items()}
    return {
        "model": model,
        "batch_size": batch_size,
        "image_size": size,
        "device": str(dev),
        "results": res,
        "speedup": res["fast"] / res["fp32-eager"],
        "images_per_sec": res["fast"],
        "bf16": bf16_ok,
        "peak_memory_mb": peak_memory_mb(dev),
    }


class PlainOpenVINO:
    """The reference: an ONNX graph compiled by OpenVINO with no settings at all
    (``core.compile_model(model, "CPU")``: its own precision, threads and streams)."""

    def __init__(self, graph: bytes) -> None:
        import openvino as ov

        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "model.onnx")
            with open(f, "wb") as fh:
                fh.write(graph)
            self._compiled = ov.Core().compile_model(f, "CPU")
        self._request = self._compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return self._request.infer({0: x.numpy()})[self._compiled.output(0)]


def bench_backends(
    model: str = "resnet50",
    batch_sizes: tuple[int, ...] = (1, 16),
    backends: tuple[str, ...] = ("torch", "onnxruntime", "openvino"),
    image_size: int = 0,
    steps: int = 10,
    rounds: int = 3,
    threads: int = 0,
    int8: bool = True,
) -> dict[str, Any]:
    """CPU inference images/s of each backend at each batch size, in alternating rounds.

    ``torch``: fp32 eager and resnets' fast path (bf16 autocast + channels_last where the CPU
    has bf16); ``onnxruntime``: the exported graph, all graph optimisations, and its int8
    (QDQ) quantization; ``openvino``: the reference, ``openvino default`` (the graph compiled
    with no settings), then resnets' OpenVINO paths: ``openvino`` (what ``serve`` and
    ``--backend openvino`` run: OpenVINO's own precision, the latency hint), ``openvino f32``
    (the parity check's f32 hint) and ``openvino int8`` (NNCF). Random weights, and for int8
    a calibration on random inputs: speed does not depend on their values.
    """
    spec = get_spec(model)
    size = image_size or spec.default_image_size
    net = create_model(model).eval()
    meta = WeightsMeta(model=model, model_kwargs={"num_classes": spec.default_num_classes})
    dev = torch.device("cpu")
    bf16_ok = use_bf16("auto", dev)
    net_cl = create_model(model).eval().to(memory_format=torch.channels_last)
    installed = available_backends()
    variants: dict[str, Any] = {}
    if "torch" in backends:
        variants["torch fp32"] = lambda x: net(x)

        def fast(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_ok):
                return net_cl(x.contiguous(memory_format=torch.channels_last))

        variants["torch fast"] = fast
    graph = onnx_bytes(net, meta, size) if set(backends) - {"torch"} else b""
    calib = torch.randn(32, net.in_chans, size, size)
    if "onnxruntime" in backends and "onnxruntime" in installed:
        variants["onnxruntime"] = ExternalModel("onnxruntime", graph, meta, threads=threads)
        if int8:
            with tempfile.TemporaryDirectory() as d:
                quantize_onnx(graph, calib, os.path.join(d, "q.onnx"))
                with open(os.path.join(d, "q.onnx"), "rb") as fh:
                    q = fh.read()
            variants["onnxruntime int8"] = ExternalModel("onnxruntime", q, meta, threads=threads)
    if "openvino" in backends and "openvino" in installed:
        variants["openvino default"] = PlainOpenVINO(graph)
        variants["openvino"] = ExternalModel(
            "openvino", graph, meta, threads=threads, precision="auto"
        )
        variants["openvino f32"] = ExternalModel("openvino", graph, meta, threads=threads)
        if int8:
            variants["openvino int8"] = ExternalModel(
                "openvino", quantize_openvino(graph, calib), meta, threads=threads, precision="auto"
            )
    out: dict[str, Any] = {
        "model": model,
        "image_size": size,
        "bf16": bf16_ok,
        "threads": torch.get_num_threads(),
        "results": {},
    }
    for bs in batch_sizes:
        x = torch.randn(bs, 3, size, size)
        fns = {k: (lambda f=f, x=x: f(x)) for k, f in variants.items()}
        with torch.inference_mode():
            times = alternate(fns, steps, rounds, dev, warmup=2)
        out["results"][bs] = {k: bs / statistics.median(v) for k, v in times.items()}
    return out


def bench_data(
    folder: str, batch_size: int = 128, steps: int = 200, workers: int | None = None
) -> dict[str, Any]:
    """Decoded-cache build time (fresh cache) and batch-production rate from the cache."""
    tmp = tempfile.mkdtemp(prefix="resnets-bench-cache-")
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = tmp
    try:
        t0 = time.perf_counter()
        d = load_dataset(folder, workers=workers, progress=False)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        d = load_dataset(folder, workers=workers, progress=False)
        reopen = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = old
        shutil.rmtree(tmp, ignore_errors=True)
    tr, _ = stratified_split(d.labels, min(5000, len(d) // 10), 0)
    mean, std = channel_stats(d.images, tr)
    images = torch.from_numpy(np.array(d.images))
    s = BatchStream(images, d.labels, tr, batch_size, 0, mean, std, AugmentSpec("cifar"))
    t0 = time.perf_counter()
    n = 0
    for i, (x, _) in enumerate(s.epoch(0)):
        n += x.shape[0]
        if i + 1 >= steps:
            break
    el = time.perf_counter() - t0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "images": len(d),
        "decode_cache_build_s": build,
        "cache_reopen_s": reopen,
        "decode_images_per_sec": len(d) / build,
        "cores": cores,
        "decode_images_per_sec_per_core": len(d) / build / max(cores or 1, 1),
        "batches_images_per_sec": n / el,
        "images_per_sec": n / el,
    }


def bench_stream(
    data: str, images: int = 2000, batch_size: int = 256, processes: int | None = None
) -> dict[str, Any]:
    """Streaming decode rates, side by side in one run: Pillow vs the fast JPEG decoder on one
    core, then the streaming loader (``LazyImages``) with one process per core.

    ``data`` is a class folder or a folder of WebDataset tar shards. Images/s per core is the
    number that sizes a multi-node job: cores needed = training img/s / per-core rate.
    """
    ds = (stream_shards if is_shard_dir(data) else stream_folder)(data, processes=processes or 0)
    lazy = ds.images
    n = min(images, len(lazy))
    pick = np.random.default_rng(0).permutation(len(lazy))[:n]
    recs = [lazy.records[int(i)] for i in pick]
    blobs = [r.read() for r in recs]  # bytes in memory: time the decoding, not the disk
    size = lazy.size

    def pillow():
        for b, r in zip(blobs, recs):
            a = decode_image(b, r.name)
            if a.shape[0] != size or a.shape[1] != size:
                resize_short_center_crop(a, size)

    def fast():
        for b, r in zip(blobs, recs):
            decode_bytes(b, r.name, size)

    times = alternate({"pillow": pillow, "fast": fast}, 1, 3, torch.device("cpu"), warmup=1)
    one = {k: n / statistics.median(t) for k, t in times.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lazy[pick[: min(64, n)]]  # start the worker processes outside the timing
    t0 = time.perf_counter()
    for i in range(0, n, batch_size):
        lazy[np.sort(pick[i : i + batch_size])]
    el = time.perf_counter() - t0
    lazy.close()
    return {
        "data": data,
        "images": n,
        "image_size": size,
        "decoder": jpeg_decoder(),
        "one_core_images_per_sec": one,
        "fast_vs_pillow": one["fast"] / one["pillow"],
        "processes": lazy.processes,
        "cores": cores,
        "stream_images_per_sec": n / el,
        "stream_images_per_sec_per_core": n / el / max(cores or 1, 1),
        "images_per_sec": n / el,
    }
