"""Ranking metrics (hand-checked values) and the labelled evaluation set's consistency."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lychee_rerank.jobs.eval import (
    average_precision,
    evaluate,
    format_report,
    load_queries,
    mrr,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)

EVAL_FILE = Path(__file__).resolve().parents[2] / "examples" / "eval" / "gallery_eval.jsonl"


def test_recall_at_k_is_capped_by_the_number_of_relevant_documents():
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"a": 2}, 1) == 1.0
    assert recall_at_k(ranked, {"b": 2}, 1) == 0.0
    assert recall_at_k(ranked, {"a": 2, "c": 1}, 1) == 1.0  # min(k, #relevant) = 1
    assert recall_at_k(ranked, {"a": 2, "c": 1}, 2) == 0.5
    assert recall_at_k(ranked, {"a": 2, "c": 1}, 3) == 1.0
    assert recall_at_k(ranked, {"z": 1}, 4) == 0.0
    assert recall_at_k(ranked, {"a": 0}, 1) == 0.0  # a zero label is not relevant
    with pytest.raises(ValueError):
        recall_at_k(ranked, {"a": 1}, 0)


def test_reciprocal_rank_and_mrr():
    assert reciprocal_rank(["a", "b", "c"], {"c": 1}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], {"x": 1}) == 0.0
    assert mrr([["a", "b"], ["a", "b"]], [{"a": 1}, {"b": 1}]) == pytest.approx(0.75)
    assert mrr([], []) == 0.0
    with pytest.raises(ValueError):
        mrr([["a"]], [])


def test_ndcg_with_graded_labels():
    labels = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b", "c"], labels, 5) == pytest.approx(1.0)
    dcg = (2**1 - 1) / math.log2(2) + (2**2 - 1) / math.log2(3)
    ideal = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert ndcg_at_k(["b", "a", "c"], labels, 5) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["c", "d"], labels, 5) == 0.0
    assert ndcg_at_k(["c", "a"], labels, 1) == 0.0
    assert ndcg_at_k(["a"], {}, 5) == 0.0


def test_average_precision():
    assert average_precision(["a", "x", "b"], {"a": 1, "b": 1}) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(["x", "y"], {"a": 1}) == 0.0
    assert average_precision(["a"], {"a": 1, "b": 1}) == pytest.approx(0.5)


def test_the_committed_eval_set_is_well_formed_and_matches_the_gallery_builder():
    from lychee_rerank.demo.gallery import DRAWN, PHOTOS

    rows = load_queries(EVAL_FILE)
    gallery = {p.name for p in PHOTOS} | set(DRAWN)
    assert len(rows) >= 20 and len(gallery) >= 20
    assert len({r["id"] for r in rows}) == len(rows)
    langs = {r["lang"] for r in rows}
    assert {"en", "zh", "mixed"} <= langs
    for row in rows:
        assert set(row["relevant"]) <= gallery, row
        assert all(grade in (1, 2) for grade in row["relevant"].values())
        if row.get("query_image"):
            assert row["query_image"].startswith("queries/")
    labelled = {doc for r in rows for doc in r["relevant"]}
    assert any(name.endswith(".png") for name in labelled) and any(name.endswith(".jpg") for name in labelled)


def test_load_queries_rejects_bad_rows(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "relevant": {"a.jpg": 1}}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="query"):
        load_queries(bad)
    bad.write_text(json.dumps({"id": "x", "query": "q", "relevant": {}}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="relevant"):
        load_queries(bad)


def test_evaluate_runs_a_backend_over_a_gallery(tmp_path):
    """A real run on a tiny gallery: three photos, two text queries and one image query."""
    from lychee_rerank import LycheeReranker
    from lychee_rerank.backends.lite import LiteBackend
    from lychee_rerank.demo.gallery import _load_photo

    gallery = tmp_path / "gallery"
    (gallery / "queries").mkdir(parents=True)
    for name, loader in [("coffee.jpg", "coffee"), ("chelsea.jpg", "chelsea"), ("rocket.jpg", "rocket")]:
        _load_photo(loader).save(gallery / name)
    _load_photo("chelsea").crop((100, 20, 400, 290)).save(gallery / "queries" / "cat.jpg")
    labels = tmp_path / "eval.jsonl"
    labels.write_text(
        "\n".join(
            json.dumps(row, ensure_ascii=False)
            for row in [
                {"id": "a", "lang": "zh", "query": "猫", "relevant": {"chelsea.jpg": 2}},
                {"id": "b", "lang": "en", "query": "espresso", "relevant": {"coffee.jpg": 2}},
                {"id": "c", "lang": "image", "query_image": "queries/cat.jpg", "relevant": {"chelsea.jpg": 2}},
            ]
        ),
        encoding="utf-8",
    )
    report = evaluate(LycheeReranker(LiteBackend(cache_dir=tmp_path / "cache")), labels, gallery)
    assert report.documents == 3  # queries/ is not part of the gallery
    assert [q.ranking[0] for q in report.queries] == ["chelsea.jpg", "coffee.jpg", "chelsea.jpg"]
    summary = report.summary()
    assert summary["recall@1"] == 1.0 and summary["mrr"] == 1.0 and summary["ndcg@5"] == 1.0
    assert set(summary["by_lang"]) == {"zh", "en", "image"}
    text = format_report(report)
    assert "Recall@1 1.000" in text and "MRR 1.000" in text and "nDCG@5 1.000" in text


def test_evaluate_refuses_labels_for_missing_images(tmp_path):
    (tmp_path / "g").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "g" / "a.png")
    labels = tmp_path / "e.jsonl"
    labels.write_text(json.dumps({"query": "x", "relevant": {"missing.jpg": 1}}), encoding="utf-8")
    with pytest.raises(ValueError, match="missing.jpg"):
        evaluate(object(), labels, tmp_path / "g")


def test_metrics_on_tied_scores_follow_the_stable_order():
    """Equal scores keep input order (stable sort), so tied rankings give reproducible metrics."""
    from lychee_rerank.postprocess import PostProcessOptions, rank
    from lychee_rerank.results import PairScore

    names = ["x", "a", "y", "b"]
    results = rank([PairScore(score=s) for s in (0.5, 0.5, 0.9, 0.5)], names, PostProcessOptions())
    ranked = [names[r.index] for r in results]
    assert ranked == ["y", "x", "a", "b"]
    labels = {"a": 1, "b": 2}
    assert reciprocal_rank(ranked, labels) == pytest.approx(1 / 3)
    assert average_precision(ranked, labels) == pytest.approx((1 / 3 + 2 / 4) / 2)
    dcg = (2**1 - 1) / math.log2(4) + (2**2 - 1) / math.log2(5)
    ideal = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert ndcg_at_k(ranked, labels, 5) == pytest.approx(dcg / ideal)
    assert recall_at_k(ranked, labels, 3) == pytest.approx(0.5)


def test_a_corrupt_gallery_file_is_reported_not_fatal(tmp_path):
    from PIL import Image

    from lychee_rerank import LycheeReranker
    from lychee_rerank.backends.lite import LiteBackend
    from lychee_rerank.jobs.eval import evaluate

    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    labelled = tmp_path / "set.jsonl"
    labelled.write_text('{"id": "q", "lang": "en", "query": "red", "relevant": {"red.png": 1}}\n')
    report = evaluate(LycheeReranker(LiteBackend(cache_dir=tmp_path / "cache")), labelled, tmp_path)
    assert report.documents == 2 and report.queries[0].ranking[0] == "red.png"
    assert report.queries[0].ranking[-1] == "broken.png"  # scored 0 with its error, ranked last


def test_load_queries_keeps_unicode_line_separators_inside_a_query(tmp_path):
    """A U+2028 or U+0085 inside a JSON string is text: it neither splits the record nor shifts
    the line numbers that errors name (``str.splitlines`` broke at both)."""
    rows = [
        {"id": "a", "query": "red\u2028car", "relevant": {"x.jpg": 1}},
        {"id": "b", "query": "blue\x85boat\x0cnow", "relevant": {"y.jpg": 1}},
    ]
    good = tmp_path / "q.jsonl"
    good.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    assert [r["query"] for r in load_queries(good)] == ["red\u2028car", "blue\x85boat\x0cnow"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text(encoding="utf-8") + json.dumps({"query": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: 'relevant'"):
        load_queries(bad)
