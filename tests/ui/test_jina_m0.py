"""The Streamlit UI on a jina-reranker-m0 checkpoint: the footer names the family and shows the
licence notice, and the gallery, single-analysis and batch-text modes show the library's scores for
the same inputs: through Streamlit's AppTest, and once end to end in a real headless Chromium, as
tests/ui/test_qwen3_vl.py does for Qwen3-VL-Reranker.

The model takes no instruction: the UI's "model default" preset sends none, as the library does.
"""

from __future__ import annotations

import pytest

from .conftest import model_app, open_mode
from .family_checks import analyse, assert_footer, assert_metrics, check_batch_text, check_gallery, check_gallery_in_browser, uploads
from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    QUERY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
)


@pytest.fixture()
def app(jina_m0_dir, monkeypatch):
    return model_app(jina_m0_dir, monkeypatch)


def test_footer_licence_notice_and_gallery_ranking_match_the_library(app, jina_m0_pngs, jina_m0_reranker, jina_m0_dir):
    captions = assert_footer(app, FAMILY, jina_m0_dir)
    assert "CC-BY-NC-4.0" in captions and "non-commercial" in captions  # info()'s note, under the footer

    files = uploads(jina_m0_pngs)
    app.file_uploader(key="gallery").set_value(files).run()
    check_gallery(app, jina_m0_reranker, files, QUERY, min_spread=1e-3)


def test_single_analysis_with_an_image_document_and_batch_text(app, jina_m0_pngs, jina_m0_reranker):
    image = jina_m0_pngs[0].read_bytes()
    analyse(app, "a red circle", text="a drawing", image=image)
    lib = jina_m0_reranker.rerank("a red circle", [{"text": "a drawing", "image": image}])[0]
    assert_metrics(app, lib, no_logit=2.65)  # no instruction; the "no logit" is the head's fixed offset

    open_mode(app, "Batch text")
    check_batch_text(app, jina_m0_reranker, QUERY, TEXTS)


def test_gallery_in_a_real_browser_shows_the_family_and_the_library_scores(jina_m0_dir, jina_m0_pngs, jina_m0_reranker, tmp_path):
    check_gallery_in_browser(jina_m0_dir, jina_m0_pngs, jina_m0_reranker, FAMILY, tmp_path, notice="CC-BY-NC-4.0")
