"""The Streamlit app through Streamlit's AppTest (query, rerank, threshold, errors)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from .conftest import APP, model_app, open_mode


@pytest.fixture()
def app(tiny_model_dir, monkeypatch):
    return model_app(tiny_model_dir, monkeypatch, timeout=120)


def test_app_renders_three_modes_and_status(app):
    assert not app.exception
    assert [tab.label for tab in app.tabs] == ["Gallery ranking", "Single analysis", "Batch text"]
    assert app.sidebar.button(key="rerank").label == "Rerank / 开始重排序"
    footer = " ".join(c.value for c in app.caption)
    assert "lychee" in footer and "cpu" in footer and "float32" in footer and "sdpa" in footer


def test_footer_names_the_family_and_lite_by_its_own_name(monkeypatch, lite_ui_cache):
    """The model backend's info carries its checkpoint family; the lite backend has none and is named."""
    monkeypatch.setenv("LYCHEE_UI_BACKEND", "lite")
    monkeypatch.setenv("LYCHEE_UI_LANG", "en")
    monkeypatch.setenv("LYCHEE_CACHE_DIR", str(lite_ui_cache))
    monkeypatch.delenv("LYCHEE_MODEL", raising=False)
    monkeypatch.delenv("LYCHEE_FAMILY", raising=False)
    at = AppTest.from_file(APP, default_timeout=600).run()
    assert not at.exception
    footer = " ".join(c.value for c in at.caption)
    assert "Backend lite · family lite · model" in footer


def test_rerank_without_query_or_images_warns(app):
    app.sidebar.button(key="rerank").click().run()
    assert any("query" in w.value.lower() for w in app.warning)


def test_batch_text_ranking_applies_top_k_and_threshold(app, reranker):
    open_mode(app, "Batch text")
    docs = ["a black cat", "coffee on a table", "red car", "一只黑猫", "astronaut"]
    app.text_input(key="batch_query").input("cat")
    app.text_area(key="batch_docs").input("\n".join(docs))
    app.sidebar.number_input(key="top_k").set_value(3)
    app.button(key="rank_texts").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    assert len(table) == 3
    expected = reranker.rerank("cat", docs, top_k=3)
    assert list(table["Document"]) == [r.document for r in expected]  # same order as the library
    assert [round(s, 4) for s in table["Score"]] == [round(r.score, 4) for r in expected]
    threshold = round(expected[1].score, 2) - 0.005
    app.sidebar.slider(key="threshold").set_value(max(0.0, threshold)).run()
    app.button(key="rank_texts").click().run()
    assert len(app.dataframe[0].value) <= 3


def test_single_analysis_shows_score_logits_and_instruction(app, reranker):
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input("a cat")
    app.text_area(key="single_doc").input("a black cat on a sill")
    app.button(key="analyse").click().run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(reranker.score("a cat", "a black cat on a sill"), abs=1e-4)
    assert "yes logit" in metrics and "no logit" in metrics
    assert any("Given a web search query" in c.value for c in app.caption)
    # Evidence as one readable line (the model's yes/no logits), the raw record behind an expander.
    result = reranker.rerank("a cat", ["a black cat on a sill"])[0]
    line = f"Evidence: yes {result.yes_logit:.2f} · no {result.no_logit:.2f}"
    assert line in [m.value for m in app.markdown]
    assert "Raw record" in [e.label for e in app.expander]


def test_language_switch_to_chinese_keeps_the_mode(app):
    open_mode(app, "Batch text")
    app.sidebar.radio(key="lang").set_value("zh").run()
    assert [tab.label for tab in app.tabs] == ["图文重排", "单条分析", "批量重排序"]
    assert app.session_state["mode"] == "批量重排序" and sidebar_keys(app) == BATCH


GALLERY = {"lang", "query", "query_image", "preset", "top_k", "threshold", "rerank"}
SINGLE = {"lang", "preset"}
BATCH = {"lang", "preset", "top_k", "threshold"}


def sidebar_keys(app) -> set[str]:
    return {w.key for w in app.sidebar if getattr(w, "key", None) and not w.key.startswith("template_text_")}


def test_sidebar_shows_only_the_open_modes_controls(app):
    assert sidebar_keys(app) == GALLERY
    app.sidebar.text_area(key="query").input("a red car")
    app.sidebar.number_input(key="top_k").set_value(5).run()
    open_mode(app, "Single analysis")
    assert sidebar_keys(app) == SINGLE  # one query box: the one on the page
    assert [c.value for c in app.sidebar.caption] == ["Query and document are on the page; only the instruction applies here."]
    open_mode(app, "Batch text")
    assert sidebar_keys(app) == BATCH and app.sidebar.number_input(key="top_k").value == 5
    open_mode(app, "Gallery ranking")
    assert sidebar_keys(app) == GALLERY
    assert app.sidebar.text_area(key="query").value == "a red car"  # kept across the switches
    assert app.sidebar.number_input(key="top_k").value == 5


def test_custom_instruction_starts_from_the_selected_template(app):
    from lychee_rerank.prompt import builtin_templates

    templates = builtin_templates()
    name = list(templates)[1]
    app.sidebar.selectbox(key="preset").set_value(name).run()
    shown = [w for w in app.sidebar.text_area if w.key.startswith("template_text_")]
    assert [w.value for w in shown] == [templates[name]] and shown[0].disabled  # read-only template text
    app.sidebar.selectbox(key="preset").set_value("__custom__").run()
    assert app.sidebar.text_area(key="custom_instruction").value == templates[name]
    assert not [w for w in app.sidebar.text_area if w.key.startswith("template_text_")]


def test_gallery_cards_carry_the_evidence_line_and_refusals_are_explained_in_chinese(app, reranker):
    from ..conftest import make_photo, png_bytes

    app.sidebar.radio(key="lang").set_value("zh").run()
    files = [("a.png", png_bytes(make_photo(64, 48, 1)), "image/png"), ("b.png", png_bytes(make_photo(48, 64, 2)), "image/png"),
             ("broken.png", b"\x89PNG nope", "image/png"), ("readme.txt", b"hello", "text/plain")]
    app.file_uploader(key="gallery").set_value(files).run()
    assert sorted(e.value for e in app.error) == [
        "已跳过 broken.png：不是受支持的图片格式（无法识别）",
        "已跳过 readme.txt：.txt 文件只作为同名图片的说明文字读取：没有上传名为 readme.* 的图片",
    ]
    app.sidebar.text_area(key="query").input("a photo")
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    cards = [h.proto.body for h in app.get("html") if 'class="lychee-card' in h.proto.body]
    expected = reranker.rerank("a photo", [png_bytes(make_photo(64, 48, 1)), png_bytes(make_photo(48, 64, 2))])
    assert len(cards) == 2
    for body, r in zip(cards, expected):
        assert f'data-rank="{r.rank}"' in body and f'data-score="{r.score:.6f}"' in body
        assert f'<div class="lychee-evidence" title="yes {r.yes_logit:.2f} · no {r.no_logit:.2f}">' in body
    assert [b.label for b in app.button if b.key.startswith("view_")] == ["查看大图", "查看大图"]


def test_the_query_image_survives_a_mode_switch(app, reranker):
    from ..conftest import make_photo, png_bytes

    query_png, doc_png = png_bytes(make_photo(40, 40, 7)), png_bytes(make_photo(50, 30, 8))
    app.sidebar.file_uploader(key="query_image").set_value(("q.png", query_png, "image/png")).run()
    app.file_uploader(key="gallery").set_value([("d.png", doc_png, "image/png")]).run()
    open_mode(app, "Batch text")
    open_mode(app, "Gallery ranking")  # Streamlit has emptied the uploader; the app kept the image
    assert "Query image: q.png" in [c.value for c in app.sidebar.caption]
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    body = next(h.proto.body for h in app.get("html") if 'class="lychee-card' in h.proto.body)
    expected = reranker.rerank({"image": query_png}, [doc_png])[0]
    assert f'data-score="{expected.score:.6f}"' in body
    app.sidebar.button(key="drop_query_image").click().run()  # removed by the user: gone
    assert "Query image: q.png" not in [c.value for c in app.sidebar.caption]
    app.sidebar.button(key="rerank").click().run()
    assert any("query" in w.value.lower() for w in app.warning)
