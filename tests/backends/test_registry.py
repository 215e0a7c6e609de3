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


def _write_config(path, **config) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))


def test_detection_order_exact_architecture_then_model_type_then_architecture_ending(tmp_path):
    """An exact architecture wins over a model type (jina-m0 is a qwen2_vl), and a whole class of
    checkpoints (every ``*ForSequenceClassification``) is matched only after both."""
    cases = {
        "jina": ({"architectures": ["JinaVLForRanking"], "model_type": "qwen2_vl"}, "jina_m0"),
        "bert": ({"architectures": ["BertForSequenceClassification"], "model_type": "bert"}, "cross_encoder"),
        "xlmr": ({"architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta"}, "cross_encoder"),
        "qwen3": ({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}, "qwen3_reranker"),
    }
    for name, (config, family) in cases.items():
        _write_config(tmp_path / name, **config)
        assert families.detect(tmp_path / name).name == family, name
    # A bare Qwen2-VL is no reranker: only as the base of a LoRA adapter is it MonoQwen2-VL.
    _write_config(tmp_path / "qwen2vl", architectures=["Qwen2VLForConditionalGeneration"], model_type="qwen2_vl")
    with pytest.raises(ValueError, match="unknown checkpoint family.*'qwen2_vl'"):
        families.detect(tmp_path / "qwen2vl")


def test_a_lora_adapter_directory_is_detected_by_its_base(tmp_path):
    """``adapter_config.json`` names the base; the base's config.json says the family, and families
    published as adapters come first (a MonoQwen2-VL checkpoint holds no config.json at most revisions)."""
    base = tmp_path / "base"
    _write_config(base, architectures=["Qwen2VLForConditionalGeneration"], model_type="qwen2_vl")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base), "peft_type": "LORA"}))
    assert families.adapter_base(adapter) == str(base)
    assert families.detect(adapter).name == "mono_qwen2_vl"
    assert families.adapter_base(base) is None
    # Its own config.json (some revisions ship one) is read before the base's.
    _write_config(adapter, architectures=["Qwen2VLForConditionalGeneration"], model_type="qwen2_vl")
    assert families.detect(adapter).name == "mono_qwen2_vl"
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ValueError, match="names no base_model_name_or_path"):
        families.detect(adapter)


def test_the_family_is_read_from_config_json_and_an_unknown_one_names_the_known(tmp_path, tiny_model_dir):
    assert families.detect(tiny_model_dir).name == "qwen2_5_vl"
    config = json.loads((tiny_model_dir / "config.json").read_text())
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({**config, "model_type": "llava_next", "architectures": ["LlavaNext"]}))
    known = ", ".join(sorted(families.FAMILIES))
    assert "qwen2_5_vl, qwen3_reranker, qwen3_vl" in known
    with pytest.raises(ValueError, match=f"unknown checkpoint family.*'llava_next'.*known families are {known}"):
        families.detect(odd)
    # An override names the family to score it as; an unknown override names the known ones.
    assert families.detect(odd, "qwen2_5_vl").name == "qwen2_5_vl"
    with pytest.raises(ValueError, match=f"unknown model family 'nope': known families are {known}"):
        families.detect(tiny_model_dir, "nope")
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", family="nope")
