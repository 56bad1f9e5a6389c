"""Image decoding: every mode becomes correct RGB; bad files are clear errors naming the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from resnets.data.images import decode_image, resize_short_center_crop
from resnets.errors import DataError


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_grayscale_and_bilevel():
    g = Image.fromarray(np.full((4, 5), 77, np.uint8), "L")
    out = decode_image(_png(g))
    assert out.shape == (4, 5, 3) and (out == 77).all()
    b = Image.new("1", (3, 3), 1)
    assert (decode_image(_png(b)) == 255).all()


def test_palette_with_and_without_transparency():
    p = Image.new("P", (2, 2))
    p.putpalette([10, 20, 30] + [0] * 765)
    assert (decode_image(_png(p)) == [10, 20, 30]).all()
    t = Image.new("P", (2, 2))
    t.putpalette([10, 20, 30] + [0] * 765)
    data = _png(t, transparency=0)  # index 0 fully transparent -> white background
    assert (decode_image(data) == 255).all()


def test_rgba_is_composited_over_white():
    a = np.zeros((2, 2, 4), np.uint8)
    a[..., 0] = 200  # red
    a[..., 3] = 128  # half transparent
    out = decode_image(_png(Image.fromarray(a, "RGBA")))
    # 200*a + 255*(1-a), a = 128/255
    assert abs(int(out[0, 0, 0]) - 227) <= 1 and abs(int(out[0, 0, 1]) - 127) <= 1
    la = Image.fromarray(
        np.stack([np.full((2, 2), 0, np.uint8), np.zeros((2, 2), np.uint8)], -1), "LA"
    )
    assert (decode_image(_png(la)) == 255).all()  # fully transparent black -> white


def test_cmyk_and_16_bit():
    c = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(_png(c, "JPEG", quality=95))
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 60
    i16 = Image.fromarray(np.full((3, 3), 65535, np.uint16))
    assert i16.mode.startswith("I;16")
    assert (decode_image(_png(i16)) == 255).all()
    half = Image.fromarray(np.full((3, 3), 32896, np.uint16))
    assert (decode_image(_png(half)) == 128).all()


def test_exif_orientation_is_applied():
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[:, 0] = 255  # white left column
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = decode_image(_png(img, "JPEG", exif=exif.tobytes(), quality=100))
    assert out.shape == (4, 2, 3)
    assert out[0].mean() > 200  # the white column became the top row


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.jpg: empty file"):
        decode_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(DataError, match="notes.jpg: not an image"):
        decode_image(text)
    good = _png(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="trunc.jpg: corrupt or truncated"):
        decode_image(trunc)
    with pytest.raises(DataError, match="missing.png: cannot read"):
        decode_image(tmp_path / "missing.png")


def test_decompression_bomb_is_refused(monkeypatch):
    import resnets.data.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    with pytest.raises(DataError, match="decompression bomb"):
        decode_image(_png(Image.new("L", (20, 20))), name="bomb.png")


def test_resize_short_center_crop():
    a = np.zeros((40, 80, 3), np.uint8)
    out = resize_short_center_crop(a, 20)
    assert out.shape == (20, 20, 3)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_only_raise_data_error(data):
    try:
        out = decode_image(data, name="fuzz")
    except DataError:
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 400))
def test_fuzz_corrupted_real_images(noise, where):
    base = bytearray(_png(Image.new("RGB", (16, 16), (9, 99, 199)), "PNG"))
    base[where % len(base) : where % len(base) + len(noise)] = noise
    try:
        decode_image(bytes(base), name="fuzz.png")
    except DataError:
        pass


class PlantedBug(Exception):
    """An exception decode_image does not expect: a fuzz must let it through, not swallow it."""


def _plant_in_image_open(monkeypatch) -> None:
    """A bug in decoding that only some inputs reach (those of odd length)."""
    real_open = Image.open

    def planted(fp, *args, **kwargs):
        if len(fp.getvalue()) % 2:
            raise PlantedBug("planted bug")
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", planted)


def test_negative_control_the_decode_fuzzes_find_a_planted_bug(monkeypatch):
    """Both decode fuzzes above reach the decoder and let an unexpected exception through."""
    _plant_in_image_open(monkeypatch)
    with pytest.raises(PlantedBug):
        test_fuzz_random_bytes_only_raise_data_error()
    with pytest.raises(PlantedBug):
        test_fuzz_corrupted_real_images()


def test_extreme_aspect_images_are_resized_without_a_huge_intermediate():
    """A 115-byte 10000x1 PNG: the central square is resized, never the 2.5-gigapixel whole."""
    import tracemalloc

    buf = io.BytesIO()
    Image.new("RGB", (10000, 1), (10, 200, 30)).save(buf, "PNG")
    tracemalloc.start()
    out = resize_short_center_crop(decode_image(buf.getvalue(), "thin.png"), 256)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == (256, 256, 3) and (out == [10, 200, 30]).all()
    assert peak < 20e6


def test_centre_square_resize_matches_resize_then_crop():

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    arr = np.asarray(Image.fromarray(base).resize((400, 300), Image.BILINEAR))  # smooth content
    ours = resize_short_center_crop(arr, 150).astype(float)
    ref = np.asarray(Image.fromarray(arr).resize((200, 150), Image.BILINEAR))[:, 25:175].astype(
        float
    )
    assert np.abs(ours - ref).mean() < 2.0  # the same view, up to resampling


def test_a_float_image_with_a_non_finite_pixel_is_an_error_not_black(tmp_path):
    arr = np.full((8, 8), 0.5, np.float32)
    arr[2, 3] = np.nan
    Image.fromarray(arr, mode="F").save(tmp_path / "nan.tiff")
    with pytest.raises(DataError, match=r"nan\.tiff: 1 pixel\(s\) are not finite"):
        decode_image(tmp_path / "nan.tiff")
    arr[2, 3] = np.inf
    Image.fromarray(arr, mode="F").save(tmp_path / "inf.tiff")
    with pytest.raises(DataError, match="not finite"):
        decode_image(tmp_path / "inf.tiff")


def test_reading_never_reads_without_end(tmp_path):
    """A FIFO, /dev/zero and a 20 GB sparse file are refused by kind and size before a byte
    is read (each would otherwise block or fill the memory)."""
    import os

    os.mkfifo(tmp_path / "pipe.png")
    sparse = tmp_path / "huge.png"
    with open(sparse, "wb") as f:
        f.truncate(20 * 2**30)
    for path, msg in (
        (tmp_path / "pipe.png", "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (sparse, "over the"),
    ):
        with pytest.raises(DataError, match=msg):
            decode_image(path)


def test_image_size_is_applied_to_the_bundled_sets():
    from resnets.data import load_dataset

    base = load_dataset("digits", progress=False)
    big = load_dataset("digits", image_size=16, progress=False)
    assert base.images.shape[1:] == (8, 8, 1) and big.images.shape[1:] == (16, 16, 1)
    assert big.fingerprint != base.fingerprint and not big.is_data(base.fingerprint)
    # the resize keeps the picture: each enlarged digit, shrunk back, is close to the original
    small = big.images.reshape(-1, 8, 2, 8, 2, 1).mean(axis=(2, 4))
    assert np.corrcoef(small.ravel(), base.images.ravel().astype(float))[0, 1] > 0.9


def test_digits_are_scikit_learns_digits_read_without_importing_it(tmp_path, monkeypatch):
    """The digits table is read straight from scikit-learn's file (its import costs 1.4 s per
    process): the same images and labels as ``sklearn.datasets.load_digits``, and a broken
    table is a one-line error naming the file."""
    from sklearn.datasets import load_digits as sklearn_digits

    from resnets.data import load
    from resnets.data.load import load_digits

    ours, theirs = load_digits(), sklearn_digits()
    want = np.clip(np.rint(theirs.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    assert np.array_equal(ours.images[..., 0], want) and ours.images.shape == (1797, 8, 8, 1)
    assert np.array_equal(ours.labels, theirs.target) and ours.classes == [
        str(i) for i in range(10)
    ]
    bad = tmp_path / "digits.csv.gz"
    bad.write_bytes(b"not gzip")
    monkeypatch.setattr(load, "_digits_file", lambda: bad)
    with pytest.raises(DataError, match="digits.csv.gz: not a readable digits table"):
        load_digits()
