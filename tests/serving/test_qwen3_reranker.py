"""`lychee serve` on a Qwen3-Reranker checkpoint (text only), over real HTTP on loopback: every
dialect the server speaks (/v1/rerank and its /v2 alias, TEI's /rerank, vLLM's /score and
/v1/score, the article's /api/rerank, /v1/analyze) returns the library's scores for English and
Chinese texts; /health and /v1/models name the family; Ray Serve answers as the single process
does. An image document fails alone ("reads text only") while the texts are scored; an image
query is a 422 ``invalid_query``.

One server per module loads the checkpoint itself (the family found from config.json), as
`lychee serve --model DIR` does; the library's reranker is the yardstick (as tests/serving/test_qwen3_vl.py).
The checks every family shares are in tests/serving/family_checks.py.
"""

from __future__ import annotations

from ..qwen3_reranker_support import DEFAULT_INSTRUCTION, FAMILY
from ..qwen3_vl_support import library_scores
from ..ray_support import ray_local  # noqa: F401 - the shared fixture
from .conftest import data_uri
from .family_checks import (PICTURE, TEXT_QUERY as QUERY, TEXT_QUERY_ZH as QUERY_ZH, TEXTS, check_analyze,
    check_api_rerank, check_health_and_models, check_raw_scores, check_ray_serve, check_rerank, check_score,
    check_score_pairs, check_tei_rerank, check_text_only_analyze, check_text_only_rerank, check_text_only_score, post,
    refused_query, server_fixture)

TEXT_ONLY = "reads text only"

q3r_server = server_fixture("qwen3_reranker_dir")  # loads the checkpoint itself, as `lychee serve` does


# --------------------------------------------------------------------------- service
def test_health_and_models_name_the_family(q3r_server, qwen3_reranker_dir):
    check_health_and_models(q3r_server, qwen3_reranker_dir, FAMILY)


# --------------------------------------------------------------------------- /v1/rerank (Cohere, Jina, vLLM, infinity)
def test_v1_rerank_english_and_chinese_texts_match_the_library(q3r_server, qwen3_reranker_reranker):
    for query in (QUERY, QUERY_ZH):
        check_rerank(q3r_server, qwen3_reranker_reranker, query, TEXTS, min_spread=1e-3, usage=(5, 5, 0))

    # Jina objects and OpenAI text parts, an instruction, top_n, infinity's raw scores (yes - no logit).
    instruction = "Find the passage that answers the question"
    documents = [{"text": TEXTS[0]}, [{"type": "text", "text": TEXTS[2]}], TEXTS[1]]
    r = post(q3r_server, "/v1/rerank", {"query": QUERY, "documents": documents, "instruction": instruction,
                                        "raw_scores": True, "top_n": 2})
    lib = qwen3_reranker_reranker.rerank(QUERY, [TEXTS[0], TEXTS[2], TEXTS[1]], instruction=instruction)
    check_raw_scores(r, lib, lambda x: x.yes_logit - x.no_logit, top_n=2)


def test_v1_rerank_an_image_document_fails_alone_and_an_image_query_is_422(q3r_server, qwen3_reranker_reranker):
    check_text_only_rerank(q3r_server, qwen3_reranker_reranker, QUERY, TEXTS, PICTURE, TEXT_ONLY)


# --------------------------------------------------------------------------- TEI /rerank
def test_tei_rerank_matches_the_library(q3r_server, qwen3_reranker_reranker):
    check_tei_rerank(q3r_server, qwen3_reranker_reranker, QUERY_ZH, TEXTS)
    refused_query(post(q3r_server, "/rerank", {"query": {"image": data_uri(PICTURE)}, "documents": TEXTS[:2]}), TEXT_ONLY)


# --------------------------------------------------------------------------- vLLM /score
def test_vllm_score_one_query_and_pairs_match_the_library(q3r_server, qwen3_reranker_reranker):
    check_score(q3r_server, qwen3_reranker_reranker, QUERY, TEXTS, TEXTS)
    # N pairs: text_1[i] against text_2[i], English and Chinese.
    check_score_pairs(q3r_server, qwen3_reranker_reranker, "/v1/score", [QUERY, QUERY_ZH], [TEXTS[1], TEXTS[2]],
                      [(QUERY, TEXTS[1]), (QUERY_ZH, TEXTS[2])])
    # An image part among the documents fails alone; an image text_1 is refused.
    check_text_only_score(q3r_server, qwen3_reranker_reranker, QUERY, TEXTS, PICTURE, TEXT_ONLY)


# --------------------------------------------------------------------------- /api/rerank (the article's shape)
def test_api_rerank_matches_the_library_with_logits(q3r_server, qwen3_reranker_reranker):
    documents = [{"text": t, "image": None} for t in TEXTS[:3]] + [{"text": None, "image": data_uri(PICTURE)}]
    check_api_rerank(q3r_server, qwen3_reranker_reranker, QUERY_ZH, documents, TEXTS[:3], failed=(3, TEXT_ONLY))
    refused_query(post(q3r_server, "/api/rerank", {"query": {"image": data_uri(PICTURE)}, "documents": [{"text": "a"}]}),
                  TEXT_ONLY)


# --------------------------------------------------------------------------- /v1/analyze
def test_analyze_shows_the_family_prompt_default_instruction_and_the_library_score(q3r_server, qwen3_reranker_reranker):
    data = check_analyze(q3r_server, qwen3_reranker_reranker, QUERY_ZH, TEXTS[2], TEXTS[2])
    assert data["instruction"] == DEFAULT_INSTRUCTION
    prompt = data["prompt"]
    assert f"<Instruct>: {DEFAULT_INSTRUCTION}" in prompt and f"<Query>: {QUERY_ZH}" in prompt
    assert f"<Document>: {TEXTS[2]}" in prompt and "<|image_pad|>" not in prompt
    assert not data.get("images")
    assert data["messages"] is None  # the official prompt is one raw string
    check_text_only_analyze(q3r_server, QUERY, TEXTS[0], PICTURE, TEXT_ONLY)


# --------------------------------------------------------------------------- Ray Serve
def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, q3r_server, qwen3_reranker_dir, qwen3_reranker_reranker):
    """English and Chinese texts, an instruction, top_n, an image document, an image query, a bad query."""
    requests = [
        {"query": QUERY, "documents": TEXTS},
        {"query": QUERY_ZH, "documents": [TEXTS[2], {"image": data_uri(PICTURE)}, TEXTS[0]],
         "instruction": "给定一个中文问题，检索能回答该问题的段落", "top_n": 2},
        {"query": {"image": data_uri(PICTURE)}, "documents": ["x"]},
        {"query": "", "documents": ["x"]},
    ]
    check_ray_serve(q3r_server, qwen3_reranker_dir, FAMILY, requests,
                    first_scores=library_scores(qwen3_reranker_reranker, QUERY, TEXTS))
