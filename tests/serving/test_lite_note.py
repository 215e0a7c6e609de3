"""Every interface says that lite is an offline approximation, with its held-out figure."""

from __future__ import annotations

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.lite import LiteBackend
from lychee_rerank.backends.lite.about import HELDOUT_RECALL_AT_1, LITE_NOTE


def test_health_says_what_lite_is(start_server, tmp_path):
    live = start_server(reranker=LycheeReranker(LiteBackend(cache_dir=tmp_path)))
    health = live.wait_healthy()
    assert health["backend"] == "lite"
    assert health["note"] == LITE_NOTE
    assert "offline approximation" in health["note"] and f"Recall@1 {HELDOUT_RECALL_AT_1:.2f}" in health["note"]
    assert "--model" in health["note"]


def test_auto_selection_notice_carries_the_note(monkeypatch, tmp_path):
    from lychee_rerank.backends.choice import choose_backend

    monkeypatch.delenv("LYCHEE_MODEL", raising=False)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty: no model
    choice = choose_backend("auto")
    assert choice.backend == "lite" and LITE_NOTE in (choice.notice or "")
