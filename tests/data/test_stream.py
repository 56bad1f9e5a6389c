"""Streaming data: fast JPEG decoding with a Pillow fallback, WebDataset tar shards, lazy batches."""

from __future__ import annotations

import copy
import io
import json
import re
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from resnets.cli import main
from resnets.data import AugmentSpec, BatchStream, decode_image, load_dataset
from resnets.data.stream import (
    decode_bytes,
    jpeg_decoder,
    read_shard_meta,
    stream_folder,
    verify_shards,
    write_shards,
)
from resnets.errors import DataError
from tests.conftest import make_image_folder


def _jpeg(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _photo(h=48, w=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 4, y * 5, (x + y) * 2], -1) % 256
    return np.clip(base + rng.integers(-10, 10, (h, w, 3)), 0, 255).astype(np.uint8)


def test_fast_decoder_matches_pillow_and_falls_back_where_it_must():
    assert jpeg_decoder() == "simplejpeg"  # installed by the test extra
    arr = _photo()
    data = _jpeg(arr)
    fast = decode_bytes(data, "a.jpg")
    ref = decode_image(data, "a.jpg")
    assert fast.shape == ref.shape == (48, 64, 3)
    # both are libjpeg-turbo; IDCT/upsampling choices may differ by a grey level or two
    assert np.abs(fast.astype(int) - ref.astype(int)).mean() < 1.0
    assert np.array_equal(decode_bytes(data, "a.jpg", decoder="pillow"), ref)
    # EXIF orientation: the fast decoders ignore it, so such files go through Pillow
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    rotated = _jpeg(arr, exif=exif.tobytes())
    out = decode_bytes(rotated, "r.jpg")
    assert out.shape == (64, 48, 3) and np.array_equal(out, decode_image(rotated, "r.jpg"))
    # CMYK JPEG (Adobe segment): Pillow's conversion
    buf = io.BytesIO()
    Image.fromarray(arr).convert("CMYK").save(buf, "JPEG")
    assert np.array_equal(decode_bytes(buf.getvalue(), "c.jpg"), decode_image(buf.getvalue()))
    # resized to a square, and PNGs always through Pillow
    assert decode_bytes(data, "a.jpg", size=32).shape == (32, 32, 3)
    png = io.BytesIO()
    Image.fromarray(arr).save(png, "PNG")
    assert np.array_equal(decode_bytes(png.getvalue(), "p.png"), arr)
    # a corrupt JPEG: Pillow's error, naming the file
    with pytest.raises(DataError, match="broken.jpg"):
        decode_bytes(data[:200], "broken.jpg")


def test_decoder_choice_by_environment(monkeypatch):
    monkeypatch.setenv("RESNETS_JPEG_DECODER", "pillow")
    assert jpeg_decoder() == "pillow"
    monkeypatch.setenv("RESNETS_JPEG_DECODER", "libjpeg9")
    with pytest.raises(DataError, match="RESNETS_JPEG_DECODER"):
        jpeg_decoder()


@pytest.fixture()
def folder(tmp_path):
    return make_image_folder(tmp_path / "imgs", per_class=10)


def test_shards_round_trip_and_verify(tmp_path, folder):
    meta = write_shards(folder, tmp_path / "shards", shard_size=7, progress=False)
    assert meta["samples"] == 30 and len(meta["shards"]) == 5
    assert verify_shards(tmp_path / "shards") == []
    mem = load_dataset(str(folder), mode="memory", progress=False)
    sh = load_dataset(str(tmp_path / "shards"), progress=False)  # auto: shards are streamed
    assert sh.streamed and not mem.streamed and sh.classes == mem.classes
    assert np.bincount(sh.labels).tolist() == np.bincount(mem.labels).tolist()
    # the same images, whatever the shuffled order: match them by content
    sh_imgs = sh.images[np.arange(len(sh))]
    mem_imgs = np.asarray(mem.images)
    for i in range(len(sh)):
        diffs = np.abs(mem_imgs.astype(int) - sh_imgs[i].astype(int)).mean(axis=(1, 2, 3))
        j = int(diffs.argmin())
        assert diffs[j] < 1.0 and mem.labels[j] == sh.labels[i]
    # a damaged shard is found by its checksum
    p = tmp_path / "shards" / "shard-000002.tar"
    b = bytearray(p.read_bytes())
    b[1000] ^= 0xFF
    p.write_bytes(bytes(b))
    assert verify_shards(tmp_path / "shards") == ["shard-000002.tar: bytes differ from its SHA-256"]
    with pytest.raises(DataError, match="not empty"):
        write_shards(folder, tmp_path / "shards", progress=False)


def test_webdataset_library_reads_our_shards_and_we_read_its(tmp_path, folder):
    wds = pytest.importorskip("webdataset")
    write_shards(folder, tmp_path / "ours", shard_size=100, progress=False)
    ours = load_dataset(str(tmp_path / "ours"), progress=False)
    url = str(tmp_path / "ours" / "shard-000000.tar")
    theirs = list(wds.WebDataset(url, shardshuffle=False).decode("rgb8").to_tuple("jpg;png", "cls"))
    assert [int(c) for _, c in theirs] == ours.labels.tolist()
    assert all(img.shape == (16, 16, 3) for img, _ in theirs)
    # shards written by the webdataset library (keys with dots in folders, .cls as text)
    (tmp_path / "lib").mkdir()
    rng = np.random.default_rng(0)
    with wds.TarWriter(str(tmp_path / "lib" / "train-0000.tar")) as sink:
        for i in range(12):
            arr = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            sink.write({"__key__": f"part/s{i:04d}", "jpg": _jpeg(arr), "cls": i % 3})
    d = load_dataset(str(tmp_path / "lib"), image_size=16, progress=False)
    assert d.labels.tolist() == [i % 3 for i in range(12)] and d.classes == ["0", "1", "2"]
    assert d.images[np.arange(12)].shape == (12, 16, 16, 3)


def test_bad_shards_are_named(tmp_path):
    def shard(path, members):
        with tarfile.open(path, "w") as tf:
            for name, data in members:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))

    jpg = _jpeg(_photo(16, 16))
    (tmp_path / "a").mkdir()
    shard(tmp_path / "a" / "x.tar", [("k1.jpg", jpg), ("k1.cls", b"0"), ("k2.jpg", jpg)])
    with pytest.raises(DataError, match="x.tar: sample 'k2' has no label"):
        load_dataset(str(tmp_path / "a"), progress=False)
    (tmp_path / "b").mkdir()
    shard(tmp_path / "b" / "y.tar", [("k1.jpg", jpg), ("k1.cls", b"cat")])
    with pytest.raises(DataError, match="y.tar:k1.cls: label 'cat' is not an integer"):
        load_dataset(str(tmp_path / "b"), progress=False)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "z.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match="z.tar"):
        load_dataset(str(tmp_path / "c"), progress=False)
    # a corrupt image inside a shard: named by shard and member when its batch is decoded
    (tmp_path / "d").mkdir()
    shard(tmp_path / "d" / "w.tar", [("k1.jpg", jpg[:100]), ("k1.cls", b"0")])
    d = load_dataset(str(tmp_path / "d"), image_size=16, progress=False)
    with pytest.raises(DataError, match="w.tar:k1.jpg"):
        d.images[np.array([0])]


@pytest.mark.slow
def test_streamed_folder_trains_bit_identically_to_the_decoded_one(tmp_path, folder, monkeypatch):
    """Same images (Pillow decodes both), same batches, same weights: streaming changes only
    when images are decoded. Batches of 8 go through the process pool."""
    from safetensors.torch import load_file

    from resnets.train import build_config, train

    monkeypatch.setenv("RESNETS_JPEG_DECODER", "pillow")
    runs = {}
    for mode in ("memory", "stream"):
        cfg = build_config(
            "digits",
            cli_values={
                "data": str(folder),
                "data_mode": mode,
                "decode_workers": 2,
                "epochs": 2.0,
                "iters": 0,
                "val_split": 6,
                "batch_size": 8,
                "augment": "cifar",
                "pad": 2,
            },
        )
        res = train(cfg, tmp_path / mode, progress=False, echo=False)
        runs[mode] = load_file(tmp_path / mode / "model.safetensors")
        assert res.final_val_err is not None
    a, b = runs["memory"], runs["stream"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = (tmp_path / "stream" / "train.log").read_text()
    assert "streaming 30 images" in log and "pillow for JPEG" in log


def test_rank_slices_are_the_global_batch(folder):
    """Under torchrun each rank reads only its rows; together they are the one-process batch."""
    d = load_dataset(str(folder), mode="memory", progress=False)
    idx = np.arange(len(d))
    for kind, size in (("cifar", 0), ("rrc", 12)):
        aug = AugmentSpec(kind, 2, size)

        def mk(shard, aug=aug):
            return BatchStream(
                np.asarray(d.images), d.labels, idx, 12, 3, [0.0] * 3, [1.0] * 3, aug, shard=shard
            )

        x, y = mk((0, 1)).make_batch(1, 1)
        parts = [mk((r, 3)).make_batch(1, 1) for r in range(3)]
        assert torch.allclose(torch.cat([p[0] for p in parts]), x, atol=1e-6)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)


def test_data_commands(tmp_path, folder, capsys):
    from resnets.cli import main

    assert (
        main(
            [
                "data",
                "shard",
                str(folder),
                str(tmp_path / "sh"),
                "--shard-size",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "30 samples of 3 classes into 2 shards" in capsys.readouterr().out
    assert main(["data", "verify", str(tmp_path / "sh")]) == 0
    assert main(["data", "info", str(tmp_path / "sh"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["images"] == 30 and info["streamed"] and info["per_class"]["dog"] == 10
    assert main(["data", "info", "digits"]) == 0  # counts with thousands separators
    assert "digits: 1,797 images, 10 classes, 8x8x1" in capsys.readouterr().out
    assert main(["data", "verify", str(folder)]) == 2  # no dataset.json: a clear error
    assert "dataset.json: missing" in capsys.readouterr().err
    assert (
        main(["benchmark", "data", "--data", str(tmp_path / "sh"), "--images", "30", "--json"]) == 0
    )
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    s = r["stream"]
    assert s["decoder"] == "simplejpeg" and s["images"] == 30 and r["images_per_sec"] > 0
    assert s["stream_images_per_sec_per_core"] > 0 and s["one_core_images_per_sec"]["pillow"] > 0


def test_skip_bad_in_stream_mode_lists_the_unreadable_files(tmp_path):
    from resnets.train import build_config, train

    root = make_image_folder(tmp_path / "imgs", per_class=10, size=16)
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cli = {
        "data": str(root),
        "data_mode": "stream",
        "image_size": 16,
        "skip_bad": True,
        "epochs": 2.0,
        "iters": 0,
        "val_split": 6,
        "batch_size": 8,
        "decode_workers": 1,
    }
    train(build_config("digits", cli_values=cli), tmp_path / "r", progress=False, echo=False)
    log = (tmp_path / "r" / "train.log").read_text()
    assert "1 unreadable files left out of the loss and the scores: " in log and "broken.jpg" in log


def test_undecodable_streamed_samples_are_left_out_of_loss_errors_and_scores(tmp_path):
    from resnets.data.pipeline import IGNORE
    from resnets.eval.metrics import Scoring, evaluate
    from resnets.inference import TestViews
    from resnets.models import create_model
    from resnets.train.step import Trainee, TrainStep

    root = make_image_folder(tmp_path / "imgs", per_class=4, size=16)
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    d = stream_folder(root, image_size=16, skip_bad=True, processes=1)
    names = [r.name for r in d.images.records]
    bad_at = next(i for i, n in enumerate(names) if n.endswith("broken.jpg"))
    n = len(names)
    stream = BatchStream(
        d.images,
        d.labels,
        np.arange(n),
        n,
        0,
        [0.5] * 3,
        [0.25] * 3,
        None,
        torch.device("cpu"),
        drop_last=False,
    )
    x, y = stream.make_batch(0, 0)
    assert y[bad_at] == IGNORE and (y[np.arange(n) != bad_at] >= 0).all()
    assert d.images.bad_names == [names[bad_at]]

    model = create_model("resnet8", num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = TrainStep(
        Trainee(model, model, opt, False, None), device=torch.device("cpu"), bf16=False
    )
    keep = torch.arange(n) != bad_at
    with torch.no_grad():  # what the step will see: the same batch through the same weights
        logits = copy.deepcopy(model)(x)
    want_loss = torch.nn.functional.cross_entropy(logits[keep], y[keep]).item()
    want_err = (logits.argmax(1)[keep] != y[keep]).sum().item()
    step(x, y)
    loss_sum, errors, seen = step.sums().tolist()
    assert seen == n - 1  # the black image is not counted as seen, nor as an error
    assert errors == want_err
    assert loss_sum / seen == pytest.approx(want_loss, rel=1e-5)  # mean over decodable ones
    res = evaluate(
        model,
        d.images,
        d.labels,
        np.arange(n),
        views=TestViews((0.5,) * 3, (0.25,) * 3),
        num_classes=3,
        run=Scoring(batch_size=n, device=torch.device("cpu")),
    )
    assert res.n == n - 1 == int(keep.sum())
    # a batch made only of undecodable files is an error that names them, not a NaN loss
    only_bad = BatchStream(
        d.images,
        d.labels,
        np.array([bad_at]),
        1,
        0,
        [0.5] * 3,
        [0.25] * 3,
        None,
        torch.device("cpu"),
        drop_last=False,
    )
    with pytest.raises(DataError, match="broken.jpg"):
        only_bad.make_batch(0, 0)


def _tar_with(path, members: dict[str, bytes]) -> None:
    import io as stdio
    import tarfile

    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, stdio.BytesIO(data))


def _reindex(root, **changes):
    meta = json.loads((root / "dataset.json").read_text())
    meta.update(changes)
    (root / "dataset.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda r: _tar_with(r / "shard-000099.tar", {}), "shard-000099.tar: not listed"),
        (lambda r: [p.unlink() for p in r.glob("*.tar")], "shard-000000.tar: missing"),
        (lambda r: (r / "shard-000001.tar").unlink(), "shard-000001.tar: missing"),
        (lambda r: _reindex(r, shards=[], samples=0), "the index lists no shards"),
    ],
)
def test_data_verify_compares_the_folder_and_its_index_both_ways(
    tmp_path, folder, damage, expected, capsys
):
    root = tmp_path / "shards"
    write_shards(folder, root, shard_size=7, progress=False)
    damage(root)
    problems = verify_shards(root)
    assert any(expected in p for p in problems), problems
    assert main(["data", "verify", str(root)]) == 1
    assert expected in capsys.readouterr().err


def test_data_verify_checks_samples_and_labels_behind_a_matching_hash(tmp_path, folder):
    """A shard rewritten with its index updated to match (so the SHA-256 agrees): empty,
    a label out of range, a label that is not UTF-8: each is named."""
    import hashlib

    root = tmp_path / "shards"
    write_shards(folder, root, shard_size=7, progress=False)
    for members, expected in (
        ({}, "0 samples, the index says 7"),
        ({"a.png": (folder / "cat" / "001.png").read_bytes(), "a.cls": b"7"}, "label 7, outside"),
        ({"a.png": b"x", "a.cls": b"\xff\xfe"}, "label is not UTF-8"),
    ):
        shard = root / "shard-000000.tar"
        _tar_with(shard, members)
        meta = json.loads((root / "dataset.json").read_text())
        meta["shards"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
        (root / "dataset.json").write_text(json.dumps(meta))
        assert any(expected in p for p in verify_shards(root)), verify_shards(root)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "not valid UTF-8 JSON"),
        ('{"classes": ["a"], "shards": [', "not valid UTF-8 JSON"),  # truncated
        ("[1, 2]", "not a JSON object"),
        ('{"classes": [], "shards": []}', "'classes'"),
        (
            '{"classes": ["a"], "shards": [{"name": "../x.tar", "samples": 1, "sha256": "0"}]}',
            "a .tar file name",
        ),
        ('{"classes": ["a"], "shards": [], "samples": 3}', "not the shards' sum"),
    ],
)
def test_a_malformed_index_is_one_line(tmp_path, text, expected, capsys):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "dataset.json").write_text(text)
    with pytest.raises(DataError, match=re.escape(expected)):
        read_shard_meta(tmp_path / "s")
    assert main(["data", "verify", str(tmp_path / "s")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_folder_of_empty_shards_is_one_line(tmp_path, capsys):
    """Issue 44 (round 3's empty tar): `data info` on a folder whose only shard is empty."""
    from resnets.cli import main

    with tarfile.open(tmp_path / "shard-000000.tar", "w"):
        pass
    assert main(["data", "info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "the shards hold no sample (shard-000000.tar)" in err
    assert len(err.strip().splitlines()) == 1
