"""The served model: API answers, dynamic batching, limits, clean shutdown, and the web page in
a real browser (headless Chromium)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from resnets.cli import main  # noqa: E402
from resnets.deploy.serve import ServeConfig, create_app  # noqa: E402
from resnets.inference import load_weights  # noqa: E402

from ..conftest import needs  # noqa: E402

pytestmark = needs("captum")  # the explanations the page asks for


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(app):
    """A real uvicorn server on 127.0.0.1 in a thread (concurrent clients need one)."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)


@pytest.fixture(scope="module")
def served(patch_run):
    run, data, _ = patch_run
    lm = load_weights(str(run))
    explainer = lm.gradient_copy()
    return lm, explainer, data


@pytest.fixture(scope="module")
def client(served):
    lm, explainer, _ = served
    with TestClient(create_app(lm, explainer, label="patch-run")) as c:
        yield c


def test_predict_answers_top_classes_for_multipart_and_raw_uploads(client, served):
    data = served[2]
    for name in ("red", "blue", "yellow"):
        body = (data / name / "0005.png").read_bytes()
        r = client.post("/v1/predict", files={"file": ("x.png", body, "image/png")})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["predictions"][0]["class"] == name and len(out["predictions"]) == 4
        assert abs(sum(p["probability"] for p in out["predictions"]) - 1) < 1e-5
        assert out["latency_ms"] > 0 and out["batch_size"] == 1
        raw = client.post("/v1/predict?topk=2", content=body, headers={"content-type": "image/png"})
        assert raw.json()["predictions"][0] == out["predictions"][0]
        assert len(raw.json()["predictions"]) == 2


def test_explain_returns_a_gradcam_png_and_model_health_and_page(client, served):
    body = (served[2] / "green" / "0007.png").read_bytes()
    r = client.post("/v1/explain", files={"file": ("g.png", body, "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-class"] == "green" and float(r.headers["x-probability"]) > 0.5
    assert Image.open(io.BytesIO(r.content)).size == (224, 224)
    r = client.post("/v1/explain?target=red", content=body, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.headers["x-class"] == "red"
    m = client.get("/v1/model").json()
    assert m["classes"] == ["blue", "green", "red", "yellow"] and m["explain"] is True
    assert m["record"]["model"] == "resnet8" and m["settings"]["max_batch"] == 16
    assert client.get("/healthz").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "/v1/predict" in page.text


def _one_line_error(r, status: int, words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and words in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]


def test_bad_requests_get_clear_answers_and_the_server_keeps_serving(served):
    lm, explainer, data = served
    cfg = ServeConfig(max_upload_bytes=50_000, max_pixels=64 * 64)
    good = (data / "red" / "0001.png").read_bytes()
    with TestClient(create_app(lm, explainer, cfg)) as c:
        cases = [
            (
                dict(content=b"x" * 60_000, headers={"content-type": "image/png"}),
                413,
                "over the limit",
            ),
            (
                dict(content=b"not an image", headers={"content-type": "image/jpeg"}),
                400,
                "not an image",
            ),
            (
                dict(content=good[: len(good) // 2], headers={"content-type": "image/png"}),
                400,
                "upload",
            ),
            (
                dict(
                    content=_png(np.zeros((100, 100, 3), np.uint8)),
                    headers={"content-type": "image/png"},
                ),
                400,
                "pixels is over the limit",
            ),
            (
                dict(content=b"{}", headers={"content-type": "application/json"}),
                415,
                "content type",
            ),
            (dict(content=b"", headers={"content-type": "image/png"}), 400, "empty body"),
            (dict(files={"other": ("a.png", good, "image/png")}), 400, "'file' field"),
            (
                dict(
                    content=b"--x\r\nbroken",
                    headers={"content-type": "multipart/form-data; boundary=x"},
                ),
                400,
                "",
            ),
        ]
        for kwargs, status, words in cases:
            _one_line_error(c.post("/v1/predict", **kwargs), status, words)
            ok = c.post("/v1/predict", content=good, headers={"content-type": "image/png"})
            assert ok.status_code == 200 and ok.json()["predictions"][0]["class"] == "red"
        _one_line_error(c.post("/v1/predict?topk=0", content=good), 400, "topk")
        _one_line_error(c.post("/v1/explain?target=zebra", content=good), 400, "zebra")
        _one_line_error(c.get("/v1/nothing"), 404, "Not Found")
        _one_line_error(c.get("/v1/predict"), 405, "Method Not Allowed")
        # a grayscale image is fine for a colour model, and an RGBA one too
        gray = _png(np.full((32, 32), 128, np.uint8))
        assert (
            c.post("/v1/predict", content=gray, headers={"content-type": "image/png"}).status_code
            == 200
        )


class _Slow(torch.nn.Module):
    """A model that takes ``delay`` seconds per forward pass and records batch sizes."""

    def __init__(self, inner: torch.nn.Module, delay: float) -> None:
        super().__init__()
        self.inner, self.delay, self.sizes = inner, delay, []
        self.num_classes, self.in_chans = inner.num_classes, inner.in_chans
        self.started = threading.Event()  # set once a forward pass has begun

    def forward(self, x):
        self.sizes.append(int(x.shape[0]))
        self.started.set()
        time.sleep(self.delay)
        return self.inner(x)


def test_concurrent_requests_are_batched_and_answered_correctly(served):
    lm, _, data = served
    slow = _Slow(lm.model, 0.05)
    app = create_app(replace(lm, model=slow), None, ServeConfig(max_batch=8, max_wait_ms=30))
    files = [
        data / c / f"{i:04d}.png" for c in ("red", "green", "blue", "yellow") for i in range(6)
    ]
    with _server(app) as url, httpx.Client(base_url=url, timeout=30) as http:

        def one(f: Path):
            r = http.post(
                "/v1/predict", content=f.read_bytes(), headers={"content-type": "image/png"}
            )
            return f.parent.name, r.status_code, r.json()

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(one, files))
        # explanations are not available without a PyTorch model: 501, not a crash
        r = http.post("/v1/explain", content=files[0].read_bytes())
        assert r.status_code == 501 and "PyTorch" in r.json()["error"]
    assert all(s == 200 for _, s, _ in results)
    assert all(out["predictions"][0]["class"] == name for name, _, out in results)
    assert max(slow.sizes) > 1 and sum(slow.sizes) == len(files)  # some passes held several
    assert max(out["batch_size"] for _, _, out in results) == max(slow.sizes)


def test_a_full_queue_answers_503_and_a_slow_model_504(served):
    lm, _, data = served
    body = (data / "red" / "0000.png").read_bytes()
    slow = _Slow(lm.model, 0.6)
    cfg = ServeConfig(max_batch=1, max_wait_ms=0, queue_size=1, timeout_ms=3000)
    with _server(create_app(replace(lm, model=slow), None, cfg)) as url:
        with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(6) as pool:
            post = lambda _: http.post("/v1/predict", content=body).status_code  # noqa: E731
            # the first request is in the model (0.6 s) before the others come, whatever the
            # machine's load: of the other five, one fits the queue of 1, the rest are refused
            first = pool.submit(post, 0)
            assert slow.started.wait(30), "the first request never reached the model"
            codes = [first.result(), *pool.map(post, range(5))]
            assert codes[0] == 200 and codes.count(503) >= 1 and codes.count(200) >= 2, codes
            r = http.post("/v1/predict", content=body)  # and it serves again afterwards
            assert r.status_code == 200
    cfg = ServeConfig(max_batch=1, timeout_ms=100)
    with _server(create_app(replace(lm, model=_Slow(lm.model, 0.5)), None, cfg)) as url:
        r = httpx.post(url + "/v1/predict", content=body, timeout=30)
        _one_line_error(r, 504, "within 100 ms")


def _start_cli_server(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "resnets", "serve", *args, "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")


@pytest.mark.slow
def test_cli_server_on_openvino_shuts_down_cleanly_on_sigterm(patch_run, tmp_path):
    pytest.importorskip("openvino")
    run, data, _ = patch_run
    proc, url, log = _start_cli_server(["--weights", str(run), "--backend", "openvino"], tmp_path)
    try:
        info = httpx.get(url + "/v1/model").json()
        assert info["backend"] == "openvino" and info["explain"] is True
        r = httpx.post(
            url + "/v1/predict",
            files={"file": ("b.png", (data / "blue" / "0002.png").read_bytes())},
        )
        assert r.json()["predictions"][0]["class"] == "blue"
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, then ends with the signal's own status (143 in a shell)
        assert proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "Shutting down" in text and "Application shutdown complete" in text
    assert "Finished server process" in text and "Traceback" not in text


def _chrome():
    webdriver = pytest.importorskip("selenium.webdriver")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (.ci/run does)")
        pytest.skip("chromium / chromedriver not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,900",
    ):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.slow
def test_web_page_in_a_real_browser_uploads_an_image_and_shows_its_class(patch_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run, data, _ = patch_run
    browser = _chrome()  # first: a skip here must not leave a server behind (issue 44)
    try:
        proc, url, log = _start_cli_server(["--weights", str(run), "--backend", "torch"], tmp_path)
    except BaseException:
        browser.quit()
        raise
    try:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: "resnet8" in b.find_element(By.ID, "model").text)
        for name in ("yellow", "green"):
            img = data / name / "0009.png"
            browser.find_element(By.ID, "file").send_keys(str(img))
            wait.until(
                lambda b, n=name: (
                    b.find_element(By.ID, "top-class").get_attribute("data-class") == n
                )
            )
            rows = browser.find_elements(By.CSS_SELECTOR, "#predictions li")
            assert [r.get_attribute("data-class") for r in rows][0] == name and len(rows) == 4
            assert rows[0].find_element(By.CSS_SELECTOR, ".pct").text.endswith("%")
            # the Grad-CAM overlay arrived and decoded
            wait.until(
                lambda b: b.execute_script(
                    "const i = document.getElementById('cam'); return !i.hidden && i.complete && i.naturalWidth === 224;"
                )
            )
        assert "Predicted: green" in browser.find_element(By.ID, "top-class").text
        shot = Path(os.environ.get("RESNETS_SCREENSHOT", tmp_path / "page.png"))
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        # an undecodable file: the page shows the server's error, and the next image works
        junk = tmp_path / "junk.png"
        junk.write_bytes(b"this is not a png")
        browser.find_element(By.ID, "file").send_keys(str(junk))
        wait.until(lambda b: "400" in b.find_element(By.ID, "status").text)
        assert "not an image" in browser.find_element(By.ID, "status").text
    finally:
        browser.quit()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--host", ""], "every interface"),
        (["--host", "0.0.0.0"], "every interface"),
        (["--host", "::"], "every interface"),
        (["--host", "no-such-host.invalid"], "cannot be resolved"),
        (["--host", "192.0.2.1"], "cannot listen there"),  # not an address of this machine
        (["--port", "0"], "between 1 and 65535"),
        (["--timeout-ms", "0"], "--timeout-ms 0"),
        (["--timeout-ms", "nan"], "--timeout-ms nan"),
        (["--timeout-ms", "inf"], "--timeout-ms inf"),
        (["--max-wait-ms", "inf"], "--max-wait-ms inf"),
        (["--max-wait-ms", "-1"], "--max-wait-ms -1"),
        (["--max-upload-mb", "nan"], "--max-upload-mb nan"),
        (["--max-upload-mb", "0"], "--max-upload-mb 0"),
        (["--max-upload-mb", "1e9"], "--max-upload-mb 1e+09"),
        (["--max-batch", "100000"], "--max-batch 100000"),
    ],
)
def test_serve_refuses_bad_hosts_and_limits_before_serving(argv, msg, capsys, tmp_path):
    """Each is a one-line error with exit 2 before anything is loaded or printed as served."""
    assert main(["serve", "--weights", str(tmp_path / "none"), *argv]) == 2
    out, err = capsys.readouterr()
    assert "serving" not in out and msg in err and len(err.strip().splitlines()) == 1


def test_serve_on_a_busy_port_is_a_one_line_error(capsys, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--weights", str(tmp_path / "none"), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert "serving" not in out and f"--port {port}: already in use" in err


@pytest.mark.parametrize("value", ["٣", "²", "３", "1e3", " 5", "5 ", "99999999999999", "0"])
def test_query_values_with_unicode_digits_are_a_400_not_a_500(client, value):
    r = client.post(
        "/v1/predict", params={"topk": value}, content=b"x", headers={"content-type": "image/png"}
    )
    assert r.status_code == 400 and "topk" in r.json()["error"]


def test_a_non_ascii_content_length_is_a_400(served):
    lm, explainer, _ = served
    with _server(create_app(lm, explainer, label="patch-run")) as base:
        port = int(base.rsplit(":", 1)[1])
        for value in ("\u00b2".encode("latin-1"), b"1_0", b"-5"):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: " + value + b"\r\n\r\nx"
            )
            assert _status(s) == 400
            s.close()
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def _raw_upload(port: int, declared: int, sent: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return s


def _status(s: socket.socket) -> int:
    head = s.recv(4096).decode("latin-1")
    return int(head.split()[1])


def test_slow_uploads_are_capped_in_flight_and_timed_out(served, caplog):
    """Clients that open uploads and send nothing more: beyond max_in_flight they get 503 at
    once, and those held get 408 after the upload timeout; the server answers throughout,
    and a client that hangs up mid-upload costs one log line, not a traceback."""
    lm, explainer, data = served
    cfg = replace(ServeConfig(), max_in_flight=2, upload_timeout_s=1.5)
    app = create_app(lm, explainer, cfg, label="patch-run")
    with _server(app) as base:
        port = int(base.rsplit(":", 1)[1])
        held = [_raw_upload(port, 5000, b"\x89PNG") for _ in range(2)]
        time.sleep(0.3)
        extra = _raw_upload(port, 5000, b"\x89PNG")
        assert _status(extra) == 503
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # still serving
        assert [_status(s) for s in held] == [408, 408]
        for s in [*held, extra]:
            s.close()
        # a client that disconnects mid-upload
        with caplog.at_level("WARNING", logger="resnets.serve"):
            gone = _raw_upload(port, 5000, b"\x89PNG partial")
            time.sleep(0.2)
            gone.close()
            time.sleep(0.5)
        lines = [r for r in caplog.records if "disconnected during its upload" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None
        png = _png(np.asarray(Image.open(next((data / "red").iterdir())).convert("RGB")))
        r = httpx.post(
            f"{base}/v1/predict", content=png, headers={"content-type": "image/png"}, timeout=30
        )
        assert r.status_code == 200 and r.json()["predictions"][0]["class"] == "red"


class _Recorder(torch.nn.Module):
    """The served model, keeping every batch it is shown."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.model(x)


def test_serve_and_eval_show_the_model_the_same_tensor(served, tmp_path):
    """Preprocessing travels with the weights: an image uploaded to the server and the same
    file scored by `resnets eval` reach the model as identical tensors, also for a file of
    another size and shape than the training images (both resize it the same way)."""
    from resnets.eval import score

    lm, _, data = served
    assert lm.image_size, "the weights resize files: the test needs that step exercised"
    folder = tmp_path / "odd-sizes"
    for k, name in enumerate(("blue", "red", "yellow")):
        img = Image.open(data / name / "0005.png").convert("RGB")
        (folder / name).mkdir(parents=True)
        img.resize((45 + 6 * k, 37)).save(folder / name / "x.png")  # wider than tall, larger
    evaluated = _Recorder(lm.model)
    _, selection = score(replace(lm, model=evaluated), str(folder))
    (batch,) = evaluated.seen
    shown = _Recorder(lm.model)
    with TestClient(create_app(replace(lm, model=shown), None, label="same")) as c:
        for row, label in enumerate(selection.labels):
            body = (folder / lm.classes[label] / "x.png").read_bytes()
            r = c.post("/v1/predict", files={"file": ("x.png", body, "image/png")})
            assert r.status_code == 200, r.text
            (served_x,) = shown.seen[-1]
            assert torch.equal(served_x, batch[row])
    assert len(shown.seen) == len(selection.labels) == 3


def test_native_size_uploads_of_mixed_sizes_never_stop_the_batcher(served):
    """Issue 44, S03: weights that keep the native size (image_size 0, eval_size 0) take
    uploads of any size; 12 concurrent ones of two sizes in batches of up to 8 each get their
    answer (images of one size run together), the server keeps answering afterwards, and an
    image above the native bound is a one-line 400."""
    lm, _, _ = served
    native = replace(lm, image_size=0, eval_size=0)
    app = create_app(native, None, ServeConfig(max_batch=8, max_wait_ms=300))
    rng = np.random.default_rng(0)
    uploads = [_png(rng.integers(0, 255, (s, s, 3), dtype=np.uint8)) for s in (8, 12) * 6]
    with _server(app) as url, httpx.Client(base_url=url, timeout=30) as http:

        def one(body: bytes) -> int:
            return http.post("/v1/predict", content=body).status_code

        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(one, uploads))
        assert codes == [200] * 12
        assert one(uploads[0]) == 200  # and after them
        big = http.post("/v1/predict", content=_png(np.zeros((1100, 40, 3), np.uint8)))
        assert big.status_code == 400 and "up to 1024 px a side" in big.json()["error"]
        assert http.get("/healthz").status_code == 200
