"""API key on every route, file paths confined to --allow-local-dir, URLs only to public addresses.

Only loopback traffic is ever sent: addresses that must be refused (private, link-local) are
checked with a resolver stub, never connected to.
"""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path
from typing import Iterator

import pytest

from lychee_rerank.serving import sources
from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.serving.sources import LimitExceeded, SourceError, UrlFetcher, address_refusal, checked_addresses

from .conftest import b64, metric_value

KEY = "s3cret-key-for-tests"
ROUTES = [
    ("POST", "/v1/rerank", {"query": "q", "documents": ["d"]}),
    ("POST", "/rerank", {"query": "q", "documents": ["d"]}),
    ("POST", "/v2/rerank", {"query": "q", "documents": ["d"]}),
    ("POST", "/api/rerank", {"query": {"text": "q"}, "documents": [{"text": "d"}]}),
    ("POST", "/v1/analyze", {"query": "q", "document": "d"}),
    ("GET", "/metrics", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("GET", "/no-such-route", None),
]


# --------------------------------------------------------------------------- auth
@pytest.fixture
def keyed(start_server, server_reranker):
    return start_server(ServerSettings(api_key=KEY), server_reranker)


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_every_route_but_health_needs_the_key(keyed, method, path, body):
    with keyed.client() as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"},
                        {"Authorization": f"Bearer {KEY}x"}, {"Authorization": "Bearer"}):
            r = c.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["error"]["type"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
        ok = c.request(method, path, json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == (404 if path == "/no-such-route" else 200), ok.text


def test_health_is_open_and_auth_failures_are_counted(keyed):
    with keyed.client() as c:
        assert c.get("/health").status_code == 200
        c.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
        text = c.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert metric_value(text, "lychee_errors_total", kind="auth") == 1
    assert metric_value(text, "lychee_requests_total", route="unmatched", method="POST", status="401") == 1


def test_unauthenticated_large_body_is_refused_before_it_is_read(start_server, server_reranker):
    live = start_server(ServerSettings(api_key=KEY, max_request_bytes=10_000), server_reranker)
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": ["x" * 50_000]})
    assert r.status_code == 401  # auth first: no 413 (which would mean the body was looked at)


def test_api_key_from_environment(monkeypatch, start_server, server_reranker):
    monkeypatch.setenv("LYCHEE_API_KEY", "from-env")
    live = start_server(ServerSettings(), server_reranker)
    with live.client() as c:
        assert c.post("/v1/rerank", json={"query": "q", "documents": ["d"]}).status_code == 401
        ok = c.post("/v1/rerank", json={"query": "q", "documents": ["d"]}, headers={"Authorization": "Bearer from-env"})
        assert ok.status_code == 200


def test_openapi_documents_the_bearer_scheme(keyed):
    with keyed.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        schema = c.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []


# --------------------------------------------------------------------------- local files
@pytest.fixture
def image_tree(tmp_path: Path, server_images: list[bytes]) -> dict[str, Path]:
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    (root / "cat.png").write_bytes(server_images[0])
    (root / "sub" / "dog.png").write_bytes(server_images[1])
    outside = tmp_path / "secret.png"
    outside.write_bytes(server_images[2])
    (root / "link-out.png").symlink_to(outside)
    (root / "link-in.png").symlink_to(root / "cat.png")
    (root / "dir-out").symlink_to(tmp_path)
    os.mkfifo(root / "pipe.png")
    return {"root": root, "outside": outside}


def test_paths_are_confined_to_the_allowed_directory(start_server, server_reranker, image_tree, server_images):
    root, outside = image_tree["root"], image_tree["outside"]
    live = start_server(ServerSettings(allow_local_dir=root), server_reranker)
    documents = [
        {"image": "cat.png"},                 # 0 relative
        {"image": "sub/dog.png"},             # 1 nested
        {"image": str(root / "cat.png")},     # 2 absolute, inside
        {"image": "file:sub/dog.png"},        # 3 file: prefix
        {"image": "link-in.png"},             # 4 symlink that stays inside
        {"image": "../secret.png"},           # 5 traversal
        {"image": "sub/../../secret.png"},    # 6 traversal hidden in the middle
        {"image": str(outside)},              # 7 absolute, outside
        {"image": "link-out.png"},            # 8 symlink out
        {"image": "dir-out/secret.png"},      # 9 through a directory symlink out
        {"image": f"file://{outside}"},       # 10 file URL outside
        {"image": "missing.png"},             # 11 not there
        {"image": "pipe.png"},                # 12 not a regular file (must not hang)
        {"image": "/etc/hostname"},           # 13 system file
    ]
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "a cat", "documents": documents})
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    for i in range(5):
        assert "error" not in results[i], results[i]
    assert results[0]["relevance_score"] == pytest.approx(results[2]["relevance_score"], abs=1e-6)
    assert results[0]["relevance_score"] == pytest.approx(results[4]["relevance_score"], abs=1e-6)
    library = {x.index: x.score for x in server_reranker.rerank("a cat", [server_images[0], server_images[1]])}
    # Another batch composition (2 vs 5 images): the project's FP32 parity tolerance, 1e-5.
    assert results[0]["relevance_score"] == pytest.approx(library[0], abs=1e-5)
    assert results[1]["relevance_score"] == pytest.approx(library[1], abs=1e-5)
    for i in (5, 6):
        assert "'..' is not allowed" in results[i]["error"]
    for i in (7, 8, 9, 10, 13):
        assert "outside the allowed directory" in results[i]["error"], results[i]
        assert results[i]["relevance_score"] == 0.0
    assert "no such file" in results[11]["error"]
    assert "not a regular file" in results[12]["error"]


def test_paths_are_refused_without_allow_local_dir(start_server, server_reranker, image_tree):
    live = start_server(ServerSettings(), server_reranker)
    documents = [{"image": str(image_tree["root"] / "cat.png")}, {"image": "file:cat.png"}, {"image": "cat.png"}]
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": documents})
        assert all("--allow-local-dir" in x["error"] for x in r.json()["results"]), r.text
        q = c.post("/v1/rerank", json={"query": {"image": str(image_tree["outside"])}, "documents": ["d"]})
        assert q.status_code == 422 and "--allow-local-dir" in q.json()["error"]["message"]


# --------------------------------------------------------------------------- URLs
class _ImageHandler(http.server.BaseHTTPRequestHandler):
    hits: list[tuple[str, str]] = []
    image: bytes = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).hits.append((self.path, self.headers.get("Host", "")))
        if self.path == "/redirect-to-loopback":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/cat.png")
            self.end_headers()
            return
        if self.path == "/slow.png":
            threading.Event().wait(2.0)
        body = self.image * (50 if self.path == "/big.png" else 1)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def image_host(server_images: list[bytes]) -> Iterator[tuple[int, type]]:
    """A tiny HTTP server on 127.0.0.1 that records every request it gets."""
    handler = type("Handler", (_ImageHandler,), {"hits": [], "image": server_images[0]})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], handler
    httpd.shutdown()
    httpd.server_close()


def test_urls_are_refused_without_allow_urls(start_server, server_reranker, image_host):
    port, handler = image_host
    live = start_server(ServerSettings(), server_reranker)
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": [{"image": f"http://127.0.0.1:{port}/cat.png"}]})
    assert "--allow-urls" in r.json()["results"][0]["error"]
    assert handler.hits == []


def test_loopback_urls_are_refused_even_with_allow_urls(start_server, server_reranker, image_host):
    port, handler = image_host
    live = start_server(ServerSettings(allow_urls=True), server_reranker)
    documents = [
        {"image": f"http://127.0.0.1:{port}/cat.png"},
        {"image": f"http://localhost:{port}/cat.png"},
        {"image": f"http://[::1]:{port}/cat.png"},
        {"image": f"http://127.1:{port}/cat.png"},
        {"image": f"http://0.0.0.0:{port}/cat.png"},
        [{"type": "image_url", "image_url": {"url": f"http://[::ffff:127.0.0.1]:{port}/cat.png"}}],
        {"image": f"ftp://127.0.0.1:{port}/cat.png"},
        {"image": f"gopher://127.0.0.1:{port}/cat.png"},
    ]
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": documents})
    errors = [x["error"] for x in sorted(r.json()["results"], key=lambda x: x["index"])]
    for e in errors[:6]:
        assert "refused" in e and ("loopback" in e or "unspecified" in e), e
    for e in errors[6:]:
        assert "unsupported URL scheme" in e
    assert handler.hits == []  # nothing ever reached the loopback server


def _stub_resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return table[host]
        return [host]  # IP literals resolve to themselves

    return resolve


def test_address_policy_unit():
    refused = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
               "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "224.0.0.1", "240.0.0.1",
               "192.0.2.1", "::"]
    for address in refused:
        assert address_refusal(address) is not None, address
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"):
        assert address_refusal(address) is None, address
    assert "link-local" in address_refusal("169.254.169.254")
    assert "loopback" in address_refusal("127.0.0.1")
    assert "private" in address_refusal("10.1.2.3")


def test_every_resolved_address_must_be_public():
    resolver = _stub_resolver({
        "public.example": ["93.184.216.34"],
        "mixed.example": ["93.184.216.34", "10.0.0.5"],
        "metadata.example": ["169.254.169.254"],
        "v6.example": ["2606:4700:4700::1111", "fe80::1"],
        "nothing.example": [],
    })
    assert checked_addresses("public.example", 80, resolver) == ["93.184.216.34"]
    for host, needle in [("mixed.example", "private"), ("metadata.example", "link-local"), ("v6.example", "link-local"),
                         ("nothing.example", "no address")]:
        with pytest.raises(SourceError, match=needle):
            checked_addresses(host, 80, resolver)
    with pytest.raises(SourceError, match="cannot resolve"):
        sources.system_resolver("no-such-host.invalid", 80)


@pytest.fixture
def public_name_to_loopback(monkeypatch, image_host):
    """Let 'images.example.com' pass the address check as a public address, and dial the loopback
    test server when the fetcher connects to that address (nothing leaves this machine)."""
    port, handler = image_host
    public = "93.184.216.34"
    original = sources._PinnedBackend._target

    def target(self, wanted_port):
        if self.address == public:
            return "127.0.0.1", port
        return original(self, wanted_port)

    monkeypatch.setattr(sources._PinnedBackend, "_target", target)
    return port, handler, _stub_resolver({"images.example.com": [public]})


def test_url_fetch_positive_path_with_public_name(public_name_to_loopback, server_images):
    port, handler, resolver = public_name_to_loopback
    fetcher = UrlFetcher(max_bytes=1_000_000, timeout_s=5, resolver=resolver)
    assert fetcher.fetch("http://images.example.com/cat.png") == server_images[0]
    assert handler.hits == [("/cat.png", "images.example.com")]  # Host header keeps the name


def test_url_fetch_redirect_is_rechecked(public_name_to_loopback):
    port, handler, resolver = public_name_to_loopback
    fetcher = UrlFetcher(max_bytes=1_000_000, timeout_s=5, resolver=resolver)
    with pytest.raises(SourceError, match="loopback"):
        fetcher.fetch("http://images.example.com/redirect-to-loopback")
    assert [path for path, _ in handler.hits] == ["/redirect-to-loopback"]  # the target was never fetched


def test_url_fetch_size_and_time_caps(public_name_to_loopback, server_images):
    port, handler, resolver = public_name_to_loopback
    with pytest.raises(LimitExceeded) as caught:
        UrlFetcher(max_bytes=len(server_images[0]) * 10, timeout_s=5, resolver=resolver).fetch("http://images.example.com/big.png")
    assert caught.value.limit == "max_image_bytes"
    with pytest.raises(SourceError, match="longer than 0.3 s"):
        UrlFetcher(max_bytes=1_000_000, timeout_s=0.3, resolver=resolver).fetch("http://images.example.com/slow.png")


def test_url_document_end_to_end_scores_like_bytes(start_server, server_reranker, public_name_to_loopback, server_images):
    port, handler, resolver = public_name_to_loopback
    live = start_server(ServerSettings(allow_urls=True), server_reranker)
    live.app.state.reader.fetcher.resolver = resolver
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "a cat", "documents": [
            {"text": "photo", "image": "http://images.example.com/cat.png"}, {"text": "photo", "image": b64(server_images[0])},
        ]})
    scores = {x["index"]: x for x in r.json()["results"]}
    assert "error" not in scores[0], scores[0]
    assert scores[0]["relevance_score"] == pytest.approx(scores[1]["relevance_score"], abs=1e-6)
    assert handler.hits == [("/cat.png", "images.example.com")]


@pytest.mark.parametrize("allow_urls", [False, True])
def test_malformed_urls_are_their_documents_errors(start_server, server_reranker, allow_urls):
    """A URL that urlsplit or its port cannot parse used to answer 500 for the whole request."""
    live = start_server(ServerSettings(allow_urls=allow_urls), server_reranker)
    bad = ["http://[abc/x.png", "http://example.com:abc/x.png", "https://example.com:99999/x.png"]
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": ["ok", *({"image": u} for u in bad)]})
        assert r.status_code == 200, r.text
        by_index = {x["index"]: x for x in r.json()["results"]}
        assert by_index[0].get("error") is None
        for i in range(1, len(bad) + 1):
            assert "not a valid URL" in by_index[i]["error"], by_index[i]
        q = c.post("/v1/rerank", json={"query": {"image": bad[0]}, "documents": ["ok"]})
        assert q.status_code == 422 and "not a valid URL" in q.json()["error"]["message"]


def test_a_local_file_reads_as_the_library_reads_its_path(tmp_path):
    """Same Content over HTTP as ``to_content(Path)``: the sidecar caption came only with the library,
    so the lite backend (which matches captions) scored the same file differently."""
    from PIL import Image

    from lychee_rerank.inputs import to_content
    from lychee_rerank.serving.reading import RequestReader
    from lychee_rerank.serving.schemas import MultimodalItem

    root = tmp_path / "allowed"
    root.mkdir()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(root / "red.png")
    (root / "red.txt").write_text("a red square on a poster", encoding="utf-8")
    Image.new("RGB", (32, 24), (40, 40, 200)).save(root / "blue.png")
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read me", encoding="utf-8")
    (root / "blue.txt").symlink_to(outside)  # a sidecar that leaves the directory is not followed

    reader = RequestReader(ServerSettings(allow_local_dir=root), fetcher=None)
    red = reader.content(reader.item(MultimodalItem(image="red.png"), "document 0"), "document 0")
    library = to_content(root / "red.png")
    assert red.caption == library.caption == "a red square on a poster"
    assert red.image_hash == library.image_hash
    blue = reader.content(reader.item(MultimodalItem(image="blue.png"), "document 1"), "document 1")
    assert blue.caption is None
