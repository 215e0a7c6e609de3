"""`lychee serve` on a jina-reranker-m0 checkpoint, over real HTTP on loopback: every dialect the
server speaks (/v1/rerank and its /v2 alias, TEI's /rerank, vLLM's /score, the article's
/api/rerank, /v1/analyze) returns the library's scores for texts, images and an image query;
/health carries the family and the licence notice, /v1/models the family; an over-long document is
marked truncated; a corrupt image fails alone; Ray Serve answers as the single process does.

One server per module loads the checkpoint itself (the family found from config.json), as
`lychee serve --model DIR` does; the library's reranker (tests/jina_m0_support.py) is the yardstick;
the checks every family shares are in tests/serving/family_checks.py.
"""

from __future__ import annotations

import pytest

from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    QUERY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
    library_scores,
)
from ..ray_support import ray_local  # noqa: F401 - the shared fixture
from .conftest import b64, data_uri
from .family_checks import (TOL, bytes_fixture, check_analyze, check_api_rerank, check_health_and_models,
    check_raw_scores, check_ray_serve, check_rerank, check_score, check_tei_rerank, post, server_fixture)

LONG = " ".join(f"word{i % 97} plain text, number {i}." for i in range(1800))  # > 10,240 tokens
LOGIT_BIAS = 2.65  # the published bias: the head's output minus it is the raw score, reported as no_logit

jm0_server = server_fixture("jina_m0_dir")  # loads the checkpoint itself, as `lychee serve` does
pngs = bytes_fixture("jina_m0_pngs")


def test_health_carries_the_family_and_the_licence_notice(jm0_server, jina_m0_dir):
    health = check_health_and_models(jm0_server, jina_m0_dir, FAMILY)
    assert "CC-BY-NC-4.0" in health["note"] and "non-commercial" in health["note"]


def test_v1_rerank_texts_images_and_an_image_query_match_the_library(jm0_server, jina_m0_reranker, pngs):
    a, b, c = pngs
    documents = [TEXTS[0], data_uri(a), {"image": b64(b)}, [{"type": "image_url", "image_url": {"url": data_uri(c)}}], TEXTS[3]]
    check_rerank(jm0_server, jina_m0_reranker, QUERY, documents, [TEXTS[0], a, b, c, TEXTS[3]], min_spread=1e-3)

    # An image query (I -> T and I -> I), infinity's raw scores: the head's output minus the bias 2.65.
    r = post(jm0_server, "/v1/rerank", {"query": {"image": data_uri(a)}, "documents": [TEXTS[1], {"image": b64(b)}],
                                        "raw_scores": True})
    results = jina_m0_reranker.rerank(a, [TEXTS[1], b])
    check_raw_scores(r, results, lambda x: x.yes_logit - LOGIT_BIAS)


def test_tei_rerank_and_vllm_score_match_the_library(jm0_server, jina_m0_reranker, pngs):
    check_tei_rerank(jm0_server, jina_m0_reranker, QUERY, TEXTS)
    parts = [{"type": "text", "text": TEXTS[0]}, {"type": "image_url", "image_url": {"url": data_uri(pngs[0])}}]
    check_score(jm0_server, jina_m0_reranker, QUERY, {"content": parts}, [TEXTS[0], pngs[0]])


def test_api_rerank_and_analyze_match_the_library(jm0_server, jina_m0_reranker, pngs):
    documents = [{"text": TEXTS[0], "image": None}, {"text": None, "image": data_uri(pngs[2])}]
    check_api_rerank(jm0_server, jina_m0_reranker, QUERY, documents, [TEXTS[0], pngs[2]])

    data = check_analyze(jm0_server, jina_m0_reranker, "a red circle", {"image": b64(pngs[0])}, pngs[0])
    assert data["prompt"] == "**Document**:\n<|vision_start|><|image_pad|><|vision_end|>\n**Query**:\na red circle"
    assert data["messages"] is None  # one plain document-first string, not a chat


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
    """Texts, images, an image query, top_n, a bad document, a bad query."""
    requests = [
        {"query": QUERY, "documents": [*TEXTS, {"image": data_uri(pngs[0])}]},
        {"query": {"image": data_uri(pngs[1])}, "documents": [{"image": data_uri(pngs[2])}, "text only"], "top_n": 1},
        {"query": "anything", "documents": ["fine", {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}]},
        {"query": "", "documents": ["x"]},
    ]
    check_ray_serve(jm0_server, jina_m0_dir, FAMILY, requests, note="CC-BY-NC-4.0")
