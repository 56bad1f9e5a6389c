"""``resnets weights``: list, info, package, card, download (named weights, ``MODEL.TAG``)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from ..argtypes import add_json, add_no_progress, add_weights, bounded, json_line
from ..io import check_writable, package_is_checkout, run_folder_of
from ..models.catalogue import (
    get_pretrained,
    is_weights_name,
    list_pretrained,
    verify,
    weights_file,
)
from ..models.class_index import cached_class_index, read_class_index
from ..models.download import remote_file, weights_cache
from ..rundir import RunDir


def _weights_list(args: argparse.Namespace) -> int:
    rows = []
    for name in list_pretrained(args.pattern):
        entry = get_pretrained(name)
        metrics = entry.meta.metrics or {}
        if entry.url is None:
            where = "package"
        else:
            where = "cached" if (weights_cache() / entry.file).is_file() else "download"
        rows.append(
            {
                "name": name,
                "task": entry.meta.task,
                "top1": metrics.get("top1"),
                "top5": metrics.get("top5"),
                "box_map": metrics.get("box_map"),  # a detector's COCO mAP@[.5:.95]
                "params": entry.meta.params,
                "size_mb": entry.size_mb,
                "where": where,
            }
        )
    if args.json:
        print(json_line(rows))
        return 0
    if args.markdown:
        print(calibration_markdown(rows) if args.calibration else weights_markdown(rows))
        return 0
    width = max([len("weights"), *(len(row["name"]) for row in rows)])  # the longest name
    print(f"{'weights':<{width}} {'top-1':>7} {'top-5':>7} {'box-mAP':>7} {'params':>12}  where")
    for row in rows:
        top1, top5, box_map, params = _figures(row)
        print(
            f"{row['name']:<{width}} {top1:>7} {top5:>7} {box_map:>7} {params:>12}  {row['where']}"
        )
    return 0


def _figures(row: dict) -> tuple[str, str, str, str]:
    """A listed set's top-1, top-5, box mAP and parameter count as the tables print them."""
    top1 = f"{row['top1']:.2%}" if row["top1"] is not None else "-"
    top5 = f"{row['top5']:.2%}" if row["top5"] is not None else "-"
    box_map = f"{row['box_map']:.3f}" if row["box_map"] is not None else "-"
    params = f"{row['params']:,}" if row["params"] is not None else "-"
    return top1, top5, box_map, params


def weights_markdown(rows: list[dict]) -> str:
    """docs/weights.md's table of every named weights set (``resnets weights list --markdown``):
    the model, the accuracy (a detector's box mAP) its record states, and where the file comes
    from."""
    lines = [
        "| weights | model | top-1 | top-5 | box mAP | params | preprocessing | source |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        entry = get_pretrained(row["name"])
        top1, top5, box_map, params = _figures(row)
        source = "shipped in the package" if entry.url is None else "downloaded, SHA-256 checked"
        meta = entry.meta
        model = f"`{meta.model}`" + (" (Faster R-CNN backbone)" if meta.task == "detection" else "")
        view = (
            f"resize {meta.image_size}, crop {meta.eval_size}"
            if meta.image_size and meta.eval_size
            else f"resize {meta.image_size}"
            if meta.image_size
            else "as stored"
        ) + (", flip TTA" if meta.tta == "flip" else "")
        lines.append(
            f"| `{row['name']}` | {model} | {top1} | {top5} | {box_map} | {params} | {view} "
            f"| {source} |"
        )
    return "\n".join(lines)


def calibration_markdown(rows: list[dict]) -> str:
    """The table of every named set whose record carries a fitted temperature
    (``resnets weights list --markdown --calibration``): the temperature and the ECE, NLL and
    Brier score before and after it, as ``resnets calibrate`` measured them."""
    lines = [
        "| weights | temperature | ECE before -> after | NLL before -> after "
        "| Brier before -> after |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        calibration = get_pretrained(row["name"]).meta.calibration
        if not calibration:
            continue
        before, after = calibration["before"], calibration["after"]
        temperature = after["temperature"]
        lean = "overconfident" if temperature > 1 else "underconfident"
        lines.append(
            f"| `{row['name']}` | {temperature:.3f} ({lean}) "
            f"| {before['ece']:.2%} -> {after['ece']:.2%} "
            f"| {before['nll']:.3f} -> {after['nll']:.3f} "
            f"| {before['brier']:.3f} -> {after['brier']:.3f} |"
        )
    return "\n".join(lines)


def _weights_info(args: argparse.Namespace) -> int:
    from ..models import count_macs, create_model, get_spec  # a model is built for its MACs

    entry = get_pretrained(args.name)
    info = {
        "name": entry.name,
        "file": entry.file,
        "url": entry.url,
        "sha256": entry.sha256,
        "size_mb": entry.size_mb,
        **entry.meta.to_dict(),
    }
    if entry.classes_file is not None:  # class names from their own file: shown once cached
        source = entry.classes_file
        info["classes_source"] = {
            "url": source.url,
            "file": source.file,
            "sha256": source.sha256,
            "about": source.about,
        }
        cached = cached_class_index(source)
        if cached is not None:
            info["class_ids"], info["classes"] = cached
    if info["macs"] is None and entry.meta.task == "classification":  # counted, not copied
        net = create_model(entry.model, **entry.meta.model_kwargs)
        size = entry.meta.eval_size or get_spec(entry.model).default_image_size
        info["macs"] = count_macs(net, (1, net.in_chans, size, size))
    if args.json:
        print(json_line(info))
        return 0
    for key, value in info.items():
        if key == "classes" and value:
            value = (
                f"{len(value)} classes: {', '.join(value[:10])}{' ...' if len(value) > 10 else ''}"
            )
        print(f"{key:>16}: {value}")
    return 0


def _weights_package(args: argparse.Namespace) -> int:
    # shipping weights into src/resnets/weights is this command's purpose in a source checkout
    check_writable(args.out, folder=True, package_ok=package_is_checkout())
    options = dict(data=args.data, half=args.half, overwrite=args.overwrite)
    if RunDir(args.run_dir).kind == "detection":
        from ..detection.engine import package_detector_run  # COCO scoring, only for a detector

        r = package_detector_run(args.run_dir, args.name, args.out, **options)
        measured = (
            f"box mAP@[.5:.95] {r['box_map']:.3f} / mAP@.5 {r['box_map_50']:.3f} on the "
            f"{r['n']} validation images"
        )
    else:
        from ..eval.zoo import package_run  # the scoring machinery, only when packaging

        r = package_run(args.run_dir, args.name, args.out, **options)
        measured = f"top-1 {r['top1']:.2%} / top-5 {r['top5']:.2%} on the {r['n']} held-out images"
    print(
        f"{args.name}: {r['file']} ({r['size_bytes'] / 2**20:.2f} MiB, SHA-256 "
        f"{r['sha256'][:16]}...), {measured} (fp32)"
    )
    if args.json:
        print(json_line(r))
    return 0


def default_card_folder(weights: str) -> Path:
    """``cards/NAME`` for a weights set named by name; for one given by path, the file's (or
    run folder's) name and a digest of its resolved path, so two runs' ``model.safetensors``
    never share a card."""
    if is_weights_name(weights):
        return Path("cards") / weights
    source = Path(weights).expanduser().resolve()
    label = source.name if source.is_dir() else source.stem
    if label == "model" and (run := run_folder_of(source)) is not None:
        label = run.name
    return Path("cards") / f"{label}-{hashlib.sha256(str(source).encode()).hexdigest()[:8]}"


def _weights_card(args: argparse.Namespace) -> int:
    from ..deploy.card import write_card  # exports, corruptions, plots: only for a card

    out = Path(args.out or default_card_folder(args.weights))
    check_writable(out, folder=True, reading=(args.data,))
    path = write_card(
        args.weights,
        args.data,
        out,
        corruption_images=args.corruption_images,
        progress=not args.no_progress,
    )
    print(f"card: {path}")
    if args.json:
        print(json_line({"card": str(path)}))
    return 0


def _weights_download(args: argparse.Namespace) -> int:
    for name in args.names:
        path = weights_file(name, progress=not args.no_progress)
        print(f"{name}: {path} (SHA-256 {verify(name)[:16]}...)")
        source = get_pretrained(name).classes_file
        if source is not None:
            index = remote_file(source, progress=not args.no_progress)
            print(f"{name}: class names {index} ({len(read_class_index(index)[1])} classes)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``weights list|info|package|card|download`` to ``resnets``."""
    p = sub.add_parser("weights", help="named weights: list, info, package, card, download")
    actions = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    q = actions.add_parser("list", help="every named weights set (MODEL.TAG) with its accuracy")
    q.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'resnet50.*'")
    add_json(q, what="the list as JSON")
    q.add_argument(
        "--markdown", action="store_true", help="a Markdown table (docs/weights.md's, kept in step)"
    )
    q.add_argument(
        "--calibration",
        action="store_true",
        help="with --markdown: the table of fitted temperatures and ECE/NLL/Brier before and after",
    )
    q.set_defaults(fn=_weights_list)

    q = actions.add_parser("info", help="the metadata record of named weights")
    q.add_argument("name", metavar="MODEL.TAG")
    add_json(q, what="the record as one JSON object")
    q.set_defaults(fn=_weights_info)

    q = actions.add_parser(
        "package",
        help="named weights from a finished run: re-scored in fp32 on its held-out split",
        description="Write OUT/MODEL.TAG.safetensors and .sha256 from a finished training run, "
        "with its validation accuracy re-measured in fp32, the command, time and machine.",
    )
    q.add_argument("run_dir", metavar="RUN_DIR")
    q.add_argument(
        "--name", required=True, metavar="MODEL.TAG", help="the weights' name (resnet32.cifar10)"
    )
    q.add_argument("--out", required=True, metavar="DIR", help="e.g. src/resnets/weights")
    q.add_argument("--data", default=None, help="where the run's data is now, if it moved")
    q.add_argument(
        "--half",
        action="store_true",
        help="store float16 (half the file); scored after the rounding",
    )
    q.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT/MODEL.TAG.safetensors (and .sha256) if they exist (refused otherwise)",
    )
    add_json(q)
    q.set_defaults(fn=_weights_package)

    q = actions.add_parser(
        "card",
        help="a Markdown card of measured evidence for a set of weights",
        description="Held-out top-1 with a 95%% interval, per-class accuracy, confusion, "
        "calibration, common corruptions, int8 drop, export parity (batch 1, 7, 64), float16 "
        "headroom: every number measured now.",
    )
    add_weights(q, positional=True)
    q.add_argument(
        "--data",
        required=True,
        metavar="SPEC",
        help="the data the weights trained on (a detector's: a COCO folder of its classes)",
    )
    q.add_argument(
        "--out",
        metavar="DIR",
        help="default: cards/NAME, or for a file or run folder cards/<its name>-<digest of its path>",
    )
    q.add_argument(
        "--corruption-images",
        type=bounded(0, 10**7),
        default=1000,
        metavar="N",
        help="held-out images the 75 corrupted sets are made from (0: all)",
    )
    add_json(q)
    add_no_progress(q)
    q.set_defaults(fn=_weights_card)

    q = actions.add_parser("download", help="fetch named weights into the cache, checking SHA-256")
    q.add_argument("names", nargs="+", metavar="MODEL.TAG")
    add_no_progress(q)
    q.set_defaults(fn=_weights_download)
