"""Tokenisation (Chinese bigrams), scaled BM25, and multilingual e5 matching."""

from __future__ import annotations

import numpy as np
import pytest

from lychee_rerank.backends.lite.text import lexical_scores, tokenize


def test_tokenize_mixed_chinese_and_english():
    tokens = tokenize("一只Black Cat趴在窗台上")
    assert tokens[:2] == ["black", "cat"]
    assert "窗台" in tokens and "台上" in tokens
    assert "一只" not in tokens and "趴窗" not in tokens  # stop characters split runs
    assert tokenize("the a of") == []
    assert tokenize("猫") == ["猫"]


def test_lexical_scores_are_scaled_and_reward_exact_terms():
    docs = ["禁止停车 NO PARKING", "小心地滑 CAUTION WET FLOOR", "停车场入口 parking entrance", "espresso cup"]
    scores = lexical_scores("禁止停车 no parking", docs)
    assert scores.shape == (4,)
    assert scores[0] > 0.95  # every term once, at about the average length
    assert 0 < scores[2] < scores[0]
    assert scores[1] == 0 and scores[3] == 0
    assert np.all((scores >= 0) & (scores <= 1))
    assert lexical_scores("", docs).tolist() == [0.0] * 4
    assert lexical_scores("nothing matches", docs).tolist() == [0.0] * 4


def test_embeddings_are_normalised_and_memoised(embedder):
    vectors = embedder.passages(["tabby cat", "espresso", "tabby cat"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert np.array_equal(vectors[0], vectors[2])
    calls = embedder.calls
    embedder.passages(["tabby cat", "espresso"])
    assert embedder.calls == calls  # served from the memo


@pytest.mark.parametrize(
    "query, right, wrong",
    [
        ("猫", "tabby cat", "espresso"),
        ("一杯咖啡", "espresso", "missile"),
        ("火箭", "missile", "tabby cat"),
        ("一只black cat趴在窗台上", "cat 猫", "coffee 咖啡"),
    ],
)
def test_chinese_and_mixed_queries_reach_english_labels(embedder, query, right, wrong):
    q = embedder.query(query)
    labels = embedder.passages([right, wrong])
    assert float(labels[0] @ q) > float(labels[1] @ q)
