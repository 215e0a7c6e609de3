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
from .family_checks import (
    analyse,
    assert_footer,
    assert_metrics,
    check_batch_text,
    check_gallery,
    check_gallery_in_browser,
    check_gallery_template,
    uploads,
)
from ..qwen3_vl_support import (  # noqa: F401 - shared fixtures
    DEFAULT_INSTRUCTION,
    FAMILY,
    QUERY,
    TEXTS,
    qwen3_vl_pngs,
    qwen3_vl_reranker,
)

TEMPLATE = "text_to_image"  # a built-in template, chosen in the sidebar


@pytest.fixture()
def app(qwen3_vl_dir, monkeypatch):
    return model_app(qwen3_vl_dir, monkeypatch)


def test_footer_and_gallery_ranking_match_the_library(app, qwen3_vl_pngs, qwen3_vl_reranker, qwen3_vl_dir):
    assert_footer(app, FAMILY, qwen3_vl_dir)
    files = uploads(qwen3_vl_pngs)
    app.file_uploader(key="gallery").set_value(files).run()
    default = check_gallery(app, qwen3_vl_reranker, files, QUERY, min_spread=1e-4)  # the family's default instruction
    check_gallery_template(app, qwen3_vl_reranker, files, QUERY, default, TEMPLATE)


def test_single_analysis_with_an_image_document_and_batch_text(app, qwen3_vl_pngs, qwen3_vl_reranker):
    image = qwen3_vl_pngs[0].read_bytes()
    analyse(app, "a red circle", text="a drawing", image=image)
    lib = qwen3_vl_reranker.rerank("a red circle", [{"text": "a drawing", "image": image}])[0]
    assert_metrics(app, lib, instruction=DEFAULT_INSTRUCTION)

    open_mode(app, "Batch text")
    check_batch_text(app, qwen3_vl_reranker, QUERY, TEXTS)


def test_gallery_in_a_real_browser_shows_the_family_and_the_library_scores(qwen3_vl_dir, qwen3_vl_pngs, qwen3_vl_reranker, tmp_path):
    check_gallery_in_browser(qwen3_vl_dir, qwen3_vl_pngs, qwen3_vl_reranker, FAMILY, tmp_path)
