"""Image strings from requests: base64 checked in linear time, URL hosts that cannot be encoded
are their document's error (issue 20, items 1 and 5). Real servers on loopback; nothing leaves
the machine (the bad hosts fail before any lookup, good ones go through a resolver stub).
"""

from __future__ import annotations

import threading
import time

import pytest

from lychee_rerank.serving import sources
from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.serving.sources import SourceError

from .conftest import b64
from .test_security import image_host, public_name_to_loopback  # noqa: F401 - fixtures

#: Whitespace runs inside otherwise plausible base64: the old pattern backtracked over every
#: split of the run between its two whitespace classes (56 s, holding the GIL, for the first).
WHITESPACE_RUNS = [
    ("A" + " " * 100_000 + "!", "'!' at position 100001"),
    ("QUJD" + "\n\t " * 30_000 + "é", "'é' at position 90004"),
]


def test_whitespace_runs_in_base64_fail_their_document_at_once_and_health_answers(start_server, server_reranker):
    live = start_server(ServerSettings(request_timeout_s=30), server_reranker)
    body = {"query": "q", "documents": ["a readable document", *({"image": spec} for spec, _ in WHITESPACE_RUNS)]}
    answer: dict[str, object] = {}

    def post() -> None:
        with live.client(timeout=120) as c:
            answer["response"] = c.post("/v1/rerank", json=body)

    thread = threading.Thread(target=post)
    thread.start()
    try:
        time.sleep(0.2)  # the request is being read
        with live.client(timeout=5) as c:
            for _ in range(3):
                started = time.monotonic()
                health = c.get("/health")
                took = time.monotonic() - started
                assert health.status_code == 200 and took < 1.0, f"/health took {took:.1f} s"
    finally:
        thread.join(timeout=150)
    r = answer["response"]
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    assert results[0].get("error") is None
    for i, (_, where) in enumerate(WHITESPACE_RUNS, start=1):
        assert "not valid base64" in results[i]["error"] and where in results[i]["error"], results[i]


def test_base64_with_whitespace_still_decodes(start_server, server_reranker, server_images):
    """Line-wrapped base64 (as ``base64`` the tool writes it) is still an image."""
    live = start_server(ServerSettings(), server_reranker)
    encoded = b64(server_images[0])
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + "\n"
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": [{"image": encoded}, {"image": "  " + wrapped}]})
    assert r.status_code == 200, r.text
    scores = {x["index"]: x for x in r.json()["results"]}
    assert "error" not in scores[0] and "error" not in scores[1], scores
    assert scores[0]["relevance_score"] == pytest.approx(scores[1]["relevance_score"], abs=1e-6)


#: Hosts IDNA cannot encode: the system resolver raised UnicodeError for each (a 500).
BAD_HOSTS = ["a..b", "a" * 64 + ".example", "\xad", "images.\xad.example", ".example"]


def test_unencodable_url_hosts_are_their_documents_errors(start_server, server_reranker):
    """The real fetcher with the system resolver: these fail before any lookup is sent."""
    live = start_server(ServerSettings(allow_urls=True), server_reranker)
    documents = ["a readable document", *({"image": f"http://{host}/x.png"} for host in BAD_HOSTS)]
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": documents})
        assert r.status_code == 200, r.text
        results = {x["index"]: x for x in r.json()["results"]}
        assert results[0].get("error") is None
        for i in range(1, len(documents)):
            assert "not a valid URL host" in results[i]["error"], results[i]
        q = c.post("/v1/rerank", json={"query": {"image": "https://a..b/q.png"}, "documents": ["d"]})
        assert q.status_code == 422 and "not a valid URL host" in q.json()["error"]["message"], q.text


@pytest.mark.parametrize("host", ["a..b", "\xad", "a" * 64])
def test_system_resolver_reports_an_unencodable_host_as_a_source_error(host):
    with pytest.raises(SourceError, match="cannot resolve host"):
        sources.system_resolver(host, 80)


def test_non_ascii_url_paths_are_percent_encoded(start_server, server_reranker, public_name_to_loopback, server_images):
    """The HTTP client refuses a non-ASCII URL with a TypeError (a 500); it is sent encoded."""
    port, handler, resolver = public_name_to_loopback
    live = start_server(ServerSettings(allow_urls=True), server_reranker)
    live.app.state.reader.fetcher.resolver = resolver
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "a cat", "documents": [
            {"text": "photo", "image": "http://images.example.com/café chat.png?größe=1"},
            {"text": "photo", "image": b64(server_images[0])},
        ]})
    assert r.status_code == 200, r.text
    scores = {x["index"]: x for x in r.json()["results"]}
    assert "error" not in scores[0], scores[0]
    assert scores[0]["relevance_score"] == pytest.approx(scores[1]["relevance_score"], abs=1e-6)
    assert handler.hits == [("/caf%C3%A9%20chat.png?gr%C3%B6%C3%9Fe=1", "images.example.com")]
