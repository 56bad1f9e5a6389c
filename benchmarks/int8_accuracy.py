"""int8 against fp32 on trained weights: held-out top-1, file size and speed, side by side.

    python benchmarks/int8_accuracy.py --weights resnet20.cifar10 [--data DIR] [--calib-size 300]

Exports the weights four ways (ONNX fp32, OpenVINO fp32, ONNX Runtime int8, NNCF int8; int8
calibrated on images of the training split the weights record), scores each with
`resnets eval`'s scorer on the held-out validation split, and times each runtime on those
images at batch 1 and 16 in alternating rounds (median of 3) in this one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from resnets.bench import alternate
from resnets.deploy import export_model
from resnets.eval import score
from resnets.inference import load_weights


def size_of(p: Path) -> int:
    return p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.iterdir())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", default=None, help="default: the data the weights record")
    ap.add_argument("--calib-size", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="resnets-int8-"))
    ref = load_weights(args.weights)
    data = args.data or ref.meta.data
    exports = {
        "onnx fp32": (tmp / "fp32.onnx", "onnx", False, "onnxruntime"),
        "openvino fp32": (tmp / "fp32-ov", "openvino", False, "openvino"),
        "onnx int8 (ONNX Runtime)": (tmp / "int8.onnx", "onnx", True, "onnxruntime"),
        "openvino int8 (NNCF)": (tmp / "int8-ov", "openvino", True, "openvino"),
    }
    rows: dict[str, dict] = {}
    res, _ = score(ref, data, subset="val")
    rows["torch fp32"] = {"top1": res.top1, "n": res.n, "size": None, "backend": "torch"}
    models = {"torch fp32": ref.model}
    for name, (path, fmt, int8, backend) in exports.items():
        export_model(
            args.weights,
            fmt,
            path,
            check_data=data,
            int8=int8,
            calib=data if int8 else None,
            calib_size=args.calib_size,
        )
        # int8 runs at the runtime's own precision; fp32 exports with the f32 hint
        lm = load_weights(path, backend=backend, precision="auto" if int8 else "fp32")
        r, _ = score(lm, data, subset="val")
        rows[name] = {"top1": r.top1, "n": r.n, "size": size_of(path), "backend": backend}
        models[name] = lm.model
    size = ref.eval_size or ref.image_size or 32
    for bs in (1, 16):
        x = torch.randn(bs, ref.in_chans, size, size)
        fns = {k: (lambda m=m, x=x: m(x)) for k, m in models.items()}
        with torch.inference_mode():
            times = alternate(fns, 30 if bs == 1 else 10, 3, torch.device("cpu"))
        for k, v in times.items():
            rows[k][f"img_s_b{bs}"] = bs / statistics.median(v)
    base = rows["torch fp32"]["top1"]
    print(
        f"{args.weights} on {data} (held-out split, {res.n} images), {torch.get_num_threads()} threads"
    )
    print(f"{'':<26} {'top-1':>8} {'vs fp32':>8} {'size':>10} {'img/s b1':>9} {'img/s b16':>10}")
    for k, r in rows.items():
        sz = f"{r['size'] / 2**20:.2f} MiB" if r["size"] else "-"
        print(
            f"{k:<26} {r['top1']:8.2%} {100 * (r['top1'] - base):+7.2f}p {sz:>10} "
            f"{r['img_s_b1']:9.0f} {r['img_s_b16']:10.0f}"
        )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
