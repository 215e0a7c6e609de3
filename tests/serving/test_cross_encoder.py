"""`lychee serve` on a sequence-classification cross-encoder (text only), over real HTTP on loopback:
every dialect (/v1/rerank and /v2, TEI's /rerank, vLLM's /score and /v1/score, /api/rerank,
/v1/analyze) returns the library's scores for English and Chinese texts; /health and /v1/models
name the family; Ray Serve answers as the single process does. An image document fails alone
("reads text only") while the texts are scored; an image query is a 422 ``invalid_query``.
The library's reranker (itself checked against CrossEncoder.predict) is the yardstick; the checks
every family shares are in tests/serving/family_checks.py.
"""

from __future__ import annotations

from ..cross_encoder_support import FAMILY, TEXT_ONLY
from ..qwen3_vl_support import library_scores
from ..ray_support import ray_local  # noqa: F401 - the shared fixture
from .conftest import data_uri
from .family_checks import (PICTURE, TEXT_QUERY as QUERY, TEXT_QUERY_ZH as QUERY_ZH, TEXTS, check_analyze,
    check_api_rerank, check_health_and_models, check_raw_scores, check_ray_serve, check_rerank, check_score,
    check_score_pairs, check_tei_rerank, check_text_only_analyze, check_text_only_rerank, check_text_only_score, post,
    refused_query, server_fixture)

ce_server = server_fixture("cross_encoder_dir")  # loads the checkpoint itself, as `lychee serve` does


def classifier_logit(result) -> dict[str, float]:
    """A cross-encoder has one logit (the classifier's), reported as yes_logit."""
    return {"yes_logit": result.evidence["logit"]}


def test_health_and_models_name_the_family(ce_server, cross_encoder_dir):
    check_health_and_models(ce_server, cross_encoder_dir, FAMILY)


def test_v1_rerank_english_and_chinese_texts_match_the_library(ce_server, cross_encoder_reranker):
    for query in (QUERY, QUERY_ZH):
        check_rerank(ce_server, cross_encoder_reranker, query, TEXTS, min_spread=1e-2, usage=(5, 5, 0))

    # An instruction is accepted and ignored; raw_scores is the classifier's logit; top_n.
    documents = [{"text": TEXTS[0]}, [{"type": "text", "text": TEXTS[2]}], TEXTS[1]]
    r = post(ce_server, "/v1/rerank", {"query": QUERY, "documents": documents, "instruction": "anything at all",
                                       "raw_scores": True, "top_n": 2})
    lib = cross_encoder_reranker.rerank(QUERY, [TEXTS[0], TEXTS[2], TEXTS[1]])
    check_raw_scores(r, lib, lambda x: x.evidence["logit"], top_n=2)


def test_v1_rerank_an_image_document_fails_alone_and_an_image_query_is_422(ce_server, cross_encoder_reranker):
    check_text_only_rerank(ce_server, cross_encoder_reranker, QUERY, TEXTS, PICTURE, TEXT_ONLY)


def test_tei_rerank_matches_the_library(ce_server, cross_encoder_reranker):
    check_tei_rerank(ce_server, cross_encoder_reranker, QUERY_ZH, TEXTS)
    refused_query(post(ce_server, "/rerank", {"query": {"image": data_uri(PICTURE)}, "documents": TEXTS[:2]}), TEXT_ONLY)


def test_vllm_score_one_query_and_pairs_match_the_library(ce_server, cross_encoder_reranker):
    check_score(ce_server, cross_encoder_reranker, QUERY, TEXTS, TEXTS)
    check_score_pairs(ce_server, cross_encoder_reranker, "/v1/score", [QUERY, QUERY_ZH], [TEXTS[1], TEXTS[2]],
                      [(QUERY, TEXTS[1]), (QUERY_ZH, TEXTS[2])])
    check_text_only_score(ce_server, cross_encoder_reranker, QUERY, TEXTS, PICTURE, TEXT_ONLY)


def test_api_rerank_matches_the_library(ce_server, cross_encoder_reranker):
    documents = [{"text": t, "image": None} for t in TEXTS[:3]] + [{"text": None, "image": data_uri(PICTURE)}]
    check_api_rerank(ce_server, cross_encoder_reranker, QUERY_ZH, documents, TEXTS[:3], logits=classifier_logit,
                     failed=(3, TEXT_ONLY))
    refused_query(post(ce_server, "/api/rerank", {"query": {"image": data_uri(PICTURE)}, "documents": [{"text": "a"}]}),
                  TEXT_ONLY)


def test_analyze_shows_the_pair_as_the_model_reads_it(ce_server, cross_encoder_reranker):
    data = check_analyze(ce_server, cross_encoder_reranker, QUERY, TEXTS[0], TEXTS[0], logits=None)
    assert data["instruction"] == ""  # a cross-encoder has none
    assert data["prompt"] == "[CLS] what is the capital of china? [SEP] the capital of china is beijing. [SEP]"
    assert data["messages"] is None  # a tokenizer pair, not a chat
    check_text_only_analyze(ce_server, QUERY, TEXTS[0], PICTURE, TEXT_ONLY)


def test_ray_serve_two_replicas_answer_like_the_single_process_server(ray_local, ce_server, cross_encoder_dir, cross_encoder_reranker):
    requests = [
        {"query": QUERY, "documents": TEXTS},
        {"query": QUERY_ZH, "documents": [TEXTS[2], {"image": data_uri(PICTURE)}, TEXTS[0]], "top_n": 2},
        {"query": {"image": data_uri(PICTURE)}, "documents": ["x"]},
        {"query": "", "documents": ["x"]},
    ]
    check_ray_serve(ce_server, cross_encoder_dir, FAMILY, requests,
                    first_scores=library_scores(cross_encoder_reranker, QUERY, TEXTS))
