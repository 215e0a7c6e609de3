"""The Streamlit UI on a sequence-classification cross-encoder (text only): the footer names the
family, batch-text and single-analysis show the library's scores for English and Chinese texts
(an instruction preset changes nothing: a cross-encoder reads none), and an image (a
single-analysis document or query, a gallery upload) gets a clear "reads text only" error and no
score. Through Streamlit's AppTest, as tests/ui/test_qwen3_reranker.py does."""

from __future__ import annotations

import pytest

from .conftest import model_app
from .family_checks import check_gallery_refused, check_text_family_batch, check_text_only_analysis
from ..cross_encoder_support import FAMILY, TEXT_ONLY


@pytest.fixture()
def app(cross_encoder_dir, monkeypatch):
    return model_app(cross_encoder_dir, monkeypatch)


def test_footer_and_batch_text_in_english_and_chinese_match_the_library(app, cross_encoder_reranker, cross_encoder_dir):
    # A named template is accepted and, for a cross-encoder, changes nothing.
    check_text_family_batch(app, cross_encoder_reranker, FAMILY, cross_encoder_dir, min_spread=1e-2, template_read=False)


def test_single_analysis_scores_text_and_refuses_an_image_clearly(app, cross_encoder_reranker):
    check_text_only_analysis(app, cross_encoder_reranker, TEXT_ONLY, logits=False)  # a score, no yes/no logits


def test_gallery_uploads_each_fail_with_the_reason_and_get_no_card(app):
    check_gallery_refused(app, TEXT_ONLY)
