"""``/docs`` and ``/redoc`` work air-gapped: every asset comes from this server, none from a CDN."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from lychee_rerank.serving.settings import ServerSettings

from ..ui.browser import browser_page, chromium_path


class _Refs(HTMLParser):
    """Every src/href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]


@pytest.fixture
def docs_server(start_server, server_reranker):
    return start_server(ServerSettings(), server_reranker)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_and_assets_are_served_locally(docs_server, page):
    with docs_server.client() as c:
        html = c.get(page)
        assert html.status_code == 200
        assert not re.findall(r"(?:https?:)?//[\w.-]+", html.text.replace("<!--", "").replace("-->", "")), "another host in the page"
        parser = _Refs()
        parser.feed(html.text)
        assert parser.refs, "the page references its assets"
        for ref in parser.refs:
            url = urljoin(docs_server.url + page, ref)
            assert urlsplit(url).netloc == urlsplit(docs_server.url).netloc, ref
            asset = c.get(url)
            assert asset.status_code == 200 and len(asset.content) > 50, ref
            if ref.endswith(".css"):  # stylesheets pull nothing from elsewhere either
                assert not re.findall(r"url\(\s*['\"]?(?:https?:)?//", asset.text)


@pytest.mark.parametrize(("page", "rendered"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_pages_render_in_a_browser_with_no_other_host(docs_server, page, rendered):
    """Chromium renders the page; any request to another host is recorded (and refused)."""
    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    own = urlsplit(docs_server.url).netloc
    foreign: list[str] = []

    def guard(route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == own or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    with browser_page() as page_:
        page_.route("**/*", guard)
        page_.goto(docs_server.url + page)
        page_.wait_for_selector(rendered, timeout=30_000)
        text = page_.inner_text("body")
    assert "/v1/rerank" in text and "/score" in text
    assert foreign == []
