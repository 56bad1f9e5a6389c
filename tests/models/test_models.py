"""The generic model suite, parametrized over every registered model."""

from __future__ import annotations

import pytest
import torch

import resnets
from resnets.models import (
    ResNet,
    ZeroPadShortcut,
    count_macs,
    count_params,
    create_model,
    get_spec,
    list_models,
)

from ..conftest import built_for_counting

ALL = list_models()
# the deepest nets are slow on 2 CPU cores; they get the same checks on a smaller input
HEAVY = {
    "resnet1202",
    "plain1202",
    "resnet152",
    "plain152",
    "resnet101",
    "plain101",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "resnext29_8x64d",
    "resnext29_16x64d",
    "wrn_28_10",
    "preact_resnet1001",
    "resnet1001",
    "preact_resnet152",
    "preact_resnet101",
    "densenet201",
    "densenet169",
}

PAPER_PARAMS = {
    # torchvision's counts, which ours must equal exactly
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    # CIFAR nets with option A shortcuts (paper Table 6: 0.27M ... 19.4M)
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
    # the family (issue 13): torchvision's counts exactly, the papers' to their rounding
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}
PAPER_ROUNDED = {
    # name: (millions as the paper prints them, the paper's table)
    "resnext29_8x64d": (34.4, "Xie et al. 2017, Table 7"),
    "resnext29_16x64d": (68.1, "Xie et al. 2017, Table 7"),  # 68.16 M here
    "wrn_28_10": (36.5, "Zagoruyko & Komodakis 2016, Table 1"),
    "preact_resnet110": (1.7, "He et al. 2016b, Table 3"),
    "preact_resnet164": (1.7, "He et al. 2016b, Table 3"),
    "preact_resnet1001": (10.2, "He et al. 2016b, Table 3"),  # 10.33 M here
    "densenet_bc_100_12": (0.8, "Huang et al. 2017, Table 2"),
}


def _input(name: str, batch: int = 2) -> torch.Tensor:
    spec = get_spec(name)
    size = 32 if spec.family == "cifar" else 64
    if name in HEAVY:  # half the side: every stage still halves a map of at least 2x2
        size //= 2
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_registry_lists_every_paper_model():
    expected = {f"resnet{d}" for d in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110, 1202)}
    expected |= {f"plain{d}" for d in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110)}
    assert expected <= set(ALL)
    assert set(list_models("plain*")) == {n for n in ALL if n.startswith("plain")}
    assert all(not get_spec(n).residual for n in list_models(plain=True))


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_parameter_counts_match_the_tables(name):
    assert count_params(built_for_counting(name)) == PAPER_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PAPER_ROUNDED))
def test_family_parameter_counts_match_the_papers(name):
    millions, _table = PAPER_ROUNDED[name]
    # the papers print one decimal; 1001 and 16x64d come out 0.1 M above theirs
    assert abs(count_params(built_for_counting(name)) / 1e6 - millions) <= 0.14


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in ALL]
)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=7)
    x = _input(name, batch=2)
    out = m(x)
    assert out.shape == (2, 7)
    out.float().logsumexp(1).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
    if name == "plain1202":
        # a 1202-layer plain BN net: gradients explode towards the input (the optimisation
        # problem the paper is about); residual twins stay finite, checked below for them
        return
    bad = [n for n, p in m.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"parameters with a non-finite gradient: {bad[:5]}"
    zero = [n for n, p in m.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f"parameters with an all-zero gradient: {zero[:5]}"


@pytest.mark.parametrize("name", [n for n in ALL if n not in HEAVY])
def test_seeded_construction_and_forward_are_deterministic(name):
    torch.manual_seed(123)
    a = create_model(name).eval()
    torch.manual_seed(123)
    b = create_model(name).eval()
    x = _input(name)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "plain20", "resnet1202"])
def test_in_chans_num_classes_and_features(name):
    m = create_model(name, num_classes=3, in_chans=1).eval()
    spec = get_spec(name)
    size = 32 if spec.family == "cifar" else 64
    x = torch.randn(1, 1, size, size)
    with torch.no_grad():
        logits = m(x)
        assert logits.shape == (1, 3)
        final, feats = m.forward_intermediates(x)
        # timm's meanings: forward_features is the final map, forward_head pools + classifies
        # (resnet1202 in eval mode at init overflows to NaN: compare NaN as equal)
        torch.testing.assert_close(m.forward_features(x), final, equal_nan=True, rtol=0, atol=0)
        torch.testing.assert_close(m.forward_head(final), logits, equal_nan=True)
        pooled = m.forward_head(final, pre_logits=True)
        assert pooled.shape == (1, m.num_features)
        only = m.forward_intermediates(x, indices=2, intermediates_only=True)
    assert len(feats) == len(m.stage_names) + 1  # the stem, then every stage
    assert feats[-1].shape[1] == m.num_features and feats[-1] is final
    assert [t.shape for t in only] == [t.shape for t in feats[-2:]]
    m.reset_classifier(5)
    assert m(x).shape == (1, 5)


def test_torchvision_state_dict_layout():
    """Key names and count equal torchvision's (122 for resnet18, 320 for resnet50)."""
    sd18 = create_model("resnet18").state_dict()
    sd50 = create_model("resnet50").state_dict()
    assert len(sd18) == 122 and len(sd50) == 320
    for k in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked",
        "layer4.1.bn2.bias",
        "fc.weight",
        "fc.bias",
    ):
        assert k in sd18, k
    assert "layer1.0.downsample.0.weight" in sd50  # 64 -> 256 channels: projection under option B
    assert sd50["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert sd50["fc.weight"].shape == (1000, 2048)


def test_shortcut_options():
    a = create_model("resnet20", shortcut="A")
    b = create_model("resnet20", shortcut="B")
    c = create_model("resnet20", shortcut="C")
    pa, pb, pc = count_params(a), count_params(b), count_params(c)
    assert pa < pb < pc
    # A is parameter-free: the two stage transitions use zero-padding
    assert sum(isinstance(m, ZeroPadShortcut) for m in a.modules()) == 2
    # B projects exactly where the shape changes (2 transitions); C on every block (9)
    assert sum(blk.downsample is not None for blk in b.blocks()) == 2
    assert sum(blk.downsample is not None for blk in c.blocks()) == 9
    # ImageNet with A: no downsample keys at all
    assert not [k for k in create_model("resnet18", shortcut="A").state_dict() if "downsample" in k]


def test_zero_pad_shortcut_values():
    sc = ZeroPadShortcut(2, 4, 2)
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).view(2, 2, 4, 4)
    y = sc(x)
    assert y.shape == (2, 4, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 2:]) == 0


def test_plain_nets_have_no_shortcuts_and_differ_from_residual():
    plain = create_model("plain20")
    assert all(not blk.residual and blk.downsample is None for blk in plain.blocks())
    assert count_params(plain) == count_params(create_model("resnet20"))  # option A adds nothing
    projections = (64 * 128 + 128 * 256 + 256 * 512) + 2 * (128 + 256 + 512)  # 1x1 convs + BN
    assert count_params(create_model("plain18")) == 11_689_512 - projections


def test_zero_init_residual_makes_blocks_identity():
    m = create_model("resnet20", zero_init_residual=True).eval()
    for blk in m.blocks():
        assert torch.count_nonzero(blk.bn2.weight) == 0
    blk = m.layer1[1]
    x = torch.relu(torch.randn(1, 16, 8, 8))
    with torch.no_grad():
        assert torch.allclose(blk(x), x)


def test_bottleneck_stride_placement():
    v15 = create_model("resnet50")
    orig = create_model("resnet50", stride_in_1x1=True)
    assert v15.layer2[0].conv2.stride == (2, 2) and v15.layer2[0].conv1.stride == (1, 1)
    assert orig.layer2[0].conv1.stride == (2, 2) and orig.layer2[0].conv2.stride == (1, 1)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert orig.eval()(x).shape == v15.eval()(x).shape


def test_macs_resnet50_is_4_09_g():
    assert round(count_macs(create_model("resnet50"), (1, 3, 224, 224)) / 1e9, 2) == 4.09


def test_any_6n_plus_2_depth_and_name_errors():
    assert count_params(create_model("resnet8")) < count_params(create_model("resnet14"))
    assert (
        get_spec("cifar_resnet50").family == "cifar" and get_spec("resnet50").family == "imagenet"
    )
    with pytest.raises(resnets.ConfigError, match="6n\\+2"):
        create_model("resnet21")
    with pytest.raises(resnets.ConfigError, match="did you mean"):
        create_model("resnt50")
    with pytest.raises(resnets.ConfigError, match="shortcut"):
        create_model("resnet20", shortcut="D")
    with pytest.raises(resnets.ConfigError):
        ResNet("basic", (1, 1), widths=(16, 32, 64))


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "plain20", "fast_resnet8"])
def test_torch_export_roundtrip(name):
    m = create_model(name).eval()
    x = _input(name, 1)
    ep = torch.export.export(m, (x,))
    with torch.no_grad():
        assert torch.allclose(ep.module()(x), m(x), atol=1e-5)


def test_the_recorded_costs_are_every_models_measured_costs():
    """`resnets models` reads params and MACs from a table instead of building 56 models;
    the table must hold every registered model with the counts a fresh build gives."""
    from resnets.models import list_models
    from resnets.models.summary import measure_cost, recorded_costs

    table = recorded_costs()
    assert sorted(table) == sorted(list_models())
    for name in table:
        assert table[name] == measure_cost(name), name
    # and the registry's facts `resnets models` lists from it, in the registry's order
    from resnets.models import get_spec
    from resnets.models.index import model_index

    index = model_index()
    assert list(index) == list_models()
    for name, entry in index.items():
        spec = get_spec(name)
        assert (entry.family, entry.depth, entry.kind, entry.input) == (
            spec.family,
            spec.depth,
            spec.kind,
            spec.default_image_size,
        ), name


def test_listing_the_models_imports_no_torch():
    """`resnets models` answers from the recorded index and `resnets weights list` from the
    catalogue and the shipped records' headers: no model built, torch not imported."""
    from ..conftest import cli_in_fresh_process

    printed, loaded = cli_in_fresh_process(
        ["models"], ["models", "plain*", "--json"], ["weights", "list"]
    )
    assert "torch" not in loaded
    assert "resnet1202" in printed and '"name": "plain18"' in printed
    assert "resnet32.cifar10" in printed
