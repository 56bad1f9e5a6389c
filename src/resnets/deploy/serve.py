"""A served model: an HTTP API with dynamic batching, a web page, and clear answers to bad input.

``resnets serve --weights W`` runs :func:`create_app` under uvicorn. Endpoints:

* ``POST /v1/predict``: an image as a multipart upload (field ``file``) or as the raw request
  body (``image/*`` or ``application/octet-stream``); ``?topk=5``. Answers
  ``{"predictions": [{"class": "cat", "probability": 0.93}, ...], "latency_ms": 12.3,
  "batch_size": 4}`` (``batch_size``: how many requests shared the forward pass).
* ``POST /v1/explain``: the same input; answers the Grad-CAM overlay as PNG (headers
  ``X-Class`` and ``X-Probability``); ``?target=CLASS`` explains another class.
* ``GET /v1/model``: the weights' record (classes, preprocessing, metrics) and the settings.
* ``GET /healthz``; ``GET /``: the web page.

Dynamic batching: requests are decoded and preprocessed in worker threads, then queued; one
batcher takes the first waiting request, gathers more for up to ``max_wait_ms`` or until
``max_batch`` are in hand, and runs them as one forward pass in its own thread, so the event
loop never waits on the model. Limits, each a one-line JSON error ``{"error": "..."}``: a body
over ``max_upload_bytes`` (413), more than ``max_pixels`` pixels or undecodable data (400), a
content type that is no image (415), a full queue (503), no answer within ``timeout_ms``
(504). A bad request never stops the server; SIGTERM drains it and exits (uvicorn's graceful
shutdown).
"""

# no "from __future__ import annotations": FastAPI reads the endpoints' annotations at run time,
# and Request is imported inside create_app (FastAPI is an optional dependency)

import asyncio
import errno
import io
import logging
import math
import re
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import torch
from PIL import Image

from ..data.images import decode_image
from ..errors import ConfigError, DataError, ResnetsError
from ..eval.explain import explain_tensor, overlay_png
from ..eval.predict import top_classes
from ..inference import LoadedModel, load_weights

PAGE = Path(__file__).with_name("page.html")
#: a byte count or a count in a query: ASCII digits, at most 12 of them
ASCII_COUNT = re.compile(r"[0-9]{1,12}")
log = logging.getLogger("resnets.serve")
NEEDS_SERVE = "serving needs FastAPI and uvicorn: pip install 'resnets[serve]'"


@dataclass
class ServeConfig:
    """The server's limits and batching; units in the names."""

    max_batch: int = 16  # requests per forward pass (1: no batching)
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    queue_size: int = 64  # waiting requests beyond which the answer is 503
    timeout_ms: float = 10_000.0  # a request not answered by then gets 504
    max_upload_bytes: int = 10 * 2**20  # 413 beyond
    max_pixels: int = 25_000_000  # 400 beyond (checked from the header, before decoding)
    topk: int = 5
    threads: int = 2  # preprocessing threads
    # requests being received or answered at once; beyond, 503 at once. With the upload
    # limit it bounds the memory uploads can hold: max_in_flight x max_upload_bytes
    max_in_flight: int = 64
    upload_timeout_s: float = 30.0  # an upload not received by then gets 408 (slow clients)

    #: the largest value each limit accepts: every limit is a bound this machine can afford
    BOUNDS = {
        "max_batch": 1024,
        "queue_size": 100_000,
        "max_upload_bytes": 1 << 30,
        "max_pixels": 400_000_000,
        "topk": 1000,
        "max_in_flight": 10_000,
        "upload_timeout_s": 3600.0,
        "threads": 64,
        "max_wait_ms": 10_000.0,
        "timeout_ms": 3_600_000.0,
    }

    def check(self) -> "ServeConfig":
        """Refuse a limit that is not a finite number in its range (0, nan, inf, negative):
        a zero timeout would answer every request with 504, an infinite wait never answers."""
        for name, top in self.BOUNDS.items():
            value = getattr(self, name)
            low = 0 if name == "max_wait_ms" else 1
            option = f"--{name.replace('_', '-')}"
            if name == "max_upload_bytes":
                option, value, low, top = "--max-upload-mb", value / 2**20, 2**-20, top / 2**20
            if not (math.isfinite(value) and low <= value <= top) or (
                name == "timeout_ms" and value <= 0
            ):
                raise ConfigError(f"{option} {value:g}: must be a number from {low:g} to {top:g}")
        return self


def bind_socket(host: str, port: int, *, expose: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a one-line error before anything is served.
    An empty or wildcard host (every interface) is refused unless ``expose`` asks for it."""
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port}: between 1 and 65535")
    if host.strip() in ("", "0.0.0.0", "::", "*") and not expose:
        raise ConfigError(
            f"--host {host!r}: listens on every interface of this machine; pass --expose to "
            "mean it, or a single address such as 127.0.0.1"
        )
    bind_host = "" if host.strip() == "*" else host.strip()
    try:
        info = socket.getaddrinfo(
            bind_host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r}: cannot be resolved ({e.strerror})") from None
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: already in use on {host}") from None
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({e.strerror or e})"
        ) from None
    return sock


class ApiError(Exception):
    """An answer other than 200: its HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def image_size_of(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header alone (no pixel is decoded), or None."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # undecodable: decode_image names the problem
        return None


def decode_limited(data: bytes, max_pixels: int, label: str = "upload") -> np.ndarray:
    """The upload as RGB, refusing more than ``max_pixels`` before any pixel is decoded."""
    if not data:
        raise ApiError(400, f"{label}: empty body (send an image file)")
    size = image_size_of(data)
    if size and size[0] * size[1] > max_pixels:
        raise ApiError(
            400, f"{label}: {size[0]}x{size[1]} pixels is over the limit of {max_pixels:,}"
        )
    try:
        return decode_image(data, label)
    except DataError as e:
        raise ApiError(400, str(e)) from None
    except (struct.error, ValueError, OSError) as e:  # belt and braces: never a 500
        raise ApiError(400, f"{label}: undecodable image ({type(e).__name__})") from None


@dataclass
class _Job:
    x: torch.Tensor
    future: asyncio.Future
    batch_size: int = 0


class Batcher:
    """Gathers queued requests into batches and runs them on the model in one thread."""

    def __init__(self, lm: LoadedModel, cfg: ServeConfig) -> None:
        self.lm, self.cfg = lm, cfg
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=cfg.queue_size)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="resnets-model")
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.served = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)

    async def submit(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The logits of one preprocessed image ``(1, C, H, W)`` and the batch it ran in."""
        job = _Job(x, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise ApiError(
                503, f"server busy: {self.cfg.queue_size} requests already waiting; retry later"
            ) from None
        try:
            logits = await asyncio.wait_for(asyncio.shield(job.future), self.cfg.timeout_ms / 1e3)
        except asyncio.TimeoutError:
            job.future.cancel()  # the batcher skips it if it has not run yet
            raise ApiError(
                504, f"no answer from the model within {self.cfg.timeout_ms:g} ms"
            ) from None
        return logits, job.batch_size

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.lm.model(x).float()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            deadline = loop.time() + self.cfg.max_wait_ms / 1e3
            while len(jobs) < self.cfg.max_batch:
                left = deadline - loop.time()
                try:
                    jobs.append(
                        self.queue.get_nowait()
                        if left <= 0
                        else await asyncio.wait_for(self.queue.get(), left)
                    )
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
            jobs = [j for j in jobs if not j.future.done()]  # timed out while waiting
            # images of one size run together: weights that keep the native size get uploads
            # of many sizes, and one batch of mixed sizes must never stop the batcher
            groups: dict[tuple[int, ...], list[_Job]] = {}
            for j in jobs:
                groups.setdefault(tuple(j.x.shape[1:]), []).append(j)
            for group in groups.values():
                await self._answer(loop, group)

    async def _answer(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        """Run one batch of same-sized images and answer each request; any failure answers
        these requests (500), never the batcher."""
        try:
            x = torch.cat([j.x for j in jobs])
            logits = await loop.run_in_executor(self._pool, self._forward, x)
        except Exception as e:  # noqa: BLE001 - a failure answers these requests only
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(ApiError(500, f"inference failed: {e}"))
            return
        self.batches += 1
        self.served += len(jobs)
        for i, j in enumerate(jobs):
            j.batch_size = len(jobs)
            if not j.future.done():
                j.future.set_result(logits[i])


async def _receive(request: Any, limit: int) -> bytearray:
    from starlette.requests import ClientDisconnect

    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, f"upload is over the limit of {limit:,} bytes")
    except ClientDisconnect:
        log.warning(
            "client %s disconnected during its upload (%d bytes received)",
            request.client.host if request.client else "?",
            len(body),
        )
        raise ApiError(400, "the client disconnected during the upload") from None
    return body


async def read_upload(request: Any, cfg: ServeConfig) -> bytes:
    """The image bytes of a request (multipart field ``file``, or the raw body), read no
    further than the upload limit and no longer than the upload timeout."""
    declared = request.headers.get("content-length", "")
    limit = cfg.max_upload_bytes
    if declared and not ASCII_COUNT.fullmatch(declared):
        raise ApiError(400, f"content-length {declared[:20]!r}: not a byte count")
    if declared and int(declared) > limit:
        raise ApiError(413, f"upload of {int(declared):,} bytes is over the limit of {limit:,}")
    try:
        body = await asyncio.wait_for(_receive(request, limit), cfg.upload_timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"upload not received within {cfg.upload_timeout_s:g} s") from None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        from starlette.formparsers import MultiPartParser

        async def once():
            yield bytes(body)

        try:
            form = await MultiPartParser(
                request.headers, once(), max_files=1, max_fields=8, max_part_size=limit
            ).parse()
        except Exception as e:
            raise ApiError(400, f"malformed multipart body ({e})") from None
        f = form.get("file")
        if f is None or isinstance(f, str):
            raise ApiError(400, "multipart upload without a 'file' field holding the image")
        return await f.read()
    if ctype and not (ctype.startswith("image/") or ctype == "application/octet-stream"):
        raise ApiError(
            415,
            f"content type {ctype!r}: send an image (image/*, "
            "application/octet-stream or a multipart 'file' field)",
        )
    return bytes(body)


def _add_error_handlers(app: Any) -> None:
    """Every error as JSON ``{"error": ...}`` with its status: never a traceback page."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def err(status: int, message: str) -> Any:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return err(e.status, e.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request, e: HTTPException):
        return err(e.status_code, f"{request.method} {request.url.path}: {e.detail}")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return err(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _unexpected(request, e: Exception):  # never a traceback page, never a crash
        return err(500, f"internal error: {type(e).__name__}: {e}"[:300])


def create_app(
    lm: LoadedModel,
    explainer: LoadedModel | None = None,
    cfg: ServeConfig | None = None,
    *,
    label: str = "",
) -> Any:
    """The FastAPI application serving ``lm`` (and explanations from ``explainer``)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import HTMLResponse, Response
    except ImportError:
        raise ConfigError(NEEDS_SERVE) from None
    cfg = (cfg or ServeConfig()).check()
    prep_pool = ThreadPoolExecutor(cfg.threads, thread_name_prefix="resnets-prep")
    explain_lock = threading.Lock()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = Batcher(lm, cfg)
        state["batcher"].start()
        yield
        await state["batcher"].stop()
        prep_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="resnets", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None)

    _add_error_handlers(app)

    in_flight = {"requests": 0}

    @asynccontextmanager
    async def admitted():
        """One request in flight, or 503 at once when max_in_flight are."""
        if in_flight["requests"] >= cfg.max_in_flight:
            raise ApiError(503, f"{cfg.max_in_flight} requests in flight: try again shortly")
        in_flight["requests"] += 1
        try:
            yield
        finally:
            in_flight["requests"] -= 1

    def preprocess(data: bytes) -> tuple[np.ndarray, torch.Tensor]:
        arr = decode_limited(data, cfg.max_pixels)
        try:
            return lm.views.image(arr, "upload")
        except ResnetsError as e:
            raise ApiError(400, str(e)) from None

    async def prepared(request: Request) -> tuple[np.ndarray, torch.Tensor]:
        data = await read_upload(request, cfg)
        return await asyncio.get_running_loop().run_in_executor(prep_pool, preprocess, data)

    def topk_of(request: Request) -> int:
        raw = request.query_params.get("topk", str(cfg.topk))
        # ASCII digits only: str.isdigit() also accepts '²' and '٣', which int() then
        # refuses or reads as another number
        if not ASCII_COUNT.fullmatch(raw) or not 1 <= int(raw) <= 1000:
            raise ApiError(400, f"topk={raw[:20]!r}: a whole number from 1 to 1000")
        return int(raw)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model_info():
        b = state.get("batcher")
        return {
            "weights": label,
            "backend": getattr(lm.model, "backend", "torch"),
            "record": lm.meta.to_dict(),
            "classes": lm.classes,
            "input": {"channels": lm.in_chans, "size": lm.eval_size or lm.image_size},
            "explain": explainer is not None,
            "settings": asdict(cfg),
            "served": b.served if b else 0,
            "batches": b.batches if b else 0,
        }

    @app.post("/v1/predict")
    async def predict(request: Request):
        t0 = time.perf_counter()
        k = topk_of(request)
        async with admitted():
            _, x = await prepared(request)
            logits, n = await state["batcher"].submit(x)
        top = top_classes(lm, logits, k)
        return {
            "predictions": [{"class": t["class"], "probability": t["prob"]} for t in top],
            "latency_ms": round((time.perf_counter() - t0) * 1e3, 3),
            "batch_size": n,
        }

    @app.post("/v1/explain")
    async def explain(request: Request):
        if explainer is None:
            raise ApiError(
                501, "explanations need PyTorch weights; this server runs an exported model"
            )
        target_name = request.query_params.get("target")
        target = None
        if target_name is not None:
            if target_name not in lm.classes:
                raise ApiError(400, f"target={target_name!r}: not a class of the model")
            target = lm.classes.index(target_name)
        async with admitted():
            view, x = await prepared(request)

        def run() -> tuple[bytes, str, float | None]:
            with explain_lock:
                e = explain_tensor(explainer, view, x, methods=("gradcam",), target=target)
            prob = next((t["prob"] for t in e.top if t["index"] == e.target), None)
            return overlay_png(e), lm.classes[e.target], prob

        png, name, prob = await asyncio.get_running_loop().run_in_executor(prep_pool, run)
        headers = {"X-Class": quote(name)}  # percent-encoded: headers are latin-1
        if prob is not None:
            headers["X-Probability"] = f"{prob:.6f}"
        return Response(png, media_type="image/png", headers=headers)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    return app


def serve(
    weights: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "auto",
    model: str | None = None,
    precision: str = "auto",
    cfg: ServeConfig | None = None,
    log_level: str = "info",
    expose: bool = False,
) -> None:
    """Load ``weights`` and serve them until SIGTERM or Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError(NEEDS_SERVE) from None
    cfg = (cfg or ServeConfig()).check()
    sock = bind_socket(host, port, expose=expose)  # before loading: a busy port fails at once
    lm = load_weights(weights, backend=backend, model=model, precision=precision)
    explainer = lm.gradient_copy()  # None for an exported model: no gradients
    app = create_app(lm, explainer, cfg, label=str(weights))
    print(
        f"serving {weights} ({lm.meta.model}, {len(lm.classes)} classes) on "
        f"{getattr(lm.model, 'backend', 'torch')} at http://{host}:{port}/ "
        f"(batches of up to {cfg.max_batch}, {cfg.max_wait_ms:g} ms wait)",
        flush=True,
    )
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])
