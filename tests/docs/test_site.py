"""The documentation site: `mkdocs build --strict` with no warning, then the built site in headless
Chromium over loopback: the index, a guide and an API page load with no request leaving the
machine, and the search box finds ``score_threshold`` (and a Chinese word on the Chinese page). A screenshot of the API page goes to
``artifacts/docs-api.png``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from ..ui.browser import browser_page, chromium_path
from .runner import ROOT

ARTIFACTS = ROOT / "artifacts"
GUIDE = "guides/quickstart.html"
API_PAGE = "reference/reranker.html"
ZH_WORD = "安装"  # "install", inside a sentence of docs/zh/quickstart.md


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(site directory, build output) of one strict build of the repo's docs."""
    out = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LYCHEE_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return out, output


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    """The built site over HTTP on a free loopback port (a thread), shut down on the way out."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_strict_build_has_no_warning(built_site: tuple[Path, str]) -> None:
    site, output = built_site
    problems = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    assert problems == [], problems
    for page in ("index.html", GUIDE, API_PAGE, "reference/http.html", "zh/quickstart.html", "search/search_index.json"):
        assert (site / page).is_file(), page


def test_site_pages_and_search_offline_in_chromium(built_site: tuple[Path, str]) -> None:
    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    site, _ = built_site
    requests: list[str] = []
    with serving(site) as base, browser_page(1280, 900) as page:
        page.on("request", lambda request: requests.append(request.url))
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(f"{request.url} {request.failure}"))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        for path, heading in (("index.html", None), (GUIDE, "Quickstart"), (API_PAGE, "LycheeReranker")):
            response = page.goto(f"{base}/{path}", wait_until="networkidle")
            assert response is not None and response.status == 200, path
            if heading:
                assert heading in page.locator("article").inner_text(), path
        assert page.locator("h2#lychee_rerank.engine.LycheeReranker, [id='lychee_rerank.engine.LycheeReranker']").count() >= 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "docs-api.png"))

        # The search: Material's lunr index and worker, from the site's own files.
        page.goto(f"{base}/index.html", wait_until="networkidle")
        box = page.locator("input.md-search__input")
        box.click()
        box.press_sequentially("score_threshold", delay=20)
        hits = page.locator(".md-search-result__item")
        hits.first.wait_for(timeout=30_000)
        assert hits.count() >= 1
        assert "score_threshold" in page.locator(".md-search-result").inner_text()
        page.screenshot(path=str(ARTIFACTS / "docs-search.png"))

        # Chinese: jieba segmented the zh pages at build time, so a word inside a sentence is found.
        # (Typed CJK text fires no keyup, which the search box listens to; a space after it does.)
        box.fill("")
        box.press_sequentially(ZH_WORD, delay=20)
        box.press("End")
        page.keyboard.type(" ")
        zh_hits = page.locator(".md-search-result__item a[href*='zh/']")
        zh_hits.first.wait_for(timeout=30_000)
    hosts = {urlsplit(url).hostname for url in requests if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, sorted(u for u in requests if urlsplit(u).hostname != "127.0.0.1")
    assert failed == [], failed
    assert errors == [], errors
