"""The lite backend through LycheeReranker: rankings, evidence, record shape, robustness."""

from __future__ import annotations

import threading

import pytest

from lychee_rerank import Content, LycheeReranker, RerankResult
from lychee_rerank.backends.lite import MODEL_DESCRIPTION
from lychee_rerank.inputs import to_content


def _top(reranker, query, gallery: dict):
    names = list(gallery)
    results = reranker.rerank(query, list(gallery.values()))
    return names[results[0].index], results


@pytest.mark.parametrize(
    "query, expected",
    [
        ("一只black cat趴在窗台上", "cat"),
        ("猫咪", "cat"),
        ("a cup of espresso", "coffee"),
        ("火箭 launch", "rocket"),
        ("摩托车", "motorcycle"),
        ("禁止停车", "no_parking"),
        ("小心地滑 wet floor", "wet_floor"),
        ("收据 total 多少钱", "receipt"),
        ("去上海的高铁票", "ticket"),
        ("a red no parking sign", "no_parking"),
    ],
)
def test_chinese_english_and_mixed_queries_rank_the_right_image_first(
    lite_reranker, gallery, analyses, query, expected
):
    top, results = _top(lite_reranker, query, gallery)
    assert top == expected, [(list(gallery)[r.index], round(r.score, 3)) for r in results[:4]]
    assert results[0].score > results[1].score


def test_scores_are_in_0_1_and_evidence_says_why(lite_reranker, gallery, analyses):
    names = list(gallery)
    results = {names[r.index]: r for r in lite_reranker.rerank("咖啡", list(gallery.values()))}
    assert all(0.0 <= r.score <= 1.0 for r in results.values())
    coffee = results["coffee"].evidence
    assert coffee["backend"] == "lite" and coffee["query"] == "text"
    assert any(t["label"] in ("coffee 咖啡", "espresso") for t in coffee["matched_tags"])
    assert coffee["colours"] and all(c["zh"].endswith("色") for c in coffee["colours"])
    # The image's classes speak for it, more than for any other image (a glossed Chinese query
    # goes through its own, more cautious curve: see calibration.CONCEPT_GLOSSED).
    assert coffee["channels"]["tags"] > 0.4
    assert coffee["channels"]["tags"] == max(r.evidence["channels"].get("tags", 0.0) for r in results.values())
    receipt = results["receipt"].evidence
    assert "山茶咖啡" in receipt["ocr"].replace(" ", "")
    assert receipt["channels"]["ocr"] > 0.5
    assert results["coffee"].score > results["rocket"].score


def test_unrelated_images_score_low(lite_reranker, gallery, analyses):
    names = list(gallery)
    scores = {names[r.index]: r.score for r in lite_reranker.rerank("火箭发射", list(gallery.values()))}
    # The concept curve is a probability fitted on the tuning half of the photo set; with the
    # Chinese class names in the vocabulary (issue 11b) this match reads ~0.68 (0.8+ before).
    assert scores["rocket"] > 0.6
    # Chinese queries sit a little closer to every bilingual group label ("饮料" for the coffee
    # photo lands near 0.3); unrelated photos must still stay well below the match.
    unrelated = max(s for n, s in scores.items() if n in ("cat", "coffee", "camera"))
    assert unrelated < 0.4 and scores["rocket"] - unrelated > 0.25


def test_lite_and_model_backends_return_the_same_record_shape(lite_reranker, reranker, gallery, analyses):
    docs = ["a cat on a windowsill", gallery["cat"], {"text": "espresso", "image": gallery["coffee"]}]
    lite = lite_reranker.rerank("a cat", docs)
    model = reranker.rerank("a cat", docs)
    assert all(isinstance(r, RerankResult) for r in lite + model)
    for a, b in zip(lite, model):
        da, db = a.to_dict(), b.to_dict()
        assert set(da) == set(db)
        assert {k: type(v) for k, v in da.items() if v is not None}.keys() >= {"index", "score", "rank"}
        assert type(a.score) is type(b.score) and type(a.rank) is type(b.rank)
    assert [r.rank for r in lite] == [1, 2, 3]
    assert sorted(r.index for r in lite) == [0, 1, 2]
    assert all(r.evidence.get("backend") == "lite" for r in lite)
    assert all(r.yes_logit is None and r.error is None for r in lite)
    assert lite[0].index == 0 or lite[0].index == 1  # the text about a cat or the cat photo


def test_load_selects_the_lite_backend(lite_cache_dir):
    reranker = LycheeReranker.load("lite", cache_dir=lite_cache_dir, tie_epsilon=0.0)
    info = reranker.info
    assert info["backend"] == "lite" and info["model"] == MODEL_DESCRIPTION
    assert {"backend", "model", "device", "dtype", "attn_implementation"} <= set(info)
    assert reranker.tie_epsilon == 0.0


def test_text_documents_use_meaning_and_exact_terms(lite_reranker):
    docs = [
        "The train to Shanghai leaves from platform 3 at 9:00.",
        "Espresso is brewed by forcing hot water through finely ground coffee.",
        "猫是一种常见的宠物，喜欢晒太阳。",
        "Invoice INV-20417 is due on 30 June.",
    ]
    assert lite_reranker.rerank("how is espresso made", docs)[0].index == 1
    assert lite_reranker.rerank("养猫", docs)[0].index == 2
    assert lite_reranker.rerank("INV-20417", docs)[0].index == 3
    assert lite_reranker.rerank("去上海的火车几点开", docs)[0].index == 0


def test_image_query_finds_the_same_scene_and_mixed_query_combines(lite_reranker, gallery, analyses):
    cat_crop = gallery["cat"].crop((100, 20, 400, 290))
    names = list(gallery)
    results = lite_reranker.rerank(cat_crop, list(gallery.values()))
    assert names[results[0].index] == "cat"
    assert results[0].evidence["query"] == "image" and results[0].evidence["image_similarity"] > 0.8
    mixed = lite_reranker.rerank({"text": "猫", "image": cat_crop}, list(gallery.values()))
    assert names[mixed[0].index] == "cat" and mixed[0].evidence["query"] == "text+image"
    # an image query against text documents goes through the image's evidence
    texts = ["a rocket lifting off from the launch pad", "a cat sleeping on a sofa", "a cup of hot coffee"]
    assert lite_reranker.rerank(gallery["coffee"], texts)[0].index == 2


def test_a_failing_document_gets_an_error_and_the_rest_are_scored(lite_backend, gallery, analyses, monkeypatch):
    bad = to_content(gallery["cat"].rotate(90, expand=True))
    real = lite_backend._analyse_pixels

    def flaky(image):
        if image.size == bad.image.size:
            raise RuntimeError("simulated decoder fault")
        return real(image)

    monkeypatch.setattr(lite_backend, "_analyse_pixels", flaky)
    scores = lite_backend.score_pairs(
        Content(text="猫"), [to_content(gallery["coffee"]), bad, Content(text="cat")], instruction=""
    )
    assert scores[1].error and "simulated decoder fault" in scores[1].error
    assert scores[0].error is None and scores[2].error is None and scores[2].score > 0.5


def test_instruction_is_ignored_and_progress_is_reported(lite_backend, gallery, analyses):
    docs = [to_content(img) for img in list(gallery.values())[:5]]
    calls = []
    a = lite_backend.score_pairs(
        Content(text="coffee"), docs, instruction="x", batch_size=2, progress=lambda d, t: calls.append((d, t))
    )
    b = lite_backend.score_pairs(Content(text="coffee"), docs, instruction="something else entirely")
    assert [s.score for s in a] == [s.score for s in b]
    assert calls[-1] == (5, 5) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_follows_every_image_whatever_the_batch_size(lite_backend, gallery, analyses):
    """The UI shows each image's analysis; it used to force batch_size=1 (one busy worker) for it."""
    docs = [to_content(img) for img in list(gallery.values())[:5]] + [Content(text="a plain text document")]
    calls = []
    lite_backend.score_pairs(Content(text="coffee"), docs, batch_size=8, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


def test_concurrent_calls_agree_with_sequential_ones(lite_reranker, gallery, analyses):
    queries = ["猫", "coffee", "禁止停车", "rocket"]
    docs = list(gallery.values())
    expected = {q: [r.index for r in lite_reranker.rerank(q, docs)] for q in queries}
    got: dict[str, list[int]] = {}

    def run(q: str) -> None:
        got[q] = [r.index for r in lite_reranker.rerank(q, docs)]

    threads = [threading.Thread(target=run, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_empty_text_query_with_image_only_documents_is_an_input_error(lite_reranker, gallery):
    from lychee_rerank import InputError

    with pytest.raises(InputError):
        lite_reranker.rerank("   ", [gallery["cat"]])


def test_a_document_that_breaks_scoring_fails_alone(lite_reranker, monkeypatch):
    """A fault while scoring one document (simulated) leaves the others scored as before."""
    docs = ["a cup of coffee", "a red car", "poison", "a cat on a sofa"]
    clean = {r.index: r.score for r in lite_reranker.rerank("coffee", [d for d in docs if d != "poison"])}
    backend = lite_reranker.backend
    original = backend._score

    def flaky(q, batch):
        if any(doc.content.text == "poison" for doc in batch):
            raise RuntimeError("embedder failure")
        return original(q, batch)

    monkeypatch.setattr(backend, "_score", flaky)
    results = {r.index: r for r in lite_reranker.rerank("coffee", docs)}
    assert "embedder failure" in results[2].error and results[2].rank == 4
    for i, j in ((0, 0), (1, 1), (3, 2)):
        assert results[i].error is None
        assert results[i].score == pytest.approx(clean[j], abs=1e-9)
