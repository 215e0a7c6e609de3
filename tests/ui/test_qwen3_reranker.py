"""The Streamlit UI on a Qwen3-Reranker checkpoint (text only): the footer names the family, and the
batch-text and single-analysis modes show the library's scores for English and Chinese texts; an
image (a single-analysis document or query, a gallery upload) gets a clear "reads text only" error
and no score. Through Streamlit's AppTest, as tests/ui/test_qwen3_vl.py does for Qwen3-VL.

The UI's first preset ("model default") sends no instruction: Qwen3-Reranker's own default is used,
as in the library, the CLI and the HTTP API; a named template reaches the model as in the library.
"""

from __future__ import annotations

import pytest

from .conftest import model_app
from .family_checks import check_gallery_refused, check_text_family_batch, check_text_only_analysis
from ..qwen3_reranker_support import DEFAULT_INSTRUCTION, FAMILY

TEXT_ONLY = "reads text only"


@pytest.fixture()
def app(qwen3_reranker_dir, monkeypatch):
    return model_app(qwen3_reranker_dir, monkeypatch)


def test_footer_and_batch_text_in_english_and_chinese_match_the_library(app, qwen3_reranker_reranker, qwen3_reranker_dir):
    # A named template from the sidebar reaches the model as the library's ``template=``.
    check_text_family_batch(app, qwen3_reranker_reranker, FAMILY, qwen3_reranker_dir, min_spread=1e-3, template_read=True)


def test_single_analysis_scores_text_and_refuses_an_image_clearly(app, qwen3_reranker_reranker):
    check_text_only_analysis(app, qwen3_reranker_reranker, TEXT_ONLY, instruction=DEFAULT_INSTRUCTION)


def test_gallery_uploads_each_fail_with_the_reason_and_get_no_card(app):
    check_gallery_refused(app, TEXT_ONLY)


def test_gallery_errors_name_the_uploaded_file(app):
    check_gallery_refused(app, TEXT_ONLY)
