"""UI fixtures: the example gallery (28 real and drawn images, a sidecar caption, an EXIF caption)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lychee_rerank.ui

APP = str(Path(lychee_rerank.ui.__file__).parent / "app.py")  # not imported: it runs the app


def open_mode(app, label: str) -> None:
    """What clicking a tab does: the tabs' state is the open tab's label, and the app reruns."""
    app.session_state["mode"] = label
    app.run()


def model_app(model_dir: Path, monkeypatch: pytest.MonkeyPatch, timeout: float = 300):
    """The app (Streamlit AppTest, English) on the model backend with checkpoint ``model_dir``; the
    family is read from the checkpoint (no LYCHEE_FAMILY), no adapter."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LYCHEE_UI_BACKEND", "lychee")
    monkeypatch.setenv("LYCHEE_MODEL", str(model_dir))
    monkeypatch.setenv("LYCHEE_UI_LANG", "en")
    monkeypatch.delenv("LYCHEE_FAMILY", raising=False)
    monkeypatch.delenv("LYCHEE_ADAPTER", raising=False)
    return AppTest.from_file(APP, default_timeout=timeout).run()


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
