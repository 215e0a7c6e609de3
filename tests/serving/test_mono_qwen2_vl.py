"""`lychee serve` on a MonoQwen2-VL adapter directory, over real HTTP on loopback: every dialect
(/v1/rerank and its /v2 alias, TEI's /rerank, vLLM's /score, the article's /api/rerank,
/v1/analyze) returns the library's scores for image documents with English and Chinese queries;
/health and /v1/models name the family; Ray Serve answers as the single process does. A text
document fails alone ("reads image documents only") while the images are scored; an image query
is a 422 ``invalid_query``.

One server per module loads the checkpoint itself (the family found from adapter_config.json and
its base's config.json), as `lychee serve --model DIR` does; the library's reranker is the
yardstick (as tests/serving/test_qwen3_reranker.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from lychee_rerank.serving.settings import ServerSettings

from ..qwen2_vl_support import DEFAULT_INSTRUCTION, FAMILY
from ..qwen3_vl_support import library_scores, spread
from ..ray_support import assert_same_answers, comparable, ray_local, serve_replicas  # noqa: F401 - ray_local: the shared fixture
from .conftest import LiveServer, data_uri, free_port, model_server

TOL = 1e-5
IMAGE_ONLY = "reads image documents only"
TEXT_QUERIES = "reads text queries only"
QUERY = "a cat sitting on a window sill"
QUERY_ZH = "一只黑猫趴在窗台上"


@pytest.fixture(scope="module")
def mono_server(mono_qwen2_vl_dir: Path):
    with model_server(mono_qwen2_vl_dir) as live:
        yield live


@pytest.fixture(scope="module")
def uris(mono_qwen2_vl_images) -> list[str]:
    return [data_uri(p.read_bytes()) for p in mono_qwen2_vl_images[:4]]


def post(live: LiveServer, path: str, body: Any) -> httpx.Response:
    with live.client() as c:
        return c.post(path, json=body)


def image_only_error(item: dict) -> None:
    assert IMAGE_ONLY in (item.get("error") or ""), item
    assert item.get("relevance_score", item.get("score")) == 0


def refused_query(r: httpx.Response) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_query" and TEXT_QUERIES in error["message"], error


def test_health_and_models_name_the_family(mono_server, mono_qwen2_vl_dir):
    with mono_server.client() as c:
        health = c.get("/health").json()
        assert (health["status"], health["backend"], health["family"]) == ("ok", "lychee", FAMILY)
        assert (health["model"], health["device"], health["dtype"]) == (str(mono_qwen2_vl_dir), "cpu", "float32")
        for path in ("/v1/models", "/models"):
            (card,) = c.get(path).json()["data"]
            assert (card["id"], card["family"]) == (str(mono_qwen2_vl_dir), FAMILY)


def test_v1_rerank_matches_the_library_and_a_text_document_fails_alone(mono_server, mono_qwen2_vl_reranker,
                                                                       mono_qwen2_vl_images, uris):
    images = mono_qwen2_vl_images[:4]
    for query in (QUERY, QUERY_ZH):
        expected = library_scores(mono_qwen2_vl_reranker, query, images)
        assert spread(expected) > 1e-3
        for path in ("/v1/rerank", "/v2/rerank"):
            r = post(mono_server, path, {"query": query, "documents": [{"image": u} for u in uris]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert {x["index"]: x["relevance_score"] for x in body["results"]} == pytest.approx(expected, abs=TOL)
            assert body["usage"]["images"] == 4
    r = post(mono_server, "/v1/rerank", {"query": QUERY, "documents": [uris[0], "a text document",
                                                                      {"text": "a caption", "image": uris[1]}, uris[2]]})
    assert r.status_code == 200, r.text
    items = {x["index"]: x for x in r.json()["results"]}
    image_only_error(items[1])
    image_only_error(items[2])
    expected = library_scores(mono_qwen2_vl_reranker, QUERY, [images[0], images[2]])
    assert [items[0]["relevance_score"], items[3]["relevance_score"]] == pytest.approx([expected[0], expected[1]], abs=TOL)
    for query in ({"image": uris[0]}, uris[0], {"text": "this picture", "image": uris[0]}):
        refused_query(post(mono_server, "/v1/rerank", {"query": query, "documents": uris[:2]}))


def test_tei_rerank_and_vllm_score_match_the_library(mono_server, mono_qwen2_vl_reranker, mono_qwen2_vl_images, uris):
    expected = library_scores(mono_qwen2_vl_reranker, QUERY_ZH, mono_qwen2_vl_images[:4])
    r = post(mono_server, "/rerank", {"query": QUERY_ZH, "texts": uris})
    assert r.status_code == 200, r.text
    assert {x["index"]: x["score"] for x in r.json()} == pytest.approx(expected, abs=TOL)
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in uris]
    for path in ("/score", "/v1/score"):
        r = post(mono_server, path, {"text_1": QUERY_ZH, "text_2": {"content": parts}})
        assert r.status_code == 200, r.text
        assert {d["index"]: d["score"] for d in r.json()["data"]} == pytest.approx(expected, abs=TOL)
    refused_query(post(mono_server, "/score", {"text_1": uris[0], "text_2": uris[1:3]}))


def test_api_rerank_and_analyze(mono_server, mono_qwen2_vl_reranker, mono_qwen2_vl_images, uris):
    body = {"query": {"text": QUERY, "image": None},
            "documents": [{"text": None, "image": u} for u in uris[:3]] + [{"text": "words", "image": None}],
            "mode": "single"}
    r = post(mono_server, "/api/rerank", body)
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    image_only_error(results.pop(3))
    lib = {x.index: x for x in mono_qwen2_vl_reranker.rerank(QUERY, mono_qwen2_vl_images[:3])}
    for i, x in results.items():
        assert x["score"] == pytest.approx(lib[i].score, abs=TOL)
        assert (x["yes_logit"], x["no_logit"]) == pytest.approx((lib[i].yes_logit, lib[i].no_logit), abs=1e-4)

    r = post(mono_server, "/v1/analyze", {"query": QUERY_ZH, "document": {"image": uris[1]}})
    assert r.status_code == 200, r.text
    data = r.json()
    want = mono_qwen2_vl_reranker.rerank(QUERY_ZH, [mono_qwen2_vl_images[1]])[0]
    assert data["score"] == pytest.approx(want.score, abs=TOL) and data["instruction"] == DEFAULT_INSTRUCTION
    assert f"{DEFAULT_INSTRUCTION} The query is: {QUERY_ZH}" in data["prompt"] and "<|image_pad|>" in data["prompt"]
    r = post(mono_server, "/v1/analyze", {"query": QUERY, "document": "a text document"})
    assert r.status_code == 422 and IMAGE_ONLY in r.json()["error"]["message"], r.text


def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, mono_server, mono_qwen2_vl_dir,
                                                                      mono_qwen2_vl_reranker, mono_qwen2_vl_images, uris):
    pytest.importorskip("ray.serve")

    settings = ServerSettings(backend="lychee", model=str(mono_qwen2_vl_dir), device="cpu", dtype="float32",
                              host="127.0.0.1", port=free_port())
    requests = [
        {"query": QUERY, "documents": uris},
        {"query": QUERY_ZH, "documents": [uris[2], "a text document", uris[0]],
         "instruction": "Does this page show the query? Answer True or False.", "top_n": 2},
        {"query": {"image": uris[0]}, "documents": uris[:1]},
        {"query": "", "documents": uris[:1]},
    ]
    with serve_replicas(settings) as ray_client, mono_server.client() as one:
        assert ray_client.get("/health").json()["family"] == FAMILY
        assert_same_answers(ray_client, one, requests, concurrent_calls=8, tol=TOL)
        _, first = comparable(ray_client.post("/v1/rerank", json=requests[0]))
        assert {x["index"]: x["relevance_score"] for x in first["results"]} == pytest.approx(
            library_scores(mono_qwen2_vl_reranker, QUERY, mono_qwen2_vl_images[:4]), abs=TOL)
