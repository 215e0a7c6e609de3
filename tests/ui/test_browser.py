"""End to end in a real headless Chromium: `lychee ui --backend lite` on a loopback port.

Upload two real photos and one corrupt file, type a query, click Rerank: the expected winner
is first, with the gold border, and the corrupt file is reported by name. A screenshot is
saved as a test artifact (artifacts/ui-gallery.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .browser import browser_page, chromium_path, running_ui

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
RERANK = "Rerank / 开始重排序"


@pytest.fixture(scope="module")
def upload_files(tmp_path_factory) -> list[Path]:
    from skimage import data

    from PIL import Image

    folder = tmp_path_factory.mktemp("uploads")
    coffee, rocket = folder / "coffee.jpg", folder / "rocket.jpg"
    Image.fromarray(data.coffee()).save(coffee, quality=90)
    Image.fromarray(data.rocket()).save(rocket, quality=90)
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return [rocket, broken, coffee]


def test_gallery_ranking_in_a_real_browser(upload_files, tmp_path):
    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    env = {"LYCHEE_CACHE_DIR": str(tmp_path / "lite-cache")}
    with running_ui("--backend", "lite", "--lang", "en", env=env) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("button", name=RERANK).wait_for(timeout=180_000)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(1).set_input_files([str(p) for p in upload_files])
        page.get_by_text("Skipped broken.png").wait_for(timeout=60_000)
        page.locator("[data-testid=stSidebar]").get_by_label("Query (Chinese, English or mixed)").fill("a cup of coffee")
        page.get_by_role("button", name=RERANK).click()
        page.locator(".lychee-winner").wait_for(timeout=180_000)
        cards = page.locator(".lychee-card").evaluate_all(
            "els => els.map(e => ({rank: e.dataset.rank, name: e.dataset.name, winner: e.classList.contains('lychee-winner'),"
            " border: getComputedStyle(e).borderTopColor, width: getComputedStyle(e).borderTopWidth}))"
        )
        assert [c["name"] for c in cards] == ["coffee.jpg", "rocket.jpg"]  # the corrupt file is not ranked
        assert cards[0]["winner"] and not cards[1]["winner"]
        assert cards[0]["border"].startswith("rgba(212, 175, 55") or cards[0]["border"] == "rgb(212, 175, 55)"
        assert float(cards[0]["width"].rstrip("px")) >= 2
        assert page.get_by_text("Skipped broken.png").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-gallery.png"), full_page=True)
