"""Weights by name: downloads from a server on 127.0.0.1 (good, wrong hash, truncated, cut off,
server down), pretrained models, backbones with feature_info, the metadata record."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
from pathlib import Path

import pytest
import torch

from resnets.cli import main
from resnets.errors import WeightsError
from resnets.inference import model_from_weights
from resnets.models import catalogue, class_index, create_model, download
from resnets.models.catalogue import Pretrained, get_pretrained
from resnets.models.weights import WeightsMeta, read_weights, save_weights
from tests.models import golden


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        mode, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # "trunc": the connection ends halfway, as when a server or network fails mid-file
        self.wfile.write(body[: len(body) // 2] if mode == "trunc" else body)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A weights server on 127.0.0.1 with one torchvision-format ResNet-18 file, and a clean
    weights cache."""
    torch.manual_seed(1)
    sd = create_model("resnet18").state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    body = buf.getvalue()
    prefix = hashlib.sha256(body).hexdigest()[:8]
    fname = f"resnet18-{prefix}.pth"
    _Handler.files = {fname: body}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    monkeypatch.setenv("RESNETS_WEIGHTS", str(tmp_path / "cache"))
    yield {"base": base, "file": fname, "prefix": prefix, "sd": sd, "cache": tmp_path / "cache"}
    srv.shutdown()
    srv.server_close()


def _entry(monkeypatch, server, mode="good", prefix=None) -> str:
    real = get_pretrained("resnet18.tv_in1k")
    e = Pretrained(
        real.name,
        server["file"],
        prefix or server["prefix"],
        real.meta,
        f"{server['base']}/{mode}/{server['file']}",
    )
    monkeypatch.setitem(catalogue._PRETRAINED, e.name, e)
    return e.name


def test_download_verifies_and_caches(server, monkeypatch):
    name = _entry(monkeypatch, server)
    model = create_model("resnet18", pretrained=True)  # the default tag of resnet18
    assert all(torch.equal(model.state_dict()[k], v) for k, v in server["sd"].items())
    cached = server["cache"] / server["file"]
    assert cached.is_file() and catalogue.verify(name).startswith(server["prefix"])
    assert [p.name for p in server["cache"].iterdir()] == [server["file"]]  # no temp files
    # a second use reads the cache: works with the server unreachable
    monkeypatch.setitem(
        catalogue._PRETRAINED,
        name,
        Pretrained(
            name,
            server["file"],
            server["prefix"],
            get_pretrained(name).meta,
            "http://127.0.0.1:9/x.pth",
        ),
    )
    net, meta = model_from_weights(name)
    assert meta.model == "resnet18" and meta.image_size == 256 and meta.eval_size == 224
    assert torch.equal(net.fc.weight, server["sd"]["fc.weight"])


def test_a_cached_file_is_verified_on_every_load(server, monkeypatch):
    """A cached weights file damaged or replaced after its download is refused by the next
    load, with the file named; nothing of it is loaded."""
    name = _entry(monkeypatch, server)
    catalogue.weights_file(name, progress=False)
    cached = server["cache"] / server["file"]
    body = bytearray(cached.read_bytes())
    body[len(body) // 2] ^= 0xFF  # one flipped byte in the middle of a tensor
    cached.write_bytes(bytes(body))
    with pytest.raises(WeightsError, match=f"{cached}: does not match|{cached} does not match"):
        model_from_weights(name)
    cached.unlink()  # deleted: downloaded and checked again
    net, _ = model_from_weights(name)
    assert torch.equal(net.fc.weight, server["sd"]["fc.weight"])


def test_wrong_hash_leaves_nothing(server, monkeypatch):
    _entry(monkeypatch, server, prefix="00000000")
    with pytest.raises(WeightsError, match="does not start with the expected 00000000"):
        create_model("resnet18", pretrained="tv_in1k")
    assert not server["cache"].exists() or not list(server["cache"].iterdir())


def test_truncated_download_leaves_nothing(server, monkeypatch):
    _entry(monkeypatch, server, mode="trunc")
    with pytest.raises(WeightsError, match="could not download|ended after"):
        catalogue.weights_file("resnet18.tv_in1k", progress=False)
    assert not list(server["cache"].iterdir())


def test_interrupted_download_leaves_no_half_file(server, monkeypatch):
    """Ctrl-C after a few MiB of the transfer: no file under the final name, no temp file."""
    import resnets.io

    _entry(monkeypatch, server)

    class Bar:  # the progress bar sees every chunk: interrupt at the third
        def __init__(self, *a, **k):
            self.n = 0

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def update(self, k):
            self.n += 1
            if self.n == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(resnets.io, "tqdm", Bar)
    with pytest.raises(KeyboardInterrupt):
        catalogue.weights_file("resnet18.tv_in1k", progress=False)
    assert not list(server["cache"].iterdir())


def test_server_down_says_which_file_to_put_where(server, monkeypatch):
    real = get_pretrained("resnet18.tv_in1k")
    e = Pretrained(
        real.name, server["file"], server["prefix"], real.meta, "http://127.0.0.1:9/r.pth"
    )
    monkeypatch.setitem(catalogue._PRETRAINED, e.name, e)
    dest = server["cache"] / server["file"]
    with pytest.raises(WeightsError, match=rf"Offline\? Download .* and put it at {dest}"):
        model_from_weights("resnet18.tv_in1k")
    rc = main(["predict", "--weights", "resnet18.tv_in1k", "x.png"])
    assert rc == 2


def test_pretrained_with_another_head_keeps_the_backbone(server, monkeypatch):
    _entry(monkeypatch, server)
    m = create_model("resnet18", pretrained=True, num_classes=7)
    assert m.fc.out_features == 7
    assert torch.equal(m.layer4[1].conv2.weight, server["sd"]["layer4.1.conv2.weight"])
    with pytest.raises(WeightsError, match="unknown weights 'resnet18.tv9'; did you mean"):
        create_model("resnet18", pretrained="tv9")
    with pytest.raises(WeightsError, match="are for resnet18, not resnet34"):
        create_model("resnet34", pretrained="resnet18.tv_in1k")


def test_predict_and_eval_accept_a_weights_name(server, monkeypatch, tmp_path, capsys):
    from PIL import Image

    _entry(monkeypatch, server)
    Image.new("RGB", (300, 260), (200, 30, 30)).save(tmp_path / "red.png")
    assert (
        main(["predict", "--weights", "resnet18.tv_in1k", str(tmp_path / "red.png"), "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out[0]["top"]) == 5 and sum(t["prob"] for t in out[0]["top"]) <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "name,chans,red",
    [
        ("resnet50", [256, 512, 1024, 2048], [4, 8, 16, 32]),
        ("resnet18", [64, 128, 256, 512], [4, 8, 16, 32]),
        ("resnet20", [16, 32, 64], [1, 2, 4]),
        ("fast_resnet8", [64, 256, 256], [2, 4, 8]),
    ],
)
def test_features_only_backbones(name, chans, red):
    n = len(chans)
    m = create_model(name, features_only=True).eval()
    assert m.feature_info.channels() == chans and m.feature_info.reduction() == red
    assert not any(k.startswith("fc.") for k in m.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = m(x)
    assert [t.shape[1] for t in maps] == chans
    assert [64 // t.shape[-1] for t in maps] == red
    two = create_model(name, features_only=True, out_indices=(0, n)).eval()
    assert len(two.feature_info) == 2 and two.feature_info.module_name()[0] == "stem"
    with pytest.raises(Exception, match="indices"):
        create_model(name, features_only=True, out_indices=(n + 1,))


def test_metadata_record_round_trip_and_bad_fields(tmp_path):
    m = create_model("resnet20")
    meta = WeightsMeta(
        model="resnet20",
        classes=[f"c{i}" for i in range(10)],
        mean=[125.0, 123.0, 114.0],
        std=[63.0, 62.0, 66.0],
        metrics={"top1": 0.9, "top5": 0.99, "split": "val"},
    )
    save_weights(m, tmp_path / "w.safetensors", meta)
    _, back = read_weights(tmp_path / "w.safetensors")
    assert back == meta
    for bad, field in [
        ({"model": 3}, "model"),
        ({"mean": "x"}, "mean"),
        ({"classes": [1, 2]}, "classes"),
        ({"image_size": -1}, "image_size"),
        ({"std": [0.0]}, "std"),
        ({"tta": "rot"}, "tta"),
    ]:
        with pytest.raises(WeightsError, match=f"field '{field}' has the wrong type"):
            WeightsMeta.from_dict({"model": "resnet20", **bad}, "f")
    with pytest.raises(WeightsError, match="no 'model'"):
        WeightsMeta.from_dict({"classes": ["a"]}, "f")
    with pytest.raises(WeightsError, match="not an object"):
        WeightsMeta.from_dict(["resnet20"], "f")


def test_weights_cli(capsys):
    assert main(["weights", "list", "resnet50.*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["resnet50.tv_in1k", "resnet50.tv2_in1k"]
    assert main(["weights", "info", "resnet50.tv2_in1k", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metrics"]["top1"] == pytest.approx(0.80858) and info["image_size"] == 232
    assert info["macs"] == 4089184256 and info["sha256"] == "11ad3fa6"
    assert main(["weights", "info", "resnet50.tv1"]) == 2
    assert "did you mean" in capsys.readouterr().err
    # the table's columns line up whatever the names' lengths (resnext101_32x8d.tv2_in1k)
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(len(line.split()[0]) > 22 for line in lines[1:])
    assert len({line.index("%") for line in lines[1:] if "%" in line}) == 1
    assert len({line.rindex("  ") for line in lines}) == 1  # "where" starts in one column


def test_shipped_weights_are_checked(tmp_path):
    """Every weights file inside the package matches its recorded SHA-256."""
    for name in catalogue.list_pretrained():
        e = get_pretrained(name)
        if e.url is None:
            assert catalogue.verify(name) == e.sha256
            assert Path(catalogue.weights_file(name)).is_file()


SHIPPED_CIFAR10 = [
    ("resnet20.cifar10", "he2015-cifar", 64_000, 269_722),
    ("resnet32.cifar10", "he2015-cifar", 64_000, 464_154),
    ("resnet56.cifar10", "he2015-cifar", 64_000, 853_018),
    ("plain20.cifar10", "he2015-cifar", 64_000, 269_722),
    ("fast_resnet8.cifar10", "fast-cifar", 870, 1_972_504),
]
HELD_OUT_HITS = json.loads(golden.HITS.read_text())
#: images of the 500 re-scored that may come out the other way on another CPU's fp32 kernels
MAY_FLIP = 2


@pytest.mark.parametrize("name", [row[0] for row in SHIPPED_CIFAR10])
def test_shipped_weights_state_the_accuracy_of_their_committed_per_image_record(name):
    """The accuracy a shipped set's record states is the sum of its committed per-image hits
    on its 5,000 held-out images (tests/models/held_out_hits.json, made by a full re-scoring),
    and that record belongs to this very file: new weights must come with new hits."""
    if name not in catalogue.list_pretrained("*.cifar10"):
        pytest.skip(f"{name} is not shipped in this checkout")
    entry, record = get_pretrained(name), HELD_OUT_HITS[name]
    assert record["sha256"] == entry.sha256 == catalogue.verify(name)
    hits = golden.unpack_hits(record)
    assert len(hits) == record["n"] == entry.meta.split["n_val"] == entry.meta.metrics["n"]
    assert int(hits.sum()) == round(entry.meta.metrics["top1"] * len(hits))


@pytest.mark.slow
# one worker scores them all: each split's 5,000 held-out JPEGs are decoded once (~2 s on Zen 3;
# only those: the 50,000 are not), and the sets trained on the same split share them
@pytest.mark.xdist_group("shared-cifar")
@pytest.mark.parametrize("name,recipe,iters,params", SHIPPED_CIFAR10)
def test_shipped_cifar10_weights_load_offline_and_their_stated_accuracy_is_measured(
    name, recipe, iters, params
):
    """Weights shipped in the package load by name with no network, match their SHA-256, and
    scoring them again on their held-out images gives their committed per-image record (so
    the accuracy it sums to): every 10th image, 500 per set, image by image."""
    from resnets.models.catalogue import list_pretrained, verify

    if name not in list_pretrained("*.cifar10"):
        pytest.skip(f"{name} is not shipped in this checkout")
    verify(name)
    meta = get_pretrained(name).meta
    assert meta.classes == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert f"--recipe {recipe}" in meta.command and meta.final["iters"] == iters
    assert meta.split["n_val"] == 5000 and meta.metrics["n"] == 5000
    assert meta.params == params and 0.85 < meta.metrics["top1"] < 1.0
    net = create_model(meta.model, pretrained=True)
    assert net.num_classes == 10
    if not golden.SHARED_CIFAR.is_dir():
        pytest.skip("../shared CIFAR-10 JPEGs not here to re-score the weights")
    indices, hits = golden.held_out_hits(name, golden.SHARED_CIFAR, every=golden.SAMPLE_EVERY)
    record = HELD_OUT_HITS[name]
    assert golden.indices_digest(indices) == record["indices_sha256"]  # the same 5,000 images
    want = golden.unpack_hits(record)[:: golden.SAMPLE_EVERY]
    assert len(hits) == len(want) == 500
    # the same fp32 scoring: equal image by image, up to MAY_FLIP images that another CPU's
    # kernels may flip (another net of the same accuracy differs on 33-50 of them: below)
    assert int((hits != want).sum()) <= MAY_FLIP


def test_negative_control_another_shipped_set_is_far_outside_the_tolerance():
    """The per-image tolerance tells nets apart: any two shipped sets' records differ on far
    more of the 500 sampled images than the MAY_FLIP the re-scoring allows."""
    names = sorted(HELD_OUT_HITS)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = (
                golden.unpack_hits(HELD_OUT_HITS[n])[:: golden.SAMPLE_EVERY]
                for n in (first, second)
            )
            assert int((a != b).sum()) > 10 * MAY_FLIP, (first, second)


def _class_index(n: int = 1000, shuffle: bool = False) -> bytes:
    """A generated class index in the published file's format: index -> [WordNet ID, name]."""
    ids = [f"n{10000000 + 7 * i:08d}" for i in range(n)]
    if shuffle:
        ids[3], ids[4] = ids[4], ids[3]
    return json.dumps({str(i): [w, f"thing_{i}"] for i, w in enumerate(ids)}).encode()


def _entry_with_classes(monkeypatch, server, body: bytes, sha: str | None = None) -> str:
    _Handler.files["imagenet_class_index.json"] = body
    rf = download.RemoteFile(
        f"{server['base']}/good/imagenet_class_index.json",
        "imagenet_class_index.json",
        sha or hashlib.sha256(body).hexdigest(),
        "test",
    )
    real = get_pretrained("resnet18.tv_in1k")
    e = Pretrained(
        real.name,
        server["file"],
        server["prefix"],
        real.meta,
        f"{server['base']}/good/{server['file']}",
        classes_file=rf,
    )
    monkeypatch.setitem(catalogue._PRETRAINED, e.name, e)
    return e.name


def test_imagenet_weights_come_with_the_published_class_index():
    """Every torchvision entry names Keras's class index by its address and SHA-256."""
    for name in catalogue.list_pretrained("*tv*_in1k"):
        rf = get_pretrained(name).classes_file
        assert rf is class_index.IMAGENET_CLASS_INDEX, name
    assert class_index.IMAGENET_CLASS_INDEX.url.startswith("https://storage.googleapis.com/")
    assert len(class_index.IMAGENET_CLASS_INDEX.sha256) == 64
    for name in catalogue.list_pretrained("*.cifar10"):  # shipped: the names are in the record
        e = get_pretrained(name)
        assert e.classes_file is None and len(e.meta.classes) == 10, name


def test_predictions_with_imagenet_weights_print_class_names(server, monkeypatch, tmp_path, capsys):
    from PIL import Image

    name = _entry_with_classes(monkeypatch, server, _class_index())
    net, meta = model_from_weights(name)
    assert meta.classes[:2] == ["thing 0", "thing 1"] and meta.class_ids[1] == "n10000007"
    assert (server["cache"] / "imagenet_class_index.json").is_file()
    Image.new("RGB", (300, 260), (200, 30, 30)).save(tmp_path / "red.png")
    assert main(["predict", "--weights", name, str(tmp_path / "red.png"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]["top"]
    assert all(t["class"] == f"thing {t['index']}" for t in top)
    assert main(["weights", "info", name, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["classes"]) == 1000 and info["class_ids"][0] == "n10000000"
    assert info["classes_source"]["file"] == "imagenet_class_index.json"
    # a torchvision file without metadata, named by path: the cached index names its classes
    _, meta2 = model_from_weights(server["cache"] / server["file"], model="resnet18")
    assert meta2.classes == meta.classes


def test_weights_download_fetches_the_class_index_too(server, monkeypatch, capsys):
    name = _entry_with_classes(monkeypatch, server, _class_index())
    assert main(["weights", "download", name, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1000 classes" in out
    assert sorted(p.name for p in server["cache"].iterdir()) == sorted(
        [server["file"], "imagenet_class_index.json"]
    )


def test_a_bad_class_index_leaves_indices_and_says_why(server, monkeypatch, caplog):
    name = _entry_with_classes(monkeypatch, server, _class_index(), sha="0" * 64)
    with caplog.at_level("WARNING"):
        _, meta = model_from_weights(name)
    assert meta.classes is None  # the weights still load; predictions show indices
    assert "class names unavailable" in caplog.text and "SHA-256" in caplog.text
    assert not (server["cache"] / "imagenet_class_index.json").exists()


@pytest.mark.parametrize(
    "body,match",
    [
        (_class_index(shuffle=True), "ascending WordNet-ID order"),
        (_class_index(999), "1,000 ImageNet-1k classes"),
        (b"{not json", "not a readable class index"),
        (json.dumps({"0": ["x", "y"]}).encode(), "not \\[WordNet ID, name\\]"),
        (json.dumps({"1": ["n00000001", "y"]}).encode(), "keys 0..N-1"),
    ],
)
def test_class_index_is_checked(tmp_path, body, match):
    (tmp_path / "ci.json").write_bytes(body)
    with pytest.raises(WeightsError, match=match):
        class_index.read_class_index(tmp_path / "ci.json")


def test_data_folders_named_by_wordnet_id_map_to_the_class_index():
    from resnets.eval.predict import map_classes

    ids = [f"n{i:08d}" for i in range(5)]
    names = ["a", "b", "c", "d", "e"]
    assert map_classes(["n00000003", "n00000001"], names, "x", ids).tolist() == [3, 1]
    assert map_classes(["e", "a"], names, "x", ids).tolist() == [4, 0]
