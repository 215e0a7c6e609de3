"""The UI and the CLI give the same scores for the same files, with and without a caption.

The CLI reads ``astronaut.txt`` next to ``astronaut.jpg`` (a sidecar caption) and the EXIF
description of ``hubble.jpg``; the UI gets the same files as uploads (the sidecar uploaded
alongside, or the caption typed per upload). Real lite backend on both sides, the CLI as a
real `lychee rerank` process, the UI through Streamlit's AppTest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from .conftest import APP

IMAGES = ["astronaut.jpg", "coffee.jpg", "hubble.jpg", "rocket.jpg", "receipt.png"]
QUERY = "NASA astronaut portrait with the US flag"


def cli_scores(folder: Path, cache: Path) -> dict[str, float]:
    lychee = str(Path(sys.executable).parent / "lychee")
    out = subprocess.run(
        [lychee, "rerank", QUERY, str(folder), "--backend", "lite", "--format", "json"],
        capture_output=True, text=True, timeout=600, check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "LYCHEE_CACHE_DIR": str(cache)},
    )
    return {Path(r["source"]).name: r["score"] for r in json.loads(out.stdout)}


def ui_scores(at: AppTest, files: list[Path], captions: dict[str, str] | None = None) -> dict[str, float]:
    at.file_uploader(key="gallery").set_value([(p.name, p.read_bytes(), "application/octet-stream") for p in files]).run()
    for name, caption in (captions or {}).items():
        at.text_area(key=next(w.key for w in at.text_area if w.label == f"Caption · {name}")).input(caption)
    at.sidebar.text_area(key="query").input(QUERY)
    at.sidebar.button(key="rerank").click().run()
    assert not at.exception
    cards = [h.proto.body for h in at.get("html") if "lychee-card" in h.proto.body and "data-rank" in h.proto.body]
    out = {}
    for body in cards:
        name = body.split('data-name="', 1)[1].split('"', 1)[0]
        score = float(body.split('data-score="', 1)[1].split('"', 1)[0])
        out[name] = score
    return out


@pytest.fixture()
def lite_app(monkeypatch, lite_ui_cache):
    monkeypatch.setenv("LYCHEE_UI_BACKEND", "lite")
    monkeypatch.setenv("LYCHEE_UI_LANG", "en")
    monkeypatch.setenv("LYCHEE_CACHE_DIR", str(lite_ui_cache))
    monkeypatch.delenv("LYCHEE_MODEL", raising=False)
    return AppTest.from_file(APP, default_timeout=600).run()


@pytest.fixture(scope="module")
def folders(gallery_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The same photos twice: with the sidecar caption (as the gallery ships) and without."""
    with_caption, without = tmp_path_factory.mktemp("with-caption"), tmp_path_factory.mktemp("without-caption")
    for name in IMAGES:
        shutil.copy(gallery_dir / name, with_caption / name)
        shutil.copy(gallery_dir / name, without / name)
    shutil.copy(gallery_dir / "astronaut.txt", with_caption / "astronaut.txt")
    return with_caption, without


@pytest.fixture(scope="module")
def cli(folders, tmp_path_factory) -> dict[str, dict[str, float]]:
    cache = tmp_path_factory.mktemp("cli-lite-cache")  # not the UI's: nothing is shared but the files
    with_caption, without = folders
    return {"with": cli_scores(with_caption, cache), "without": cli_scores(without, cache)}


def test_ui_matches_cli_without_caption(lite_app, folders, cli):
    _, without = folders
    ui = ui_scores(lite_app, [without / n for n in IMAGES])
    assert set(ui) == set(IMAGES)
    assert ui == pytest.approx(cli["without"], abs=1e-6)
    # The caption really is an input: without it the astronaut scores differently.
    assert abs(cli["with"]["astronaut.jpg"] - cli["without"]["astronaut.jpg"]) > 1e-3


def test_ui_matches_cli_with_an_uploaded_sidecar(lite_app, folders, cli):
    with_caption, _ = folders
    files = [with_caption / n for n in IMAGES] + [with_caption / "astronaut.txt"]
    ui = ui_scores(lite_app, files)
    assert ui == pytest.approx(cli["with"], abs=1e-6)
    assert not lite_app.error  # the sidecar is a caption, not a refused file


def test_ui_matches_cli_with_a_typed_caption(lite_app, folders, gallery_dir, cli):
    _, without = folders
    caption = (gallery_dir / "astronaut.txt").read_text(encoding="utf-8").strip()
    ui = ui_scores(lite_app, [without / n for n in IMAGES], captions={"astronaut.jpg": caption})
    assert ui == pytest.approx(cli["with"], abs=1e-6)
