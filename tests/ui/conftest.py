"""UI fixtures: the example gallery (28 real and drawn images, a sidecar caption, an EXIF caption)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by the same code as `python -m lychee_rerank.demo.gallery` (needs a CJK font, as setup installs)."""
    from lychee_rerank.demo.gallery import build_gallery

    out = tmp_path_factory.mktemp("gallery")
    build_gallery(out)
    return out


@pytest.fixture(scope="session")
def lite_ui_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-lite-cache")
