"""Drive every mode of a running `lychee ui` in a real browser, as a new user would, and check
what a person sees. Shared by tests/ui/test_browser.py and scripts/ui_screenshots.py, so the
screenshots in docs/ come from the same checked flow.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from PIL import Image

from lychee_rerank.ui.i18n import t
from lychee_rerank.ui.logic import CARDS_PER_ROW

SIDEBAR = "[data-testid=stSidebar]"
GALLERY_QUERY = {"en": "a cup of coffee", "zh": "一杯咖啡"}
SINGLE = {"en": ("opening hours", "Open Monday to Friday 9:00-21:00, closed on holidays"),
          "zh": ("营业时间", "周一至周五 9:00-21:00 营业，节假日休息")}
BATCH_QUERY = {"en": "how do I reset the router", "zh": "路由器怎么重置"}
BATCH_DOCS = [
    "Hold the RESET button for 10 seconds until the light blinks.",
    "Our store opens at 9 am on weekdays.",
    "路由器重置：长按 RESET 键 10 秒。",
    "The router supports Wi-Fi 6 and WPA3.",
    "Coffee is served in the lobby.",
]


def shot(page, folder: Path | None, name: str, full_page: bool = False) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size
        if full_page:  # Streamlit scrolls inside its own container: a taller window shows more
            page.set_viewport_size({"width": size["width"], "height": 1900})
        page.wait_for_timeout(800)  # let images and fonts settle
        page.screenshot(path=str(folder / name))
        if full_page:
            page.set_viewport_size(size)
            page.wait_for_timeout(300)


def sidebar_state(page, lang: str) -> dict[str, bool]:
    """Which mode-specific controls the sidebar shows right now."""
    bar = page.locator(SIDEBAR)
    return {
        "query": bar.get_by_label(t("query", lang)).count() > 0,
        "query_image": bar.get_by_text(t("query_image", lang)).count() > 0,
        "instruction": bar.get_by_text(t("instruction", lang), exact=True).count() > 0,
        "top_k": bar.get_by_label(t("top_k", lang)).count() > 0,
        "threshold": bar.get_by_text(t("threshold", lang)).count() > 0,
        "rerank": bar.get_by_role("button", name=t("rerank", lang)).count() > 0,
    }


def wait_idle(page, timeout: float = 120) -> None:
    """Until the app's run has ended (Streamlit shows its status widget while a run is going)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout * 1000)
    page.wait_for_timeout(500)


def expect_sidebar(page, lang: str, expected: dict[str, bool], timeout: float = 60) -> None:
    """Streamlit removes the previous run's elements only when the new run ends: poll until then."""
    deadline = time.monotonic() + timeout
    state = sidebar_state(page, lang)
    while state != expected and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        state = sidebar_state(page, lang)
    assert state == expected, state


def open_tab(page, mode: str, lang: str) -> None:
    page.get_by_role("tab", name=t(f"tab_{mode}", lang)).click()
    # The stateful tabs rerun the script; wait for the sidebar of the new mode.
    bar = page.locator(SIDEBAR)
    marker = bar.get_by_role("button", name=t("rerank", lang)) if mode == "gallery" else bar.get_by_text(t(f"mode_{mode}_hint", lang))
    marker.wait_for(timeout=60_000)
    page.wait_for_timeout(500)


def rank_gallery(page, lang: str, files: list[Path], refused: dict[str, str], *, watch_progress: bool) -> dict:
    """Upload, query, Rerank; returns what was seen (cards, progress lines)."""
    uploader = page.locator(".st-key-gallery input[type=file]")
    if files:
        uploader.set_input_files([str(p) for p in files])
    for name in refused:
        page.get_by_text(t("bad_file", lang, name=name, error="").rstrip(": ：")).first.wait_for(timeout=120_000)
    query = page.locator(SIDEBAR).get_by_label(t("query", lang))
    query.fill(GALLERY_QUERY[lang])
    query.press("Control+Enter")  # commit the text area before clicking
    page.wait_for_timeout(500)
    page.locator(SIDEBAR).get_by_role("button", name=t("rerank", lang)).click()
    seen: list[str] = []
    if watch_progress:
        pattern = re.compile(t("analysing", lang, done=r"(\d+)", total=r"(\d+)").replace("…", "…?"))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and page.locator(".lychee-winner").count() == 0:
            bars = page.locator("[data-testid=stProgress]")
            if bars.count():
                try:
                    text = bars.first.inner_text(timeout=500)
                except Exception:  # noqa: BLE001 - the bar disappears when the ranking ends
                    text = ""
                if pattern.search(text) and (not seen or seen[-1] != text):
                    seen.append(text)
            time.sleep(0.05)
    # The results of this query (not the previous ones, still on the page while the app reruns).
    page.get_by_text(t("results_for", lang, query=GALLERY_QUERY[lang])).wait_for(timeout=300_000)
    wait_idle(page)
    cards = page.locator(".lychee-card").evaluate_all(
        """els => els.map(e => { const r = e.getBoundingClientRect(); const th = e.querySelector('.lychee-thumb').getBoundingClientRect();
            return {rank: +e.dataset.rank, name: e.dataset.name, score: +e.dataset.score, title: e.title,
                    winner: e.classList.contains('lychee-winner'), x: r.x, y: r.y + window.scrollY, h: r.height,
                    thumb_h: th.height, evidence: e.querySelector('.lychee-evidence').textContent}; })"""
    )
    return {"cards": cards, "progress": seen}


def check_rank_order_row_by_row(cards: list[dict]) -> None:
    """Ranks read left to right, then top to bottom, and every thumbnail box has the same height."""
    assert [c["rank"] for c in cards] == list(range(1, len(cards) + 1))
    scores = [c["score"] for c in cards]
    assert scores == sorted(scores, reverse=True)
    rows: list[list[dict]] = []  # cards whose tops are within a few pixels share a row
    for c in sorted(cards, key=lambda c: c["y"]):
        if rows and abs(c["y"] - rows[-1][0]["y"]) < 4:
            rows[-1].append(c)
        else:
            rows.append([c])
    reading_order = [c["rank"] for row in rows for c in sorted(row, key=lambda c: c["x"])]
    assert reading_order == [c["rank"] for c in cards], [[(c["rank"], round(c["x"]), round(c["y"], 1)) for c in row] for row in rows]
    sizes = [len(r) for r in rows]
    assert sizes[:-1] == [CARDS_PER_ROW] * (len(sizes) - 1) and 0 < sizes[-1] <= CARDS_PER_ROW, sizes
    heights = [(c["rank"], round(c["thumb_h"]), round(c["h"])) for c in cards]
    assert len({h[1] for h in heights}) == 1 and len({h[2] for h in heights}) == 1, heights
    assert cards[0]["winner"] and not any(c["winner"] for c in cards[1:])


def check_hover(page, lang: str, card: dict) -> None:
    first = page.locator(".lychee-card").first
    first.scroll_into_view_if_needed()
    first.hover()
    hover = first.locator(".lychee-hover")
    # The overlay fades in with a CSS transition: poll its opacity rather than sleep a fixed time
    # (a loaded CI machine can be slower than any fixed sleep).
    page.wait_for_function(
        "() => { const e = document.querySelector('.lychee-card .lychee-hover');"
        " return e && parseFloat(getComputedStyle(e).opacity) > 0.9; }",
        timeout=15_000,
    )
    expected = f"{t('rank', lang)} {card['rank']} | {t('score', lang)} {card['score']:.4f}"
    assert hover.inner_text() == expected and card["title"] == expected


def check_viewer(page, lang: str, card: dict, original: Path, shots: Path | None = None) -> None:
    """The View button opens a dialog with the image at full resolution, its rank, score and evidence."""
    page.locator(f".st-key-view_{card['rank']} button").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=60_000)
    img = dialog.locator("img.lychee-full")
    img.wait_for(timeout=30_000)
    page.wait_for_function("() => { const i = document.querySelector('img.lychee-full'); return i && i.complete && i.naturalWidth > 0; }")
    natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    with Image.open(original) as im:
        assert natural == list(im.size), (natural, im.size)
    text = dialog.inner_text()
    assert f"{t('rank', lang)} {card['rank']}" in text and f"{card['score']:.4f}" in text
    assert t("full_resolution", lang, w=natural[0], h=natural[1]) in text
    if card["evidence"]:
        assert card["evidence"] in text
    assert dialog.get_by_text(t("raw_record", lang)).count() == 1
    shot(page, shots, f"ui-viewer-{lang}.png")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=30_000)


def run_single(page, lang: str) -> None:
    query, document = SINGLE[lang]
    page.locator(".st-key-single_query textarea").fill(query)
    page.locator(".st-key-single_doc textarea").fill(document)
    page.locator(".st-key-single_doc textarea").press("Control+Enter")
    page.wait_for_timeout(500)
    page.locator(".st-key-analyse button").click()
    page.get_by_text(t("instruction_used", lang)).wait_for(timeout=120_000)
    page.get_by_text(f"{t('evidence', lang)}:").first.wait_for(timeout=30_000)
    # Streamlit may still be laying out the columns when the caption below them arrives: wait for
    # the metric instead of sampling it once (a single is_visible() read failed on a loaded CI box).
    metric = page.locator("[data-testid=stMetric]").first
    metric.wait_for(state="visible", timeout=30_000)
    assert t("score", lang) in metric.inner_text()


def run_batch(page, lang: str) -> None:
    page.locator(".st-key-batch_query input").fill(BATCH_QUERY[lang])
    page.locator(".st-key-batch_query input").press("Enter")
    page.locator(".st-key-batch_docs textarea").fill("\n".join(BATCH_DOCS))
    page.locator(".st-key-batch_docs textarea").press("Control+Enter")
    page.wait_for_timeout(500)
    page.locator(".st-key-rank_texts button").click()
    page.locator("[data-testid=stDataFrame]").wait_for(timeout=120_000)
    page.wait_for_timeout(1200)


def user_drop(gallery_dir: Path, extra: Path) -> tuple[list[Path], dict[str, str]]:
    """What a user drops: the gallery (28 images + astronaut.txt), a corrupt PNG and a stray note;
    and the reason each refused file must be shown with."""
    broken = extra / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    note = extra / "notes.txt"
    note.write_text("remember to buy milk\n", encoding="utf-8")
    images = sorted(p for p in gallery_dir.iterdir() if p.is_file() and p.suffix in (".jpg", ".png"))
    assert len(images) == 28
    files = images + [gallery_dir / "astronaut.txt", broken, note]
    return files, {"broken.png": "not a supported image", "notes.txt": "no image named notes.* was uploaded"}


def both_languages(page, drop, gallery_dir: Path, shots: Path | None) -> None:
    """A user's session in English, then the same in Chinese after switching the UI language."""
    page.get_by_role("button", name=t("rerank", "en")).wait_for(timeout=180_000)
    session_in(page, "en", drop, gallery_dir, shots)
    page.locator(SIDEBAR).get_by_text("中文", exact=True).click()
    page.get_by_role("button", name=t("rerank", "zh")).wait_for(timeout=60_000)
    session_in(page, "zh", drop, gallery_dir, shots)


def session_in(page, lang: str, drop, gallery_dir: Path, shots: Path) -> None:
    files, refused = drop
    # Gallery mode: its sidebar has the query, query image, ranking settings and the Rerank button.
    expect_sidebar(page, lang, dict.fromkeys(("query", "query_image", "instruction", "top_k", "threshold", "rerank"), True))
    seen = rank_gallery(page, lang, files if lang == "en" else [], refused, watch_progress=lang == "en")
    for name, reason in refused.items():  # every refused file is named with its reason
        alert = page.locator("[data-testid=stAlert]").filter(has_text=name)
        assert alert.count() == 1
        if lang == "en":
            assert reason in alert.inner_text()
        else:
            assert re.search(r"[\u4e00-\u9fff]{4}", alert.inner_text().split("：", 1)[1])  # the reason in Chinese
    assert page.locator("[data-testid=stAlert]").filter(has_text="astronaut.txt").count() == 0  # a caption, not refused
    if lang == "en":  # the progress line advances image by image (cold cache: every image is analysed)
        done = [int(re.search(r"(\d+)/28", text).group(1)) for text in seen["progress"]]
        assert len(done) >= 3 and done == sorted(done) and len(set(done)) == len(done), seen["progress"]
        assert all(text.startswith("Analysing image ") for text in seen["progress"])
    cards = seen["cards"]
    assert len(cards) == 12  # the default top-k
    check_rank_order_row_by_row(cards)
    # The coffee photo leads, or in Chinese the coffee-shop receipt whose OCR reads 咖啡 may: which of
    # the two wins is the lite backend's call, not the UI's (test_parity pins UI scores to the CLI's).
    assert "coffee.jpg" in [c["name"] for c in cards[:2]]
    assert all(c["evidence"] for c in cards)  # a readable line on every card
    coffee = next(c for c in cards if c["name"] == "coffee.jpg")
    assert coffee["evidence"].startswith(t("ev_tags", lang))
    # The upload preview is collapsed once results exist: the results start above the fold.
    assert page.locator("[data-testid=stExpander] details").first.get_attribute("open") is None
    assert cards[0]["y"] < page.viewport_size["height"]
    check_hover(page, lang, cards[0])
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, shots, f"ui-gallery-{lang}.png", full_page=True)
    check_viewer(page, lang, cards[0], gallery_dir / cards[0]["name"], shots)

    open_tab(page, "single", lang)
    expect_sidebar(page, lang, {  # one query box: the one on the page
        "query": False, "query_image": False, "instruction": True, "top_k": False, "threshold": False, "rerank": False})
    run_single(page, lang)
    shot(page, shots, f"ui-single-{lang}.png")

    open_tab(page, "batch", lang)
    expect_sidebar(page, lang, {
        "query": False, "query_image": False, "instruction": True, "top_k": True, "threshold": True, "rerank": False})
    run_batch(page, lang)
    shot(page, shots, f"ui-batch-{lang}.png")

    open_tab(page, "gallery", lang)
    assert page.locator(SIDEBAR).get_by_label(t("query", lang)).input_value() == GALLERY_QUERY[lang]
