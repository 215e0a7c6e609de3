"""Session fixtures for the lite backend: real models, real photos, images drawn once.

Everything heavy (model loading, image analysis) happens once per session, in one backend
whose cache lives in a temporary directory, so the suite stays fast on two cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def skimage_photo(name: str) -> Image.Image:
    from lychee_rerank.demo.gallery import _load_photo

    return _load_photo(name)


@pytest.fixture(scope="session")
def cjk_font():
    """A font that draws Chinese; the project's setup installs one (see lychee_rerank.demo.gallery)."""
    from lychee_rerank.demo.gallery import find_cjk_font

    return find_cjk_font()


@pytest.fixture(scope="session")
def lite_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lite-cache")


@pytest.fixture(scope="session")
def lite_backend(lite_cache_dir: Path):
    from lychee_rerank.backends.lite import LiteBackend

    return LiteBackend(cache_dir=lite_cache_dir)


@pytest.fixture(scope="session")
def embedder(lite_backend):
    """The session backend's e5 embedder (memoised: texts embedded by one test are free in the next)."""
    return lite_backend.embedder


@pytest.fixture(scope="session")
def space():
    """The shipped concept vocabulary and its vectors."""
    from lychee_rerank.backends.lite.concepts import concept_space

    return concept_space()


@pytest.fixture(scope="session")
def lite_reranker(lite_backend):
    from lychee_rerank import LycheeReranker

    return LycheeReranker(lite_backend)


@pytest.fixture(scope="session")
def gallery(cjk_font) -> dict[str, Image.Image]:
    """A small mixed gallery: five real photos and four drawn text-bearing images."""
    from lychee_rerank.demo import gallery as examples

    return {
        "coffee": skimage_photo("coffee"),
        "cat": skimage_photo("chelsea"),
        "rocket": skimage_photo("rocket"),
        "motorcycle": skimage_photo("stereo_motorcycle"),
        "camera": skimage_photo("camera"),
        "receipt": examples.draw_receipt(cjk_font),
        "no_parking": examples.draw_no_parking(cjk_font),
        "wet_floor": examples.draw_wet_floor(cjk_font),
        "ticket": examples.draw_train_ticket(cjk_font),
    }


@pytest.fixture(scope="session")
def gallery_contents(gallery):
    from lychee_rerank.inputs import to_content

    return {name: to_content(image) for name, image in gallery.items()}


@pytest.fixture(scope="session")
def analyses(lite_backend, gallery_contents):
    """Analysis of every gallery image (computed once, from pixels, by the shared backend)."""
    return {name: lite_backend.analyse(content)[0] for name, content in gallery_contents.items()}


def blank(colour: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> Image.Image:
    return Image.new("RGB", size, colour)


def noise(seed: int, size: tuple[int, int] = (200, 150)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))
