"""Prefix reuse, the vision cache and token-budget batching give the reference's scores."""

from __future__ import annotations

import pytest
import torch

import lychee_rerank.backends.lychee as lychee_backend
from lychee_rerank import LycheeReranker
from lychee_rerank.backends.vision_cache import VisionCache

from ..conftest import make_photo


@pytest.fixture(scope="module")
def plain(tiny_model_dir):
    """No prefix reuse, no vision cache: the fast path's own baseline."""
    return LycheeReranker.from_pretrained(tiny_model_dir, prefix_cache=False, vision_cache_bytes=0)


def _scores(rr, query, docs, **kw):
    return {r.index: r.score for r in rr.rerank(query, docs, **kw)}


def test_prefix_reuse_is_used_and_matches_full_forward(tiny_model_dir, plain, photos, naive):
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    docs = ["a black cat", photos[0], {"text": "red car", "image": photos[1]}, "coffee " * 30, photos[2]]
    for query in ("a cat on a window", photos[3], {"text": "this cat", "image": photos[4]}):
        before = dict(rr.backend.stats)
        fast = _scores(rr, query, docs, batch_size=2)
        assert rr.backend.stats["prefix_batches"] > before.get("prefix_batches", 0)
        full = _scores(plain, query, docs, batch_size=2)
        assert max(abs(fast[i] - full[i]) for i in fast) <= 1e-5
    assert plain.backend.stats["prefix_batches"] == 0 and plain.backend.stats["full_batches"] > 0
    # and against the naive reference, for the mixed query
    q = {"text": "this cat", "image": photos[4]}
    ref = naive.score(query_text="this cat", query_image=photos[4], doc_text="red car", doc_image=photos[1])[0]
    assert _scores(rr, q, docs)[2] == pytest.approx(ref, abs=1e-5)


def test_long_query_prefix_matches_naive(tiny_model_dir, naive):
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    query = "the quick brown fox jumps over the lazy dog and a black cat " * 80
    assert len(rr.backend.tokenizer.encode(query)) >= 1000
    docs = [f"document about {w}" for w in ("cats", "dogs", "coffee", "rockets", "cars", "parks")]
    got = _scores(rr, query, docs, batch_size=4)
    for i, d in enumerate(docs):
        assert got[i] == pytest.approx(naive.score(query_text=query, doc_text=d)[0], abs=1e-5)
    assert rr.backend.stats["prefix_batches"] == 2


def test_unsafe_or_useless_prefix_falls_back_to_full_forward(tiny_model_dir, plain, monkeypatch):
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    rr.rerank("q", ["only one document"])  # a single pair: nothing to share
    assert rr.backend.stats["prefix_batches"] == 0 and rr.backend.stats["full_batches"] == 1
    monkeypatch.setattr(lychee_backend, "MIN_PREFIX_TOKENS", 10_000)  # a prefix too short to pay
    got = _scores(rr, "q", ["a", "b", "c"])
    assert rr.backend.stats["prefix_fallbacks"] == 1 and rr.backend.stats["prefix_batches"] == 0
    assert got == pytest.approx(_scores(plain, "q", ["a", "b", "c"]), abs=1e-6)


def test_prefix_never_swallows_document_image_tokens(tiny_model_dir, plain):
    """All documents are images of the same size: their pad ids match but features differ."""
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    same_size = [make_photo(84, 84, seed=s) for s in range(4)]
    fast = _scores(rr, "which one?", same_size, batch_size=4)
    full = _scores(plain, "which one?", same_size, batch_size=4)
    assert max(abs(fast[i] - full[i]) for i in fast) <= 1e-5
    assert len({round(v, 6) for v in fast.values()}) == 4  # different images, different scores


def test_vision_cache_reuses_features_across_queries(tiny_model_dir, plain, photos):
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    gallery = photos[:6]
    rr.rerank("first query", gallery)
    stats = rr.backend.stats
    assert stats["vision_cache_misses"] == 6 and stats["vision_cache_hits"] == 0
    second = _scores(rr, "a second, different query", gallery)
    assert stats["vision_cache_misses"] == 6 and stats["vision_cache_hits"] == 6
    assert second == pytest.approx(_scores(plain, "a second, different query", gallery), abs=1e-5)
    # a different pixel budget is a different key
    assert len(rr.backend.vision_cache) == 6


def test_vision_cache_is_bounded_in_bytes_and_lru():
    cache = VisionCache(max_bytes=3 * 400)
    t = lambda: torch.zeros(100, dtype=torch.float32)  # 400 bytes
    for key in "abc":
        cache.put(key, t())
    assert cache.get("a") is not None  # a is now most recent
    cache.put("d", t())  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 3
    assert cache.nbytes == 1200
    cache.put("huge", torch.zeros(1000))  # larger than the whole cache: not stored
    assert cache.get("huge") is None and len(cache) == 3


def test_token_budget_batching_packs_by_length(tiny_model_dir, plain):
    rr = LycheeReranker.from_pretrained(tiny_model_dir, max_batch_tokens=400, prefix_cache=False)
    docs = ["short"] * 6 + ["a much longer document " * 20] * 2
    pairs = [rr.backend.prepare(i, rr.to_query("q"), rr.to_query(d), "i", False) for i, d in enumerate(docs)]
    batches = rr.backend.batches(pairs, batch_size=8)
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(p.length for p in batch) <= 400
    assert sum(len(b) for b in batches) == 8 and len(batches) > 1
    lengths = [p.length for b in batches for p in b]
    assert lengths == sorted(lengths)  # grouped by length
    assert _scores(rr, "q", docs) == pytest.approx(_scores(plain, "q", docs), abs=1e-5)
