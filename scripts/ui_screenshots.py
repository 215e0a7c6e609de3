"""Screenshots of the web UI's three modes for docs/ (lite backend, real gallery photos).

Usage: python scripts/ui_screenshots.py [GALLERY_DIR] [OUT_DIR]
Needs Debian's chromium (scripts/setup.sh --browser) and the example gallery (make demo).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.ui.browser import browser_page, running_ui  # noqa: E402

GALLERY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "gallery"
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs"
PICKS = ["coffee.jpg", "chelsea.jpg", "rocket.jpg", "astronaut.jpg", "menu.png", "exit_sign.png"]


def shrink(path: Path, width: int = 1000) -> None:
    img = Image.open(path).convert("RGB")
    img.thumbnail((width, width * 3))
    img.quantize(colors=128).save(path, optimize=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with running_ui("--backend", "lite", "--lang", "zh") as url, browser_page(1300, 900) as page:
        page.goto(url)
        page.get_by_role("button", name="开始重排序 / Rerank").wait_for(timeout=180_000)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(1).set_input_files([str(GALLERY / p) for p in PICKS])
        page.locator("[data-testid=stSidebar]").get_by_label("查询（中文、英文或混合）").fill("一杯咖啡 coffee")
        page.get_by_role("button", name="开始重排序 / Rerank").click()
        page.locator(".lychee-winner").wait_for(timeout=180_000)
        page.screenshot(path=str(OUT / "ui-gallery.png"), full_page=True)

        page.get_by_role("tab", name="单条分析").click()
        page.get_by_label("查询（中文、英文或混合）").nth(1).fill("营业时间")
        page.get_by_label("文档文本").fill("周一至周五 9:00-21:00 营业，节假日休息")
        page.get_by_role("button", name="分析 / Analyse").click()
        page.get_by_text("使用的指令").wait_for(timeout=120_000)
        page.screenshot(path=str(OUT / "ui-single.png"))

        page.get_by_role("tab", name="批量重排序").click()
        page.get_by_label("查询（中文、英文或混合）").nth(2).fill("how do I reset the router")
        page.get_by_label("文档，每行一个").fill(
            "Hold the RESET button for 10 seconds until the light blinks.\n"
            "Our store opens at 9 am on weekdays.\n"
            "路由器重置：长按 RESET 键 10 秒。\n"
            "The router supports Wi-Fi 6 and WPA3.\n"
            "Coffee is served in the lobby."
        )
        page.get_by_role("button", name="排序 / Rank").click()
        page.locator("[data-testid=stDataFrame]").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(OUT / "ui-batch.png"))
    for name in ("ui-gallery.png", "ui-single.png", "ui-batch.png"):
        shrink(OUT / name)
        print(OUT / name, (OUT / name).stat().st_size)


if __name__ == "__main__":
    main()
