"""The wider family: ResNeXt, wide, pre-activation, DenseNet and the concatenating ResNet.

The generic suite (test_models.py) already runs every registered name; these tests check what
makes each family what it is."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from resnets.errors import ConfigError
from resnets.inference import model_from_weights
from resnets.models import create_model, list_models
from resnets.models.catalogue import get_pretrained
from resnets.models.weights import read_weights
from resnets.train import build_config, train


def test_family_is_registered_and_listed():
    names = set(list_models())
    assert {
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "resnext29_8x64d",
        "resnext29_16x64d",
        "wrn_28_10",
        "preact_resnet110",
        "preact_resnet164",
        "preact_resnet1001",
        "preact_resnet50",
        "densenet121",
        "densenet_bc_100_12",
        "concat20",
        "concat56",
    } <= names
    assert list_models("wrn_10_2") == ["wrn_10_2"]  # any WRN-d-k by name
    with pytest.raises(ConfigError, match="6n\\+4"):
        create_model("wrn_11_2")
    for n in ("resnext50_32x4d.tv2_in1k", "wide_resnet50_2.tv_in1k", "densenet121.tv_in1k"):
        assert get_pretrained(n).meta.params == sum(
            p.numel() for p in create_model(n.split(".")[0]).parameters()
        )


def test_torchvision_layouts_of_grouped_and_wide_bottlenecks():
    sd = create_model("resnext50_32x4d").state_dict()
    # 32 groups x 4 channels at the first stage: the 3x3 sees 128 / 32 = 4 channels per filter
    assert sd["layer1.0.conv1.weight"].shape == (128, 64, 1, 1)
    assert sd["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)
    assert sd["layer4.2.conv2.weight"].shape == (1024, 32, 3, 3)
    assert sd["layer1.0.conv3.weight"].shape == (256, 128, 1, 1)
    assert len(sd) == 320  # as resnet50: only shapes differ
    wide = create_model("wide_resnet50_2").state_dict()
    assert wide["layer1.0.conv2.weight"].shape == (128, 128, 3, 3)
    assert wide["layer4.0.conv3.weight"].shape == (2048, 1024, 1, 1)
    with pytest.raises(ConfigError, match="bottleneck only"):
        create_model("resnet18", groups=2)


def _bottleneck_reference(sd, prefix, x, groups, stride):
    """A block computed from its state_dict with torch.nn.functional only (eval-mode BN)."""

    def bn(t, p):
        return F.batch_norm(
            t,
            sd[p + ".running_mean"],
            sd[p + ".running_var"],
            sd[p + ".weight"],
            sd[p + ".bias"],
            False,
            0.0,
            1e-5,
        )

    out = F.relu(bn(F.conv2d(x, sd[prefix + "conv1.weight"]), prefix + "bn1"))
    out = F.conv2d(out, sd[prefix + "conv2.weight"], stride=stride, padding=1, groups=groups)
    out = F.relu(bn(out, prefix + "bn2"))
    out = bn(F.conv2d(out, sd[prefix + "conv3.weight"]), prefix + "bn3")
    short = x
    if prefix + "downsample.0.weight" in sd:
        short = bn(
            F.conv2d(x, sd[prefix + "downsample.0.weight"], stride=stride), prefix + "downsample.1"
        )
    return F.relu(out + short)


def test_resnext_block_computes_what_its_torchvision_keys_say():
    torch.manual_seed(0)
    m = create_model("resnext50_32x4d").eval()
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    sd = m.state_dict()
    x = torch.randn(2, 256, 16, 16)
    with torch.no_grad():
        ours = m.layer2[0](x)
        ref = _bottleneck_reference(sd, "layer2.0.", x, groups=32, stride=2)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_torchvision_densenet_file_with_legacy_keys_loads_strictly(tmp_path):
    torch.manual_seed(0)
    m = create_model("densenet121").eval()
    sd = m.state_dict()
    assert "features.denseblock1.denselayer1.norm1.weight" in sd
    assert "features.transition3.conv.weight" in sd and "features.norm5.running_var" in sd
    assert sd["classifier.weight"].shape == (1000, 1024)
    # torchvision's published file keeps its old dotted names: denselayer1.norm.1.weight
    legacy = {
        k.replace("norm1.", "norm.1.")
        .replace("conv1.", "conv.1.")
        .replace("norm2.", "norm.2.")
        .replace("conv2.", "conv.2.")
        if ".denselayer" in k
        else k: v
        for k, v in sd.items()
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    torch.save(legacy, tmp_path / "densenet121-00000000.pth")
    back, meta = read_weights(tmp_path / "densenet121-00000000.pth")
    assert meta is None and set(back) == set(sd)
    net, _ = model_from_weights(tmp_path / "densenet121-00000000.pth", model="densenet121")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), m(x))


def test_densenet_stages_backbone_and_head():
    m = create_model("densenet121", features_only=True).eval()
    assert m.feature_info.channels() == [256, 512, 1024, 1024]
    assert m.feature_info.reduction() == [4, 8, 16, 32]
    assert not any(k.startswith("classifier.") for k in m.state_dict())
    cifar = create_model("densenet_bc_100_12", num_classes=3)
    assert cifar.feature_info.channels() == [24, 216, 300, 342]  # 24 + 16 x 12, half + 192, ...
    cifar.reset_classifier(5)
    assert cifar.classifier.out_features == 5
    assert cifar(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_preact_unit_with_zero_residual_is_the_identity():
    """Identity Mappings, Eq. 4: with F = 0 a unit passes x on unchanged; no ReLU after the
    sum (the original unit would give relu(x))."""
    m = create_model("preact_resnet164").eval()
    x = torch.randn(2, 64, 8, 8)
    unit = copy.deepcopy(m.layer1[1])
    torch.nn.init.zeros_(unit.conv3.weight)
    with torch.no_grad():
        assert torch.equal(unit(x), x)
    # the last stage is followed by BN-ReLU, and forward_features includes it
    with torch.no_grad():
        feats = m.forward_features(torch.randn(2, 3, 32, 32))
    assert (feats >= 0).all() and feats.shape == (2, 256, 8, 8)


def test_wide_resnet_dropout_is_on_in_training_only():
    torch.manual_seed(0)
    m = create_model("wrn_10_2", dropout=0.3)
    x = torch.randn(4, 3, 32, 32)
    m.train()
    with torch.no_grad():
        a, b = m(x), m(x)
    assert not torch.equal(a, b)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
    with pytest.raises(ConfigError, match="dropout"):
        create_model("wrn_10_2", dropout=1.5)


def test_concatenating_block_keeps_its_input_and_grows_by_the_stage_width():
    m = create_model("concat20").eval()
    blk = m.layer1[0]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        out = blk(x)
    assert out.shape == (2, 32, 8, 8) and torch.equal(out[:, :16], x)
    # n=3 blocks per stage: 16 -> 64, transition to 32 -> 128, transition to 64 -> 256
    assert m.feature_info.channels() == [16, 64, 128, 256]
    narrow = create_model("concat20", base_width=10)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "name",
    [
        "concat20",
        "wrn_10_1",
        # the two deepest take most of this test's time: in the full suite only
        pytest.param("preact_resnet110", marks=pytest.mark.slow),
        pytest.param("densenet_bc_100_12", marks=pytest.mark.slow),
    ],
)
def test_family_members_train_with_the_trainer(name, tmp_path):
    # the paper's ResNet-110 warm-up (lr 0.01 until training error < 80%, section 4.2) would
    # take most of two epochs here: it is off (the warm-up has its own tests in tests/train).
    # The two deep ones take batches of 32, so that fewer images make enough steps (measured
    # on Zen 3: preact-110 at 24.5% validation error after 2 such epochs, 41% after 3 of 128;
    # DenseNet-BC-100 at 18.7% after one)
    values = {"model": name, "epochs": 2.0, "iters": 0, "warmup": "off"}
    if name == "preact_resnet110":
        values["batch_size"] = 32
    if name == "densenet_bc_100_12":
        values.update(epochs=1.0, batch_size=32)
    cfg = build_config("digits", cli_values=values)
    res = train(cfg, tmp_path / "run", progress=False, echo=False)
    assert res.iters > 0 and res.stopped is None
    assert res.final_val_err < 0.6  # 10 classes (chance: 90% error): it learned something
    net, meta = model_from_weights(tmp_path / "run")
    assert meta.model == name and type(net).__name__ == type(create_model(name)).__name__
