"""`lychee serve` on a sequence-classification cross-encoder (text only), over real HTTP on loopback:
every dialect (/v1/rerank and /v2, TEI's /rerank, vLLM's /score and /v1/score, /api/rerank,
/v1/analyze) returns the library's scores for English and Chinese texts; /health and /v1/models
name the family; Ray Serve answers as the single process does. An image document fails alone
("reads text only") while the texts are scored; an image query is a 422 ``invalid_query``.
The library's reranker (itself checked against CrossEncoder.predict) is the yardstick.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from lychee_rerank.serving.settings import ServerSettings

from ..cross_encoder_support import FAMILY, TEXT_ONLY
from ..qwen3_vl_support import library_scores, spread
from ..ray_support import assert_same_answers, comparable, ray_local, serve_replicas  # noqa: F401 - ray_local: the shared fixture
from .conftest import LiveServer, b64, data_uri, free_port, model_server, png, server_photo

TOL = 1e-5
QUERY = "What is the capital of China?"
QUERY_ZH = "中国的首都是哪里？"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]
PICTURE = png(server_photo(64, 48, seed=7))


@pytest.fixture(scope="module")
def ce_server(cross_encoder_dir: Path):
    """The server loads the checkpoint itself, in the background, as `lychee serve` does."""
    with model_server(cross_encoder_dir) as live:
        yield live


def post(live: LiveServer, path: str, body: Any) -> httpx.Response:
    with live.client() as c:
        return c.post(path, json=body)


def tokens(reranker, query, documents) -> int:
    return sum(r.tokens for r in reranker.rerank(query, documents))


def text_only_error(item: dict) -> None:
    assert TEXT_ONLY in (item.get("error") or ""), item
    assert item.get("relevance_score", item.get("score")) == 0


def refused_query(r: httpx.Response) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_query" and TEXT_ONLY in error["message"], error


def test_health_and_models_name_the_family(ce_server, cross_encoder_dir):
    with ce_server.client() as c:
        health = c.get("/health").json()
        assert (health["status"], health["backend"], health["family"]) == ("ok", "lychee", FAMILY)
        assert (health["model"], health["device"], health["dtype"]) == (str(cross_encoder_dir), "cpu", "float32")
        for path in ("/v1/models", "/models"):
            (card,) = c.get(path).json()["data"]
            assert (card["id"], card["family"]) == (str(cross_encoder_dir), FAMILY)


def test_v1_rerank_english_and_chinese_texts_match_the_library(ce_server, cross_encoder_reranker):
    for query in (QUERY, QUERY_ZH):
        expected = library_scores(cross_encoder_reranker, query, TEXTS)
        assert spread(expected) > 1e-2
        for path in ("/v1/rerank", "/v2/rerank"):
            r = post(ce_server, path, {"query": query, "documents": TEXTS, "model": "anything"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert {x["index"]: x["relevance_score"] for x in body["results"]} == pytest.approx(expected, abs=TOL)
            assert [x["index"] for x in body["results"]] == sorted(expected, key=lambda i: -expected[i])
            usage = body["usage"]
            assert (usage["documents"], usage["scored"], usage["images"]) == (5, 5, 0)
            assert usage["prompt_tokens"] == tokens(cross_encoder_reranker, query, TEXTS)

    # An instruction is accepted and ignored; raw_scores is the classifier's logit; top_n.
    documents = [{"text": TEXTS[0]}, [{"type": "text", "text": TEXTS[2]}], TEXTS[1]]
    r = post(ce_server, "/v1/rerank", {"query": QUERY, "documents": documents, "instruction": "anything at all",
                                       "raw_scores": True, "top_n": 2})
    assert r.status_code == 200, r.text
    lib = cross_encoder_reranker.rerank(QUERY, [TEXTS[0], TEXTS[2], TEXTS[1]])
    raw = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
    assert len(raw) == 2 and set(raw) == {x.index for x in lib if x.rank <= 2}
    assert raw == pytest.approx({x.index: x.evidence["logit"] for x in lib if x.rank <= 2}, abs=1e-4)
    assert {i: 1 / (1 + math.exp(-v)) for i, v in raw.items()} == pytest.approx(
        {x.index: x.score for x in lib if x.rank <= 2}, abs=TOL)


def test_v1_rerank_an_image_document_fails_alone_and_an_image_query_is_422(ce_server, cross_encoder_reranker):
    expected = library_scores(cross_encoder_reranker, QUERY, [TEXTS[0], TEXTS[2]])
    for image_doc in ({"image": b64(PICTURE)}, data_uri(PICTURE), {"text": "a drawing", "image": data_uri(PICTURE)},
                      [{"type": "image_url", "image_url": {"url": data_uri(PICTURE)}}]):
        for path in ("/v1/rerank", "/rerank"):
            r = post(ce_server, path, {"query": QUERY, "documents": [TEXTS[0], image_doc, TEXTS[2]]})
            assert r.status_code == 200, r.text
            items = {x["index"]: x for x in r.json()["results"]}
            text_only_error(items[1])
            assert items[0].get("error") is None and items[2].get("error") is None
            assert [items[0]["relevance_score"], items[2]["relevance_score"]] == pytest.approx(
                [expected[0], expected[1]], abs=TOL)
    for query in ({"image": data_uri(PICTURE)}, data_uri(PICTURE), {"text": "this picture", "image": b64(PICTURE)}):
        refused_query(post(ce_server, "/v1/rerank", {"query": query, "documents": TEXTS[:2]}))


def test_tei_rerank_matches_the_library(ce_server, cross_encoder_reranker):
    expected = library_scores(cross_encoder_reranker, QUERY_ZH, TEXTS)
    r = post(ce_server, "/rerank", {"query": QUERY_ZH, "texts": TEXTS, "return_text": True, "truncate": False})
    assert r.status_code == 200, r.text
    ranked = r.json()
    assert [x["index"] for x in ranked] == sorted(expected, key=lambda i: -expected[i])
    assert {x["index"]: x["score"] for x in ranked} == pytest.approx(expected, abs=TOL)
    assert all(x["text"] == TEXTS[x["index"]] for x in ranked)
    raw = post(ce_server, "/rerank", {"query": QUERY_ZH, "texts": TEXTS, "raw_scores": True}).json()
    assert {x["index"]: 1 / (1 + math.exp(-x["score"])) for x in raw} == pytest.approx(expected, abs=TOL)
    refused_query(post(ce_server, "/rerank", {"query": {"image": data_uri(PICTURE)}, "documents": TEXTS[:2]}))


def test_vllm_score_one_query_and_pairs_match_the_library(ce_server, cross_encoder_reranker):
    expected = library_scores(cross_encoder_reranker, QUERY, TEXTS)
    for path in ("/score", "/v1/score"):
        r = post(ce_server, path, {"model": "x", "text_1": QUERY, "text_2": TEXTS})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert [d["index"] for d in data] == list(range(len(TEXTS)))
        assert {d["index"]: d["score"] for d in data} == pytest.approx(expected, abs=TOL)
        assert r.json()["usage"]["prompt_tokens"] == tokens(cross_encoder_reranker, QUERY, TEXTS)
    r = post(ce_server, "/v1/score", {"text_1": [QUERY, QUERY_ZH], "text_2": [TEXTS[1], TEXTS[2]]})
    assert r.status_code == 200, r.text
    want = [cross_encoder_reranker.rerank(QUERY, [TEXTS[1]])[0].score, cross_encoder_reranker.rerank(QUERY_ZH, [TEXTS[2]])[0].score]
    assert [d["score"] for d in r.json()["data"]] == pytest.approx(want, abs=TOL)
    parts = [{"type": "text", "text": TEXTS[0]}, {"type": "image_url", "image_url": {"url": data_uri(PICTURE)}},
             {"type": "text", "text": TEXTS[2]}]
    r = post(ce_server, "/score", {"text_1": QUERY, "text_2": {"content": parts}})
    assert r.status_code == 200, r.text
    data = {d["index"]: d for d in r.json()["data"]}
    text_only_error(data[1])
    want = library_scores(cross_encoder_reranker, QUERY, [TEXTS[0], TEXTS[2]])
    assert [data[0]["score"], data[2]["score"]] == pytest.approx([want[0], want[1]], abs=TOL)
    refused_query(post(ce_server, "/score", {"text_1": data_uri(PICTURE), "text_2": TEXTS[:2]}))


def test_api_rerank_matches_the_library(ce_server, cross_encoder_reranker):
    body = {"query": {"text": QUERY_ZH, "image": None},
            "documents": [{"text": t, "image": None} for t in TEXTS[:3]] + [{"text": None, "image": data_uri(PICTURE)}],
            "mode": "single"}
    r = post(ce_server, "/api/rerank", body)
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    text_only_error(results.pop(3))
    lib = {x.index: x for x in cross_encoder_reranker.rerank(QUERY_ZH, TEXTS[:3])}
    assert set(results) == set(lib)
    for i, x in results.items():
        assert x["score"] == pytest.approx(lib[i].score, abs=TOL) and x["rank"] == lib[i].rank
        assert x["yes_logit"] == pytest.approx(lib[i].evidence["logit"], abs=1e-4)
    refused_query(post(ce_server, "/api/rerank", {"query": {"image": data_uri(PICTURE)}, "documents": [{"text": "a"}]}))


def test_analyze_shows_the_pair_as_the_model_reads_it(ce_server, cross_encoder_reranker):
    r = post(ce_server, "/v1/analyze", {"query": QUERY, "document": TEXTS[0]})
    assert r.status_code == 200, r.text
    data = r.json()
    lib = cross_encoder_reranker.rerank(QUERY, [TEXTS[0]])[0]
    assert data["score"] == pytest.approx(lib.score, abs=TOL) and data["backend"] == "lychee"
    assert data["instruction"] == ""  # a cross-encoder has none
    assert data["prompt"] == "[CLS] what is the capital of china? [SEP] the capital of china is beijing. [SEP]"
    r = post(ce_server, "/v1/analyze", {"query": QUERY, "document": {"image": data_uri(PICTURE)}})
    assert r.status_code == 422 and TEXT_ONLY in r.json()["error"]["message"], r.text
    refused_query(post(ce_server, "/v1/analyze", {"query": {"image": data_uri(PICTURE)}, "document": TEXTS[0]}))


def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, ce_server, cross_encoder_dir, cross_encoder_reranker):
    pytest.importorskip("ray.serve")
    settings = ServerSettings(backend="lychee", model=str(cross_encoder_dir), device="cpu", dtype="float32",
                              host="127.0.0.1", port=free_port())
    requests = [
        {"query": QUERY, "documents": TEXTS},
        {"query": QUERY_ZH, "documents": [TEXTS[2], {"image": data_uri(PICTURE)}, TEXTS[0]], "top_n": 2},
        {"query": {"image": data_uri(PICTURE)}, "documents": ["x"]},
        {"query": "", "documents": ["x"]},
    ]
    with serve_replicas(settings) as ray_client, ce_server.client() as one:
        assert ray_client.get("/health").json()["family"] == FAMILY
        assert_same_answers(ray_client, one, requests, concurrent_calls=8, tol=TOL)
        _, first = comparable(ray_client.post("/v1/rerank", json=requests[0]))
        assert {x["index"]: x["relevance_score"] for x in first["results"]} == pytest.approx(
            library_scores(cross_encoder_reranker, QUERY, TEXTS), abs=TOL)
