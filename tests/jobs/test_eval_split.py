"""Held-out reporting: the split filter and the pooled score separation (AUC, medians)."""

from __future__ import annotations

import json

import pytest

from lychee_rerank.jobs.eval import EvalReport, QueryResult, evaluate


def _q(scores: list[float], labels: list[float]) -> QueryResult:
    ranking = [f"d{i}" for i in range(len(scores))]
    return QueryResult("q", "en", "q", ranking, scores, labels, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_score_separation_pools_pairs_across_queries():
    report = EvalReport([_q([0.9, 0.2, 0.1], [2, 0, 0]), _q([0.5, 0.4, 0.05], [0, 1, 0])])
    sep = report.score_separation()
    # relevant 0.9, 0.4 vs irrelevant 0.2, 0.1, 0.5, 0.05: 7 of 8 pairs ordered right
    assert sep["auc"] == pytest.approx(7 / 8)
    assert sep["median_relevant"] == pytest.approx(0.65)
    assert sep["median_irrelevant"] == pytest.approx(0.15)
    assert EvalReport([_q([0.3], [0])]).score_separation() == {}


def test_split_keeps_only_the_named_half(tmp_path, lite_reranker_for_eval):
    from PIL import Image

    gallery = tmp_path / "g"
    gallery.mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(gallery / "a.png")
    Image.new("RGB", (64, 64), (30, 30, 200)).save(gallery / "b.png")
    rows = [
        {"id": "t1", "lang": "en", "query": "red", "relevant": {"a.png": 2}, "split": "tuning"},
        {"id": "h1", "lang": "en", "query": "blue", "relevant": {"b.png": 2}, "split": "heldout"},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    report = evaluate(lite_reranker_for_eval, path, gallery, split="heldout")
    assert [q.id for q in report.queries] == ["h1"]
    assert len(report.queries[0].labels) == 2
    with pytest.raises(ValueError, match="no query has split"):
        evaluate(lite_reranker_for_eval, path, gallery, split="nope")


@pytest.fixture(scope="module")
def lite_reranker_for_eval(tmp_path_factory):
    from lychee_rerank import LycheeReranker
    from lychee_rerank.backends.lite import LiteBackend

    return LycheeReranker(LiteBackend(cache_dir=tmp_path_factory.mktemp("lite"), ocr=False))
