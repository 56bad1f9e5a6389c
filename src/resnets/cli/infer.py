"""Commands that run a trained model: ``eval``, ``calibrate``, ``predict``, ``explain``, ``export``
and ``serve``. Parsing and printing only: the work is in eval/, inference/ and deploy/."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ..argtypes import (
    add_backend,
    add_batch_size,
    add_device,
    add_json,
    add_model,
    add_no_progress,
    add_weights,
    bounded,
    count,
    image_sides,
    int_list,
    json_line,
)
from ..deploy import export_model
from ..deploy.serve import ServeConfig, serve
from ..errors import ConfigError
from ..eval import predict, score
from ..eval.calibration import calibrate_weights, calibration_summary
from ..eval.corruptions import DEVIATIONS, CorruptionScore, corruption_table, parse_corruptions
from ..eval.explain import METHODS, explain_files
from ..eval.metrics import Scoring
from ..eval.report import add_corruptions, summary_line, write_eval_report
from ..inference import LoadedModel, TestTime, is_exported, load_weights
from ..io import check_writable, own_run, relative_paths
from ..runtime import pick_device, use_bf16


def load_for_command(
    args: argparse.Namespace, backend: str | None = None
) -> tuple[LoadedModel, torch.device]:
    """The model named by ``--weights`` on ``--backend`` (or ``backend``) and ``--device``: every
    command that runs a model loads it here, through :func:`resnets.inference.load_weights`."""
    device = pick_device(args.device)
    backend = backend or getattr(args, "backend", None)
    return load_weights(args.weights, backend=backend, model=args.model, device=device), device


# ---------------------------------------------------------------------------------------------
# eval


def _eval(args: argparse.Namespace) -> int:
    scales = image_sides(args.scales, "--scales") if args.scales else []
    if scales and args.ten_crop:
        raise ConfigError("--scales and --ten-crop are two different tests: pick one")
    if args.out:
        check_writable(args.out, folder=True, reading=(args.data,), own=own_run(args.weights))
    if args.corruptions:  # names and severities checked before any work
        names = parse_corruptions(args.corruptions)
        severities = sorted(set(int_list(args.severities, "--severities", 1, 5)))
    lm, device = load_for_command(args)
    tta = lm.meta.tta if args.tta == "auto" else args.tta
    res, selection = score(
        lm,
        args.data,
        subset=args.subset,
        test=TestTime(ten_crop=args.ten_crop, scales=tuple(scales), tta=tta),
        run=Scoring(
            batch_size=args.batch_size,
            device=device,
            bf16=use_bf16(args.precision, device),
            progress=not args.no_progress,
        ),
        skip_bad=args.skip_bad,
    )
    weights_dir = Path(args.weights)
    default_home = weights_dir if weights_dir.is_dir() else Path(".")
    out = Path(args.out or default_home / f"eval-{Path(args.data.split(':')[0]).name}")
    # one record, built once by eval/report.py: eval.json, the table below, the --json line
    record = write_eval_report(
        res,
        lm,
        out,
        data=args.data,
        subset=args.subset,
        ten_crop=args.ten_crop,
        scales=scales,
        tta=tta,
    )
    talk = not args.json or args.verbose
    if talk:
        _print_eval(record, lm)
    if args.corruptions:
        add_corruptions(
            record,
            lm,
            out,
            selection=selection,
            names=names,
            severities=severities,
            seed=args.corruption_seed,
            images=args.corruption_images,
            batch_size=args.batch_size,
            device=device,
            progress=not args.no_progress,
        )
        if talk:
            _print_corruptions(record["corruptions"], names)
    if args.json:
        print(json_line(summary_line(record)))
    return 0


def _print_eval(record: dict, lm: LoadedModel) -> None:
    scales, ten_crop = record["scales"], record["ten_crop"]
    print(
        f"{lm.meta.model} on {record['data']} ({record['subset']}, {record['n']} images"
        f"{', 10-crop' if ten_crop else ''}{', flip TTA' if record['tta'] == 'flip' else ''}"
        f"{', scales ' + ','.join(map(str, scales)) + ' with mirrors' if scales else ''}):"
    )
    print(f"  top-1 accuracy {record['top1']:.2%}  (error {1 - record['top1']:.2%})")
    print(f"  top-5 accuracy {record['top5']:.2%}")
    temperature = record["temperature"]
    calibrated = f", temperature {temperature:.3f}" if temperature != 1.0 else ""
    print(
        f"  calibration{calibrated}: ECE {record['ece']:.2%} (15 bins), NLL {record['nll']:.4f}, "
        f"Brier {record['brier']:.4f}"
    )
    width = max(len(c) for c in lm.classes)
    for name, accuracy in record["per_class"].items():
        print(f"    {name:<{width}}  {'n/a' if accuracy is None else f'{accuracy:.2%}'}")
    print(f"  confusion matrix: {record['confusion_png']}")
    print(f"  reliability diagram: {record['reliability_png']}")


def _print_corruptions(result: dict, names: list[str]) -> None:
    scores = [CorruptionScore(**cell) for cell in result["cells"]]
    print(
        f"common corruptions (Hendrycks & Dietterich 2019), regenerated on {result['images']} "
        f"images with seed {result['seed']} (CIFAR-10-C itself is not available):"
    )
    for line in corruption_table(scores, result["clean_top1"]):
        print("  " + line)
    for name, why in DEVIATIONS.items():
        if name in names:
            print(f"  note: {name}: {why}")
    print(f"  figure: {result['figure']}; table: {result['table']}")


# ---------------------------------------------------------------------------------------------
# calibrate, predict, explain


def _calibrate(args: argparse.Namespace) -> int:
    report = calibrate_weights(
        args.weights,
        args.data,
        subset=args.subset,
        out=args.out,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    before, after = report.before, report.after
    if not args.json or args.verbose:
        print(
            f"temperature {after.temperature:.4f}, fitted on {after.n} held-out images of {args.data}"
        )
        print(f"  ECE   {before.ece:7.2%} -> {after.ece:7.2%}  (15 bins)")
        print(f"  NLL   {before.nll:7.4f} -> {after.nll:7.4f}")
        print(f"  Brier {before.brier:7.4f} -> {after.brier:7.4f}")
        print(f"  top-1 {report.top1:.2%} (unchanged: the class is the same at any temperature)")
        print(f"  stored in {report.path}")
    if args.json:
        print(json_line(calibration_summary(report)))
    return 0


def _predict(args: argparse.Namespace) -> int:
    lm, _ = load_for_command(args)
    results = predict(lm, args.images, topk=args.topk)
    if args.json:
        print(json_line(results))
        return 0
    for row in results:
        print(row["image"])
        for top in row["top"]:
            print(f"  {top['prob']:7.2%}  {top['class']}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    methods = tuple(m.strip() for m in args.method.split(",") if m.strip())
    if not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"--method {args.method!r}: a comma list of {', '.join(METHODS)}")
    if is_exported(args.weights):
        raise ConfigError(
            f"{args.weights}: explanations need gradients, which an exported model does not "
            "have; give the PyTorch weights (a name, a file or a run folder)"
        )
    # (beside its input images is allowed: explain never writes over an input or its outputs)
    check_writable(args.out, folder=True, own=own_run(args.weights))
    lm, _ = load_for_command(args, backend="torch")  # explanations need gradients
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
        print(json_line(rows))
        return 0
    for row in rows:
        top = ", ".join(f"{t['class']} {t['prob']:.1%}" for t in row["top"][:3])
        figure = Path(args.out) / row["figure"]
        print(f"{row['image']}: {top} -> {figure} (explaining '{row['target']}')")
    return 0


# ---------------------------------------------------------------------------------------------
# export, serve


def _export(args: argparse.Namespace) -> int:
    # export_model checks and holds --out itself (the weights and data it reads are inputs)
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
        runtime = "openvino" if r.format == "openvino" else "onnxruntime"
        print(
            f"int8 against PyTorch fp32 on {r.n_checked} images of {r.check_data}: same top-1 "
            f"class for {r.agreement:.1%} (>= 95%: {verdict}), max |logit difference| "
            f"{r.max_abs_diff:.3f}; score it with: resnets eval --weights {r.path} --backend "
            f"{runtime} --subset val ..."
        )
    else:
        per_batch = ", ".join(f"batch {b}: {d:.1e}" for b, d in r.batch_diffs.items())
        data = relative_paths(str(r.check_data))
        print(
            f"parity on {r.n_checked} images of {data}: max |logit difference| "
            f"{r.max_abs_diff:.2e} against PyTorch fp32 ({per_batch}; < 1e-4: {verdict})"
        )
    if args.json:
        print(json_line(r.to_dict()))
    return 0 if r.ok else 1


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


# ---------------------------------------------------------------------------------------------
# the commands' options


def register(sub: argparse._SubParsersAction) -> None:
    """Add eval, calibrate, predict, explain, serve and export to ``resnets``."""
    _register_eval(sub)
    _register_runs(sub)
    _register_serve(sub)


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5, per-class accuracy and a confusion matrix")
    add_weights(p, exported=True)
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
    add_model(p)
    add_batch_size(p, default=256)
    add_device(p)
    p.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="fp32",
        help="PyTorch on a GPU or a bf16 CPU: autocast to bf16 (auto: where it is fast)",
    )
    p.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images (listed) instead of failing"
    )
    add_backend(p)
    p.add_argument("--out", metavar="DIR", help="where to write confusion.png and eval.json")
    p.add_argument(
        "--corruptions",
        metavar="all|NAMES",
        help="also score under the 15 common corruptions (Hendrycks & Dietterich 2019), "
        "regenerated with fixed seeds: all, or a comma list (gaussian_noise, fog, ...)",
    )
    p.add_argument("--severities", default="1,2,3,4,5", help="corruption severities (1-5)")
    p.add_argument(
        "--corruption-seed",
        type=bounded(0, 2**31 - 1),
        default=0,
        help="seed of the corruptions' random draws (the same seed, the same corrupted images)",
    )
    p.add_argument(
        "--corruption-images",
        type=bounded(0, 10**7),
        default=0,
        metavar="N",
        help="corrupt N of the scored images, spread evenly over them (0: all)",
    )
    add_json(p, what="one JSON object (top1, top5, n, ece, nll, brier, temperature, ...)")
    p.add_argument("--verbose", action="store_true", help="with --json, also print the table")
    add_no_progress(p)
    p.set_defaults(fn=_eval)


def _register_runs(sub: argparse._SubParsersAction) -> None:
    """calibrate, predict, explain and export."""
    p = sub.add_parser(
        "calibrate",
        help="fit a softmax temperature on the held-out split; store it with the weights",
        description="Temperature scaling (Guo et al. 2017) on the validation split the weights "
        "record: ECE, NLL and Brier before and after; the predicted class never changes. "
        "eval, predict, explain and serve then report calibrated probabilities.",
    )
    add_weights(p)
    p.add_argument("--data", required=True, metavar="SPEC", help="the data the weights trained on")
    p.add_argument(
        "--subset", default="val", help="only 'val': images the model trained on are refused"
    )
    p.add_argument(
        "--out", metavar="FILE.safetensors", help="write a calibrated copy (default: in place)"
    )
    add_batch_size(p, default=256)
    add_json(p)
    p.add_argument("--verbose", action="store_true", help="with --json, also print the table")
    add_no_progress(p)
    p.set_defaults(fn=_calibrate)

    p = sub.add_parser("predict", help="top-k classes of image files")
    add_weights(p, exported=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--topk", type=count(1), default=5, help="classes listed per image")
    add_model(p)
    add_device(p, default="cpu")
    add_json(p, what="the predictions as one JSON list")
    add_backend(p)
    p.set_defaults(fn=_predict)

    p = sub.add_parser(
        "explain",
        help="Grad-CAM and integrated-gradients heat maps of image files, beside the top-k classes",
    )
    add_weights(p)
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
    p.add_argument("--topk", type=count(1), default=5, help="classes listed per image")
    add_model(p)
    add_device(p, default="cpu")
    add_json(p, what="the explanations as one JSON list")
    p.set_defaults(fn=_explain)

    p = sub.add_parser(
        "export", help="ONNX or OpenVINO, classes and preprocessing inside, parity checked"
    )
    add_weights(p)
    p.add_argument(
        "--format", choices=("onnx", "openvino"), default="onnx", help="file format to write"
    )
    p.add_argument("--out", required=True, help="a .onnx file, or a folder for OpenVINO")
    add_model(p)
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
    add_json(p)
    p.set_defaults(fn=_export)


def _register_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="an HTTP API (predict, explain) with dynamic batching and a web page",
        description="Serve a model: POST /v1/predict, POST /v1/explain, GET /v1/model, "
        "GET /healthz, and a web page at /. Stops cleanly on SIGTERM or Ctrl-C.",
    )
    add_weights(p, exported=True)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    p.add_argument(
        "--expose", action="store_true", help="allow an empty or wildcard --host (every interface)"
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    add_backend(p, default="auto")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        default="auto",
        help="auto: OpenVINO's own choice (bf16 where the CPU has it); fp32: float32 everywhere",
    )
    add_model(p)
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
    p.add_argument("--topk", type=count(1), default=5, help="classes listed per image")
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
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="the server's log level (uvicorn)",
    )
    p.set_defaults(fn=_serve)
