"""Fixtures for the HTTP service tests: real uvicorn servers on free loopback ports.

Every server here binds 127.0.0.1 only; every client talks to it over real HTTP (httpx).
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import io
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

# The shared family checks assert in a helper module: rewrite it as pytest does test modules, for readable failures.
pytest.register_assert_rewrite("tests.serving.family_checks")

LOOPBACK = "127.0.0.1"


class LiveServer:
    """uvicorn in a thread, on a socket bound to 127.0.0.1:0 beforehand (no port race)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; uvicorn's own binding sets it, a handed-in socket loses it
        # (asyncio sees proto 0), and keep-alive requests would then stall 40 ms on delayed ACKs.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        # The protocol `lychee serve` uses (request head size and time), from the app's own settings:
        # each parameter of uvicorn_http_options is named after the setting it takes.
        from lychee_rerank.serving.http_limits import uvicorn_http_options

        settings = getattr(getattr(app, "state", None), "settings", None)
        http: dict[str, Any] = {}
        if settings is not None:
            http = uvicorn_http_options(**{p: getattr(settings, p) for p in inspect.signature(uvicorn_http_options).parameters})
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5, **http)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 60), **kwargs)

    def wait_healthy(self, timeout_s: float = 120) -> dict:
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while time.monotonic() < deadline:
                r = c.get("/health")
                if r.status_code == 200:
                    return r.json()
                if r.json().get("status") == "error":
                    raise RuntimeError(r.json())
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy")


@pytest.fixture(autouse=True)
def _no_lychee_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ServerSettings reads LYCHEE_* variables: a key or limit set on the machine must not leak in."""
    for name in list(os.environ):
        if name.startswith("LYCHEE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def server_model_dir(tiny_model_dir: Path) -> Path:
    """The session's tiny checkpoint (tests/conftest.py), also served by the test servers."""
    return tiny_model_dir


@pytest.fixture(scope="session")
def server_reranker(server_model_dir: Path):
    """The library-side reranker: the yardstick for HTTP scores, and the model of most test servers."""
    from lychee_rerank import LycheeReranker

    return LycheeReranker.from_pretrained(server_model_dir, device="cpu", dtype="float32")


def free_port() -> int:
    """A port free on 127.0.0.1 now (for servers that bind it themselves: `lychee serve`, Ray Serve)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def model_server(model_dir: Path, **settings: Any) -> Iterator[LiveServer]:
    """A live server on checkpoint ``model_dir`` (FP32, CPU, batch size 8), loading it itself in the
    background as `lychee serve` does; ready when entered, stopped on the way out."""
    from lychee_rerank.serving.app import create_app
    from lychee_rerank.serving.settings import ServerSettings

    options = {"backend": "lychee", "model": str(model_dir), "device": "cpu", "dtype": "float32", "batch_size": 8, **settings}
    live = LiveServer(create_app(ServerSettings(**options))).start()
    try:
        live.wait_healthy()
        yield live
    finally:
        live.stop()


@pytest.fixture
def start_server() -> Iterator[Callable[..., LiveServer]]:
    """``start_server(settings=..., reranker=..., loader=...)``: a live server, stopped after the test."""
    from lychee_rerank.serving.app import create_app
    from lychee_rerank.serving.settings import ServerSettings

    started: list[LiveServer] = []

    def start(settings: ServerSettings | None = None, reranker: Any = None, **kwargs: Any) -> LiveServer:
        settings = settings or ServerSettings()
        live = LiveServer(create_app(settings, reranker, **kwargs)).start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def server_photo(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic picture with structure, so different images score differently."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, size=3)
    channels = [(base[c] + 80 * np.sin(x / rng.uniform(4, 30) + c) + 60 * np.cos(y / rng.uniform(4, 30))) % 256 for c in range(3)]
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8), "RGB")


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + b64(data)


@pytest.fixture(scope="session")
def server_images() -> list[bytes]:
    """Encoded PNGs of several sizes."""
    sizes = [(64, 48), (120, 90), (56, 120), (90, 90)]
    return [png(server_photo(w, h, seed=10 + i)) for i, (w, h) in enumerate(sizes)]


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            metric, _, rest = head.partition("{")
            found = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if part)
            found = {k: v.strip('"') for k, v in found.items()}
        else:
            metric, found = head, {}
        if metric == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0
