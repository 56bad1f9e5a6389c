"""``resnets detect``: data (generate a COCO-format set from CIFAR-10), train, eval, predict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..argtypes import add_json, add_no_progress, bounded, count, json_line
from ..errors import ConfigError
from ..io import check_writable, claim_output_name
from ..train.config import DetectTrainConfig
from .train import add_config_options


def _detect_data(args: argparse.Namespace) -> int:
    from ..detection.coco import SyntheticSpec, generate_from_cifar, read_coco

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty folder; pick a new one")
    spec = SyntheticSpec(size=args.size)
    generate_from_cifar(
        args.cifar, out, images=args.images, split=args.split, seed=args.seed, spec=spec
    )
    data = read_coco(out)
    objects = sum(len(rec.boxes) for rec in data.images)
    info = {"out": str(out), "images": len(data.images), "objects": objects, "split": args.split}
    print(json_line(info) if args.json else f"{out}: {len(data.images)} images, {objects} objects")
    return 0


def _detect_train(args: argparse.Namespace) -> int:
    from ..detection.engine import train_detector
    from ..train.config import build_detect_config, parse_set, read_config_file

    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    strings = {**given, **parse_set(args.set or [])}
    if args.resume:
        fixed = sorted(strings) + (["--config"] if args.config else [])
        if fixed:
            raise ConfigError(
                "--resume continues with the run's own config; these cannot change: "
                + ", ".join(fixed)
            )
        summary = train_detector(
            None,
            args.resume,
            resume=True,
            progress=not args.no_progress,
            stop_after=args.stop_after,
        )
    else:
        if not args.out:
            raise ConfigError("detect train: give --out (or --resume RUN)")
        cfg = build_detect_config(read_config_file(args.config) if args.config else {}, strings)
        summary = train_detector(
            cfg, args.out, progress=not args.no_progress, stop_after=args.stop_after
        )
    if "stopped" in summary:  # with a checkpoint, as `resnets train` stops
        hint = f"resume with: resnets detect train --resume {args.resume or args.out}"
        if summary["by"] == "signal":
            print(f"resnets: interrupted; {hint}", file=sys.stderr)
        else:
            print(
                f"resnets: stopped at iteration {summary['stopped']} as asked; {hint}",
                file=sys.stderr,
            )
        return summary["exit_code"]
    if args.json:
        print(json_line(summary))
    return 0


def _detect_eval(args: argparse.Namespace) -> int:
    from ..detection.coco import read_coco
    from ..detection.metrics import evaluate_detector
    from ..inference import load_weights

    loaded = load_weights(args.weights, task="detection")
    model = loaded.model
    data = read_coco(args.data)
    if data.category_names != loaded.classes:
        raise ConfigError(
            f"{args.data}: categories {data.category_names}, the detector's are {loaded.classes}"
        )
    if args.figure:  # checked before the minutes of scoring, not after
        check_writable(args.figure, "--figure", folder=False, reading=(args.data, args.weights))
    scores, detections = evaluate_detector(model, data, progress=not args.no_progress)
    if args.figure:
        from ..detection.draw import draw_detections, save_grid

        pictures = [
            draw_detections(data.load(i)[0], detections[i], data.category_names,
                            threshold=args.threshold, truth=data.images[i].boxes)
            for i in range(min(args.figure_images, len(data.images)))
        ]  # fmt: skip
        save_grid(pictures, args.figure)
        print(f"figure: {args.figure} (white: the true boxes)", file=sys.stderr)
    if args.json:
        print(json_line(scores.to_dict()))
    else:
        print(
            f"{args.data}: {scores.images} images, mAP@[.5:.95] {scores.map:.3f}, "
            f"mAP@.5 {scores.map_50:.3f}, mAP@.75 {scores.map_75:.3f}; by size: small "
            f"{scores.map_small:.3f}, medium {scores.map_medium:.3f}, large {scores.map_large:.3f}"
        )
    return 0


def _detect_predict(args: argparse.Namespace) -> int:
    from ..detection.engine import detect_file
    from ..inference import load_weights

    loaded = load_weights(args.weights, task="detection")
    model, classes = loaded.model, loaded.classes
    if args.out:
        check_writable(args.out, "--out", folder=True, reading=tuple(args.images))
        Path(args.out).mkdir(parents=True, exist_ok=True)
    # pictures are named after their inputs, never over an input or another picture
    taken = {Path(p).resolve() for p in args.images}
    out = Path(args.out).resolve() if args.out else None
    results = []
    for path in args.images:
        image, found = detect_file(model, path)
        keep = found["scores"] >= args.threshold
        objects = [
            {"class": classes[label - 1], "score": round(score, 4),
             "box": [round(v, 1) for v in box]}
            for box, label, score in zip(found["boxes"][keep].tolist(),
                                         found["labels"][keep].tolist(),
                                         found["scores"][keep].tolist())
        ]  # fmt: skip
        results.append({"image": str(path), "objects": objects})
        if not args.json:
            listed = ", ".join(f"{o['class']} {o['score']:.2f} at {o['box']}" for o in objects)
            print(f"{path}: {listed or 'nothing above the threshold'}")
        if out is not None:
            from ..detection.draw import draw_detections, save_grid

            picture = draw_detections(image, found, classes, threshold=args.threshold)
            name = claim_output_name(Path(path).stem or "image", out, taken, [".boxes.png"])
            save_grid([picture], out / f"{name}.boxes.png", columns=1)
    if args.json:
        print(json_line({"predictions": results}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``detect data|train|eval`` to ``resnets``."""
    p = sub.add_parser(
        "detect",
        help="object detection: Faster R-CNN + FPN on a resnets backbone (data, train, eval, predict)",
        description="Detection with a resnets backbone: generate a COCO-format set from "
        "CIFAR-10 images, train Faster R-CNN + FPN on a COCO-format folder, score COCO mAP.",
    )
    actions = p.add_subparsers(dest="detect_command", metavar="ACTION", required=True)
    q = actions.add_parser("data", help="generate a COCO-format set from CIFAR-10's class folders")
    q.add_argument(
        "cifar", metavar="CIFAR_FOLDER", help="ROOT/<class>/<image>, e.g. the shared CIFAR-10"
    )
    q.add_argument("out", metavar="OUT_DIR", help="a new or empty folder")
    q.add_argument("--images", type=count(1), default=2000, help="images to generate")
    q.add_argument(
        "--split",
        choices=("train", "val"),
        default="train",
        help="which half of each class's files the objects come from (the halves are disjoint)",
    )
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--size", type=bounded(32, 1024), default=160, help="image side in pixels")
    add_json(q)
    q.set_defaults(fn=_detect_data)

    q = actions.add_parser(
        "train",
        help="train a detector (a run folder; --resume continues it)",
        description="Train Faster R-CNN + FPN. Every setting is a field of DetectTrainConfig "
        "(docs/config.md): its own flag, a --config file or --set KEY=VALUE.",
    )
    q.add_argument("--out", help="the run folder (new or empty)")
    q.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its checkpoint")
    q.add_argument("--config", metavar="FILE", help="JSON or TOML file of detection config keys")
    q.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)"
    )
    q.add_argument(
        "--stop-after",
        type=count(1),
        metavar="ITERS",
        help="end this session after ITERS iterations with a checkpoint; resume later",
    )
    add_config_options(
        q,
        DetectTrainConfig,
        {"train", "val", "backbone", "init", "epochs"},
        " (default: {default!r})",
    )
    add_no_progress(q)
    add_json(q, what="the run's summary")
    q.set_defaults(fn=_detect_train)

    q = actions.add_parser("eval", help="COCO mAP of a trained detector on a COCO-format folder")
    q.add_argument(
        "--weights", required=True, help="a detection run folder or its model.safetensors"
    )
    q.add_argument("--data", required=True, help="a COCO-format folder with the same categories")
    q.add_argument("--figure", help="a PNG of the first images with their detected boxes")
    q.add_argument("--figure-images", type=count(1), default=8, help="images in the figure")
    q.add_argument("--threshold", type=float, default=0.5, help="the figure's lowest score")
    add_no_progress(q)
    add_json(q)
    q.set_defaults(fn=_detect_eval)

    q = actions.add_parser("predict", help="the objects a trained detector finds in image files")
    q.add_argument(
        "--weights", required=True, help="a detection run folder or its model.safetensors"
    )
    q.add_argument("images", nargs="+", metavar="IMAGE")
    q.add_argument("--threshold", type=float, default=0.5, help="the lowest score reported")
    q.add_argument("--out", help="a folder for each image with its boxes drawn (IMAGE.boxes.png)")
    add_json(q)
    q.set_defaults(fn=_detect_predict)
