"""The example gallery builder: real photos with licences, drawn bilingual images, captions."""

from __future__ import annotations

from pathlib import Path

import pytest

from lychee_rerank.demo import gallery as examples
from lychee_rerank.inputs import to_content


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gallery")
    assert examples.main([str(out)]) == 0
    return out


def test_gallery_has_photos_drawn_images_queries_and_licences(built):
    images = sorted(p.name for p in built.iterdir() if p.suffix in (".jpg", ".png"))
    assert len(images) == len(examples.PHOTOS) + len(examples.DRAWN) >= 20
    assert sorted(p.name for p in (built / "queries").iterdir()) == [
        "cat_closeup.jpg",
        "coffee_crop.jpg",
        "rocket_crop.jpg",
    ]
    licences = (built / "LICENSES.md").read_text(encoding="utf-8")
    for photo in examples.PHOTOS:
        assert photo.name in licences and photo.credit in licences
    assert "Open Font License" in licences


def test_captions_travel_with_the_images(built):
    astronaut = to_content(built / "astronaut.jpg")
    assert astronaut.caption and "astronaut" in astronaut.caption  # sidecar .txt
    hubble = to_content(built / "hubble.jpg")
    assert hubble.caption and "Hubble" in hubble.caption  # EXIF ImageDescription
    assert to_content(built / "coffee.jpg").caption is None


def test_drawn_images_are_distinct_and_deterministic(built, cjk_font_path):
    hashes = {to_content(p).image_hash for p in built.iterdir() if p.suffix in (".jpg", ".png")}
    assert len(hashes) == len(examples.PHOTOS) + len(examples.DRAWN)
    font = examples.find_cjk_font()
    assert examples.draw_receipt(font).tobytes() == examples.draw_receipt(font).tobytes()


@pytest.fixture(scope="module")
def cjk_font_path() -> str:
    return examples.find_cjk_font().path


def test_font_search_honours_an_explicit_font_and_rejects_fonts_without_chinese(cjk_font_path, tmp_path, monkeypatch):
    found = examples.find_cjk_font(cjk_font_path)
    assert found.path == cjk_font_path and examples._has_cjk(found.get(24))
    assert examples._usable("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf") is None
    assert examples._usable(str(tmp_path / "missing.ttf")) is None


def test_missing_font_gives_instructions(monkeypatch):
    monkeypatch.setattr(examples, "_usable", lambda path: None)
    with pytest.raises(examples.FontNotFound, match="noto-cjk-sans-otc"):
        examples.find_cjk_font()
