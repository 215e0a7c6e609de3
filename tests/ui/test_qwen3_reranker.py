"""The Streamlit UI on a Qwen3-Reranker checkpoint (text only): the footer names the family, and the
batch-text and single-analysis modes show the library's scores for English and Chinese texts; an
image (a single-analysis document or query, a gallery upload) gets a clear "reads text only" error
and no score. Through Streamlit's AppTest, as tests/ui/test_qwen3_vl.py does for Qwen3-VL.

The UI's first preset ("model default") sends no instruction: Qwen3-Reranker's own default is used,
as in the library, the CLI and the HTTP API; a named template reaches the model as in the library.
"""

from __future__ import annotations


import pytest


from .conftest import model_app, open_mode
from ..qwen3_reranker_support import DEFAULT_INSTRUCTION, FAMILY
from ..serving.conftest import png, server_photo

TEMPLATE = "text_to_image"  # a built-in template, chosen in the sidebar
TEXT_ONLY = "reads text only"
QUERY = "What is the capital of China?"
QUERY_ZH = "中国的首都是哪里？"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]
PICTURES = [png(server_photo(64, 48, seed=21)), png(server_photo(90, 60, seed=22))]


@pytest.fixture()
def app(qwen3_reranker_dir, monkeypatch):
    return model_app(qwen3_reranker_dir, monkeypatch)


def errors(app) -> list[str]:
    return [e.value for e in app.error]


def test_footer_and_batch_text_in_english_and_chinese_match_the_library(app, qwen3_reranker_reranker, qwen3_reranker_dir):
    assert not app.exception
    footer = " ".join(c.value for c in app.caption)
    assert f"Backend lychee · family {FAMILY} · model {qwen3_reranker_dir} · cpu · float32" in footer

    open_mode(app, "Batch text")
    for query in (QUERY, QUERY_ZH):
        app.text_input(key="batch_query").input(query)
        app.text_area(key="batch_docs").input("\n".join(TEXTS))
        app.button(key="rank_texts").click().run()
        assert not app.exception and not errors(app)
        table = app.dataframe[0].value
        expected = qwen3_reranker_reranker.rerank(query, TEXTS)  # the family's default instruction
        assert max(r.score for r in expected) - min(r.score for r in expected) > 1e-3
        assert list(table["Document"]) == [r.document for r in expected]  # the library's order
        assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)  # 4 decimals
        assert not any(table["Error"])

    # A named template from the sidebar reaches the model as the library's ``template=``.
    app.sidebar.selectbox(key="preset").set_value(TEMPLATE).run()
    app.button(key="rank_texts").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    default = {r.document: r.score for r in qwen3_reranker_reranker.rerank(QUERY_ZH, TEXTS)}
    expected = qwen3_reranker_reranker.rerank(QUERY_ZH, TEXTS, template=TEMPLATE)
    assert max(abs(r.score - default[r.document]) for r in expected) > 1e-6  # the template was read
    assert list(table["Document"]) == [r.document for r in expected]
    assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)


def test_single_analysis_scores_text_and_refuses_an_image_clearly(app, qwen3_reranker_reranker):
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input(QUERY_ZH)
    app.text_area(key="single_doc").input(TEXTS[2])
    app.button(key="analyse").click().run()
    assert not app.exception and not errors(app)
    lib = qwen3_reranker_reranker.rerank(QUERY_ZH, [TEXTS[2]])[0]
    assert f"Instruction used: {DEFAULT_INSTRUCTION}" in [c.value for c in app.caption]  # the family's own
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(lib.score, abs=1e-4)  # shown to 4 decimals
    assert float(metrics["yes logit"]) == pytest.approx(lib.yes_logit, abs=1e-3)
    assert float(metrics["no logit"]) == pytest.approx(lib.no_logit, abs=1e-3)

    # An image document: an error naming the cause, no score.
    app.file_uploader(key="single_doc_image").set_value(("d.png", PICTURES[0], "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(TEXT_ONLY in e for e in errors(app)), errors(app)
    assert not app.metric

    # An image query: the same.
    app.file_uploader(key="single_doc_image").set_value([]).run()
    app.file_uploader(key="single_query_image").set_value(("q.png", PICTURES[1], "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(TEXT_ONLY in e for e in errors(app)), errors(app)
    assert not app.metric


def rank_gallery(app) -> list[tuple[str, bytes, str]]:
    files = [(f"p{i}.png", data, "image/png") for i, data in enumerate(PICTURES)]
    app.file_uploader(key="gallery").set_value(files).run()
    app.sidebar.text_area(key="query").input(QUERY)
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    return files


def test_gallery_uploads_each_fail_with_the_reason_and_get_no_card(app):
    files = rank_gallery(app)
    shown = [e for e in errors(app) if TEXT_ONLY in e]
    assert len(shown) == len(files), errors(app)
    assert not [h for h in app.get("html") if 'class="lychee-card' in h.proto.body]  # no score shown for an image


def test_gallery_errors_name_the_uploaded_file(app):
    files = rank_gallery(app)
    shown = errors(app)
    for name, _, _ in files:
        assert any(f"Skipped {name}:" in e and TEXT_ONLY in e for e in shown), shown
