"""`lychee serve` on a jina-reranker-m0 checkpoint, over real HTTP on loopback: every dialect the
server speaks (/v1/rerank and its /v2 alias, TEI's /rerank, vLLM's /score, the article's
/api/rerank, /v1/analyze) returns the library's scores for texts, images and an image query;
/health carries the family and the licence notice, /v1/models the family; an over-long document is
marked truncated; a corrupt image fails alone; Ray Serve answers as the single process does.

One server per module loads the checkpoint itself (the family found from config.json), as
`lychee serve --model DIR` does; the library's reranker (tests/jina_m0_support.py) is the yardstick.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from lychee_rerank.serving.settings import ServerSettings

from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    QUERY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
    library_scores,
    spread,
)
from ..ray_support import assert_same_answers, ray_local, serve_replicas  # noqa: F401 - ray_local: the shared fixture
from .conftest import LiveServer, b64, data_uri, free_port, model_server

TOL = 1e-5  # another model instance, other batch compositions: the FP32 parity tolerance
LONG = " ".join(f"word{i % 97} plain text, number {i}." for i in range(1800))  # > 10,240 tokens


@pytest.fixture(scope="module")
def jm0_server(jina_m0_dir: Path):
    with model_server(jina_m0_dir) as live:
        yield live


@pytest.fixture(scope="module")
def pngs(jina_m0_pngs: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in jina_m0_pngs]


def post(live: LiveServer, path: str, body: Any) -> httpx.Response:
    with live.client() as c:
        return c.post(path, json=body)


def test_health_carries_the_family_and_the_licence_notice(jm0_server, jina_m0_dir):
    with jm0_server.client() as c:
        health = c.get("/health").json()
        assert (health["status"], health["backend"], health["family"]) == ("ok", "lychee", FAMILY)
        assert "CC-BY-NC-4.0" in health["note"] and "non-commercial" in health["note"]
        for path in ("/v1/models", "/models"):
            (card,) = c.get(path).json()["data"]
            assert (card["id"], card["family"]) == (str(jina_m0_dir), FAMILY)


def test_v1_rerank_texts_images_and_an_image_query_match_the_library(jm0_server, jina_m0_reranker, pngs):
    a, b, c = pngs
    documents = [TEXTS[0], data_uri(a), {"image": b64(b)}, [{"type": "image_url", "image_url": {"url": data_uri(c)}}], TEXTS[3]]
    library = library_scores(jina_m0_reranker, QUERY, [TEXTS[0], a, b, c, TEXTS[3]])
    assert spread(library) > 1e-3
    for path in ("/v1/rerank", "/v2/rerank"):
        r = post(jm0_server, path, {"query": QUERY, "documents": documents, "model": "anything"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert {x["index"]: x["relevance_score"] for x in body["results"]} == pytest.approx(library, abs=TOL)
        assert [x["index"] for x in body["results"]] == sorted(library, key=lambda i: -library[i])

    # An image query (I -> T and I -> I), infinity's raw scores: the head's output minus the bias 2.65.
    r = post(jm0_server, "/v1/rerank", {"query": {"image": data_uri(a)}, "documents": [TEXTS[1], {"image": b64(b)}],
                                        "raw_scores": True})
    assert r.status_code == 200, r.text
    results = jina_m0_reranker.rerank(a, [TEXTS[1], b])
    raw = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
    assert raw == pytest.approx({x.index: x.yes_logit - 2.65 for x in results}, abs=1e-4)
    assert {i: 1 / (1 + math.exp(-v)) for i, v in raw.items()} == pytest.approx({x.index: x.score for x in results}, abs=TOL)


def test_tei_rerank_and_vllm_score_match_the_library(jm0_server, jina_m0_reranker, pngs):
    library = library_scores(jina_m0_reranker, QUERY, TEXTS)
    r = post(jm0_server, "/rerank", {"query": QUERY, "texts": TEXTS, "return_text": True})
    assert r.status_code == 200, r.text
    assert {x["index"]: x["score"] for x in r.json()} == pytest.approx(library, abs=TOL)

    parts = [{"type": "text", "text": TEXTS[0]}, {"type": "image_url", "image_url": {"url": data_uri(pngs[0])}}]
    expected = library_scores(jina_m0_reranker, QUERY, [TEXTS[0], pngs[0]])
    for path in ("/score", "/v1/score"):
        r = post(jm0_server, path, {"model": "x", "text_1": QUERY, "text_2": {"content": parts}})
        assert r.status_code == 200, r.text
        assert {d["index"]: d["score"] for d in r.json()["data"]} == pytest.approx(expected, abs=TOL)


def test_api_rerank_and_analyze_match_the_library(jm0_server, jina_m0_reranker, pngs):
    body = {"query": {"text": QUERY, "image": None},
            "documents": [{"text": TEXTS[0], "image": None}, {"text": None, "image": data_uri(pngs[2])}], "mode": "single"}
    r = post(jm0_server, "/api/rerank", body)
    assert r.status_code == 200, r.text
    library = {x.index: x for x in jina_m0_reranker.rerank(QUERY, [TEXTS[0], pngs[2]])}
    for x in r.json()["results"]:
        lib = library[x["index"]]
        assert x["score"] == pytest.approx(lib.score, abs=TOL) and x["rank"] == lib.rank
        assert (x["yes_logit"], x["no_logit"]) == pytest.approx((lib.yes_logit, lib.no_logit), abs=1e-4)

    r = post(jm0_server, "/v1/analyze", {"query": "a red circle", "document": {"image": b64(pngs[0])}})
    assert r.status_code == 200, r.text
    data = r.json()
    lib = jina_m0_reranker.rerank("a red circle", [pngs[0]])[0]
    assert data["score"] == pytest.approx(lib.score, abs=TOL)
    assert data["prompt"] == "**Document**:\n<|vision_start|><|image_pad|><|vision_end|>\n**Query**:\na red circle"


def test_an_over_long_document_is_truncated_and_a_corrupt_image_fails_alone(jm0_server, jina_m0_reranker):
    broken = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"  # a PNG header, then nothing
    r = post(jm0_server, "/v1/rerank", {"query": "what number comes last?", "documents": [LONG, {"image": broken}, "short"]})
    assert r.status_code == 200, r.text
    items = {x["index"]: x for x in r.json()["results"]}
    assert items[0]["truncated"] is True and items[0].get("error") is None
    assert items[1]["error"] and items[1]["relevance_score"] == 0
    assert items[2].get("error") is None and not items[2].get("truncated")
    library = library_scores(jina_m0_reranker, "what number comes last?", [LONG, "short"])
    assert [items[0]["relevance_score"], items[2]["relevance_score"]] == pytest.approx([library[0], library[1]], abs=TOL)


def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, jm0_server, jina_m0_dir, pngs):
    """As tests/serving/test_ray_serve.py, on the jina-reranker-m0 checkpoint: texts, images, an image
    query, top_n, a bad document, a bad query; then concurrent load."""
    pytest.importorskip("ray.serve")

    settings = ServerSettings(backend="lychee", model=str(jina_m0_dir), device="cpu", dtype="float32",
                              host="127.0.0.1", port=free_port())
    requests = [
        {"query": QUERY, "documents": [*TEXTS, {"image": data_uri(pngs[0])}]},
        {"query": {"image": data_uri(pngs[1])}, "documents": [{"image": data_uri(pngs[2])}, "text only"], "top_n": 1},
        {"query": "anything", "documents": ["fine", {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}]},
        {"query": "", "documents": ["x"]},
    ]
    with serve_replicas(settings) as ray_client, jm0_server.client() as one:
        health = ray_client.get("/health").json()
        assert health["family"] == FAMILY and "CC-BY-NC-4.0" in health["note"]
        assert_same_answers(ray_client, one, requests, concurrent_calls=8, tol=TOL)
