"""``resnets data``: info, shard (pack a folder into WebDataset tar shards), verify."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..argtypes import MAX_IMAGE_SIDE, add_json, add_no_progress, bounded, count, json_line
from ..data import load_dataset
from ..data.stream import SHARD_META, verify_shards, write_shards
from ..errors import DataError


def _data_info(args: argparse.Namespace) -> int:
    d = load_dataset(args.data, image_size=args.image_size, mode=args.mode, progress=False)
    counts = np.bincount(d.labels, minlength=len(d.classes)).tolist()
    info = {
        "data": args.data,
        "images": len(d),
        "classes": len(d.classes),
        "image_size": d.image_size,
        "channels": d.channels,
        "streamed": d.streamed,
        "fingerprint": d.fingerprint,
        "per_class": dict(zip(d.classes, counts)),
    }
    if not args.json:
        print(
            f"{args.data}: {info['images']:,} images, {info['classes']} classes, "
            f"{info['image_size']}x{info['image_size']}x{info['channels']}, "
            f"{'streamed (decoded per batch)' if info['streamed'] else 'decoded in memory/cache'}"
        )
        for c, k in info["per_class"].items():
            print(f"  {c}: {k:,}")
    else:
        print(json_line(info))
    return 0


def _data_shard(args: argparse.Namespace) -> int:

    meta = write_shards(
        args.src,
        args.out,
        shard_size=args.shard_size,
        seed=None if args.seed < 0 else args.seed,
        progress=not args.no_progress,
    )
    print(
        f"wrote {meta['samples']:,} samples of {len(meta['classes'])} classes into "
        f"{len(meta['shards'])} shards in {args.out} (dataset.json lists their SHA-256)"
    )
    return 0


def _data_verify(args: argparse.Namespace) -> int:

    if not Path(args.out).is_dir():
        raise DataError(f"{args.out}: not a folder")
    problems = verify_shards(args.out)
    if problems:
        for line in problems:
            print(f"{args.out}/{line}", file=sys.stderr)
        print(f"{len(problems)} problem(s) against {SHARD_META}", file=sys.stderr)
        return 1
    print(f"{args.out}: every shard matches {SHARD_META} (files, SHA-256, samples, labels)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``data info|shard|verify`` to ``resnets``."""
    p = sub.add_parser(
        "data",
        help="data sets: info, pack a folder into WebDataset tar shards, verify shards",
        description="Inspect a data set, pack a class folder into WebDataset-layout tar shards "
        "(for streaming and multi-node training), or verify shards against their checksums.",
    )
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = actions.add_parser("info", help="classes, counts, image size and how it would be loaded")
    q.add_argument("data", metavar="SPEC", help="digits, cifar10[:PATH], a folder or shard folder")
    q.add_argument(
        "--mode",
        choices=("auto", "memory", "stream"),
        default="auto",
        help="decode everything into memory, or per batch (auto: stream shards and large folders)",
    )
    q.add_argument(
        "--image-size",
        type=bounded(0, MAX_IMAGE_SIDE),
        default=0,
        help="decode at this side in pixels (0: the native size, or 256 for mixed sizes)",
    )
    add_json(q)
    q.set_defaults(fn=_data_info)

    q = actions.add_parser("shard", help="pack a class folder into tar shards (WebDataset layout)")
    q.add_argument("src", metavar="FOLDER", help="ROOT/<class>/<image>")
    q.add_argument("out", metavar="OUT_DIR", help="a new or empty folder")
    q.add_argument("--shard-size", type=count(1), default=10000, help="samples per shard")
    q.add_argument("--seed", type=int, default=0, help="shuffle seed (-1: keep folder order)")
    add_no_progress(q)
    q.set_defaults(fn=_data_shard)

    q = actions.add_parser("verify", help="check every shard against dataset.json's SHA-256")
    q.add_argument("out", metavar="SHARD_DIR")
    q.set_defaults(fn=_data_verify)
