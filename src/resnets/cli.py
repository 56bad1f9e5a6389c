"""The ``resnets`` command line: train, eval, predict, models, summary."""

from __future__ import annotations

import argparse
import json
import math
import sys
import typing
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, bench
from .analysis import cli as analysis_cli
from .argtypes import MAX_BATCH, MAX_IMAGE_SIDE, bounded, count
from .data import load_dataset
from .data.stream import SHARD_META, is_shard_dir, verify_shards, write_shards
from .deploy import BACKENDS, export_model, load_for_backend
from .deploy.backends import is_exported
from .deploy.card import write_card
from .deploy.serve import ServeConfig, serve
from .errors import ConfigError, DataError, ResnetsError
from .eval import load_for_inference, predict, score
from .eval.calibration import calibrate_weights, calibration_summary
from .eval.corruptions import (
    DEVIATIONS,
    corruption_table,
    evaluate_corruptions,
    parse_corruptions,
    spread_subset,
)
from .eval.explain import METHODS, explain_files
from .eval.predict import scoring_selection
from .eval.zoo import package_run
from .io import atomic_write_text, check_writable
from .models import (
    count_macs,
    create_model,
    format_summary,
    get_spec,
    list_models,
    summarize,
)
from .models.hub import (
    cached_class_index,
    get_pretrained,
    list_pretrained,
    read_class_index,
    remote_file,
    verify,
    weights_cache,
    weights_file,
)
from .models.summary import human, model_cost, recorded_costs
from .plots import plot_confusion, plot_corruptions, plot_reliability
from .runtime import pick_device, use_bf16
from .train import TrainingInterrupted, build_config, train
from .train.config import (
    RECIPES,
    TrainConfig,
    choices_of,
    config_markdown,
    field_docs,
    parse_set,
    read_config_file,
)

EXIT_USER_ERROR = 2
RESUME_MAY_CHANGE = {"device", "workers", "log_every"}


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One ``--name`` option per TrainConfig field (any recipe field is overridable)."""

    hints = typing.get_type_hints(TrainConfig)
    docs = field_docs()
    common = {
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
    g1 = p.add_argument_group("common options")
    g2 = p.add_argument_group("every other config field (see docs/config.md)")
    for f in fields(TrainConfig):
        typ = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        group = g1 if f.name in common else g2
        choices = choices_of(f.name)
        meta = (
            "BOOL"
            if typ is bool
            else "{" + ",".join(c for c in choices if c) + "}"
            if choices
            else ("LIST" if typing.get_origin(typ) is list else f.name.split("_")[-1].upper())
        )
        group.add_argument(
            flag,
            dest=f"cfg_{f.name}",
            default=None,
            metavar=meta,
            help=docs.get(f.name, "") + " (default: from the recipe)"
            if f.name != "recipe"
            else f"named recipe: {', '.join(RECIPES)} (default digits)",
        )


def _train(args: argparse.Namespace) -> int:
    cli = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    file_values = read_config_file(args.config) if args.config else {}
    recipe = cli.pop("recipe", None)
    strings = dict(cli)
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
    res = train(
        cfg,
        args.out,
        resume=args.resume,
        progress=not args.no_progress,
        command=command,
        stop_after=args.stop_after,
    )
    if res.stopped == "signal":
        print(
            f"resnets: interrupted; resume with: resnets train --resume {res.run_dir}",
            file=sys.stderr,
        )
        return res.exit_code
    if res.stopped:
        print(
            f"resnets: stopped at iteration {res.iters} as asked; resume with: resnets train --resume {res.run_dir}",
            file=sys.stderr,
        )
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(res.run_dir),
                    "val_err": res.final_val_err,
                    "best_val_err": res.best_val_err,
                    "train_err": res.final_train_err,
                    "iters": res.iters,
                    "wall_time": res.wall_time,
                }
            )
        )
    return 0


def _sides(text: str, flag: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated pixel sizes") from None
    if not vals or len(vals) > 16 or any(v < 1 or v > MAX_IMAGE_SIDE for v in vals):
        raise ConfigError(f"{flag} {text!r}: up to 16 sizes between 1 and {MAX_IMAGE_SIDE} pixels")
    return vals


def _load(args: argparse.Namespace, device: Any) -> Any:
    """Weights or an exported model on the backend asked for (``--backend``)."""
    # default: PyTorch for weights, the fastest installed runtime for an exported model
    backend = args.backend or ("auto" if is_exported(args.weights) else "torch")
    if backend == "torch" and device.type != "cpu":
        return load_for_inference(args.weights, model=args.model, device=device)
    if backend != "torch" and device.type != "cpu":
        raise ConfigError(f"--backend {backend}: runs on the CPU (--device cpu)")
    return load_for_backend(args.weights, backend, model=args.model)


def _backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "openvino", "auto"),
        default=None,
        help="inference runtime (CPU; auto: the fastest installed; default: torch for weights, "
        "auto for an exported model: an .onnx file or an OpenVINO folder)",
    )


def _export(args: argparse.Namespace) -> int:
    check_writable(args.out, folder=args.format == "openvino")
    r = export_model(
        args.weights,
        args.format,
        args.out,
        model=args.model,
        check_data=args.check_data,
        int8=args.int8,
        calib=args.calib,
        calib_size=args.calib_size,
    )
    verdict = "ok" if r.ok else "FAILED"
    kind = f"{r.format}, int8" if r.int8 else r.format
    print(f"exported {args.weights} to {r.path} ({kind}, {r.size_bytes / 2**20:.2f} MiB)")
    if r.int8:
        print(
            f"int8 against PyTorch fp32 on {r.n_checked} images of {r.check_data}: same top-1 "
            f"class for {r.agreement:.1%} (>= 95%: {verdict}), max |logit difference| "
            f"{r.max_abs_diff:.3f}; score it with: resnets eval --weights {r.path} --backend "
            f"{'openvino' if r.format == 'openvino' else 'onnxruntime'} --subset val ..."
        )
    else:
        per_batch = ", ".join(f"batch {b}: {d:.1e}" for b, d in r.batch_diffs.items())
        print(
            f"parity on {r.n_checked} images of {r.check_data}: max |logit difference| "
            f"{r.max_abs_diff:.2e} against PyTorch fp32 ({per_batch}; < 1e-4: {verdict})"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(r.path),
                    "format": r.format,
                    "int8": r.int8,
                    "max_abs_diff": r.max_abs_diff,
                    "agreement": r.agreement,
                    "n_checked": r.n_checked,
                    "batch_diffs": r.batch_diffs,
                    "size_bytes": r.size_bytes,
                    "ok": r.ok,
                }
            )
        )
    return 0 if r.ok else 1


def _eval(args: argparse.Namespace) -> int:
    scales = _sides(args.scales, "--scales") if args.scales else []
    if scales and args.ten_crop:
        raise ConfigError("--scales and --ten-crop are two different tests: pick one")
    if args.out:
        check_writable(args.out, folder=True)
    if args.corruptions:  # names and severities checked before any work
        parse_corruptions(args.corruptions)
        _ints_in(args.severities, "--severities", 1, 5)
    device = pick_device(args.device)
    lm = _load(args, device)
    tta = lm.meta.tta if args.tta == "auto" else args.tta
    res, data = score(
        lm,
        args.data,
        subset=args.subset,
        ten_crop=args.ten_crop,
        scales=scales,
        tta=tta,
        batch_size=args.batch_size,
        device=device,
        bf16=use_bf16(args.precision, device),
        skip_bad=args.skip_bad,
        progress=not args.no_progress,
    )
    wdir = Path(args.weights)
    out = (
        Path(args.out)
        if args.out
        else (wdir if wdir.is_dir() else Path(".")) / f"eval-{Path(args.data.split(':')[0]).name}"
    )
    out.mkdir(parents=True, exist_ok=True)
    per_class = res.per_class()
    png = plot_confusion(
        res.confusion,
        lm.classes,
        out / "confusion.png",
        title=f"{lm.meta.model} on {args.data}: top-1 {res.top1:.2%}",
    )
    reliability = plot_reliability(
        res.reliability(), out / "reliability.png", ece=res.ece,
        title=f"{lm.meta.model} on {args.data} ({args.subset})",
    )  # fmt: skip
    # one record, built once: eval.json, and the --json line is the same object
    report = {
        "top1": res.top1,
        "top5": res.top5,
        "n": res.n,
        "loss": res.loss,
        "ece": res.ece,
        "nll": res.nll,
        "brier": res.brier,
        "temperature": res.temperature,
        "ten_crop": bool(args.ten_crop),
        "scales": scales,
        "tta": tta,
        "subset": args.subset,
        "data": args.data,
        "per_class": {c: (None if a != a else float(a)) for c, a in zip(lm.classes, per_class)},
        "confusion_png": str(png),
        "reliability_png": str(reliability),
        "reliability": res.reliability(),
    }
    atomic_write_text(out / "eval.json", json.dumps(report, indent=2))
    if not args.json or args.verbose:
        print(
            f"{lm.meta.model} on {args.data} ({args.subset}, {res.n} images"
            f"{', 10-crop' if args.ten_crop else ''}{', flip TTA' if tta == 'flip' else ''}"
            f"{', scales ' + ','.join(map(str, scales)) + ' with mirrors' if scales else ''}):"
        )
        print(f"  top-1 accuracy {res.top1:.2%}  (error {1 - res.top1:.2%})")
        print(f"  top-5 accuracy {res.top5:.2%}")
        calibrated = f", temperature {res.temperature:.3f}" if res.temperature != 1.0 else ""
        print(f"  calibration{calibrated}: ECE {res.ece:.2%} (15 bins), NLL {res.nll:.4f}, "
              f"Brier {res.brier:.4f}")  # fmt: skip
        width = max(len(c) for c in lm.classes)
        for c, a in zip(lm.classes, per_class):
            print(f"    {c:<{width}}  {'n/a' if a != a else f'{a:.2%}'}")
        print(f"  confusion matrix: {png}")
        print(f"  reliability diagram: {reliability}")
    if args.corruptions:
        report["corruptions"] = _eval_corruptions(args, lm, device, tta, out)
        atomic_write_text(out / "eval.json", json.dumps(report, indent=2))
    if args.json:
        skip = ("per_class", "reliability", "corruptions")
        line = {k: v for k, v in report.items() if k not in skip}
        if args.corruptions:
            line["corruption_mean_top1"] = report["corruptions"]["mean_top1"]
        print(json.dumps(line))
    return 0


def _eval_corruptions(args, lm, device, tta: str, out: Path) -> dict:
    """--corruptions: the 15 common corruptions regenerated on the scored images."""
    names = parse_corruptions(args.corruptions)
    severities = _ints_in(args.severities, "--severities", 1, 5)
    data, labels, idx = scoring_selection(lm, args.data, subset=args.subset, progress=False)
    idx = spread_subset(idx, args.corruption_images)
    images = np.asarray(data.images[idx])
    clean_top1, scores = evaluate_corruptions(lm, images, labels[idx], names, severities,
                                  seed=args.corruption_seed, batch_size=args.batch_size,
                                  device=device, tta=tta, progress=not args.no_progress)  # fmt: skip
    rows = [(c.corruption, c.severity, c.top1) for c in scores]
    csv_text = "corruption,severity,top1,n\n" + "".join(
        f"{c.corruption},{c.severity},{c.top1:.6f},{c.n}\n" for c in scores
    )
    atomic_write_text(out / "corruptions.csv", csv_text)
    png = plot_corruptions(rows, clean_top1, out / "corruptions.png",
                           title=f"{lm.meta.model}: common corruptions (regenerated, seed "
                           f"{args.corruption_seed}), {len(idx)} images")  # fmt: skip
    mean = float(np.mean([c.top1 for c in scores]))
    if not args.json or args.verbose:
        print(f"common corruptions (Hendrycks & Dietterich 2019), regenerated on {len(idx)} "
              f"images with seed {args.corruption_seed} (CIFAR-10-C itself is not available):")  # fmt: skip
        for line in corruption_table(scores, clean_top1):
            print("  " + line)
        for name, why in DEVIATIONS.items():
            if name in names:
                print(f"  note: {name}: {why}")
        print(f"  figure: {png}; table: {out / 'corruptions.csv'}")
    return {"regenerated": True, "seed": args.corruption_seed, "images": int(len(idx)),
            "mean_top1": mean, "clean_top1": clean_top1,
            "deviations": {k: v for k, v in DEVIATIONS.items() if k in names},
            "cells": [c.__dict__ for c in scores], "figure": str(png)}  # fmt: skip


def _ints_in(text: str, option: str, low: int, high: int) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"{option} {text!r}: comma-separated integers") from None
    if not values or values[0] < low or values[-1] > high:
        raise ConfigError(f"{option} {text!r}: integers from {low} to {high}")
    return values


def _calibrate(args: argparse.Namespace) -> int:
    if args.out:
        check_writable(args.out, folder=False)
    report = calibrate_weights(args.weights, args.data, subset=args.subset, out=args.out,
                               batch_size=args.batch_size, progress=not args.no_progress)  # fmt: skip
    b, a = report.before, report.after
    if not args.json or args.verbose:
        print(f"temperature {a.temperature:.4f}, fitted on {a.n} held-out images of {args.data}")
        print(f"  ECE   {b.ece:7.2%} -> {a.ece:7.2%}  (15 bins)")
        print(f"  NLL   {b.nll:7.4f} -> {a.nll:7.4f}")
        print(f"  Brier {b.brier:7.4f} -> {a.brier:7.4f}")
        print(f"  top-1 {report.top1:.2%} (unchanged: the class is the same at any temperature)")
        print(f"  stored in {report.path}")
    if args.json:
        print(json.dumps(calibration_summary(report)))
    return 0


def _predict(args: argparse.Namespace) -> int:

    lm = _load(args, pick_device(args.device))
    results = predict(lm, args.images, topk=args.topk)
    if args.json:
        print(json.dumps(results))
        return 0
    for r in results:
        print(r["image"])
        for t in r["top"]:
            print(f"  {t['prob']:7.2%}  {t['class']}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    methods = tuple(m.strip() for m in args.method.split(",") if m.strip())
    if not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"--method {args.method!r}: a comma list of {', '.join(METHODS)}")
    check_writable(args.out, folder=True)
    lm = load_for_inference(args.weights, model=args.model, device=pick_device(args.device))
    target = None
    if args.target is not None:
        target = lm.classes.index(args.target) if args.target in lm.classes else None
        if target is None:
            raise ConfigError(
                f"--target {args.target!r}: not a class of the model "
                f"({', '.join(lm.classes[:10])}{' ...' if len(lm.classes) > 10 else ''})"
            )
    rows = explain_files(lm, args.images, args.out, methods=methods, topk=args.topk, target=target)
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        top = ", ".join(f"{t['class']} {t['prob']:.1%}" for t in r["top"][:3])
        print(f"{r['image']}: {top} -> {Path(args.out) / r['figure']} (explaining '{r['target']}')")
    return 0


def _serve(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise ConfigError(f"--max-upload-mb {args.max_upload_mb:g}: must be a positive number")
    cfg = ServeConfig(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue_size,
        timeout_ms=args.timeout_ms,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        topk=args.topk,
        threads=args.threads,
        max_in_flight=args.max_in_flight,
        upload_timeout_s=args.upload_timeout_s,
    )
    serve(
        args.weights,
        host=args.host,
        port=args.port,
        backend=args.backend,
        model=args.model,
        precision=args.precision,
        cfg=cfg,
        log_level=args.log_level,
        expose=args.expose,
    )
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(config_markdown(), end="")
        return 0
    file_values = read_config_file(args.config) if args.config else {}
    cfg = build_config(args.recipe, file_values, None, parse_set(args.set or []))
    print(json.dumps(cfg.to_dict(), indent=2))
    return 0


def _weights_list(args: argparse.Namespace) -> int:
    names = list_pretrained(args.pattern)
    rows = []
    for n in names:
        e = get_pretrained(n)
        m = e.meta.metrics or {}
        local = weights_cache() / e.file if e.url else None
        rows.append(
            {
                "name": n,
                "top1": m.get("top1"),
                "top5": m.get("top5"),
                "params": e.meta.params,
                "size_mb": e.size_mb,
                "where": "package"
                if e.url is None
                else ("cached" if local.is_file() else "download"),
            }
        )
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'weights':<22} {'top-1':>7} {'top-5':>7} {'params':>12}  where")
    for r in rows:
        t1 = f"{r['top1']:.2%}" if r["top1"] is not None else "-"
        t5 = f"{r['top5']:.2%}" if r["top5"] is not None else "-"
        print(f"{r['name']:<22} {t1:>7} {t5:>7} {r['params'] or 0:>12,}  {r['where']}")
    return 0


def _weights_card(args: argparse.Namespace) -> int:
    out = Path(args.out or Path("cards") / Path(str(args.weights)).name.replace(".safetensors", ""))
    check_writable(out, folder=True)
    path = write_card(args.weights, args.data, out, corruption_images=args.corruption_images,
                      progress=not args.no_progress)  # fmt: skip
    print(f"card: {path}")
    if args.json:
        print(json.dumps({"card": str(path)}))
    return 0


def _weights_info(args: argparse.Namespace) -> int:
    e = get_pretrained(args.name)
    info = {
        "name": e.name,
        "file": e.file,
        "url": e.url,
        "sha256": e.sha256,
        "size_mb": e.size_mb,
        **e.meta.to_dict(),
    }
    if e.classes_file is not None:  # class names from their own file: shown once it is cached
        rf = e.classes_file
        info["classes_source"] = {
            "url": rf.url,
            "file": rf.file,
            "sha256": rf.sha256,
            "about": rf.about,
        }
        got = cached_class_index(rf)
        if got is not None:
            info["class_ids"], info["classes"] = got
    if info["macs"] is None:  # counted here rather than copied from elsewhere
        spec = get_spec(e.model)
        net = create_model(e.model, **e.meta.model_kwargs)
        size = e.meta.eval_size or spec.default_image_size
        info["macs"] = count_macs(net, (1, net.in_chans, size, size))
    if args.json:
        print(json.dumps(info))
        return 0
    for k, v in info.items():
        if k == "classes" and v:
            v = f"{len(v)} classes: {', '.join(v[:10])}{' ...' if len(v) > 10 else ''}"
        print(f"{k:>16}: {v}")
    return 0


def _weights_package(args: argparse.Namespace) -> int:
    check_writable(args.out, folder=True)
    r = package_run(args.run_dir, args.name, args.out, data=args.data, half=args.half)
    print(
        f"{args.name}: {r['file']} ({r['size_bytes'] / 2**20:.2f} MiB, SHA-256 "
        f"{r['sha256'][:16]}...), top-1 {r['top1']:.2%} / top-5 {r['top5']:.2%} on the "
        f"{r['n']} held-out images (fp32)"
    )
    if args.json:
        print(json.dumps(r))
    return 0


def _weights_download(args: argparse.Namespace) -> int:
    for n in args.names:
        path = weights_file(n, progress=not args.no_progress)
        print(f"{n}: {path} (SHA-256 {verify(n)[:16]}...)")
        rf = get_pretrained(n).classes_file
        if rf is not None:
            cpath = remote_file(rf, progress=not args.no_progress)
            print(f"{n}: class names {cpath} ({len(read_class_index(cpath)[1])} classes)")
    return 0


def _models(args: argparse.Namespace) -> int:

    rows = []
    recorded = {} if args.measure else recorded_costs()
    for n in list_models(args.pattern):
        spec = get_spec(n)
        cost = model_cost(n, recorded)  # recorded: nothing is built unless --measure
        macs = None if args.no_macs else cost.macs
        rows.append((n, spec.family, spec.depth, spec.kind, cost.params, macs))
    if args.json:
        print(
            json.dumps(
                [
                    dict(name=r[0], family=r[1], depth=r[2], kind=r[3], params=r[4], macs=r[5])
                    for r in rows
                ]
            )
        )
        return 0
    w = max([12, *(len(r[0]) for r in rows)])
    print(
        f"{'model':<{w}} {'family':<9} {'depth':>5} {'kind':<9} {'params':>12} {'MACs':>10}  input"
    )
    for n, fam, d, kind, p, macs in rows:
        s = get_spec(n).default_image_size
        shown = human(macs) if macs else "-"
        print(f"{n:<{w}} {fam:<9} {d:>5} {kind:<9} {p:>12,} {shown:>10}  3x{s}x{s}")
    print("\nAny CIFAR depth 6n+2 also works (resnet8, plain14, cifar_resnet50, ...), and any")
    print("wide ResNet WRN-d-k with d = 6n+4 (wrn_16_4, wrn_22_8, ...).")
    return 0


def _summary(args: argparse.Namespace) -> int:

    spec = get_spec(args.model)
    m = create_model(
        args.model, num_classes=args.num_classes, in_chans=args.in_chans, shortcut=args.shortcut
    )
    size = args.image_size or spec.default_image_size
    rows = summarize(m, size)
    if args.json:
        print(
            json.dumps(
                [
                    dict(stage=r.name, output=list(r.output_shape), params=r.params, macs=r.macs)
                    for r in rows
                ]
            )
        )
    else:
        print(format_summary(spec.name, rows, size))
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    dev = str(pick_device(args.device))
    if args.what == "train":
        r = bench.bench_train(
            args.model,
            args.batch_size,
            dev,
            args.image_size,
            args.steps,
            args.rounds,
            recipe=args.recipe,
            overrides=parse_set(args.set or []),
        ).to_dict()
        t = r["results"]["trainer"]
        print(
            f"trainer step of recipe {args.recipe}: bf16 {t['bf16']}, channels_last "
            f"{t['channels_last']}, compiled {t['compile']}, fused SGD {t['fused_sgd']}"
        )
        for name, v in r["results"].items():
            print(
                f"{name:<12} {v['images_per_sec']:9.1f} img/s  {v['tflops']:.3f} TFLOP/s "
                f"({v['fraction_of_peak']:.1%} of measured peak)"
            )
        print(
            f"speed-up {r['speedup']:.2f}x; peak {r['peak_tflops']}; peak memory {r['peak_memory_mb']:.0f} MB"
        )
    elif args.what == "infer" and args.backend != "torch":
        names = BACKENDS if args.backend == "all" else tuple(args.backend.split(","))
        bad = [b for b in names if b not in BACKENDS]
        if bad or dev != "cpu":
            raise ConfigError(
                f"--backend {args.backend}: all or a list of {', '.join(BACKENDS)} (CPU only)"
            )
        r = bench.bench_backends(
            args.model, (1, 16), names, args.image_size, args.steps, args.rounds
        )
        print(
            f"{r['model']} at {r['image_size']}px, {r['threads']} threads, img/s (median of "
            f"{args.rounds} alternating rounds)"
        )
        for bs, res in r["results"].items():
            ref = res.get("openvino default")
            for name, v in res.items():
                rel = f"  {v / ref:.2f}x OpenVINO default" if ref else ""
                print(f"batch {bs:>3}  {name:<17} {v:9.1f}{rel}")
            ours = {k: v for k, v in res.items() if k != "openvino default"}
            for label, pool in (
                ("fp32/bf16", {k: v for k, v in ours.items() if "int8" not in k}),
                ("int8", {k: v for k, v in ours.items() if "int8" in k}),
            ):
                if ref and pool:
                    best = max(pool, key=pool.get)
                    print(
                        f"batch {bs:>3}  resnets' best {label} path: {best}, "
                        f"{pool[best] / ref:.2f}x OpenVINO default"
                    )
    elif args.what == "infer":
        r = bench.bench_infer(
            args.model, args.batch_size, dev, args.image_size, args.steps, args.rounds
        )
        for name, v in r["results"].items():
            print(f"{name:<12} {v:9.1f} img/s")
        print(f"speed-up {r['speedup']:.2f}x")
    else:
        folder = args.data or str(Path("..") / "shared" / "data" / "cifar10-jpeg" / "train")
        mode = args.mode
        if mode == "auto":
            mode = "stream" if is_shard_dir(folder) else "both"
        r = {}
        if mode in ("cache", "both"):
            c = bench.bench_data(folder, args.batch_size, steps=args.steps * 20)
            print(
                f"decoded cache of {c['images']} images built in {c['decode_cache_build_s']:.1f}s "
                f"({c['decode_images_per_sec_per_core']:.0f} img/s per core); reopened in {c['cache_reopen_s']:.1f}s; "
                f"batches from the cache at {c['batches_images_per_sec']:.0f} img/s"
            )
            r = {"cache": c, **c}
        if mode in ("stream", "both"):
            s = bench.bench_stream(folder, images=args.images)
            one = s["one_core_images_per_sec"]
            print(
                f"streaming {s['images']} images at {s['image_size']}px: one core decodes "
                f"{one['fast']:.0f} img/s with {s['decoder']} vs {one['pillow']:.0f} with Pillow "
                f"({s['fast_vs_pillow']:.2f}x); {s['processes']} processes: "
                f"{s['stream_images_per_sec']:.0f} img/s ({s['stream_images_per_sec_per_core']:.0f} per core)"
            )
            r = {**r, "stream": s, "images_per_sec": s["images_per_sec"]}
    if args.json:
        print(json.dumps(r))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (the prog and the problem) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"resnets: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:

    ap = _Parser(
        prog="resnets",
        description="Deep Residual Networks (He et al., 2015): train, evaluate, predict, analyse.",
    )
    ap.add_argument("--version", action="version", version=f"resnets {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="ITERS",
        help="end this session after ITERS iterations with a checkpoint (time-sliced jobs); resume later",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    _add_config_options(p)
    p.set_defaults(fn=_train)

    p = sub.add_parser("eval", help="top-1/top-5, per-class accuracy and a confusion matrix")
    p.add_argument(
        "--weights",
        required=True,
        metavar="NAME|RUN_DIR|FILE",
        help="MODEL.TAG (see `resnets weights list`), a weights file or a run directory",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="SPEC",
        help="digits | cifar10[:PATH] | cifar100[:PATH] | folder",
    )
    p.add_argument(
        "--subset",
        choices=("all", "val", "train"),
        default="all",
        help="all images (CIFAR: the test split), or the val/train split held out in training",
    )
    p.add_argument("--ten-crop", action="store_true", help="10-crop testing (paper section 3.4)")
    p.add_argument(
        "--scales",
        default="",
        metavar="SIDES",
        help="fully-convolutional multi-scale testing (paper 3.4, Table 4): comma-separated "
        "image sides, e.g. 224,256,384,480,640; scores averaged over scales and mirrors",
    )
    p.add_argument(
        "--tta",
        choices=("auto", "none", "flip"),
        default="auto",
        help="test-time augmentation: flip averages each image's and its mirror's logits; "
        "auto: what the weights were validated with in training (their metadata)",
    )
    p.add_argument(
        "--model", help="architecture, for weights files without resnets metadata (torchvision's)"
    )
    p.add_argument("--batch-size", type=bounded(1, MAX_BATCH), default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32")
    p.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images (listed) instead of failing"
    )
    _backend_arg(p)
    p.add_argument("--out", metavar="DIR", help="where to write confusion.png and eval.json")
    p.add_argument(
        "--corruptions",
        metavar="all|NAMES",
        help="also score under the 15 common corruptions (Hendrycks & Dietterich 2019), "
        "regenerated with fixed seeds: all, or a comma list (gaussian_noise, fog, ...)",
    )
    p.add_argument("--severities", default="1,2,3,4,5", help="corruption severities (1-5)")
    p.add_argument("--corruption-seed", type=bounded(0, 2**31 - 1), default=0)
    p.add_argument(
        "--corruption-images",
        type=bounded(0, 10**7),
        default=0,
        metavar="N",
        help="corrupt N of the scored images, spread evenly over them (0: all)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="last line: one JSON object (top1, top5, n, ece, nll, brier, temperature, ...)",
    )
    p.add_argument("--verbose", action="store_true", help="with --json, also print the table")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=_eval)

    p = sub.add_parser(
        "calibrate",
        help="fit a softmax temperature on the held-out split; store it with the weights",
        description="Temperature scaling (Guo et al. 2017) on the validation split the weights "
        "record: ECE, NLL and Brier before and after; the predicted class never changes. "
        "eval, predict, explain and serve then report calibrated probabilities.",
    )
    p.add_argument("--weights", required=True, metavar="RUN_DIR|FILE|NAME")
    p.add_argument("--data", required=True, metavar="SPEC", help="the data the weights trained on")
    p.add_argument(
        "--subset", default="val", help="only 'val': images the model trained on are refused"
    )
    p.add_argument(
        "--out", metavar="FILE.safetensors", help="write a calibrated copy (default: in place)"
    )
    p.add_argument("--batch-size", type=bounded(1, MAX_BATCH), default=256)
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    p.add_argument("--verbose", action="store_true", help="with --json, also print the table")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=_calibrate)

    p = sub.add_parser("predict", help="top-k classes of image files")
    p.add_argument(
        "--weights",
        required=True,
        metavar="NAME|RUN_DIR|FILE",
        help="MODEL.TAG (see `resnets weights list`), a weights file or a run directory",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--topk", type=count(1), default=5)
    p.add_argument("--model", help="architecture, for weights files without resnets metadata")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    _backend_arg(p)
    p.set_defaults(fn=_predict)

    p = sub.add_parser(
        "explain",
        help="Grad-CAM and integrated-gradients heat maps of image files, beside the top-k classes",
    )
    p.add_argument("--weights", required=True, metavar="NAME|RUN_DIR|FILE")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the PNGs and explain.json"
    )
    p.add_argument(
        "--method", default="gradcam,ig", help="gradcam, ig (integrated gradients), or both"
    )
    p.add_argument(
        "--target",
        default=None,
        metavar="CLASS",
        help="the class to explain (default: the predicted one)",
    )
    p.add_argument("--topk", type=count(1), default=5)
    p.add_argument("--model", help="architecture, for weights files without resnets metadata")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_explain)

    p = sub.add_parser(
        "serve",
        help="an HTTP API (predict, explain) with dynamic batching and a web page",
        description="Serve a model: POST /v1/predict, POST /v1/explain, GET /v1/model, "
        "GET /healthz, and a web page at /. Stops cleanly on SIGTERM or Ctrl-C.",
    )
    p.add_argument(
        "--weights",
        required=True,
        metavar="NAME|RUN_DIR|FILE|EXPORT",
        help="weights (name, file, run folder) or an exported model (.onnx, OpenVINO folder)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    p.add_argument(
        "--expose", action="store_true", help="allow an empty or wildcard --host (every interface)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "openvino", "auto"),
        default="auto",
        help="inference runtime (auto: the fastest installed)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        default="auto",
        help="auto: OpenVINO's own choice (bf16 where the CPU has it); fp32: f32 everywhere",
    )
    p.add_argument("--model", help="architecture, for weights files without resnets metadata")
    p.add_argument(
        "--max-batch",
        type=count(1),
        default=16,
        metavar="N",
        help="requests per forward pass (1: no dynamic batching)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        metavar="MS",
        help="how long a batch's first request waits for others",
    )
    p.add_argument(
        "--queue-size",
        type=count(1),
        default=64,
        metavar="N",
        help="waiting requests beyond which the answer is 503",
    )
    p.add_argument(
        "--timeout-ms",
        type=float,
        default=10_000.0,
        metavar="MS",
        help="a request not answered by then gets 504",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=10.0, metavar="MB", help="larger bodies get 413"
    )
    p.add_argument(
        "--max-pixels",
        type=count(1),
        default=25_000_000,
        metavar="N",
        help="images with more pixels get 400 (read from the header, before decoding)",
    )
    p.add_argument("--topk", type=count(1), default=5)
    p.add_argument("--threads", type=count(1), default=2, help="preprocessing threads")
    p.add_argument(
        "--max-in-flight",
        type=count(1),
        default=64,
        metavar="N",
        help="requests received or answered at once; beyond, 503 (bounds upload memory "
        "to N x --max-upload-mb)",
    )
    p.add_argument(
        "--upload-timeout-s",
        type=float,
        default=30.0,
        metavar="S",
        help="an upload not received within S seconds gets 408 (slow clients)",
    )
    p.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info"
    )
    p.set_defaults(fn=_serve)

    p = sub.add_parser(
        "export", help="ONNX or OpenVINO, classes and preprocessing inside, parity checked"
    )
    p.add_argument("--weights", required=True, metavar="NAME|RUN_DIR|FILE")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx")
    p.add_argument("--out", required=True, help="a .onnx file, or a folder for OpenVINO")
    p.add_argument("--model", help="architecture, for weights files without resnets metadata")
    p.add_argument(
        "--check-data",
        metavar="SPEC",
        help="real images for the parity check (default: the data named in the weights)",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="post-training static int8 quantization (NNCF for openvino, ONNX "
        "Runtime's quantizer for onnx), calibrated on training images",
    )
    p.add_argument(
        "--calib",
        metavar="SPEC",
        default=None,
        help="calibration data for --int8 (default: the weights' own data; images "
        "come from the training split they record)",
    )
    p.add_argument(
        "--calib-size",
        type=count(1),
        default=300,
        metavar="N",
        help="calibration images for --int8",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_export)

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
        "--markdown", action="store_true", help="every field's type, default, meaning and unit"
    )
    p.set_defaults(fn=_config)

    p = sub.add_parser("weights", help="named weights: list, info, download")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    q = wsub.add_parser("list", help="every named weights set (MODEL.TAG) with its accuracy")
    q.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'resnet50.*'")
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=_weights_list)
    q = wsub.add_parser("info", help="the metadata record of named weights")
    q.add_argument("name", metavar="MODEL.TAG")
    q.add_argument("--json", action="store_true", help="the record as one JSON object")
    q.set_defaults(fn=_weights_info)
    q = wsub.add_parser(
        "package",
        help="named weights from a finished run: re-scored in fp32 on its held-out split",
        description="Write OUT/MODEL.TAG.safetensors and .sha256 from a finished training run, "
        "with its validation accuracy re-measured in fp32, the command, time and machine.",
    )
    q.add_argument("run_dir", metavar="RUN_DIR")
    q.add_argument("--name", required=True, metavar="MODEL.TAG")
    q.add_argument("--out", required=True, metavar="DIR", help="e.g. src/resnets/weights")
    q.add_argument("--data", default=None, help="where the run's data is now, if it moved")
    q.add_argument(
        "--half",
        action="store_true",
        help="store float16 (half the file); scored after the rounding",
    )
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=_weights_package)
    q = wsub.add_parser(
        "card",
        help="a Markdown card of measured evidence for a set of weights",
        description="Held-out top-1 with a 95%% interval, per-class accuracy, confusion, "
        "calibration, common corruptions, int8 drop, export parity (batch 1, 7, 64), float16 "
        "headroom: every number measured now.",
    )
    q.add_argument("weights", metavar="NAME|RUN_DIR|FILE")
    q.add_argument("--data", required=True, metavar="SPEC", help="the data the weights trained on")
    q.add_argument("--out", metavar="DIR", help="default: cards/<name>")
    q.add_argument(
        "--corruption-images",
        type=bounded(0, 10**7),
        default=1000,
        metavar="N",
        help="held-out images the 75 corrupted sets are made from (0: all)",
    )
    q.add_argument("--json", action="store_true")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(fn=_weights_card)
    q = wsub.add_parser("download", help="fetch named weights into the cache, checking SHA-256")
    q.add_argument("names", nargs="+", metavar="MODEL.TAG")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(fn=_weights_download)

    p = sub.add_parser("models", help="list the models with parameters and MACs")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'plain*'")
    p.add_argument("--no-macs", action="store_true", help="leave the MACs column out")
    p.add_argument(
        "--measure",
        action="store_true",
        help="build every model and count again instead of reading the recorded table",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_models)

    p = sub.add_parser("summary", help="per-stage output shapes, parameters and MACs of a model")
    p.add_argument("model")
    p.add_argument("--image-size", type=bounded(0, MAX_IMAGE_SIDE), default=0)
    p.add_argument("--num-classes", type=bounded(1, 100_000), default=None)
    p.add_argument("--in-chans", type=bounded(1, 64), default=3)
    p.add_argument("--shortcut", choices=("A", "B", "C"), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_summary)

    p = sub.add_parser(
        "benchmark", help="images/s against a plain fp32 loop, fraction of peak, memory"
    )
    p.add_argument("what", choices=("train", "infer", "data"))
    p.add_argument(
        "--backend",
        default="torch",
        help="for 'infer': torch (fp32 against resnets' fast path), or all / a comma list of "
        "torch,onnxruntime,openvino: each at batch 1 and 16 in alternating rounds",
    )
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=bounded(1, MAX_BATCH), default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--image-size", type=bounded(0, MAX_IMAGE_SIDE), default=0)
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
        help="for 'data': a class folder or a folder of tar shards (default: the shared CIFAR JPEGs)",
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
    p.add_argument(
        "--json", action="store_true", help="last line: one JSON object with images_per_sec"
    )
    p.set_defaults(fn=_benchmark)

    p = sub.add_parser(
        "data",
        help="data sets: info, pack a folder into WebDataset tar shards, verify shards",
        description="Inspect a data set, pack a class folder into WebDataset-layout tar shards "
        "(for streaming and multi-node training), or verify shards against their checksums.",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = dsub.add_parser("info", help="classes, counts, image size and how it would be loaded")
    q.add_argument("data", metavar="SPEC", help="digits, cifar10[:PATH], a folder or shard folder")
    q.add_argument("--mode", choices=("auto", "memory", "stream"), default="auto")
    q.add_argument("--image-size", type=bounded(0, MAX_IMAGE_SIDE), default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=_data_info)
    q = dsub.add_parser("shard", help="pack a class folder into tar shards (WebDataset layout)")
    q.add_argument("src", metavar="FOLDER", help="ROOT/<class>/<image>")
    q.add_argument("out", metavar="OUT_DIR", help="a new or empty folder")
    q.add_argument("--shard-size", type=count(1), default=10000, help="samples per shard")
    q.add_argument("--seed", type=int, default=0, help="shuffle seed (-1: keep folder order)")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(fn=_data_shard)
    q = dsub.add_parser("verify", help="check every shard against dataset.json's SHA-256")
    q.add_argument("out", metavar="SHARD_DIR")
    q.set_defaults(fn=_data_verify)

    analysis_cli.register(sub)  # reproduce, analyze
    return ap


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
            f"{args.data}: {info['images']} images, {info['classes']} classes, "
            f"{info['image_size']}x{info['image_size']}x{info['channels']}, "
            f"{'streamed (decoded per batch)' if info['streamed'] else 'decoded in memory/cache'}"
        )
        for c, k in info["per_class"].items():
            print(f"  {c}: {k}")
    else:
        print(json.dumps(info))
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
        f"wrote {meta['samples']} samples of {len(meta['classes'])} classes into "
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


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"resnets: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _warn_one_line
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2, one line) and --help / --version (0)
        return e.code if isinstance(e.code, int) else EXIT_USER_ERROR
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.fn(args) or 0)
    except ResnetsError as e:
        print(f"resnets: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except TrainingInterrupted as e:  # an experiment's training run was interrupted
        print(f"resnets: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("resnets: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `resnets models | head`
        return 0
    except OSError as e:  # a full disk, a read-only folder, a missing permission: one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"resnets: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USER_ERROR


def _entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
