"""The Streamlit app through Streamlit's AppTest (query, rerank, threshold, errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import lychee_rerank.ui.app as app_module


APP = str(Path(app_module.__file__))


@pytest.fixture()
def app(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LYCHEE_UI_BACKEND", "lychee")
    monkeypatch.setenv("LYCHEE_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("LYCHEE_UI_LANG", "en")
    at = AppTest.from_file(APP, default_timeout=120)
    return at.run()


def test_app_renders_three_modes_and_status(app):
    assert not app.exception
    assert [tab.label for tab in app.tabs] == ["Gallery ranking", "Single analysis", "Batch text"]
    assert app.sidebar.button(key="rerank").label == "Rerank / 开始重排序"
    footer = " ".join(c.value for c in app.caption)
    assert "lychee" in footer and "cpu" in footer and "float32" in footer and "sdpa" in footer


def test_rerank_without_query_or_images_warns(app):
    app.sidebar.button(key="rerank").click().run()
    assert any("query" in w.value.lower() for w in app.warning)


def test_batch_text_ranking_applies_top_k_and_threshold(app, reranker):
    docs = ["a black cat", "coffee on a table", "red car", "一只黑猫", "astronaut"]
    app.text_input(key="batch_query").input("cat")
    app.text_area(key="batch_docs").input("\n".join(docs))
    app.sidebar.number_input(key="top_k").set_value(3)
    app.button(key="rank_texts").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    assert len(table) == 3
    expected = reranker.rerank("cat", docs, top_k=3)
    assert list(table["document"]) == [r.document for r in expected]  # same order as the library
    assert [round(s, 4) for s in table["Score"]] == [round(r.score, 4) for r in expected]
    threshold = round(expected[1].score, 2) - 0.005
    app.sidebar.slider(key="threshold").set_value(max(0.0, threshold)).run()
    app.button(key="rank_texts").click().run()
    assert len(app.dataframe[0].value) <= 3


def test_single_analysis_shows_score_logits_and_instruction(app, reranker):
    app.text_area(key="single_query").input("a cat")
    app.text_area(key="single_doc").input("a black cat on a sill")
    app.button(key="analyse").click().run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(reranker.score("a cat", "a black cat on a sill"), abs=1e-4)
    assert "yes logit" in metrics and "no logit" in metrics
    assert any("Given a web search query" in c.value for c in app.caption)


def test_language_switch_to_chinese(app):
    app.sidebar.radio(key="lang").set_value("zh").run()
    assert [tab.label for tab in app.tabs] == ["图文重排", "单条分析", "批量重排序"]
