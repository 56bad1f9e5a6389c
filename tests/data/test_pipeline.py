"""Splits, statistics, batch augmentations and the seeded batch stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnets.data import AugmentSpec, BatchStream, channel_stats, stratified_split
from resnets.data.augment import cifar_train, resized_crop_train, ten_crop
from resnets.errors import ConfigError


def test_stratified_split_is_exact_seeded_and_disjoint():
    labels = np.repeat(np.arange(10), 500)
    tr, va = stratified_split(labels, 500, seed=3)
    assert len(va) == 500 and len(tr) == 4500
    assert np.bincount(labels[va]).tolist() == [50] * 10
    assert not set(tr) & set(va)
    tr2, va2 = stratified_split(labels, 500, seed=3)
    np.testing.assert_array_equal(va, va2)
    _, va3 = stratified_split(labels, 500, seed=4)
    assert not np.array_equal(va, va3)
    _, frac = stratified_split(labels, 0.1, seed=0)
    assert len(frac) == 500
    with pytest.raises(ConfigError):
        stratified_split(labels, 5000, seed=0)


def test_channel_stats():
    imgs = np.zeros((4, 2, 2, 3), np.uint8)
    imgs[..., 0] = [[[0]], [[0]], [[255]], [[255]]]  # type: ignore[index]
    mean, std = channel_stats(imgs, np.arange(4))
    assert mean[0] == pytest.approx(127.5) and std[0] == pytest.approx(127.5)
    assert std[1] == 1.0  # constant channel: clamped, never divide by ~0


def test_cifar_augment_is_a_shifted_flipped_copy():
    x = (
        torch.arange(32 * 32, dtype=torch.int32)
        .view(1, 32, 32, 1)
        .to(torch.uint8)
        .repeat(64, 1, 1, 3)
    )
    g = torch.Generator().manual_seed(0)
    y = cifar_train(x, g)
    assert y.shape == x.shape and y.dtype == torch.uint8
    # every output row equals a (possibly flipped) window of the zero-padded input
    pad = torch.nn.functional.pad(x, (0, 0, 4, 4, 4, 4))
    for i in range(8):
        found = False
        for oy in range(9):
            for ox in range(9):
                win = pad[i, oy : oy + 32, ox : ox + 32]
                if torch.equal(win, y[i]) or torch.equal(win.flip(1), y[i]):
                    found = True
        assert found


def _coordinate_images(n: int, size: int) -> torch.Tensor:
    """Channel 0 holds each pixel's column (0..1), channel 1 its row: a crop's output then
    shows which part of the image it took, and whether it was mirrored."""
    ramp = torch.linspace(0, 1, size)
    col = ramp.view(1, 1, 1, size).expand(n, 1, size, size)
    row = ramp.view(1, 1, size, 1).expand(n, 1, size, size)
    return torch.cat([col, row], 1).contiguous()


def _spans(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed width and height of each crop, as fractions of the image side."""
    w = (out[:, 0, :, -1] - out[:, 0, :, 0]).mean(1)
    h = (out[:, 1, -1, :] - out[:, 1, 0, :]).mean(1)
    return w, h


def test_scale_augmentation_takes_square_crops_of_the_paper_scales():
    # paper 3.4: resize the short side to S ~ U[S0, S1], take an out_size crop: a square crop of
    # fraction out_size / S of the side (48/96 .. 48/64 here), mirrored half of the time
    g = torch.Generator().manual_seed(0)
    out = resized_crop_train(_coordinate_images(400, 64), g, 48, mode="scale", short_side=(64, 96))
    w, h = _spans(out)
    assert torch.allclose(w.abs(), h, atol=0.01)  # square crops
    assert h.min() > 0.48 and h.max() < 0.76  # 48/96 .. 48/64 of the side
    assert 0.4 < (w < 0).float().mean() < 0.6  # about half mirrored


def test_rrc_takes_crops_of_random_area_and_aspect():
    g = torch.Generator().manual_seed(0)
    out = resized_crop_train(_coordinate_images(400, 64), g, 48, mode="rrc")
    w, h = _spans(out)
    aspect = w.abs() / h
    assert aspect.min() < 0.8 and aspect.max() > 1.25  # ratios of 3/4 .. 4/3, unlike scale
    assert aspect.min() > 0.74 and aspect.max() < 1.34
    assert (w.abs() * h).min() < 0.12 and (w.abs() * h).max() > 0.8  # areas 8% .. 100%
    assert 0.4 < (w < 0).float().mean() < 0.6


def test_resized_crop_and_ten_crop_shapes():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    assert resized_crop_train(x, g, 48, mode="rrc").shape == (3, 3, 48, 48)
    assert resized_crop_train(x, g, 48, mode="scale", short_side=(64, 96)).shape == (3, 3, 48, 48)
    assert ten_crop(x, 56).shape == (10, 3, 3, 56, 56)
    v = ten_crop(torch.rand(2, 3, 32, 32), 32)
    assert v.shape == (10, 2, 3, 32, 32)
    assert torch.equal(v[5], v[0].flip(-1))


def test_ten_crop_cuts_the_corners_the_centre_and_their_mirrors():
    """Each pixel holds 100 x row + column, so a view's first pixel names where it was cut."""
    rows, cols = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    image = (100 * rows + cols).expand(1, 1, 6, 6)
    views = ten_crop(image, 4)  # 6x6 > 4: no padding; corners at rows/cols 0 and 2
    firsts = [int(v[0, 0, 0, 0]) for v in views]
    # top-left, top-right, bottom-left, bottom-right, centre; then the mirrors, whose first
    # pixel is the view's top-right one
    assert firsts == [0, 2, 200, 202, 101, 3, 5, 203, 205, 104]
    assert views[4][0, 0].tolist() == [
        [101, 102, 103, 104],
        [201, 202, 203, 204],
        [301, 302, 303, 304],
        [401, 402, 403, 404],
    ]


def test_ten_crop_pads_images_no_larger_than_the_crop():
    """CIFAR: a 4x4 image padded by 1 is 6x6; the top-left view starts in the black padding and
    holds the image from its second row and column, as the training crops' extremes do."""
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    image = (1 + 10 * rows + cols).expand(1, 1, 4, 4)  # no pixel is 0
    views = ten_crop(image, 4, pad=1)
    top_left, centre = views[0][0, 0], views[4][0, 0]
    assert top_left[0].tolist() == [0, 0, 0, 0] and top_left[:, 0].tolist() == [0, 0, 0, 0]
    assert top_left[1].tolist() == [0, 1, 2, 3]
    assert torch.equal(centre, image[0, 0])  # centred: the unpadded image itself
    bottom_right = views[3][0, 0]
    assert bottom_right[0].tolist() == [12, 13, 14, 0] and bottom_right[3].tolist() == [0] * 4


def _stream(workers: int) -> BatchStream:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (300, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, 300)
    return BatchStream(
        imgs,
        labels,
        np.arange(20, 300),
        32,
        seed=7,
        mean=[100.0] * 3,
        std=[50.0] * 3,
        augment=AugmentSpec("cifar", pad=2),
        workers=workers,
    )


def test_batches_are_a_pure_function_of_seed_epoch_step():
    s0, s2 = _stream(0), _stream(2)
    e0 = list(s0.epoch(1))
    e2 = list(s2.epoch(1))
    assert len(e0) == len(s0) == 280 // 32
    for (a, ya), (b, yb) in zip(e0, e2):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    # resuming in the middle of an epoch gives the same remaining batches
    tail = list(s0.epoch(1, start_step=5))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, e0[5:]))
    # another epoch: another order
    assert not torch.equal(next(iter(s0.epoch(2)))[1], e0[0][1])


def test_epoch_order_never_touches_global_rng():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    list(_stream(0).epoch(0))
    assert torch.equal(before, torch.get_rng_state())
