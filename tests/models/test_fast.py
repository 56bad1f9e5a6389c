"""The compact residual net of the fast-cifar recipe: whitening stem, twins, shortcut C."""

from __future__ import annotations

import torch

from resnets.models import FastResNet, count_macs, count_params, create_model, get_spec, list_models


def test_registered_with_a_plain_twin():
    assert {"fast_resnet8", "fast_plain8"} <= set(list_models(family="fast"))
    assert get_spec("fast_resnet8").residual and not get_spec("fast_plain8").residual
    assert isinstance(create_model("fast_resnet8"), FastResNet)


def test_size_and_cost():
    m = create_model("fast_resnet8")
    # 3 groups (64, 256, 256 filters) of two 3x3 convs + BN, 24 whitening biases, fc 256x10
    assert count_params(m) == 1_972_504
    assert count_macs(m, (1, 3, 32, 32)) == 145_684_768  # 3.6x ResNet-20, in a few wide layers


def test_plain_twin_has_same_parameters_and_differs_only_by_shortcuts():
    torch.manual_seed(0)
    r = create_model("fast_resnet8").eval()
    torch.manual_seed(0)
    p = create_model("fast_plain8").eval()
    assert [n for n, _ in r.named_parameters()] == [n for n, _ in p.named_parameters()]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(r(x), p(x))
    # shortcut C: a 1x1 projection + BN on every block, as the paper's Table 3 option C
    c = create_model("fast_resnet8", shortcut="C")
    assert count_params(c) == count_params(r) + sum(w * w + 2 * w for w in (64, 256, 256))


def test_whitening_stem_whitens_the_training_patches():
    g = torch.Generator().manual_seed(0)
    # correlated channels, like natural images: a shared component plus a little noise
    base = torch.randn(64, 1, 16, 16, generator=g)
    x = torch.cat([base + 0.1 * torch.randn(64, 1, 16, 16, generator=g) for _ in range(3)], 1)
    m = create_model("fast_resnet8")
    m.init_from_data(x)
    w = m.stem.weight
    assert w.shape == (24, 3, 2, 2) and torch.allclose(w[:12], -w[12:])
    out = torch.nn.functional.conv2d(x, w[:12])  # the 12 whitened patch components
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    cov = torch.cov(flat.T)
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=0.05)
    # the whitening weights are a buffer: saved with the model, never trained
    assert "stem.weight" in m.state_dict()
    assert "stem.weight" not in dict(m.named_parameters())


def test_small_inputs_and_features():
    m = create_model("fast_resnet8", num_classes=3, in_chans=1).eval()
    x = torch.randn(2, 1, 8, 8)  # digits-sized: the ceil-mode pools keep a 1x1 map
    with torch.no_grad():
        assert m(x).shape == (2, 3)
        feats = m.forward_intermediates(x, indices=(1, 2, 3), intermediates_only=True)
        assert torch.equal(m.forward_features(x), feats[-1])
    assert [f.shape[1] for f in feats] == [64, 256, 256] and feats[-1].shape[1] == m.num_features
    m.reset_classifier(5)
    assert m(x).shape == (2, 5)
