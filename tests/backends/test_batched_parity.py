"""Fast paths that batch across requests give each pair the naive reference's score (1e-5, FP32).

Covers the prefix shared by concurrent requests with different queries (system prompt and
instruction run once), at several batch sizes, and the plain batched scorer the benchmarks
compare against.
"""

from __future__ import annotations

import pytest

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.lychee import _Call
from lychee_rerank.testing.reference import PlainBatchedScorer


def _requests(photos):
    same_size = photos[4].resize(photos[0].size)  # same image-token count as photos[0], other pixels
    return [
        ("a black cat on a sofa", ["a black cat", photos[1], {"text": "red car", "image": photos[2]}]),
        (photos[0], ["coffee " * 12, photos[3]]),
        (same_size, ["coffee " * 12, "a rocket"]),
        ({"text": "this cat", "image": photos[5]}, [photos[6], "the quick brown fox"]),
        ("a red car", ["a red car in the sun", "a dog in the park", photos[7]]),
    ]


def _reference(naive, query, doc):
    kw = {}
    for side, item in (("query", query), ("doc", doc)):
        if isinstance(item, str):
            kw[f"{side}_text"] = item
        elif isinstance(item, dict):
            kw[f"{side}_text"], kw[f"{side}_image"] = item["text"], item["image"]
        else:
            kw[f"{side}_image"] = item
    return naive.score(**kw)[0]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_concurrent_requests_share_the_instruction_prefix_and_match_naive(tiny_model_dir, naive, photos, batch_size):
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    requests = _requests(photos)
    out = rr.rerank_many([{"query": q, "documents": d} for q, d in requests], batch_size=batch_size)
    stats = rr.backend.stats
    assert stats["prefix_batches"] > 0 and stats["full_batches"] == 0 and stats["coalesced_requests"] == len(requests)
    for (query, docs), results in zip(requests, out):
        got = {r.index: r.score for r in results}
        for i, doc in enumerate(docs):
            assert got[i] == pytest.approx(_reference(naive, query, doc), abs=1e-5), (query, i, batch_size)


def test_shared_prefix_stops_before_any_query_image(tiny_model_dir, photos):
    """Two image queries of the same size tokenize alike; their pads must not enter the prefix."""
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    backend = rr.backend
    requests = _requests(photos)[1:3]
    groups = [(rr.to_query(q), [rr.to_query(d) for d in docs], "find it") for q, docs in requests]
    pairs = [backend.prepare(i, q, d, ins, False) for q, docs, ins in groups for i, d in enumerate(docs)]
    assert pairs[0].ids.index(backend.image_token_id) == pairs[2].ids.index(backend.image_token_id)
    call = _Call()
    backend._start_preprocessing(pairs, call)
    prefix = backend._build_prefix(pairs, call, 0)
    assert prefix is not None and prefix.n_images == 0
    assert backend.image_token_id not in pairs[0].ids[: prefix.length]
    vision_start = backend.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert vision_start not in pairs[0].ids[: prefix.length]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_plain_batched_scorer_matches_naive(tiny_model_dir, naive, photos, batch_size):
    """The benchmarks' peer is a correct scorer: its speed is comparable, its scores the reference's."""
    scorer = PlainBatchedScorer(tiny_model_dir, batch_size=batch_size)
    pairs = [
        {"query_text": "a black cat", "doc_text": "a black cat on a sofa"},
        {"query_text": "a black cat", "doc_image": photos[1]},
        {"query_image": photos[0], "doc_text": "coffee " * 20},
        {"query_text": "this", "query_image": photos[2], "doc_text": "red car", "doc_image": photos[3]},
        {"query_text": "a red car", "doc_image": photos[7]},
    ]
    got = scorer.score(pairs)
    for p, score in zip(pairs, got):
        assert score == pytest.approx(naive.score(**p)[0], abs=1e-5)
