"""``/health`` and ``/v1/models`` say which checkpoint family is loaded (issue 21); null for lite."""

from __future__ import annotations

from typing import Any, Sequence

import pytest

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.base import Backend
from lychee_rerank.results import PairScore


class FamilyBackend(Backend):
    """A stand-in model backend: what matters here is its ``info()``, as the model backend's."""

    name = "stub"

    def score_pairs(self, query, documents: Sequence, *, instruction=None, batch_size: int = 8, progress=None) -> list[PairScore]:
        return [PairScore(score=0.5) for _ in documents]

    def info(self) -> dict[str, Any]:
        return {"backend": "lychee", "model": "Qwen/Qwen3-VL-Reranker-2B", "family": "qwen3_vl", "device": "cpu",
                "dtype": "float32", "attn_implementation": "sdpa"}

    @property
    def default_instruction(self) -> str:
        return QWEN3_DEFAULT


QWEN3_DEFAULT = "Given a search query, retrieve relevant candidates that answer the query."


@pytest.fixture()
def lite_reranker(tmp_path):
    return LycheeReranker.load("lite", lite_cache_dir=str(tmp_path / "lite-cache"))


def test_health_and_models_report_the_family(start_server):
    live = start_server(reranker=LycheeReranker(FamilyBackend()))
    health = live.wait_healthy()
    assert (health["family"], health["model"]) == ("qwen3_vl", "Qwen/Qwen3-VL-Reranker-2B")
    with live.client() as c:
        for path in ("/v1/models", "/models"):
            (card,) = c.get(path).json()["data"]
            assert (card["id"], card["family"]) == ("Qwen/Qwen3-VL-Reranker-2B", "qwen3_vl")


def test_a_backend_without_families_reports_null(start_server, lite_reranker):
    live = start_server(reranker=lite_reranker)
    health = live.wait_healthy()
    assert health["backend"] == "lite" and health["family"] is None
    with live.client() as c:
        assert c.get("/v1/models").json()["data"][0]["family"] is None


def test_the_family_fields_are_documented_in_the_schema():
    from lychee_rerank.serving.app import create_app

    schemas = create_app(reranker=LycheeReranker(FamilyBackend())).openapi()["components"]["schemas"]
    for model in ("HealthResponse", "ModelCard"):
        assert "lychee models" in schemas[model]["properties"]["family"]["description"]
    assert all(p.get("description") for p in schemas["HealthResponse"]["properties"].values())


def test_analyze_shows_the_family_default_instruction_when_none_is_given(start_server):
    live = start_server(reranker=LycheeReranker(FamilyBackend()))
    live.wait_healthy()
    with live.client() as c:
        body = c.post("/v1/analyze", json={"query": "q", "document": "d"})
        assert body.status_code == 200, body.text
        assert body.json()["instruction"] == QWEN3_DEFAULT and QWEN3_DEFAULT in body.json()["prompt"]
        asked = c.post("/v1/analyze", json={"query": "q", "document": "d", "instruction": "Mine"}).json()
        assert asked["instruction"] == "Mine"
