"""``RerankerConfig`` is the one home of the loading knobs: every surface's defaults come from it."""

from __future__ import annotations

import dataclasses
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
    assert (ft.min_pixels, ft.max_pixels) == (cfg.DEFAULT_MIN_PIXELS, cfg.DEFAULT_MAX_PIXELS) == (4 * 28 * 28, 1280 * 28 * 28)
    default = RerankerConfig()
    assert settings.reranker_config() == default


def test_server_settings_map_onto_the_reranker_config():
    s = ServerSettings(backend="lychee", model="m", adapter="a", device="cpu", dtype="float32",
                       model_max_pixels=256 * 28 * 28, max_image_pixels=1000, max_image_bytes=2000)
    assert s.reranker_config() == RerankerConfig(
        backend="lychee", model="m", adapter="a", device="cpu", dtype="float32", max_pixels=256 * 28 * 28,
        image_max_pixels=1000, image_max_bytes=2000,
    )


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
