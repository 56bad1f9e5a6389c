"""CIFAR archives: official layout, safe unpickling, download with MD5 check from 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import pickle
import threading

import numpy as np
import pytest

from resnets.data import cifar as sources
from resnets.data import load_dataset
from resnets.errors import DataError
from tests.conftest import make_cifar_archive


def test_archive_and_extracted_folder(tmp_path):
    arc = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    tr = load_dataset(f"cifar10:{arc}", "train")
    te = load_dataset(f"cifar10:{arc}", "test")
    assert tr.images.shape == (100, 32, 32, 3) and te.images.shape == (20, 32, 32, 3)
    assert tr.classes[:2] == ["class0", "class1"] and len(tr.classes) == 10
    import tarfile

    with tarfile.open(arc) as t:
        t.extractall(tmp_path / "x", filter="data")
    tr2 = load_dataset(f"cifar10:{tmp_path / 'x'}", "train")
    np.testing.assert_array_equal(tr.images, tr2.images)
    # CHW -> HWC: pixel (0,0) channel 1 is byte 1024 of the row
    raw = pickle.loads((tmp_path / "x" / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert tr.images[0, 0, 0, 1] == raw[b"data"][0][1024]


def test_cifar100_layout(tmp_path):
    arc = make_cifar_archive(
        tmp_path / "c100.tar.gz", classes=100, cifar100=True, n_train_per_batch=40
    )
    d = load_dataset(f"cifar100:{arc}", "train")
    assert len(d.classes) == 100 and len(d) == 200


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (eval, ("__import__('os').system('echo pwned')",))

    with pytest.raises(DataError, match="refusing to load builtins.eval"):
        sources._unpickle(pickle.dumps(Evil()), "evil")


def test_missing_path_and_offline_message(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(f"cifar10:{tmp_path / 'nope.tar.gz'}")
    monkeypatch.setenv("RESNETS_DATA", str(tmp_path / "root"))
    info = sources.CIFAR_ARCHIVES["cifar10"]
    monkeypatch.setitem(
        sources.CIFAR_ARCHIVES,
        "cifar10",
        sources.ArchiveInfo(**{**info.__dict__, "url": "http://127.0.0.1:9/cifar.tar.gz"}),
    )
    with pytest.raises(DataError, match=r"Offline\? Put cifar-10-python.tar.gz in"):
        load_dataset("cifar10")


@pytest.fixture
def local_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))

    class Quiet(handler.func):  # type: ignore[misc,name-defined]
        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_verifies_md5(local_server, tmp_path, monkeypatch):
    root, url = local_server
    arc = make_cifar_archive(root / "cifar-10-python.tar.gz")
    md5 = hashlib.md5(arc.read_bytes()).hexdigest()
    monkeypatch.setenv("RESNETS_DATA", str(tmp_path / "dl"))
    info = sources.CIFAR_ARCHIVES["cifar10"]
    good = sources.ArchiveInfo(
        **{**info.__dict__, "url": f"{url}/cifar-10-python.tar.gz", "md5": md5}
    )
    monkeypatch.setitem(sources.CIFAR_ARCHIVES, "cifar10", good)
    d = load_dataset("cifar10", "train")
    assert len(d) == 100 and (tmp_path / "dl" / "cifar-10-python.tar.gz").is_file()
    # a wrong checksum: nothing is kept
    monkeypatch.setenv("RESNETS_DATA", str(tmp_path / "dl2"))
    bad = sources.ArchiveInfo(**{**good.__dict__, "md5": "0" * 32})
    monkeypatch.setitem(sources.CIFAR_ARCHIVES, "cifar10", bad)
    with pytest.raises(DataError, match="MD5"):
        load_dataset("cifar10", "train")
    assert not list((tmp_path / "dl2").glob("*"))
