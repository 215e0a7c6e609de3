"""`lychee serve` on a MonoQwen2-VL adapter directory, over real HTTP on loopback: every dialect
(/v1/rerank and its /v2 alias, TEI's /rerank, vLLM's /score, the article's /api/rerank,
/v1/analyze) returns the library's scores for image documents with English and Chinese queries;
/health and /v1/models name the family; Ray Serve answers as the single process does. A text
document fails alone ("reads image documents only") while the images are scored; an image query
is a 422 ``invalid_query``.

One server per module loads the checkpoint itself (the family found from adapter_config.json and
its base's config.json), as `lychee serve --model DIR` does; the library's reranker is the
yardstick (as tests/serving/test_qwen3_reranker.py); the checks every family shares are in
tests/serving/family_checks.py.
"""

from __future__ import annotations

import pytest

from ..qwen2_vl_support import DEFAULT_INSTRUCTION, FAMILY
from ..qwen3_vl_support import library_scores
from ..ray_support import ray_local  # noqa: F401 - the shared fixture
from .conftest import data_uri
from .family_checks import (TOL, check_analyze, check_api_rerank, check_health_and_models, check_ray_serve,
    check_rerank, check_score, failed_alone, post, refused_query, server_fixture)

IMAGE_ONLY = "reads image documents only"
TEXT_QUERIES = "reads text queries only"
QUERY = "a cat sitting on a window sill"
QUERY_ZH = "一只黑猫趴在窗台上"

mono_server = server_fixture("mono_qwen2_vl_dir")  # loads the checkpoint itself, as `lychee serve` does


@pytest.fixture(scope="module")
def uris(mono_qwen2_vl_images) -> list[str]:
    return [data_uri(p.read_bytes()) for p in mono_qwen2_vl_images[:4]]


def test_health_and_models_name_the_family(mono_server, mono_qwen2_vl_dir):
    check_health_and_models(mono_server, mono_qwen2_vl_dir, FAMILY)


def test_v1_rerank_matches_the_library_and_a_text_document_fails_alone(mono_server, mono_qwen2_vl_reranker,
                                                                       mono_qwen2_vl_images, uris):
    images = mono_qwen2_vl_images[:4]
    for query in (QUERY, QUERY_ZH):
        check_rerank(mono_server, mono_qwen2_vl_reranker, query, [{"image": u} for u in uris], images,
                     min_spread=1e-3, usage=(4, 4, 4))
    r = post(mono_server, "/v1/rerank", {"query": QUERY, "documents": [uris[0], "a text document",
                                                                      {"text": "a caption", "image": uris[1]}, uris[2]]})
    assert r.status_code == 200, r.text
    items = {x["index"]: x for x in r.json()["results"]}
    failed_alone(items[1], IMAGE_ONLY)
    failed_alone(items[2], IMAGE_ONLY)
    expected = library_scores(mono_qwen2_vl_reranker, QUERY, [images[0], images[2]])
    assert [items[0]["relevance_score"], items[3]["relevance_score"]] == pytest.approx([expected[0], expected[1]], abs=TOL)
    for query in ({"image": uris[0]}, uris[0], {"text": "this picture", "image": uris[0]}):
        refused_query(post(mono_server, "/v1/rerank", {"query": query, "documents": uris[:2]}), TEXT_QUERIES)


def test_tei_rerank_and_vllm_score_match_the_library(mono_server, mono_qwen2_vl_reranker, mono_qwen2_vl_images, uris):
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in uris]
    expected = check_score(mono_server, mono_qwen2_vl_reranker, QUERY_ZH, {"content": parts}, mono_qwen2_vl_images[:4])
    r = post(mono_server, "/rerank", {"query": QUERY_ZH, "texts": uris})
    assert r.status_code == 200, r.text
    assert {x["index"]: x["score"] for x in r.json()} == pytest.approx(expected, abs=TOL)
    refused_query(post(mono_server, "/score", {"text_1": uris[0], "text_2": uris[1:3]}), TEXT_QUERIES)


def test_api_rerank_and_analyze(mono_server, mono_qwen2_vl_reranker, mono_qwen2_vl_images, uris):
    documents = [{"text": None, "image": u} for u in uris[:3]] + [{"text": "words", "image": None}]
    check_api_rerank(mono_server, mono_qwen2_vl_reranker, QUERY, documents, mono_qwen2_vl_images[:3],
                     failed=(3, IMAGE_ONLY))

    data = check_analyze(mono_server, mono_qwen2_vl_reranker, QUERY_ZH, {"image": uris[1]}, mono_qwen2_vl_images[1],
                         logits=None)
    assert data["instruction"] == DEFAULT_INSTRUCTION
    assert f"{DEFAULT_INSTRUCTION} The query is: {QUERY_ZH}" in data["prompt"] and "<|image_pad|>" in data["prompt"]
    # Its own single user turn (the image, then the instruction and query): no system message.
    assert data["messages"] == [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": f"{DEFAULT_INSTRUCTION} The query is: {QUERY_ZH}"}]}]
    r = post(mono_server, "/v1/analyze", {"query": QUERY, "document": "a text document"})
    assert r.status_code == 422 and IMAGE_ONLY in r.json()["error"]["message"], r.text


def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, mono_server, mono_qwen2_vl_dir,
                                                                      mono_qwen2_vl_reranker, mono_qwen2_vl_images, uris):
    requests = [
        {"query": QUERY, "documents": uris},
        {"query": QUERY_ZH, "documents": [uris[2], "a text document", uris[0]],
         "instruction": "Does this page show the query? Answer True or False.", "top_n": 2},
        {"query": {"image": uris[0]}, "documents": uris[:1]},
        {"query": "", "documents": uris[:1]},
    ]
    check_ray_serve(mono_server, mono_qwen2_vl_dir, FAMILY, requests,
                    first_scores=library_scores(mono_qwen2_vl_reranker, QUERY, mono_qwen2_vl_images[:4]))
