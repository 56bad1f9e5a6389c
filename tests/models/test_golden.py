"""Every weights set shipped in the package gives its committed logits on the golden input
(tests/models/golden.py): a change to a model, its loader or its preprocessing that moves the
numbers fails here, without ``../shared``."""

from __future__ import annotations

import json

import pytest
import torch

from tests.models.golden import ATOL, GOLDEN, RTOL, golden_images, logits_of, shipped

RECORDED = json.loads(GOLDEN.read_text())


def test_every_shipped_weights_set_has_golden_logits():
    assert sorted(RECORDED) == sorted(shipped())


def test_the_golden_input_is_fixed():
    images = golden_images()
    assert images.shape == (4, 32, 32, 3) and images.dtype.name == "uint8"
    # a few pixels by hand: image 0 at the origin is (sin 0, cos 0, 0) -> (128, 255, 0)
    assert images[0, 0, 0].tolist() == [128, 255, 0]
    assert int(images.astype(int).sum()) == int(golden_images().astype(int).sum())


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_shipped_weights_give_their_golden_logits(name):
    got = logits_of(name)
    want = torch.tensor(RECORDED[name])
    assert got.shape == want.shape == (4, 10)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    # and the prediction, which any tolerance must keep
    assert got.argmax(1).tolist() == want.argmax(1).tolist()


def test_a_moved_weight_fails_the_comparison():
    """Negative control: the tolerance is tight enough to see one BN statistic nudged."""
    from resnets.inference import load_weights

    name = sorted(RECORDED)[0]
    loaded = load_weights(name)
    bn = next(m for m in loaded.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        bn.running_mean += 0.01
    views = loaded.views
    batch = torch.cat([views.image(img)[1] for img in golden_images()])
    with torch.inference_mode():
        moved = loaded.logits(batch)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(moved, torch.tensor(RECORDED[name]), rtol=RTOL, atol=ATOL)
