"""Property-based fuzzing of every entry point beside the CLI: the HTTP server, tar shards
with their dataset.json, and weights files. Each draw is fixed (derandomized) and bounded;
each fuzz test has a negative control: the same test with a bug planted must fail."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from urllib.parse import quote

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from resnets.data import stream as shards
from resnets.errors import DataError, WeightsError
from resnets.inference import load_weights
from resnets.models import create_model
from resnets.models.weights import META_KEY, read_meta, read_weights

pytestmark = pytest.mark.slow

FIXED = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------------------------------------
# the HTTP server: only 2xx, 4xx, 503 and 504 answers, JSON whenever it is not a success

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from resnets.deploy import serve as serve_module  # noqa: E402

ROUTES = [
    "/v1/predict",
    "/v1/explain",
    "/v1/model",
    "/healthz",
    "/",
    "/v1",
    "/v1/predict/x",
    "/%00",
    "/..%2f..",
    "/v1/predict?",
    "/docs",
]
texts = st.text(max_size=24)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
        "path": st.one_of(st.sampled_from(ROUTES), texts.map(lambda t: "/" + quote(t))),
        "query": st.dictionaries(st.sampled_from(["topk", "target", "x"]), texts, max_size=2),
        "ctype": st.one_of(
            st.sampled_from(
                [
                    "image/png",
                    "application/octet-stream",
                    "multipart/form-data",
                    "multipart/form-data; boundary=x",
                    "text/plain",
                    "",
                ]
            ),
            texts.filter(lambda t: t.isascii() and "\n" not in t and "\r" not in t),
        ),
        "body": st.one_of(st.binary(max_size=2048), st.just(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)),
    }
)


@pytest.fixture(scope="module")
def fuzz_client(patch_run):
    run, _, _ = patch_run
    lm = load_weights(str(run))
    explainer = lm.gradient_copy()
    with TestClient(serve_module.create_app(lm, explainer, label="fuzz")) as c:
        yield c


@FIXED
@given(req=requests)
def test_server_answers_every_request_sanely(fuzz_client, req):
    headers = {"content-type": req["ctype"]} if req["ctype"] else {}
    r = fuzz_client.request(
        req["method"], req["path"], params=req["query"], content=req["body"], headers=headers
    )
    ok = 200 <= r.status_code < 300
    assert ok or 400 <= r.status_code < 500 or r.status_code in (503, 504), (req, r.status_code)
    if not ok:
        assert "error" in r.json(), (req, r.text[:200])
    assert fuzz_client.get("/healthz").status_code == 200  # alive after each


def test_negative_control_the_server_fuzz_finds_a_planted_500(fuzz_client, monkeypatch):
    def planted(data, max_pixels, label="upload"):
        raise RuntimeError("planted bug")

    monkeypatch.setattr(serve_module, "decode_limited", planted)
    # a 500 fails the status assertion; the test client also re-raises the server's error
    with pytest.raises((AssertionError, RuntimeError)):
        test_server_answers_every_request_sanely(fuzz_client)


# ---------------------------------------------------------------------------------------------
# tar shards and dataset.json: a DataError or a correct load, never another exception


def _valid_shards(root) -> None:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    members = {}
    for i in range(4):
        members[f"{i:04d}.png"] = buf.getvalue()
        members[f"{i:04d}.cls"] = str(i % 2).encode()
    with tarfile.open(root / "shard-000000.tar", "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
index_docs = st.one_of(
    json_values,
    st.fixed_dictionaries({"classes": json_values, "shards": json_values, "samples": json_values}),
    st.builds(
        lambda n, c: {
            "classes": ["a", "b"],
            "samples": n,
            "shards": [{"name": "shard-000000.tar", "samples": c, "sha256": "0" * 64}],
        },
        st.integers(-2, 10),
        st.integers(-2, 10),
    ),
)


@FIXED
@given(
    doc=index_docs,
    flips=st.lists(st.tuples(st.integers(0, 6000), st.integers(1, 255)), max_size=4),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_shards_and_their_index_fail_only_with_data_errors(tmp_path_factory, doc, flips, raw):
    root = tmp_path_factory.mktemp("shards")
    _valid_shards(root)
    shard = root / "shard-000000.tar"
    body = bytearray(shard.read_bytes())
    for pos, xor in flips:
        body[pos % len(body)] ^= xor
    shard.write_bytes(bytes(body))
    (root / "dataset.json").write_bytes(raw if raw is not None else json.dumps(doc).encode())
    for call in (
        shards.read_shard_meta,
        shards.verify_shards,
        lambda r: shards.stream_shards(r).images[[0]],
    ):
        try:
            call(root)
        except DataError:
            pass


def test_negative_control_the_shard_fuzz_finds_a_planted_bug(tmp_path_factory, monkeypatch):
    def planted(path):
        raise KeyError("planted bug")

    monkeypatch.setattr(shards, "index_shard", planted)
    with pytest.raises(KeyError, match="planted"):
        test_shards_and_their_index_fail_only_with_data_errors(tmp_path_factory)


# ---------------------------------------------------------------------------------------------
# weights files: a WeightsError or a correct load, never another exception


def _safetensors(records: object) -> bytes:
    sd = {k: v for k, v in create_model("resnet8").state_dict().items() if "fc" in k}
    return st_save(sd, metadata={META_KEY: json.dumps(records)})


@FIXED
@given(
    record=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "model": st.one_of(st.text(max_size=12), json_values),
                "classes": json_values,
                "mean": json_values,
                "image_size": json_values,
            }
        ),
    ),
    header=st.one_of(
        st.none(), st.binary(max_size=48), json_values.map(lambda v: json.dumps(v).encode())
    ),
    cut=st.one_of(st.none(), st.integers(0, 4000)),
)
def test_weights_files_fail_only_with_weights_errors(tmp_path_factory, record, header, cut):
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    body = _safetensors(record)
    if header is not None:  # a forged header of any length and content
        body = struct.pack("<Q", len(header)) + header + body[8:]
    if cut is not None:
        body = body[:cut]
    path.write_bytes(body)
    for call in (read_meta, read_weights):
        try:
            call(path)
        except WeightsError:
            pass


def test_negative_control_the_weights_fuzz_finds_a_planted_bug(tmp_path_factory, monkeypatch):
    from resnets.models.weights import WeightsMeta

    def planted(cls, raw, label="x"):
        raise TypeError("planted bug")

    monkeypatch.setattr(WeightsMeta, "from_dict", classmethod(planted))
    with pytest.raises(TypeError, match="planted"):
        test_weights_files_fail_only_with_weights_errors(tmp_path_factory)


def test_weights_fuzz_base_case_loads():
    """The unmutated file of the fuzz is a valid one: the fuzz starts from working input."""
    record = {"model": "resnet8", "classes": [str(i) for i in range(10)]}
    sd, meta = read_weights(_write(_safetensors(record)))
    assert (
        meta is not None
        and meta.model == "resnet8"
        and all(torch.is_tensor(t) for t in sd.values())
    )


def _write(body: bytes):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "w.safetensors"
    path.write_bytes(body)
    return path
