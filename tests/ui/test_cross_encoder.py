"""The Streamlit UI on a sequence-classification cross-encoder (text only): the footer names the
family, batch-text and single-analysis show the library's scores for English and Chinese texts
(an instruction preset changes nothing: a cross-encoder reads none), and an image (a
single-analysis document or query, a gallery upload) gets a clear "reads text only" error and no
score. Through Streamlit's AppTest, as tests/ui/test_qwen3_reranker.py does."""

from __future__ import annotations

import pytest

from .conftest import model_app, open_mode
from ..cross_encoder_support import FAMILY, TEXT_ONLY
from ..serving.conftest import png, server_photo

TEMPLATE = "text_to_image"
QUERY = "What is the capital of China?"
QUERY_ZH = "中国的首都是哪里？"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]
PICTURES = [png(server_photo(64, 48, seed=21)), png(server_photo(90, 60, seed=22))]


@pytest.fixture()
def app(cross_encoder_dir, monkeypatch):
    return model_app(cross_encoder_dir, monkeypatch)


def errors(app) -> list[str]:
    return [e.value for e in app.error]


def test_footer_and_batch_text_in_english_and_chinese_match_the_library(app, cross_encoder_reranker, cross_encoder_dir):
    assert not app.exception
    footer = " ".join(c.value for c in app.caption)
    assert f"Backend lychee · family {FAMILY} · model {cross_encoder_dir} · cpu · float32" in footer

    open_mode(app, "Batch text")
    for query in (QUERY, QUERY_ZH):
        app.text_input(key="batch_query").input(query)
        app.text_area(key="batch_docs").input("\n".join(TEXTS))
        app.button(key="rank_texts").click().run()
        assert not app.exception and not errors(app)
        table = app.dataframe[0].value
        expected = cross_encoder_reranker.rerank(query, TEXTS)
        assert max(r.score for r in expected) - min(r.score for r in expected) > 1e-2
        assert list(table["Document"]) == [r.document for r in expected]
        assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)
        assert not any(table["Error"])

    # A named template is accepted and, for a cross-encoder, changes nothing.
    app.sidebar.selectbox(key="preset").set_value(TEMPLATE).run()
    app.button(key="rank_texts").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    expected = cross_encoder_reranker.rerank(QUERY_ZH, TEXTS)
    assert list(table["Document"]) == [r.document for r in expected]
    assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)


def test_single_analysis_scores_text_and_refuses_an_image_clearly(app, cross_encoder_reranker):
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input(QUERY_ZH)
    app.text_area(key="single_doc").input(TEXTS[2])
    app.button(key="analyse").click().run()
    assert not app.exception and not errors(app)
    lib = cross_encoder_reranker.rerank(QUERY_ZH, [TEXTS[2]])[0]
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(lib.score, abs=1e-4)

    app.file_uploader(key="single_doc_image").set_value(("d.png", PICTURES[0], "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(TEXT_ONLY in e for e in errors(app)), errors(app)
    assert not app.metric

    app.file_uploader(key="single_doc_image").set_value([]).run()
    app.file_uploader(key="single_query_image").set_value(("q.png", PICTURES[1], "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(TEXT_ONLY in e for e in errors(app)), errors(app)
    assert not app.metric


def test_gallery_uploads_each_fail_with_the_reason_and_get_no_card(app):
    files = [(f"p{i}.png", data, "image/png") for i, data in enumerate(PICTURES)]
    app.file_uploader(key="gallery").set_value(files).run()
    app.sidebar.text_area(key="query").input(QUERY)
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    shown = errors(app)
    for name, _, _ in files:
        assert any(f"Skipped {name}:" in e and TEXT_ONLY in e for e in shown), shown
    assert not [h for h in app.get("html") if 'class="lychee-card' in h.proto.body]
