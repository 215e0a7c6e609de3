"""The Streamlit UI on a jina-reranker-m0 checkpoint: the footer names the family and shows the
licence notice, and the gallery, single-analysis and batch-text modes show the library's scores for
the same inputs: through Streamlit's AppTest, and once end to end in a real headless Chromium, as
tests/ui/test_qwen3_vl.py does for Qwen3-VL-Reranker.

The model takes no instruction: the UI's "model default" preset sends none, as the library does.
"""

from __future__ import annotations

import pytest

from .conftest import model_app, open_mode
from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    QUERY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
    spread,
)


@pytest.fixture()
def app(jina_m0_dir, monkeypatch):
    return model_app(jina_m0_dir, monkeypatch)


def cards(app) -> dict[str, tuple[int, float]]:
    """{upload name: (rank, score)} from the gallery cards' data attributes (score to 6 decimals)."""
    out = {}
    for html in app.get("html"):
        body = html.proto.body
        if 'class="lychee-card' in body:
            name = body.split('data-name="', 1)[1].split('"', 1)[0]
            rank = int(body.split('data-rank="', 1)[1].split('"', 1)[0])
            out[name] = (rank, float(body.split('data-score="', 1)[1].split('"', 1)[0]))
    return out


def test_footer_licence_notice_and_gallery_ranking_match_the_library(app, jina_m0_pngs, jina_m0_reranker, jina_m0_dir):
    assert not app.exception
    captions = " ".join(c.value for c in app.caption)
    assert f"Backend lychee · family {FAMILY} · model {jina_m0_dir} · cpu · float32" in captions
    assert "CC-BY-NC-4.0" in captions and "non-commercial" in captions  # info()'s note, under the footer

    files = [(p.name, p.read_bytes(), "image/png") for p in jina_m0_pngs]
    app.file_uploader(key="gallery").set_value(files).run()
    app.sidebar.text_area(key="query").input(QUERY)
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    shown = cards(app)
    expected = jina_m0_reranker.rerank(QUERY, [data for _, data, _ in files])
    assert spread([r.score for r in expected]) > 1e-3
    assert len(shown) == len(files)
    for r in expected:
        rank, score = shown[files[r.index][0]]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)  # the card rounds to 6 decimals


def test_single_analysis_with_an_image_document_and_batch_text(app, jina_m0_pngs, jina_m0_reranker):
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input("a red circle")
    app.text_area(key="single_doc").input("a drawing")
    app.file_uploader(key="single_doc_image").set_value(("d.png", jina_m0_pngs[0].read_bytes(), "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    lib = jina_m0_reranker.rerank("a red circle", [{"text": "a drawing", "image": jina_m0_pngs[0].read_bytes()}])[0]
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(lib.score, abs=1e-4)  # shown to 4 decimals
    assert float(metrics["yes logit"]) == pytest.approx(lib.yes_logit, abs=1e-3)
    assert float(metrics["no logit"]) == pytest.approx(2.65, abs=1e-3)

    open_mode(app, "Batch text")
    app.text_input(key="batch_query").input(QUERY)
    app.text_area(key="batch_docs").input("\n".join(TEXTS))
    app.button(key="rank_texts").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    expected = jina_m0_reranker.rerank(QUERY, TEXTS)
    assert list(table["Document"]) == [r.document for r in expected]  # the library's order
    assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)


def test_gallery_in_a_real_browser_shows_the_family_and_the_library_scores(jina_m0_dir, jina_m0_pngs, jina_m0_reranker, tmp_path):
    from . import drive
    from .browser import browser_page, chromium_path, running_ui

    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    # No --family: the app finds it in config.json.
    ui = running_ui("--backend", "lychee", "--model", str(jina_m0_dir), "--lang", "en", log=tmp_path / "ui.log")
    with ui as url, browser_page(1400, 1000) as page:
        page.goto(url)
        page.get_by_role("button", name="Rerank").wait_for(timeout=180_000)
        page.get_by_text(f"family {FAMILY}").wait_for(timeout=60_000)
        footer = page.get_by_text(f"family {FAMILY}").inner_text()
        assert f"Backend lychee · family {FAMILY} · model {jina_m0_dir}" in footer
        page.get_by_text("CC-BY-NC-4.0").first.wait_for(timeout=60_000)  # the licence notice is on the page
        page.locator(".st-key-gallery input[type=file]").set_input_files([str(p) for p in jina_m0_pngs])
        page.get_by_text(drive.t("uploads", "en", n=len(jina_m0_pngs))).wait_for(timeout=120_000)
        seen = drive.rank_gallery(page, "en", [], {}, watch_progress=False)
    query = drive.GALLERY_QUERY["en"]
    expected = jina_m0_reranker.rerank(query, [p.read_bytes() for p in jina_m0_pngs])
    shown = {c["name"]: (c["rank"], c["score"]) for c in seen["cards"]}
    assert len(shown) == len(jina_m0_pngs)
    for r in expected:
        rank, score = shown[jina_m0_pngs[r.index].name]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)
