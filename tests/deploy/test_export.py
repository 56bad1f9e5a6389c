"""Export (ONNX, OpenVINO) with a parity check, and every backend behind eval and predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from resnets.cli import main
from resnets.deploy import export_model
from resnets.inference import load_weights, read_exported_meta
from resnets.train import build_config, train

from ..conftest import needs

pytestmark = needs("onnxruntime", "openvino")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A ResNet trained for 3 epochs on the bundled digits (real images, 10 classes)."""
    d = tmp_path_factory.mktemp("deploy")
    cfg = build_config("digits", cli_values={"epochs": 3.0, "iters": 0})
    train(cfg, d / "run", progress=False, echo=False)
    return d


@pytest.fixture(scope="module")
def exports(run):
    """Both exports of the run, made once for the module's tests (whichever runs first, on
    whichever pytest-xdist worker: no test depends on another's order)."""
    return {
        "onnx": export_model(run / "run", "onnx", run / "m.onnx"),
        "openvino": export_model(run / "run", "openvino", run / "ov"),
    }


def test_onnx_export_holds_classes_preprocessing_and_matches_pytorch(run, exports):
    import onnx
    import onnxruntime as ort

    r = exports["onnx"]
    assert r.ok and r.max_abs_diff < 1e-4 and r.n_checked == 64 and r.check_data == "digits"
    assert sorted(r.batch_diffs) == [1, 7, 64] and max(r.batch_diffs.values()) < 1e-4
    props = {p.key: p.value for p in onnx.load(str(run / "m.onnx")).metadata_props}
    assert json.loads(props["classes"]) == [str(i) for i in range(10)]
    pre = json.loads(props["preprocessing"])
    assert pre["channel_order"] == "RGB" and len(pre["mean"]) == 1 and pre["units"] == "0..255"
    assert read_exported_meta(run / "m.onnx").model == "resnet20"  # the digits recipe's
    sess = ort.InferenceSession(str(run / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 7):  # the batch axis is dynamic
        x = np.random.default_rng(0).standard_normal((batch, 1, 8, 8)).astype(np.float32)
        assert sess.run(None, {"input": x})[0].shape == (batch, 10)


def test_openvino_export_matches_pytorch_with_an_f32_hint(run, exports):
    r = exports["openvino"]
    assert r.ok and r.max_abs_diff < 1e-4 and sorted(r.batch_diffs) == [1, 7, 64]
    assert {p.name for p in (run / "ov").iterdir()} == {"model.xml", "model.bin", "resnets.json"}
    assert not [p for p in run.iterdir() if ".partial" in p.name]


def test_float16_weights_that_would_overflow_are_refused(tmp_path):
    """A value beyond float16's 65504 (a BatchNorm running variance can grow that large)
    would be stored as inf: refused with the tensor named, nothing written."""
    import torch

    from resnets.errors import WeightsError
    from resnets.models import create_model
    from resnets.models.weights import WeightsMeta, save_weights

    net = create_model("resnet8")
    with torch.no_grad():
        net.bn1.running_var[3] = 1e6
    with pytest.raises(WeightsError, match="bn1.running_var: holds 1e\\+06, beyond"):
        save_weights(
            net, tmp_path / "w.safetensors", WeightsMeta(model="resnet8"), dtype=torch.float16
        )
    assert not (tmp_path / "w.safetensors").exists()
    save_weights(net, tmp_path / "w.safetensors", WeightsMeta(model="resnet8"))  # float32: fine


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_eval_and_predict_agree_across_backends(run, exports, backend, capsys, tmp_path):
    scores = {}
    for b, w in (
        ("torch", run / "run"),
        (backend, run / "run"),
        (backend, run / ("m.onnx" if backend == "onnxruntime" else "ov")),
    ):
        assert (
            main(
                [
                    "eval",
                    "--weights",
                    str(w),
                    "--data",
                    "digits",
                    "--subset",
                    "val",
                    "--backend",
                    b,
                    "--json",
                    "--no-progress",
                    "--out",
                    str(tmp_path),
                ]
            )
            == 0
        )
        scores[(b, w.name)] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    tops = [s["top1"] for s in scores.values()]
    assert max(tops) - min(tops) <= 1 / 359  # fp32 everywhere: at most one tie broken otherwise
    from sklearn.datasets import load_digits

    img = tmp_path / "digit.png"  # a real digit, as a grayscale PNG
    Image.fromarray((load_digits().images[7] * 255 / 16).round().astype(np.uint8)).save(img)
    tops = []
    for b in ("torch", backend):
        assert (
            main(["predict", "--weights", str(run / "run"), str(img), "--backend", b, "--json"])
            == 0
        )
        tops.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]["top"])
    assert [t["class"] for t in tops[0]] == [t["class"] for t in tops[1]]
    assert abs(tops[0][0]["prob"] - tops[1][0]["prob"]) < 1e-4


def test_bad_exports_and_backends_are_one_line_errors(run, tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    cases = [
        (
            ["eval", "--weights", str(junk), "--data", "digits", "--backend", "onnxruntime"],
            "not a valid ONNX",
        ),
        (
            ["export", "--weights", str(run / "run"), "--out", str(tmp_path / "x.bin")],
            "ending in .onnx",
        ),
        (["export", "--weights", str(run / "run"), "--out", str(junk)], "exists"),
        (
            ["eval", "--weights", str(junk), "--data", "digits", "--backend", "torch"],
            "runs on onnxruntime or openvino",
        ),
        (["eval", "--weights", str(junk), "--data", "digits"], "not a valid ONNX"),
        (["benchmark", "infer", "--backend", "tensorrt"], "--backend tensorrt"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_load_for_backend_auto_picks_an_installed_runtime(run):
    lm = load_weights(run / "run", backend="auto")
    assert type(lm.model).__name__ == "ExternalModel" and lm.model.backend == "openvino"
    if (run / "m.onnx").exists():  # an ONNX file runs on the runtime it was made for
        assert load_weights(run / "m.onnx", backend="auto").model.backend == "onnxruntime"


def test_benchmark_infer_runs_every_backend_at_batch_1_and_16(capsys):
    argv = [
        "benchmark",
        "infer",
        "--backend",
        "all",
        "--model",
        "resnet8",
        "--steps",
        "1",
        "--rounds",
        "1",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for name in (
        "torch fp32",
        "torch fast",
        "onnxruntime",
        "onnxruntime int8",
        "openvino default",
        "openvino ",
        "openvino f32",
        "openvino int8",
    ):
        assert f"batch   1  {name}" in out and f"batch  16  {name}" in out
    assert "x OpenVINO default" in out
    assert "resnets' best fp32/bf16 path" in out and "resnets' best int8 path" in out


@pytest.mark.parametrize("fmt, backend", [("onnx", "onnxruntime"), ("openvino", "openvino")])
def test_int8_export_is_calibrated_on_training_images_and_keeps_accuracy(run, fmt, backend, capsys):
    out = run / ("int8.onnx" if fmt == "onnx" else "int8-ov")
    assert (
        main(
            [
                "export",
                "--weights",
                str(run / "run"),
                "--format",
                fmt,
                "--out",
                str(out),
                "--int8",
                "--calib-size",
                "200",
                "--json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["int8"] and rep["ok"] and rep["agreement"] >= 0.95
    meta = read_exported_meta(out)
    q = meta.quantization
    assert q["dtype"] == "int8" and q["calib_images"] == 200
    assert q["calib_split"] == "the training split" and q["tool"] == (
        "nncf" if fmt == "openvino" else "onnxruntime"
    )
    assert meta.classes == [str(i) for i in range(10)]
    if fmt == "onnx":  # OpenVINO cannot compile ONNX Runtime's per-channel QDQ graph: one line
        assert (
            main(
                [
                    "predict",
                    "--weights",
                    str(out),
                    "--backend",
                    "openvino",
                    str(run / "run" / "curves.png"),
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert "openvino cannot run this model" in err and len(err.strip().splitlines()) == 1
    if fmt == "onnx":  # int8 weights: the file is smaller than the fp32 graph
        import onnx

        fp32 = len(onnx_bytes_of(run))
        assert out.stat().st_size < 0.6 * fp32
        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    else:
        xml = (out / "model.xml").read_text()
        assert "FakeQuantize" in xml or "FakeConvert" in xml
    tops = {}
    for w, b in ((run / "run", "torch"), (out, backend)):
        assert (
            main(
                [
                    "eval",
                    "--weights",
                    str(w),
                    "--data",
                    "digits",
                    "--subset",
                    "val",
                    "--backend",
                    b,
                    "--json",
                    "--no-progress",
                    "--out",
                    str(run / "e"),
                ]
            )
            == 0
        )
        tops[b] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top1"]
    assert abs(tops["torch"] - tops[backend]) <= 0.02, tops  # at most 2 points of top-1
    # an exported model needs no --backend: the fastest installed runtime runs it
    from sklearn.datasets import load_digits

    img = run / f"digit-{fmt}.png"
    Image.fromarray((load_digits().images[3] * 255 / 16).round().astype(np.uint8)).save(img)
    assert main(["predict", "--weights", str(out), str(img), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]["top"]) == 5


def onnx_bytes_of(run):
    from resnets.inference import load_weights
    from resnets.inference.graph import onnx_bytes

    lm = load_weights(run / "run")
    return onnx_bytes(lm.model, lm.meta, 8)


def test_calib_without_int8_is_an_error(run, tmp_path, capsys):
    assert (
        main(
            [
                "export",
                "--weights",
                str(run / "run"),
                "--out",
                str(tmp_path / "m.onnx"),
                "--calib",
                "digits",
            ]
        )
        == 2
    )
    assert "--calib is for --int8" in capsys.readouterr().err
