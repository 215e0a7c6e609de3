"""End to end in a real headless Chromium: `lychee ui --backend lite` on a loopback port.

A new user's session, in English and then in Chinese: the 28-image example gallery plus its
sidecar caption, a corrupt file and a stray .txt are dropped; every refused file gets its
reason; Rerank shows the per-image progress line, then cards in rank order row by row with
uniform thumbnails, "Rank N | Score" on hover and a viewer dialog with the full-resolution
image; each mode's sidebar shows only its own controls; the UI's log has no deprecation
warning. Screenshots of each mode and language go to artifacts/ (scripts/ui_screenshots.py
writes the same flow's screenshots to docs/).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import drive
from .browser import browser_page, chromium_path, running_ui

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="module")
def drop(gallery_dir: Path, tmp_path_factory) -> tuple[list[Path], dict[str, str]]:
    return drive.user_drop(gallery_dir, tmp_path_factory.mktemp("extra"))


def test_every_mode_in_a_real_browser_in_english_and_chinese(drop, gallery_dir, lite_ui_cache, tmp_path):
    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    log = tmp_path / "ui.log"
    env = {"LYCHEE_CACHE_DIR": str(tmp_path / "lite-cache")}  # cold: every image is analysed once
    with running_ui("--backend", "lite", "--lang", "en", env=env, log=log) as url, browser_page(1400, 1000) as page:
        page.goto(url)
        drive.both_languages(page, drop, gallery_dir, ARTIFACTS)
    text = log.read_text(encoding="utf-8")
    assert "lychee ui: http://127.0.0.1" in text
    # Streamlit words its deprecations "Please replace `x` with `y`. `x` will be removed after ...".
    deprecated = re.compile(r"deprecat|will be removed|please replace|FutureWarning", re.IGNORECASE)
    deprecations = [line for line in text.splitlines() if deprecated.search(line)]
    assert deprecations == [], deprecations[:5]
