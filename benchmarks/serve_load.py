"""Load test of `resnets serve` on 127.0.0.1: throughput and latency with and without dynamic
batching, then a storm of bad requests mixed with good ones.

    python benchmarks/serve_load.py [--weights W] [--clients 16] [--requests 25] [--backend auto]

Each configuration starts its own server process (`python -m resnets serve`) on a free local
port, N client threads each send M requests (real CIFAR-10 JPEGs from ../shared when present,
else generated PNGs), and the script reports requests/s, p50/p99 latency and failures. The
storm phase sends, from the same clients, junk bytes, truncated JPEGs, an over-size body, an
image over the pixel limit, a wrong content type and empty bodies between good images; every
bad one must get its 4xx answer and every good one the same class the server gave it when
idle. Bounded: a fixed number of requests, a 30 s timeout each, --max-seconds in all. Without
--weights, a ResNet-20 with random weights (speed does not depend on their values) is used.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "train"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_weights(folder: Path, model: str) -> str:
    """Random weights of ``model`` with CIFAR-10's classes; ImageNet nets see 224x224 crops."""
    import torch

    from resnets.models import create_model, get_spec
    from resnets.models.weights import WeightsMeta, save_weights

    torch.manual_seed(0)
    net = create_model(model, num_classes=10)
    classes = (
        sorted(p.name for p in SHARED.iterdir()) if SHARED.is_dir() else [str(i) for i in range(10)]
    )
    size = get_spec(model).default_image_size
    meta = WeightsMeta(
        model=model,
        model_kwargs={"num_classes": 10},
        classes=classes,
        mean=[125.3, 123.0, 113.9],
        std=[63.0, 62.1, 66.7],
        source="random init",
        image_size=0 if size == 32 else size,
    )
    path = folder / f"{model}-random.safetensors"
    save_weights(net, path, meta)
    return str(path)


def images(n: int) -> list[bytes]:
    if SHARED.is_dir():
        files = sorted(SHARED.glob("*/*.jpg"))[:: max(1, 50000 // n)][:n]
        return [f.read_bytes() for f in files]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def start(
    weights: str, backend: str, max_batch: int, wait_ms: float, log: Path
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "resnets",
        "serve",
        "--weights",
        weights,
        "--port",
        str(port),
        "--backend",
        backend,
        "--max-batch",
        str(max_batch),
        "--max-wait-ms",
        str(wait_ms),
        "--queue-size",
        "256",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


def load(url: str, pics: list[bytes], clients: int, requests: int, deadline: float) -> dict:
    """N clients x M requests; latency of each, failures counted."""

    def client(k: int) -> tuple[list[float], int, list[int]]:
        lat, fails, sizes = [], 0, []
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(requests):
                if time.time() > deadline:
                    break
                body = pics[(k * requests + i) % len(pics)]
                t0 = time.perf_counter()
                try:
                    r = http.post(
                        "/v1/predict", content=body, headers={"content-type": "image/jpeg"}
                    )
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t0)
                if ok:
                    sizes.append(r.json()["batch_size"])
                fails += not ok
        return lat, fails, sizes

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    lat = sorted(x for p in parts for x in p[0])
    sizes = [s for p in parts for s in p[2]]
    return {
        "requests": len(lat),
        "failed": sum(p[1] for p in parts),
        "wall_s": wall,
        "req_per_s": len(lat) / wall,
        "p50_ms": 1e3 * statistics.median(lat),
        "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "mean_batch": statistics.mean(sizes) if sizes else 0.0,
    }


def bad_requests(good: bytes) -> list[tuple[str, dict, int]]:
    big = io.BytesIO()
    Image.new("L", (6000, 6000)).save(big, "PNG")  # 36 M pixels in a few kB
    return [
        ("junk", {"content": os.urandom(2000), "headers": {"content-type": "image/jpeg"}}, 400),
        (
            "truncated",
            {"content": good[: len(good) // 2], "headers": {"content-type": "image/jpeg"}},
            400,
        ),
        (
            "huge body",
            {"content": b"\xff" * (11 * 2**20), "headers": {"content-type": "image/jpeg"}},
            413,
        ),
        (
            "over pixel limit",
            {"content": big.getvalue(), "headers": {"content-type": "image/png"}},
            400,
        ),
        (
            "wrong type",
            {"content": b'{"image": 1}', "headers": {"content-type": "application/json"}},
            415,
        ),
        ("empty", {"content": b"", "headers": {"content-type": "image/jpeg"}}, 400),
    ]


def storm(url: str, pics: list[bytes], clients: int, rounds: int, deadline: float) -> dict:
    with httpx.Client(base_url=url, timeout=30) as http:  # the idle answers: the reference
        ref = [http.post("/v1/predict", content=p).json()["predictions"][0]["class"] for p in pics]
    bad = bad_requests(pics[0])

    def client(k: int) -> dict:
        out = {"good": 0, "good_wrong": 0, "bad": 0, "bad_wrong": 0, "errors": set()}
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(rounds):
                if time.time() > deadline:
                    break
                j = (k * rounds + i) % len(pics)
                r = http.post(
                    "/v1/predict", content=pics[j], headers={"content-type": "image/jpeg"}
                )
                out["good"] += 1
                if r.status_code != 200 or r.json()["predictions"][0]["class"] != ref[j]:
                    out["good_wrong"] += 1
                name, kw, status = bad[(k + i) % len(bad)]
                r = http.post("/v1/predict", **kw)
                out["bad"] += 1
                one_line = r.headers.get("content-type", "").startswith(
                    "application/json"
                ) and "\n" not in r.json().get("error", "\n")
                if r.status_code != status or not one_line:
                    out["bad_wrong"] += 1
                    out["errors"].add(f"{name}: {r.status_code}")
        return out

    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(client, range(clients)))
    total = {k: sum(p[k] for p in parts) for k in ("good", "good_wrong", "bad", "bad_wrong")}
    total["errors"] = sorted(set().union(*(p["errors"] for p in parts)))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--model", default="resnet20", help="without --weights: random weights of it")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=25, help="per client")
    ap.add_argument("--storm-rounds", type=int, default=10, help="good + bad pairs per client")
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    deadline = time.time() + args.max_seconds
    tmp = Path(tempfile.mkdtemp(prefix="resnets-serve-load-"))
    weights = args.weights or default_weights(tmp, args.model)
    pics = images(64)
    results: dict = {
        "weights": weights,
        "backend": args.backend,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "cores": os.cpu_count(),
    }
    for name, mb, wait in (("no batching", 1, 0.0), ("dynamic batching", 16, 5.0)):
        proc, url = start(weights, args.backend, mb, wait, tmp / f"{mb}.log")
        try:
            load(url, pics, 4, 3, deadline)  # warm-up
            results[name] = load(url, pics, args.clients, args.requests, deadline)
            if mb > 1:
                results["storm"] = storm(url, pics, args.clients, args.storm_rounds, deadline)
        finally:
            results[name]["exit_code"] = stop(proc)
    print(
        f"resnets serve, {weights}, backend {args.backend}, {args.clients} clients x "
        f"{args.requests} requests, 127.0.0.1, {os.cpu_count()} cores"
    )
    print(f"{'':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10} {'failed':>7}")
    for name in ("no batching", "dynamic batching"):
        r = results[name]
        print(
            f"{name:<18} {r['req_per_s']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['mean_batch']:10.2f} {r['failed']:>7}"
        )
    s = results["storm"]
    print(
        f"storm: {s['good']} good requests ({s['good_wrong']} answered wrongly), {s['bad']} bad "
        f"({s['bad_wrong']} without their 4xx one-line answer) {s['errors']}"
    )
    if args.json:
        print(json.dumps(results))
    bad = (
        s["good_wrong"]
        + s["bad_wrong"]
        + sum(results[n]["failed"] for n in ("no batching", "dynamic batching"))
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
