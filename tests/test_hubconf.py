"""hubconf.py: every model and every named weights set through torch.hub.load (source local)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from resnets import create_model, list_models, load_weights
from resnets.models import list_pretrained

ROOT = str(Path(__file__).resolve().parents[1])


def test_every_model_and_weights_set_is_an_entry_point():
    """What torch.hub.list finds in a repository: the public callables of its hubconf."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", Path(ROOT) / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entries = {n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")}
    assert set(list_models()) <= entries and set(list_pretrained()) <= entries
    assert hubconf.dependencies


def test_weights_by_name_and_by_pretrained_model_are_the_shipped_ones():
    x = torch.randn(2, 3, 32, 32)
    expected = load_weights("resnet20.cifar10").model(x)
    for args, kwargs in ((("resnet20.cifar10",), {}), (("resnet20",), {"pretrained": True})):
        model = torch.hub.load(ROOT, *args, source="local", **kwargs)
        assert not model.training and model.weights_meta.classes[0] == "airplane"
        with torch.no_grad():
            assert torch.allclose(model(x), expected, atol=1e-6)


def test_untrained_models_take_the_builders_options():
    model = torch.hub.load(ROOT, "resnet56", source="local", num_classes=7)
    assert model.num_classes == 7
    torch.manual_seed(0)
    reference = create_model("resnet56", num_classes=7)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    with pytest.raises(ValueError, match="no named weights"):
        torch.hub.load(ROOT, "resnet110", source="local", pretrained=True)
    with pytest.raises(ValueError, match="would change the network"):
        torch.hub.load(ROOT, "resnet20", source="local", pretrained=True, num_classes=3)


def test_the_hub_takes_torchvisions_keywords():
    """Issue 44, H03: pretrained=True on a weights name, weights= and progress= as
    torchvision's builders take them; what cannot be honoured is one ValueError."""
    x = torch.randn(1, 3, 32, 32)
    expected = load_weights("resnet20.cifar10").model(x)
    for args, kwargs in (
        (("resnet20.cifar10",), {"pretrained": True}),
        (("resnet20.cifar10",), {"progress": False}),
        (("resnet20",), {"weights": "DEFAULT"}),
        (("resnet20",), {"weights": "cifar10", "progress": False}),
        (("resnet20",), {"weights": "resnet20.cifar10"}),
    ):
        model = torch.hub.load(ROOT, *args, source="local", **kwargs)
        with torch.no_grad():
            assert torch.allclose(model(x), expected, atol=1e-6), (args, kwargs)
    with pytest.raises(ValueError, match="use 'resnet20' untrained"):
        torch.hub.load(ROOT, "resnet20.cifar10", source="local", pretrained=False)
    with pytest.raises(ValueError, match="would change the network"):
        torch.hub.load(ROOT, "resnet20.cifar10", source="local", num_classes=3)
    with pytest.raises(ValueError, match="are for another model"):
        torch.hub.load(ROOT, "resnet20", source="local", weights="resnet32.cifar10")
