"""The Streamlit UI on a Qwen3-VL-Reranker checkpoint: the footer names the family, and the
gallery, single-analysis and batch-text modes show the library's scores for the same inputs.

Through Streamlit's AppTest (as tests/ui/test_app.py does for lychee), and once end to end in a
real headless Chromium (as tests/ui/test_browser.py), where the cards' scores are read from the page.

The UI's first preset ("model default") sends no instruction: Qwen3-VL-Reranker's own default is
used, as in the library, the CLI and the HTTP API; a named template reaches the model as in the library.
"""

from __future__ import annotations


import pytest


from .conftest import model_app, open_mode
from ..qwen3_vl_support import (  # noqa: F401 - shared fixtures
    DEFAULT_INSTRUCTION,
    FAMILY,
    QUERY,
    TEXTS,
    library_scores,
    qwen3_vl_pngs,
    qwen3_vl_reranker,
    spread,
)

TEMPLATE = "text_to_image"  # a built-in template, chosen in the sidebar


@pytest.fixture()
def app(qwen3_vl_dir, monkeypatch):
    return model_app(qwen3_vl_dir, monkeypatch)


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


def test_footer_and_gallery_ranking_match_the_library(app, qwen3_vl_pngs, qwen3_vl_reranker, qwen3_vl_dir):
    assert not app.exception
    footer = " ".join(c.value for c in app.caption)
    assert f"Backend lychee · family {FAMILY} · model {qwen3_vl_dir} · cpu · float32" in footer

    files = [(p.name, p.read_bytes(), "image/png") for p in qwen3_vl_pngs]
    app.file_uploader(key="gallery").set_value(files).run()
    app.sidebar.text_area(key="query").input(QUERY)
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    shown = cards(app)
    expected = qwen3_vl_reranker.rerank(QUERY, [data for _, data, _ in files])  # the family's default instruction
    assert spread([r.score for r in expected]) > 1e-4
    assert len(shown) == len(files)
    for r in expected:
        rank, score = shown[files[r.index][0]]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)  # the card rounds to 6 decimals

    # A named template from the sidebar reaches the model as the library's ``template=``.
    app.sidebar.selectbox(key="preset").set_value(TEMPLATE).run()
    app.sidebar.button(key="rerank").click().run()
    assert not app.exception
    shown = cards(app)
    default = {r.index: r.score for r in expected}
    expected = qwen3_vl_reranker.rerank(QUERY, [data for _, data, _ in files], template=TEMPLATE)
    assert max(abs(r.score - default[r.index]) for r in expected) > 1e-6  # the template was read
    for r in expected:
        rank, score = shown[files[r.index][0]]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)


def test_single_analysis_with_an_image_document_and_batch_text(app, qwen3_vl_pngs, qwen3_vl_reranker):
    open_mode(app, "Single analysis")
    app.text_area(key="single_query").input("a red circle")
    app.text_area(key="single_doc").input("a drawing")
    app.file_uploader(key="single_doc_image").set_value(("d.png", qwen3_vl_pngs[0].read_bytes(), "image/png")).run()
    app.button(key="analyse").click().run()
    assert not app.exception
    lib = qwen3_vl_reranker.rerank("a red circle", [{"text": "a drawing", "image": qwen3_vl_pngs[0].read_bytes()}])[0]
    assert f"Instruction used: {DEFAULT_INSTRUCTION}" in [c.value for c in app.caption]  # the family's own
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Score"]) == pytest.approx(lib.score, abs=1e-4)  # shown to 4 decimals
    assert float(metrics["yes logit"]) == pytest.approx(lib.yes_logit, abs=1e-3)
    assert float(metrics["no logit"]) == pytest.approx(lib.no_logit, abs=1e-3)

    open_mode(app, "Batch text")
    app.text_input(key="batch_query").input(QUERY)
    app.text_area(key="batch_docs").input("\n".join(TEXTS))
    app.button(key="rank_texts").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    expected = qwen3_vl_reranker.rerank(QUERY, TEXTS)
    assert list(table["Document"]) == [r.document for r in expected]  # the library's order
    assert list(table["Score"]) == pytest.approx([round(r.score, 4) for r in expected], abs=1e-9)


def test_gallery_in_a_real_browser_shows_the_family_and_the_library_scores(qwen3_vl_dir, qwen3_vl_pngs, qwen3_vl_reranker, tmp_path):
    from . import drive
    from .browser import browser_page, chromium_path, running_ui

    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    # No --family: the app finds it in config.json.
    ui = running_ui("--backend", "lychee", "--model", str(qwen3_vl_dir), "--lang", "en", log=tmp_path / "ui.log")
    with ui as url, browser_page(1400, 1000) as page:
        page.goto(url)
        page.get_by_role("button", name="Rerank").wait_for(timeout=180_000)
        page.get_by_text(f"family {FAMILY}").wait_for(timeout=60_000)
        footer = page.get_by_text(f"family {FAMILY}").inner_text()
        assert f"Backend lychee · family {FAMILY} · model {qwen3_vl_dir}" in footer
        # Upload first and wait until the app has them: a Rerank click racing the upload's rerun
        # would find no images (test_browser's flow waits on its refused files instead).
        page.locator(".st-key-gallery input[type=file]").set_input_files([str(p) for p in qwen3_vl_pngs])
        page.get_by_text(drive.t("uploads", "en", n=len(qwen3_vl_pngs))).wait_for(timeout=120_000)
        seen = drive.rank_gallery(page, "en", [], {}, watch_progress=False)
    query = drive.GALLERY_QUERY["en"]
    expected = qwen3_vl_reranker.rerank(query, [p.read_bytes() for p in qwen3_vl_pngs])
    shown = {c["name"]: (c["rank"], c["score"]) for c in seen["cards"]}
    assert len(shown) == len(qwen3_vl_pngs)
    for r in expected:
        rank, score = shown[qwen3_vl_pngs[r.index].name]
        assert rank == r.rank and score == pytest.approx(r.score, abs=1e-6)
