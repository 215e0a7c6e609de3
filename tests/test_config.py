"""``RerankerConfig`` is the one home of the loading knobs: every surface's defaults come from it."""

from __future__ import annotations

import dataclasses
import os
import pickle

import pytest

from lychee_rerank import config as cfg
from lychee_rerank.config import RerankerConfig
from lychee_rerank.inputs import ImageLimits
from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.training.finetune import FinetuneConfig


def test_the_config_is_frozen_picklable_and_hashable():
    c = RerankerConfig(backend="lite")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.backend = "lychee"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(c)) == c and hash(c) == hash(RerankerConfig(backend="lite"))
    assert c.with_(model=None, device="cpu") == RerankerConfig(backend="lite", device="cpu")


def test_every_surface_shares_one_set_of_limits(tmp_path):
    settings = ServerSettings()
    assert (settings.max_image_pixels, settings.max_image_bytes) == (cfg.DEFAULT_MAX_IMAGE_PIXELS, cfg.DEFAULT_MAX_IMAGE_BYTES)
    assert ImageLimits() == ImageLimits(cfg.DEFAULT_MAX_IMAGE_PIXELS, cfg.DEFAULT_MAX_IMAGE_BYTES)
    assert (cfg.DEFAULT_MAX_IMAGE_PIXELS, cfg.DEFAULT_MAX_IMAGE_BYTES) == (40_000_000, 20 * 1024 * 1024)
    ft = FinetuneConfig(output_dir=tmp_path)
    default = RerankerConfig()
    # The pixel budget and token limits are the checkpoint family's unless set (issue 21).
    assert ft.reranker == default and (default.min_pixels, default.max_pixels, default.max_query_tokens) == (None,) * 3
    assert settings.reranker_config() == default


def test_server_settings_map_onto_the_reranker_config():
    s = ServerSettings(backend="lychee", model="m", adapter="a", device="cpu", dtype="float32",
                       model_max_pixels=256 * 28 * 28, max_image_pixels=1000, max_image_bytes=2000, family="qwen3_vl")
    assert s.reranker_config() == RerankerConfig(
        backend="lychee", model="m", adapter="a", device="cpu", dtype="float32", max_pixels=256 * 28 * 28,
        image_max_pixels=1000, image_max_bytes=2000, family="qwen3_vl",
    )


# ----------------------------------------------------------------------------- one nested RerankerConfig (issue 21)
RERANKER_FIELDS = {f.name for f in dataclasses.fields(RerankerConfig)}


def test_server_and_finetune_settings_nest_the_reranker_config_instead_of_repeating_it(tmp_path):
    assert RERANKER_FIELDS & set(ServerSettings.model_fields) == set()
    assert RERANKER_FIELDS & set(FinetuneConfig.model_fields) == set()
    assert ServerSettings().reranker == RerankerConfig() and FinetuneConfig(output_dir=tmp_path).reranker == RerankerConfig()


ENV = {"LYCHEE_BACKEND": "lychee", "LYCHEE_MODEL": "env/model", "LYCHEE_FAMILY": "qwen3_vl", "LYCHEE_ADAPTER": "env-adapter",
       "LYCHEE_DEVICE": "cpu", "LYCHEE_DTYPE": "float32", "LYCHEE_ATTN_IMPLEMENTATION": "eager",
       "LYCHEE_MODEL_MAX_PIXELS": "1024", "LYCHEE_MAX_IMAGE_PIXELS": "5000"}


@pytest.fixture()
def clean_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("LYCHEE_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_every_lychee_variable_still_reaches_the_reranker(clean_env):
    for name, value in ENV.items():
        clean_env.setenv(name, value)
    assert ServerSettings().reranker_config() == RerankerConfig(
        backend="lychee", model="env/model", family="qwen3_vl", adapter="env-adapter", device="cpu", dtype="float32",
        attn_implementation="eager", max_pixels=1024, image_max_pixels=5000,
    )
    # Flags (keywords) win over the environment, field by field.
    flagged = ServerSettings(model="flag/model", model_max_pixels=2048).reranker_config()
    assert (flagged.model, flagged.max_pixels, flagged.family, flagged.device) == ("flag/model", 2048, "qwen3_vl", "cpu")


def test_an_unknown_family_or_a_bad_budget_is_refused_at_start_up(clean_env):
    with pytest.raises(ValueError, match="unknown model family 'nope': known families are cross_encoder, jina_m0, mono_qwen2_vl, qwen2_5_vl, qwen3_reranker, qwen3_vl"):
        ServerSettings(family="nope")
    clean_env.setenv("LYCHEE_FAMILY", "nope")
    with pytest.raises(ValueError, match="known families are"):
        ServerSettings()
    clean_env.delenv("LYCHEE_FAMILY")
    with pytest.raises(ValueError, match="max_pixels must be > 0"):
        ServerSettings(model_max_pixels=0)


def test_finetune_config_takes_reranker_fields_by_name(tmp_path):
    ft = FinetuneConfig(output_dir=tmp_path, device="cpu", dtype="float32", family="qwen3_vl", max_pixels=1024, lora_r=4)
    assert ft.reranker == RerankerConfig(device="cpu", dtype="float32", family="qwen3_vl", max_pixels=1024)
    assert ft.lora_r == 4 and ft.to_json()["reranker"]["family"] == "qwen3_vl"
    with pytest.raises(ValueError, match="known families are cross_encoder, jina_m0, mono_qwen2_vl, qwen2_5_vl, qwen3_reranker, qwen3_vl"):
        FinetuneConfig(output_dir=tmp_path, family="nope")


def test_the_engine_takes_its_image_limits_and_templates_from_the_config(tmp_path):
    from lychee_rerank import LycheeReranker

    templates = tmp_path / "t.json"
    templates.write_text('{"mine": "Find my things"}')
    rr = LycheeReranker.from_config(
        RerankerConfig(backend="lite", image_max_pixels=1234, image_max_bytes=5678, templates_file=str(templates),
                       lite_cache_dir=str(tmp_path / "cache"))
    )
    assert rr.image_limits == ImageLimits(1234, 5678) and rr.templates_file == templates


def test_from_pretrained_and_load_honour_the_image_limits_they_are_given(tiny_model_dir, tmp_path):
    """``from_pretrained`` used to build the config from these knobs and then drop the limits."""
    from lychee_rerank import LycheeReranker

    rr = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", image_max_pixels=1234, image_max_bytes=5678)
    assert rr.image_limits == ImageLimits(1234, 5678)
    lite = LycheeReranker.load("lite", image_max_pixels=4321, image_max_bytes=8765, lite_cache_dir=str(tmp_path / "c"))
    assert lite.image_limits == ImageLimits(4321, 8765)


def test_the_backend_names_choice_knows_are_the_registrys(monkeypatch):
    """No copy of the registry's keys: a registered backend is a valid choice with no names passed."""
    from lychee_rerank import backends
    from lychee_rerank.backends import choice

    monkeypatch.setitem(backends._FACTORIES, "length", "tests:unused")
    assert choice.choose_backend("length", "m").backend == "length"
    assert not hasattr(choice, "BUILTIN_BACKENDS")
    with pytest.raises(ValueError, match="unknown backend 'magic': use one of auto, lychee, lite, length"):
        choice.choose_backend("magic")


def test_the_batch_job_takes_the_reranker_config_itself():
    from lychee_rerank.jobs import batch

    assert not hasattr(batch, "RerankerSpec")  # one name for one record
