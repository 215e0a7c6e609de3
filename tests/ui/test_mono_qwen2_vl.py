"""The Streamlit UI on a MonoQwen2-VL adapter directory: the footer names the family; the gallery
ranks uploaded images with the library's scores (English and Chinese queries, a named template);
single analysis scores a text query against an image document, and refuses a text document and an
image query with a clear error and no score; batch text fails every (text) document with the
reason. Through Streamlit's AppTest, as tests/ui/test_qwen3_vl.py and test_qwen3_reranker.py do."""

from __future__ import annotations

import pytest

from .conftest import model_app, open_mode
from .family_checks import (
    analyse,
    assert_footer,
    assert_metrics,
    assert_refused,
    check_gallery,
    check_gallery_template,
    errors,
    uploads,
)
from ..qwen2_vl_support import DEFAULT_INSTRUCTION, FAMILY

TEMPLATE = "text_to_image"
IMAGE_ONLY = "reads image documents only"
TEXT_QUERIES = "reads text queries only"


@pytest.fixture()
def app(mono_qwen2_vl_dir, monkeypatch):
    return model_app(mono_qwen2_vl_dir, monkeypatch)


def test_footer_and_gallery_ranking_match_the_library(app, mono_qwen2_vl_images, mono_qwen2_vl_reranker, mono_qwen2_vl_dir):
    assert_footer(app, FAMILY, mono_qwen2_vl_dir)
    files = uploads(mono_qwen2_vl_images[:5])
    app.file_uploader(key="gallery").set_value(files).run()
    for query in ("a cat sitting on a window sill", "一只黑猫趴在窗台上"):
        default = check_gallery(app, mono_qwen2_vl_reranker, files, query, min_spread=1e-3, no_errors=True)
    check_gallery_template(app, mono_qwen2_vl_reranker, files, query, default, TEMPLATE)


def test_single_analysis_scores_an_image_document_and_refuses_text_documents_and_image_queries(
        app, mono_qwen2_vl_images, mono_qwen2_vl_reranker):
    image = mono_qwen2_vl_images[3].read_bytes()
    analyse(app, "a red block", image=image, no_errors=True)
    lib = mono_qwen2_vl_reranker.rerank("a red block", [image])[0]
    assert_metrics(app, lib, instruction=DEFAULT_INSTRUCTION)  # yes/no: the "True"/"False" logits

    # Text with the image document: refused with the reason, no score.
    app.text_area(key="single_doc").input("a caption")
    assert_refused(app, IMAGE_ONLY)

    # An image query: refused too.
    app.text_area(key="single_doc").input("")
    app.file_uploader(key="single_query_image").set_value(("q.png", image, "image/png")).run()
    assert_refused(app, TEXT_QUERIES)


def test_batch_text_fails_each_text_document_with_the_reason(app):
    open_mode(app, "Batch text")
    app.text_input(key="batch_query").input("a cat")
    app.text_area(key="batch_docs").input("a text document\nanother one")
    app.button(key="rank_texts").click().run()
    assert not app.exception
    shown = errors(app) + [str(v) for df in app.dataframe for v in df.value.get("Error", [])]
    assert any(IMAGE_ONLY in e for e in shown), shown
