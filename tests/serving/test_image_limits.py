"""Issue 20, items 6-7: an image whose shape the model family cannot read (Qwen-VL's resize
refuses an aspect ratio over 200) is refused when it is read, as that input's own error.

It used to surface mid-scoring: ``/v1/analyze`` answered 500, and a 1x100000 query got 200 with
every document "prompt not built". A query the model cannot read is a 422 (``invalid_query``)
on every route, a document only fails itself, and the lite backend (which can read any shape)
scores them.
"""

from __future__ import annotations

import pytest
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.lite import LiteBackend
from lychee_rerank.inputs import InputError

from .conftest import data_uri, png, server_photo

SLIVER = data_uri(png(Image.new("RGB", (1, 100_000), (200, 30, 30))))
TALL = data_uri(png(Image.new("RGB", (100_000, 1), (30, 200, 30))))
GOOD = [data_uri(png(server_photo(64, 48, seed=3))), "a red line on white"]


def _refused(response, kind: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == kind
    assert "1x100000" in error["message"] and "aspect ratio" in error["message"]
    return error["message"]


def test_a_query_image_the_model_cannot_read_is_422_on_every_route(start_server, server_reranker):
    live = start_server(reranker=server_reranker)
    with live.client() as c:
        _refused(c.post("/v1/rerank", json={"query": SLIVER, "documents": GOOD}), "invalid_query")
        _refused(c.post("/rerank", json={"query": {"image": SLIVER}, "documents": GOOD}), "invalid_query")
        _refused(c.post("/api/rerank", json={"query": {"image": SLIVER}, "documents": [{"text": "a"}]}), "invalid_query")
        _refused(c.post("/score", json={"text_1": SLIVER, "text_2": GOOD}), "invalid_query")
        _refused(c.post("/v1/analyze", json={"query": SLIVER, "document": "a red line"}), "invalid_query")

        # /score in pairs mode: a bad text_1 is its pairs' error (as an empty one is); the others are scored.
        pairs = c.post("/score", json={"text_1": [SLIVER, "a cat"], "text_2": GOOD})
        assert pairs.status_code == 200, pairs.text
        bad, good = pairs.json()["data"]
        assert "1x100000" in bad["error"] and "aspect ratio" in bad["error"] and "prompt not built" not in bad["error"]
        assert good.get("error") is None


def test_a_document_image_the_model_cannot_read_fails_alone(start_server, server_reranker):
    live = start_server(reranker=server_reranker)
    with live.client() as c:
        _refused(c.post("/v1/analyze", json={"query": "a red line", "document": SLIVER}), "invalid_document")
        _refused(c.post("/v1/analyze", json={"query": "a red line", "document": {"image": SLIVER, "text": "x"}}),
                 "invalid_document")
        alone = c.post("/v1/rerank", json={"query": "a red line", "documents": GOOD}).json()["results"]
        mixed = c.post("/v1/rerank", json={"query": "a red line", "documents": [SLIVER, *GOOD, TALL]})
    assert mixed.status_code == 200, mixed.text
    by_index = {r["index"]: r for r in mixed.json()["results"]}
    for i in (0, 3):
        assert "aspect ratio" in by_index[i]["error"] and "prompt not built" not in by_index[i]["error"]
    scores = {r["index"]: r["relevance_score"] for r in alone}
    for i in (1, 2):
        assert by_index[i].get("error") is None
        assert by_index[i]["relevance_score"] == pytest.approx(scores[i - 1], abs=1e-6)


def test_the_library_refuses_the_shape_when_it_reads_it(server_reranker):
    with pytest.raises(InputError, match=r"query image: 1x100000 pixels cannot be read by this model"):
        server_reranker.rerank(Image.new("RGB", (1, 100_000)), ["a"])
    results = server_reranker.rerank("a red line", [Image.new("RGB", (100_000, 1)), "a red line"])
    by_index = {r.index: r for r in results}
    assert "document 0 image: 100000x1 pixels" in by_index[0].error and by_index[1].error is None


def test_lite_reads_any_shape(start_server, tmp_path):
    """The lite backend has no such constraint: the sliver is scored, as a query and as a document."""
    live = start_server(reranker=LycheeReranker(LiteBackend(cache_dir=tmp_path, ocr=False)))
    with live.client() as c:
        as_query = c.post("/v1/rerank", json={"query": SLIVER, "documents": GOOD})
        as_document = c.post("/v1/analyze", json={"query": "a red line", "document": SLIVER})
    assert as_query.status_code == 200 and all(r.get("error") is None for r in as_query.json()["results"])
    assert as_document.status_code == 200, as_document.text
