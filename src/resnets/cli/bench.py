"""``resnets benchmark train|infer|data``: images/s against a plain baseline measured in the same
run, fraction of the measured peak, memory. The measuring is in resnets/bench.py."""

from __future__ import annotations

import argparse

from .. import bench
from ..argtypes import (
    MAX_IMAGE_SIDE,
    add_batch_size,
    add_device,
    add_json,
    bounded,
    count,
    json_line,
)
from ..data.stream import is_shard_dir
from ..errors import ConfigError
from ..inference import BACKENDS
from ..runtime import pick_device
from ..train.config import parse_set


def _bench_train(args: argparse.Namespace, device: str) -> dict:
    r = bench.bench_train(
        args.model,
        args.batch_size,
        device,
        args.image_size,
        args.steps,
        args.rounds,
        recipe=args.recipe,
        overrides=parse_set(args.set or []),
    ).to_dict()
    step = r["results"]["trainer"]
    print(
        f"trainer step of recipe {args.recipe}: bf16 {step['bf16']}, channels_last "
        f"{step['channels_last']}, compiled {step['compile']}, fused SGD {step['fused_sgd']}"
    )
    for name, v in r["results"].items():
        print(
            f"{name:<12} {v['images_per_sec']:9.1f} img/s  {v['tflops']:.3f} TFLOP/s "
            f"({v['fraction_of_peak']:.1%} of the peak)"
        )
    against_bf16 = r["speedup_vs_bf16_loop"]
    print(
        f"trainer against the fp32 eager loop {r['speedup']:.2f}x"
        + (
            f", against the bf16 autocast + channels_last eager loop {against_bf16:.2f}x"
            if against_bf16
            else " (no bf16 on this device: no bf16 loop)"
        )
    )
    peaks = ", ".join(f"{k} {v:.3f} TFLOP/s" for k, v in r["peak_tflops"].items())
    print(f"peak: {r['peak_yardstick']} ({peaks}); peak memory {r['peak_memory_mb']:.0f} MB")
    if r["allocator"]:
        print(f"allocator: {r['allocator']}")
    return r


def _bench_backends(args: argparse.Namespace, device: str) -> dict:
    names = BACKENDS if args.backend == "all" else tuple(args.backend.split(","))
    if any(b not in BACKENDS for b in names) or device != "cpu":
        raise ConfigError(
            f"--backend {args.backend}: all or a list of {', '.join(BACKENDS)} (CPU only)"
        )
    r = bench.bench_backends(args.model, (1, 16), names, args.image_size, args.steps, args.rounds)
    print(
        f"{r['model']} at {r['image_size']}px, {r['threads']} threads, img/s (median of "
        f"{args.rounds} alternating rounds)"
    )
    for batch, results in r["results"].items():
        reference = results.get("openvino default")
        for name, v in results.items():
            relative = f"  {v / reference:.2f}x OpenVINO default" if reference else ""
            print(f"batch {batch:>3}  {name:<17} {v:9.1f}{relative}")
        ours = {k: v for k, v in results.items() if k != "openvino default"}
        for label, pool in (
            ("fp32/bf16", {k: v for k, v in ours.items() if "int8" not in k}),
            ("int8", {k: v for k, v in ours.items() if "int8" in k}),
        ):
            if reference and pool:
                best = max(pool, key=pool.get)
                print(
                    f"batch {batch:>3}  resnets' best {label} path: {best}, "
                    f"{pool[best] / reference:.2f}x OpenVINO default"
                )
    return r


def _bench_data(args: argparse.Namespace) -> dict:
    if not args.data:
        raise ConfigError(
            "benchmark data: --data FOLDER is required (a class folder or a folder of tar shards)"
        )
    mode = args.mode
    if mode == "auto":
        mode = "stream" if is_shard_dir(args.data) else "both"
    r: dict = {}
    if mode in ("cache", "both"):
        c = bench.bench_data(args.data, args.batch_size, steps=args.steps * 20)
        print(
            f"decoded cache of {c['images']} images built in {c['decode_cache_build_s']:.1f}s "
            f"({c['decode_images_per_sec_per_core']:.0f} img/s per core); reopened in "
            f"{c['cache_reopen_s']:.1f}s; batches from the cache at "
            f"{c['batches_images_per_sec']:.0f} img/s"
        )
        r = {"cache": c, **c}
    if mode in ("stream", "both"):
        s = bench.bench_stream(args.data, images=args.images)
        one = s["one_core_images_per_sec"]
        print(
            f"streaming {s['images']} images at {s['image_size']}px: one core decodes "
            f"{one['fast']:.0f} img/s with {s['decoder']} vs {one['pillow']:.0f} with Pillow "
            f"({s['fast_vs_pillow']:.2f}x); {s['processes']} processes: "
            f"{s['stream_images_per_sec']:.0f} img/s "
            f"({s['stream_images_per_sec_per_core']:.0f} per core)"
        )
        r = {**r, "stream": s, "images_per_sec": s["images_per_sec"]}
    return r


def _benchmark(args: argparse.Namespace) -> int:
    device = str(pick_device(args.device))
    if args.what == "train":
        r = _bench_train(args, device)
    elif args.what == "infer" and args.backend != "torch":
        r = _bench_backends(args, device)
    elif args.what == "infer":
        r = bench.bench_infer(
            args.model, args.batch_size, device, args.image_size, args.steps, args.rounds
        )
        for name, v in r["results"].items():
            print(f"{name:<12} {v:9.1f} img/s")
        print(f"speed-up {r['speedup']:.2f}x")
    else:
        r = _bench_data(args)
    if args.json:
        print(json_line(r))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add benchmark to ``resnets``."""
    p = sub.add_parser(
        "benchmark",
        help="images/s against plain fp32 and bf16 loops, fraction of a matmul's rate, memory",
    )
    p.add_argument("what", choices=("train", "infer", "data"))
    p.add_argument(
        "--backend",
        default="torch",
        help="for 'infer': torch (fp32 against resnets' fast path), or all / a comma list of "
        "torch,onnxruntime,openvino: each at batch 1 and 16 in alternating rounds",
    )
    p.add_argument("--model", default="resnet20", help="registered architecture to time")
    add_batch_size(p, default=128)
    add_device(p)
    p.add_argument(
        "--image-size",
        type=bounded(0, MAX_IMAGE_SIDE),
        default=0,
        help="input side in pixels (0: the model's own, 32 for CIFAR nets, 224 for ImageNet nets)",
    )
    p.add_argument("--steps", type=bounded(1, 100_000), default=10, help="steps per timed round")
    p.add_argument(
        "--rounds", type=bounded(1, 1000), default=3, help="alternating rounds (median reported)"
    )
    p.add_argument(
        "--recipe",
        default="he2015-cifar",
        help="for 'train': the trainer's step is built from this recipe's config (with --model, "
        "--batch-size, --set), its compile decision the one for the recipe's length",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="for 'train': override a config key of the trainer's step, e.g. compile=off, "
        "fused_optimizer=on, compile_mode=reduce-overhead, precision=fp32 (repeatable)",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="FOLDER",
        help="for 'data' (required there): a class folder or a folder of tar shards",
    )
    p.add_argument(
        "--mode",
        choices=("auto", "cache", "stream", "both"),
        default="auto",
        help="for 'data': the decoded cache, the streaming decoders, or both (auto: both for "
        "folders, stream for shards)",
    )
    p.add_argument(
        "--images", type=count(1), default=2000, help="for 'data --mode stream': images to decode"
    )
    add_json(p, what="one JSON object with images_per_sec")
    p.set_defaults(fn=_benchmark)
