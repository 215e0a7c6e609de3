"""Screenshots of the web UI's modes, in English and Chinese, for docs/ (lite backend, real photos).

Usage: python scripts/ui_screenshots.py [OUT_DIR]

Runs the browser test's own flow (tests/ui/drive.py: every check included) against a fresh
`lychee ui --backend lite`, with the example gallery built into a temporary folder, then writes
small PNGs: OUT_DIR/ui-{gallery,single,batch}-{en,zh}.png and ui-viewer-en.png. Needs Debian's
chromium (scripts/setup.sh --browser) and a CJK font (see lychee_rerank.demo.gallery).
Look at each image before committing it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.ui import drive  # noqa: E402
from tests.ui.browser import browser_page, running_ui  # noqa: E402

from lychee_rerank.demo.gallery import build_gallery  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
NAMES = [f"ui-{mode}-{lang}.png" for lang in ("en", "zh") for mode in ("gallery", "single", "batch")] + ["ui-viewer-en.png"]


def shrink(source: Path, target: Path, width: int = 1000) -> None:
    img = Image.open(source).convert("RGB")
    img.thumbnail((width, width * 3))
    img.quantize(colors=96).save(target, optimize=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gallery = work / "gallery"
        build_gallery(gallery)
        (work / "extra").mkdir()
        drop = drive.user_drop(gallery, work / "extra")
        shots = work / "shots"
        env = {"LYCHEE_CACHE_DIR": str(work / "cache")}
        with running_ui("--backend", "lite", "--lang", "en", env=env, log=work / "ui.log") as url, browser_page(1400, 1000) as page:
            page.goto(url)
            drive.both_languages(page, drop, gallery, shots)
        for name in NAMES:
            shrink(shots / name, OUT / name)
            print(OUT / name, (OUT / name).stat().st_size)


if __name__ == "__main__":
    main()
