"""The Streamlit UI on a MonoQwen2-VL adapter directory: the footer names the family; the gallery
ranks uploaded images with the library's scores (English and Chinese queries, a named template);
single analysis scores a text query against an image document, and refuses a text document and an
image query with a clear error and no score; batch text fails every (text) document with the
reason. Through Streamlit's AppTest, as tests/ui/test_qwen3_vl.py and test_qwen3_reranker.py do."""

from __future__ import annotations

import pytest

from .conftest import model_app, open_mode
from ..qwen2_vl_support import DEFAULT_INSTRUCTION, FAMILY
from ..qwen3_vl_support import spread

TEMPLATE = "text_to_image"
IMAGE_ONLY = "reads image documents only"
TEXT_QUERIES = "reads text queries only"


@pytest.fixture()
def app(mono_qwen2_vl_dir, monkeypatch):
    return model_app(mono_qwen2_vl_dir, monkeypatch)


def cards(app) -> dict[str, tuple[int, float]]:
    """{upload name: (rank, score)} from the gallery cards' data attributes (as tests/ui/test_qwen3_vl.py reads them)."""
    out = {}
    for html in app.get("html"):
        body = html.proto.body
        if 'class="lychee-card' in body:
            name = body.split('data-name="', 1)[1].split('"', 1)[0]
            rank = int(body.split('data-rank="', 1)[1].split('"', 1)[0])
            out[name] = (rank, float(body.split('data-score="', 1)[1].split('"', 1)[0]))
    return out


def errors(app) -> list[str]:
    return [e.value for e in app.error]


def test_footer_and_gallery_ranking_match_the_library(app, mono_qwen2_vl_images, mono_qwen2_vl_reranker, mono_qwen2_vl_dir):
    assert not app.exception
    footer = " ".join(c.value for c in app.caption)
    assert f"Backend lychee · family {FAMILY} · model {mono_qwen2_vl_dir} · cpu · float32" in footer

    files = [(p.name, p.read_bytes(), "image/png") for p in mono_qwen2_vl_images[:5]]
    app.file_uploader(key="gallery").set_value(files).run()
    for query in ("a cat sitting on a window sill", "一只黑猫趴在窗台上"):
        app.sidebar.text_area(key="query").input(query)
        app.sidebar.button(key="rerank").click().run()
        assert not app.exception and not errors(app)
        shown = cards(app)
        expected = mono_qwen2_vl_reranker.rerank(query, [data for _, data, _ in files])
        assert spread([r.score for r in expected]) > 1e-3
        assert len(shown) == len(files)
        for r in expected:
            rank, score = shown[files[r.index][0]]
            assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)

    app.sidebar.selectbox(key="preset").set_value(TEMPLATE).run()
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    shown = cards(app)
    default = {r.index: r.score for r in expected}
    expected = mono_qwen2_vl_reranker.rerank(query, [data for _, data, _ in files], template=TEMPLATE)
    assert max(abs(r.score - default[r.index]) for r in expected) > 1e-6  # the template was read
    for r in expected:
        rank, score = shown[files[r.index][0]]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)


def test_single_analysis_scores_an_image_document_and_refuses_text_documents_and_image_queries(
        app, mono_qwen2_vl_images, mono_qwen2_vl_reranker):
    image = mono_qwen2_vl_images[3].read_bytes()
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input("a red block")
    app.file_uploader(key="single_doc_image").set_value(("d.png", image, "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception and not errors(app), errors(app)
    lib = mono_qwen2_vl_reranker.rerank("a red block", [image])[0]
    assert f"Instruction used: {DEFAULT_INSTRUCTION}" in [c.value for c in app.caption]
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(lib.score, abs=1e-4)
    assert float(metrics["yes logit"]) == pytest.approx(lib.yes_logit, abs=1e-3)  # the "True" logit
    assert float(metrics["no logit"]) == pytest.approx(lib.no_logit, abs=1e-3)  # the "False" logit

    # Text with the image document: refused with the reason, no score.
    app.text_area(key="single_doc").input("a caption")
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(IMAGE_ONLY in e for e in errors(app)), errors(app)
    assert not app.metric

    # An image query: refused too.
    app.text_area(key="single_doc").input("")
    app.file_uploader(key="single_query_image").set_value(("q.png", image, "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(TEXT_QUERIES in e for e in errors(app)), errors(app)
    assert not app.metric


def test_batch_text_fails_each_text_document_with_the_reason(app):
    open_mode(app, "Batch text")
    app.text_input(key="batch_query").input("a cat")
    app.text_area(key="batch_docs").input("a text document\nanother one")
    app.button(key="rank_texts").click().run()
    assert not app.exception
    shown = errors(app) + [str(v) for df in app.dataframe for v in df.value.get("Error", [])]
    assert any(IMAGE_ONLY in e for e in shown), shown
