"""Named weights from a finished run: re-scored, recorded, registered, loadable offline."""

from __future__ import annotations

import json

import pytest
import torch

from resnets.cli import main
from resnets.errors import ConfigError
from resnets.eval import score
from resnets.eval.zoo import package_run
from resnets.inference import load_weights
from resnets.models import catalogue, create_model
from resnets.models.weights import read_meta


def test_package_run_rescores_in_fp32_and_registers_a_loadable_name(
    patch_run, tmp_path, monkeypatch, capsys
):
    run, data, _ = patch_run
    out = tmp_path / "weights"
    assert (
        main(
            [
                "weights",
                "package",
                str(run),
                "--name",
                "resnet8.patches",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    f = out / "resnet8.patches.safetensors"
    assert (out / "resnet8.patches.sha256").read_text().split()[0] == rec["sha256"]
    meta = read_meta(f)
    lm = load_weights(run)
    # re-scored independently of score(): the packaged file read back with safetensors into a
    # fresh model, the held-out images decoded with Pillow from their files, normalised and
    # classified by hand (only the split's definition, recorded_split, is shared)
    hits, n = _score_by_hand(f, meta, data)
    assert n == meta.metrics["n"] == 120
    assert meta.metrics["top1"] == pytest.approx(hits / n)
    assert "held out" in meta.metrics["split"] and "fp32" in meta.metrics["split"]
    assert meta.command and meta.params == 74_900 and meta.macs > 0 and meta.license
    assert meta.final["train_time_s"] > 0
    # shipped: registered by name at import, checked, and create_model(pretrained=True) works
    monkeypatch.setattr(catalogue, "PACKAGE_WEIGHTS", out)
    monkeypatch.setattr(catalogue, "_PRETRAINED", dict(catalogue._PRETRAINED))
    monkeypatch.setattr(catalogue, "_DEFAULT_TAG", dict(catalogue._DEFAULT_TAG))
    catalogue._register_shipped()
    assert "resnet8.patches" in catalogue.list_pretrained("resnet8.*")
    assert catalogue.verify("resnet8.patches") == rec["sha256"]
    net = create_model("resnet8", pretrained=True, num_classes=4).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), lm.model(x))
    # a flipped byte in the shipped file is caught
    raw = bytearray(f.read_bytes())
    raw[-5] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="SHA-256"):
        catalogue.verify("resnet8.patches")


def _score_by_hand(weights_file, meta, folder) -> tuple[int, int]:
    import numpy as np
    from PIL import Image
    from safetensors.torch import load_file

    from resnets.data import load_dataset
    from resnets.eval.predict import recorded_split

    net = create_model(meta.model, **meta.model_kwargs)
    net.load_state_dict({k: v.float() for k, v in load_file(str(weights_file)).items()})
    net.eval()
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [(p, c) for c, name in enumerate(classes) for p in sorted((folder / name).iterdir())]
    data = load_dataset(str(folder), progress=False)
    assert data.classes == classes and len(data) == len(files)
    val = recorded_split(meta.split, data.labels, data.classes).val_idx
    mean = torch.tensor(meta.mean).view(1, -1, 1, 1)
    std = torch.tensor(meta.std).view(1, -1, 1, 1)
    hits = 0
    for i in val:
        path, label = files[int(i)]
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        x = (torch.from_numpy(pixels).permute(2, 0, 1)[None] - mean) / std
        with torch.no_grad():
            logits = net(x)
            if meta.tta == "flip":
                logits = (logits + net(x.flip(-1))) / 2
        hits += int(logits.argmax(1).item() == label)
    return hits, len(val)


def test_package_refuses_a_wrong_name_or_an_unfinished_run(patch_run, tmp_path):
    run, _, _ = patch_run
    with pytest.raises(ConfigError, match="not resnet20"):
        package_run(run, "resnet20.cifar10", tmp_path)
    with pytest.raises(ConfigError, match="MODEL.TAG"):
        package_run(run, "resnet8", tmp_path)
    assert (
        main(
            [
                "weights",
                "package",
                str(tmp_path),
                "--name",
                "resnet8.x",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


def test_package_half_stores_float16_and_states_the_accuracy_of_the_stored_values(
    patch_run, tmp_path
):
    from safetensors.torch import load_file

    run, data, _ = patch_run
    full = package_run(run, "resnet8.patches", tmp_path / "fp32")
    half = package_run(run, "resnet8.patches", tmp_path / "fp16", half=True)
    f = tmp_path / "fp16" / "resnet8.patches.safetensors"
    sd = load_file(f)
    assert all(t.dtype == torch.float16 for t in sd.values() if t.is_floating_point())
    assert half["size_bytes"] < 0.6 * full["size_bytes"]
    assert read_meta(f).final["stored_dtype"] == "float16"
    lm = load_weights(f)  # loads back into the float32 model
    assert next(lm.model.parameters()).dtype == torch.float32
    again, _ = score(lm, str(data), subset="val")
    assert again.top1 == pytest.approx(half["top1"])


@pytest.mark.parametrize(
    "name", ["../evil.x", "a/b.c", "resnet8./x", ".hidden.x", "resnet8..x", "x" * 101 + ".y"]
)
def test_a_weights_name_never_becomes_a_path_outside_out(patch_run, tmp_path, name):
    run, _, _ = patch_run
    with pytest.raises(ConfigError, match="MODEL.TAG"):
        package_run(run, name, tmp_path / "o")
    assert not (tmp_path / "o").exists() and sorted(tmp_path.iterdir()) == []


def test_a_default_folder_run_is_scored_on_its_own_held_out_split(tmp_path, capsys):
    """A run trained at the images' native size (the default recipe's image_size 0) is scored
    on its validation split by `eval --subset val` and packaged by `weights package`: the
    data decoded at the size the weights record is the data they trained on."""
    from resnets.train import build_config, train

    from ..conftest import make_patch_folder

    make_patch_folder(tmp_path / "data", per_class=40)
    cfg = build_config(
        None,
        cli_values={
            "data": str(tmp_path / "data"),
            "model": "resnet8",
            "epochs": 1.0,
            "val_split": 0.2,
        },
    )
    assert cfg.image_size == 0  # the default: native size
    train(cfg, tmp_path / "run", progress=False, echo=False)
    assert (
        main(
            [
                "eval",
                "--weights",
                str(tmp_path / "run"),
                "--data",
                str(tmp_path / "data"),
                "--subset",
                "val",
                "--json",
            ]
        )
        == 0
    )
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert scored["n"] == 32  # 20% of 160 images held out
    assert abs(scored["top1"] - (1 - summary["final_val_err"])) < 1.5 / scored["n"]
    r = package_run(tmp_path / "run", "resnet8.patches", tmp_path / "w")
    assert r["n"] == 32 and r["top1"] == pytest.approx(scored["top1"])


def test_package_never_replaces_a_file_unless_told(patch_run, tmp_path, capsys):
    """Issue 44: `weights package` into a zoo folder that holds the name already is refused
    before any scoring, the file untouched; --overwrite replaces it."""
    run, _, _ = patch_run
    out = tmp_path / "zoo"
    out.mkdir()
    (out / "resnet8.patches.safetensors").write_bytes(b"someone's file")
    argv = ["weights", "package", str(run), "--name", "resnet8.patches", "--out", str(out)]
    assert main(argv) == 2
    assert "resnet8.patches.safetensors exists already" in capsys.readouterr().err
    assert (out / "resnet8.patches.safetensors").read_bytes() == b"someone's file"
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "resnet8.patches.safetensors").read_bytes() != b"someone's file"
