"""The on-disk analysis cache: hits on the second run, safe misses, versioned, relocatable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.lite import LiteBackend
from lychee_rerank.backends.lite.cache import AnalysisCache, default_cache_dir
from lychee_rerank.inputs import to_content

from .conftest import noise


def test_second_run_reads_the_cache_instead_of_analysing(tmp_path, gallery):
    images = [gallery["coffee"], gallery["no_parking"]]
    first = LiteBackend(cache_dir=tmp_path)
    results = LycheeReranker(first).rerank("咖啡", images)
    assert first.analysed == 2
    assert all(r.evidence["cached"] is False for r in results)
    assert len(list(tmp_path.rglob("*.json"))) >= 2

    second = LiteBackend(cache_dir=tmp_path)  # a new process would start like this
    again = LycheeReranker(second).rerank("禁止停车", images)
    assert second.analysed == 0
    assert second.tagger._model is None and second.reader._engine is None  # vision and OCR never loaded
    assert all(r.evidence["cached"] is True for r in again)
    assert second.cache.hits == 2
    by_index = {r.index: r for r in again}
    assert by_index[0].evidence["tags"] == {r.index: r for r in results}[0].evidence["tags"]


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path):
    backend = LiteBackend(cache_dir=tmp_path)
    content = to_content(noise(1))
    backend.analyse(content)
    path = backend.cache.path(content.image_hash)
    path.write_text("{not json", encoding="utf-8")
    fresh = LiteBackend(cache_dir=tmp_path)
    analysis, cached = fresh.analyse(content)
    assert cached is False and fresh.analysed == 1
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == fresh.version


def test_version_and_settings_select_the_directory(tmp_path):
    a = LiteBackend(cache_dir=tmp_path)
    b = LiteBackend(cache_dir=tmp_path, ocr=False)
    assert a.version != b.version
    assert a.cache.directory != b.cache.directory
    assert a.cache.directory.parent == tmp_path


def test_disabled_cache_writes_nothing(tmp_path):
    backend = LiteBackend(cache_dir=tmp_path / "none", use_cache=False)
    backend.analyse(to_content(noise(2)))
    assert not (tmp_path / "none").exists()


def test_default_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LYCHEE_CACHE_DIR", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    assert LiteBackend().cache.root == tmp_path / "env-cache"
    monkeypatch.delenv("LYCHEE_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "lychee-rerank" / "lite"


def test_rejects_a_non_hash_key(tmp_path):
    with pytest.raises(ValueError):
        AnalysisCache(tmp_path, "v").path("../x")


def test_cold_and_disk_cached_runs_give_identical_scores(tmp_path, gallery_contents):
    """Caching must never change a score: a fresh backend reading the disk cache agrees exactly."""
    from lychee_rerank import LycheeReranker
    from lychee_rerank.backends.lite import LiteBackend

    docs = list(gallery_contents.values())[:5] if isinstance(gallery_contents, dict) else list(gallery_contents)[:5]
    cold = LycheeReranker(LiteBackend(cache_dir=tmp_path / "cache"))
    first = {r.index: r.score for r in cold.rerank("a cup of coffee", docs)}
    warm = LycheeReranker(LiteBackend(cache_dir=tmp_path / "cache"))
    second = {r.index: r.score for r in warm.rerank("a cup of coffee", docs)}
    assert warm.backend.analysed == 0  # everything came from disk
    assert second == first
