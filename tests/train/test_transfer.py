"""Transfer learning: --init, a replaced head, --freeze, --backbone-lr-scale, --freeze-bn, exact
resume with each, and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from resnets.errors import ConfigError, WeightsError
from resnets.models.weights import read_weights
from resnets.train import build_config, train


@pytest.fixture(scope="module")
def digit_halves(tmp_path_factory):
    """The digits 0-4 and 5-9 as two image folders (grayscale PNGs, read as RGB), and a
    ResNet-8 pretrained on the first."""
    from sklearn.datasets import load_digits  # here, not at collection: 1.4 s per worker

    root = tmp_path_factory.mktemp("halves")
    d = load_digits()
    for img, y in zip(d.images, d.target):
        folder = root / ("a" if y < 5 else "b") / f"d{y}"
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.iterdir()))
        if n < 40:
            Image.fromarray(np.uint8(img * 255 / 16)).save(folder / f"{n:03d}.png")
    cfg = _cfg(root / "a", epochs=3.0)
    train(cfg, root / "pre", progress=False, echo=False)
    return root


def _cfg(data, **kw):
    cli = {
        "data": str(data),
        "model": "resnet8",
        "epochs": 2.0,
        "iters": 0,
        "val_split": 10,
        "batch_size": 32,
        "ramp_iters": 0,
        **kw,
    }
    return build_config("digits", cli_values=cli)


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def test_init_replaces_the_head_and_loads_the_backbone(digit_halves, tmp_path):
    pre = _weights(digit_halves / "pre")
    seen = {}

    def hook(model, step):
        if step == 0:  # before the first update: the weights as initialised
            # parameters: the first forward pass has already moved the BN running statistics
            seen.update({k: v.detach().clone() for k, v in model.named_parameters()})

    cfg = _cfg(digit_halves / "b", init=str(digit_halves / "pre"), epochs=1.0)
    train(cfg, tmp_path / "ft", progress=False, echo=False, on_backward=hook)
    body = [k for k in seen if not k.startswith("fc.")]
    assert len(body) > 20 and all(torch.equal(seen[k], pre[k]) for k in body)
    assert not torch.equal(seen["fc.weight"], pre["fc.weight"])  # a fresh head
    log = (tmp_path / "ft" / "train.log").read_text()
    assert "the classifier was replaced (5 classes there, 5 here: d5, d6" in log
    # the normalisation came with the weights
    _, meta = read_weights(tmp_path / "ft" / "model.safetensors")
    _, pre_meta = read_weights(digit_halves / "pre" / "model.safetensors")
    assert meta.mean == pre_meta.mean and meta.std == pre_meta.std


def test_linear_probe_changes_only_the_head(digit_halves, tmp_path):
    pre = _weights(digit_halves / "pre")
    cfg = _cfg(
        digit_halves / "b",
        init=str(digit_halves / "pre"),
        freeze="backbone",
        freeze_bn=True,
        epochs=1.0,
    )
    train(cfg, tmp_path / "probe", progress=False, echo=False)
    after = _weights(tmp_path / "probe")
    body = [k for k in pre if not k.startswith("fc.") and "num_batches" not in k]
    assert all(torch.equal(after[k], pre[k]) for k in body), "frozen weights and BN statistics"


def test_freeze_stages_and_bn_statistics(digit_halves, tmp_path):
    pre = _weights(digit_halves / "pre")
    cfg = _cfg(digit_halves / "b", init=str(digit_halves / "pre"), freeze="stages:1", epochs=1.0)
    train(cfg, tmp_path / "s1", progress=False, echo=False)
    after = _weights(tmp_path / "s1")
    assert torch.equal(after["conv1.weight"], pre["conv1.weight"])
    assert torch.equal(after["layer1.0.conv2.weight"], pre["layer1.0.conv2.weight"])
    assert not torch.equal(after["layer2.0.conv1.weight"], pre["layer2.0.conv1.weight"])
    # without freeze_bn the running statistics follow the new data
    assert not torch.equal(after["layer1.0.bn1.running_mean"], pre["layer1.0.bn1.running_mean"])


def test_backbone_lr_scale(digit_halves, tmp_path):
    pre = _weights(digit_halves / "pre")
    cfg = _cfg(
        digit_halves / "b",
        init=str(digit_halves / "pre"),
        backbone_lr_scale=0.0,
        freeze_bn=True,
        epochs=1.0,
    )
    train(cfg, tmp_path / "lr0", progress=False, echo=False)
    after = _weights(tmp_path / "lr0")
    assert torch.equal(after["layer3.0.conv2.weight"], pre["layer3.0.conv2.weight"])  # lr x0
    assert not torch.equal(after["fc.bias"][:1], torch.zeros(1))


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw",
    [{"freeze": "stem"}, {"freeze": "stages:2", "freeze_bn": True}, {"backbone_lr_scale": 0.1}],
)
def test_resume_is_exact_with_transfer_settings(digit_halves, tmp_path, kw):
    cfg = _cfg(digit_halves / "b", init=str(digit_halves / "pre"), checkpoint_every=3, **kw)
    train(cfg, tmp_path / "full", progress=False, echo=False)
    train(cfg, tmp_path / "part", progress=False, echo=False, stop_after=5)
    train(cfg, tmp_path / "part", resume=True, progress=False, echo=False)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_transfer_inputs(digit_halves, tmp_path, image_folder):
    pre = str(digit_halves / "pre")
    with pytest.raises(WeightsError, match="weights do not fit resnet14: missing keys: layer1.1"):
        train(
            _cfg(digit_halves / "b", model="resnet14", init=pre),
            tmp_path / "x1",
            progress=False,
            echo=False,
        )
    with pytest.raises(WeightsError, match=r"unknown weights 'resnet8\.cifar1'|no such weights"):
        train(
            _cfg(digit_halves / "b", init="resnet8.cifar1"),
            tmp_path / "x2",
            progress=False,
            echo=False,
        )
    with pytest.raises(ConfigError, match="the model has 3 stages"):
        train(
            _cfg(digit_halves / "b", init=pre, freeze="stages:4"),
            tmp_path / "x3",
            progress=False,
            echo=False,
        )
    with pytest.raises(ConfigError, match="freeze='layer9'"):
        _cfg(digit_halves / "b", freeze="layer9")
    digits_run = tmp_path / "gray"
    train(
        build_config("digits", cli_values={"model": "resnet8", "epochs": 1.0, "iters": 0}),
        digits_run,
        progress=False,
        echo=False,
    )
    with pytest.raises(WeightsError, match="1-channel images, the data has 3"):
        train(
            _cfg(image_folder, init=str(digits_run), val_split=6, batch_size=8),
            tmp_path / "x4",
            progress=False,
            echo=False,
        )
