"""Class folders, the decoded cache, bad files and skipping."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import resnets.data.folder as folder
from resnets.data import load_dataset
from resnets.errors import DataError
from tests.conftest import make_image_folder


def test_folder_loads_sorted_classes(image_folder):
    d = load_dataset(str(image_folder), progress=False)
    assert d.classes == ["cat", "dog", "frog"]
    assert d.images.shape == (36, 16, 16, 3) and d.images.dtype == np.uint8
    assert np.bincount(d.labels).tolist() == [12, 12, 12]
    # the colour encodes the class: the right channel is bright
    assert d.images[d.labels == 1][..., 1].mean() > 150


def test_cache_is_reused_and_keyed_by_content(image_folder, monkeypatch):
    first = load_dataset(str(image_folder), progress=False)
    calls = []
    real = folder._decode_one
    monkeypatch.setattr(folder, "_decode_one", lambda a: calls.append(a) or real(a))
    second = load_dataset(str(image_folder), progress=False)
    assert calls == [] and second.fingerprint == first.fingerprint
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(second.images), np.asarray(first.images))
    # change one image's bytes: a new key, a new decode
    Image.new("RGB", (16, 16), (0, 0, 0)).save(image_folder / "cat" / "000.jpg")
    third = load_dataset(str(image_folder), progress=False)
    assert third.fingerprint != first.fingerprint and len(calls) == 36


def test_mixed_sizes_are_resized(tmp_path):
    root = tmp_path / "mixed"
    for c, size in (("a", (40, 30)), ("b", (20, 50))):
        (root / c).mkdir(parents=True)
        Image.new("RGB", size, (200, 10, 10)).save(root / c / "x.png")
    d = load_dataset(str(root), image_size=24, progress=False)
    assert d.images.shape == (2, 24, 24, 3)
    d = load_dataset(str(root), progress=False)  # non-uniform -> 256 default
    assert d.images.shape[1:] == (256, 256, 3)


def test_bad_files_error_or_skip(image_folder):
    (image_folder / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (image_folder / "frog" / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"broken\.jpg.*\(and 1 more bad files"):
        load_dataset(str(image_folder), progress=False)
    d = load_dataset(str(image_folder), skip_bad=True, progress=False)
    assert len(d) == 36 and len(d.skipped) == 2
    assert any("empty.png" in s for s in d.skipped)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="no such data folder"):
        load_dataset(str(tmp_path / "nope"), progress=False)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="no class subfolders"):
        load_dataset(str(tmp_path / "flat"), progress=False)
    root = make_image_folder(tmp_path / "ds", classes=("a", "b"), per_class=2)
    (root / "c").mkdir()
    with pytest.raises(DataError, match="empty class folder"):
        load_dataset(str(root), progress=False)


def test_parallel_decode_matches_serial(tmp_path):
    root = make_image_folder(tmp_path / "big", classes=("a", "b"), per_class=150, size=8)
    par = load_dataset(str(root), workers=2, cache=False, progress=False)
    ser = load_dataset(str(root), workers=1, cache=False, progress=False)
    np.testing.assert_array_equal(par.images, ser.images)


def test_data_fingerprints_name_what_load_dataset_gives_without_decoding(tmp_path, monkeypatch):
    """At every size and in every mode, ``data_fingerprints`` gives the loader's fingerprint
    and aliases (what weights record at their training size), and decodes no image."""
    from resnets.data import data_fingerprints
    from resnets.data.stream import write_shards
    from tests.conftest import make_cifar_archive

    root = make_image_folder(tmp_path / "imgs")
    archive = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    write_shards(str(root), tmp_path / "shards", shard_size=10, progress=False)
    cases = [
        (str(root), "train", size, mode) for size in (0, 16, 24) for mode in ("memory", "stream")
    ]
    cases += [("digits", "train", size, "auto") for size in (0, 8, 12)]
    cases += [
        (f"cifar10:{archive}", split, size, "auto")
        for split in ("train", "test")
        for size in (0, 40)
    ]
    cases += [(str(tmp_path / "shards"), "train", size, "auto") for size in (0, 24)]
    loaded = {
        case: load_dataset(case[0], case[1], image_size=case[2], mode=case[3], progress=False)
        for case in cases
    }

    def no_decoding(*args, **kwargs):
        raise AssertionError("data_fingerprints decoded an image")

    monkeypatch.setattr(folder, "_decode_one", no_decoding)
    monkeypatch.setattr("resnets.data.load.resize_short_center_crop", no_decoding)
    for (spec, split, size, mode), data in loaded.items():
        found = data_fingerprints(spec, split, image_size=size, mode=mode)
        assert found == (data.fingerprint, *data.aliases), (spec, split, size, mode)
    # the native size by 0 and by number are one set of images; another size is not
    native, by_number, larger = (data_fingerprints(str(root), image_size=s) for s in (0, 16, 24))
    assert set(native) == set(by_number) and not set(larger) & set(native)


def test_scan_keeps_pathlibs_order_and_relative_names(tmp_path):
    """Files are listed in pathlib's order, part by part (the order splits and fingerprints
    were recorded in), not the strings' (as strings, 'x-1.png' would sort before 'x/1.png')."""
    from pathlib import Path

    root = tmp_path / "data"
    for rel in ("a/x/1.png", "a/x-1.png", "a/x.png", "a/x0/2.png", "b/z.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(root / rel)
    classes, files = folder.scan_folder(root)
    assert classes == ["a", "b"]
    paths = [p for p, _ in files]
    assert paths == sorted(paths) and all(isinstance(p, Path) for p in paths)
    names = folder.relative_names(root, paths)
    assert names == ["a/x/1.png", "a/x-1.png", "a/x.png", "a/x0/2.png", "b/z.png"]
    assert names == [p.relative_to(root).as_posix() for p in paths]
