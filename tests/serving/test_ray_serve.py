"""The service on Ray Serve (2 replicas, real local Ray, proxy on 127.0.0.1) answers
``/v1/rerank`` exactly like the single-process server."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from ..conftest import make_photo
from ..ray_support import assert_same_answers, ray_local, serve_replicas  # noqa: F401 - ray_local: the shared fixture
from .conftest import LiveServer, free_port

serve = pytest.importorskip("ray.serve")


def data_uri(seed: int) -> str:
    buf = io.BytesIO()
    make_photo(72, 56, seed).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def requests_to_send() -> list[dict[str, Any]]:
    """Text, image and mixed documents, an instruction, top_n, a bad document, a bad query."""
    return [
        {"query": "a red bicycle", "documents": ["a red bicycle by a wall", "a bowl of soup", "bicycles for sale", "weather"]},
        {"query": {"text": "this picture"}, "documents": [{"image": data_uri(1)}, {"text": "a photo", "image": data_uri(2)}, "text only"],
         "instruction": "Find the matching picture.", "top_n": 2},
        {"query": "anything", "documents": ["fine", {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}]},
        {"query": "", "documents": ["x"]},
    ]


def test_two_replicas_answer_like_the_single_process_server(ray_local, tiny_model_dir) -> None:
    from lychee_rerank.serving.app import create_app
    from lychee_rerank.serving.settings import ServerSettings

    settings = ServerSettings(
        backend="lychee", model=str(tiny_model_dir), device="cpu", dtype="float32", host="127.0.0.1", port=free_port(),
    )
    single = LiveServer(create_app(settings)).start()
    try:
        single.wait_healthy()
        with serve_replicas(settings) as ray_client, single.client() as one_client:
            assert_same_answers(ray_client, one_client, requests_to_send())
    finally:
        single.stop()
