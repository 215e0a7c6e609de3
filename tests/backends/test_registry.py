"""One place to add a backend or a model family: ``backends.register/create/choose`` and the families table."""

from __future__ import annotations

import json
from typing import Any, Sequence

import pytest

from lychee_rerank import LycheeReranker, backends
from lychee_rerank.backends.base import Backend
from lychee_rerank.backends import families
from lychee_rerank.backends.families import FAMILIES
from lychee_rerank.config import RerankerConfig
from lychee_rerank.results import PairScore
from lychee_rerank.serving.settings import ServerSettings


class LengthBackend(Backend):
    """A real (if simple) backend: longer documents score higher; enough to prove the wiring."""

    name = "length"

    def __init__(self, config: RerankerConfig, scale: float = 100.0) -> None:
        self.config = config
        self.scale = scale

    def score_pairs(self, query, documents: Sequence, *, instruction: str, batch_size: int = 8, progress=None) -> list[PairScore]:
        return [PairScore(score=min(1.0, len(d.text or "") / self.scale)) for d in documents]

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.config.model, "device": "cpu", "dtype": None, "attn_implementation": None}


@pytest.fixture
def length_backend():
    backends.register("length", lambda config, **options: LengthBackend(config, **options))
    yield
    backends._FACTORIES.pop("length", None)


def test_a_registered_backend_is_reachable_from_every_front_door(length_backend):
    assert "length" in backends.names()
    rr = LycheeReranker.load("length", scale=10.0)
    ranked = rr.rerank("q", ["a", "abcde", "abc"])
    assert [r.index for r in ranked] == [1, 2, 0] and ranked[0].score == pytest.approx(0.5)
    assert isinstance(backends.create(RerankerConfig(backend="length")), LengthBackend)
    assert ServerSettings(backend="length").reranker_config().backend == "length"


def test_unknown_backends_are_refused_with_the_names_that_exist():
    with pytest.raises(ValueError, match="unknown backend 'magic'.*auto, lychee, lite"):
        backends.choose("magic")
    with pytest.raises(ValueError, match="unknown backend"):
        ServerSettings(backend="magic")
    with pytest.raises(ValueError, match="'auto' is not a backend name"):
        backends.register("auto", LengthBackend)


def test_auto_without_a_model_is_lite_and_says_so(monkeypatch):
    monkeypatch.delenv("LYCHEE_MODEL", raising=False)
    from lychee_rerank.backends import choice as choice_module

    monkeypatch.setattr(choice_module, "hub_cache_has", lambda repo: False)
    choice = backends.choose("auto")
    assert choice.backend == "lite" and "--model" in (choice.notice or "")
    assert backends.choose("auto", "some/model").backend == "lychee"


def test_the_model_backend_knows_its_checkpoint_family(reranker):
    assert reranker.backend.family.spec is FAMILIES["qwen2_5_vl"] and reranker.backend.fast_path
    assert reranker.info["family"] == "qwen2_5_vl"


def test_the_family_is_read_from_config_json_and_an_unknown_one_names_the_known(tmp_path, tiny_model_dir):
    assert families.detect(tiny_model_dir).name == "qwen2_5_vl"
    config = json.loads((tiny_model_dir / "config.json").read_text())
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({**config, "model_type": "llava_next", "architectures": ["LlavaNext"]}))
    with pytest.raises(ValueError, match="unknown checkpoint family.*'llava_next'.*known families are qwen2_5_vl, qwen3_reranker, qwen3_vl"):
        families.detect(odd)
    # An override names the family to score it as; an unknown override names the known ones.
    assert families.detect(odd, "qwen2_5_vl").name == "qwen2_5_vl"
    with pytest.raises(ValueError, match="unknown model family 'nope': known families are qwen2_5_vl, qwen3_reranker, qwen3_vl"):
        families.detect(tiny_model_dir, "nope")
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", family="nope")
