"""The rerank routes over real HTTP: every request shape, fidelity with the library, failures per document."""

from __future__ import annotations

import concurrent.futures
import math
from pathlib import Path

import pytest

from lychee_rerank.serving.settings import ServerSettings

from .conftest import LiveServer, b64, data_uri

QUERY = "a black cat sleeping on a window sill"
TEXTS = ["a black cat", "red car 1 2 3", "coffee cup on a table", "the quick brown fox", "一只黑猫趴在窗台上"]


@pytest.fixture(scope="module")
def main_server(server_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, server_images: list[bytes]):
    """A server that loads the tiny model itself, in the background, the way `lychee serve` does."""
    from lychee_rerank.serving.app import create_app

    from .conftest import LiveServer

    settings = ServerSettings(
        backend="lychee", model=str(server_model_dir), device="cpu", dtype="float32", batch_size=8,
    )
    live = LiveServer(create_app(settings)).start()
    live.wait_healthy()
    yield live
    live.stop()


def post(live: LiveServer, path: str, body: dict, **kwargs):
    with live.client() as c:
        return c.post(path, json=body, **kwargs)


def scores_by_index(results: list[dict]) -> dict[int, float]:
    return {r["index"]: r["relevance_score"] for r in results}


def test_text_documents_match_the_library(main_server, server_reranker):
    r = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS, "model": "anything"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "model", "results", "usage"}
    usage = body["usage"]
    assert {k: usage[k] for k in ("documents", "scored", "images")} == {"documents": len(TEXTS), "scored": len(TEXTS), "images": 0}
    assert usage["prompt_tokens"] == usage["total_tokens"] > 0  # exact counts: tests/serving/test_dialects.py
    assert len(body["id"]) >= 16
    library = server_reranker.rerank(QUERY, TEXTS, batch_size=8)
    assert [x["index"] for x in body["results"]] == [x.index for x in library]
    for served, lib in zip(body["results"], library):
        assert abs(served["relevance_score"] - lib.score) < 1e-6
        assert set(served) == {"index", "relevance_score"}  # no document unless asked for
    scores = [x["relevance_score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) - min(scores) > 1e-3  # the tiny model separates these: a lost input would show


def test_image_and_mixed_documents_in_every_shape_match_the_library(main_server, server_reranker, server_images):
    a, b, c, d = server_images
    documents = [
        "a black cat",                                                     # text
        [{"type": "image", "image": b64(a)}],                              # image part, raw base64
        data_uri(b),                                                       # data: URI string
        {"text": "a cat on a sill", "image": data_uri(c)},                 # text + image object
        [{"type": "text", "text": "photo of a sill"},                      # content parts
         {"type": "image_url", "image_url": {"url": data_uri(d)}}],
        {"content": [{"type": "image_url", "image_url": b64(a)}]},         # vLLM content object, bare string url
        {"image": b64(b)},                                                 # Jina image object
    ]
    library_docs = [
        "a black cat", a, b, {"text": "a cat on a sill", "image": c}, {"text": "photo of a sill", "image": d}, a, b,
    ]
    body = {"query": {"text": QUERY, "image": b64(d)}, "documents": documents, "return_documents": True, "extra": [1]}
    r = post(main_server, "/v1/rerank", body)
    assert r.status_code == 200, r.text
    served = r.json()
    assert {k: served["usage"][k] for k in ("documents", "scored", "images")} == {"documents": 7, "scored": 7, "images": 7}
    library = server_reranker.rerank({"text": QUERY, "image": d}, library_docs, batch_size=8)
    assert all(x.error is None for x in library)
    expected = {x.index: x.score for x in library}
    got = scores_by_index(served["results"])
    assert got.keys() == expected.keys()
    for i in expected:
        assert abs(got[i] - expected[i]) < 1e-6, (i, got[i], expected[i])
    # a document with text and an image is ONE document with ONE score; its echo is what was sent
    echo = {x["index"]: x["document"] for x in served["results"]}
    assert echo[3] == {"text": "a cat on a sill", "image": data_uri(c)}
    assert echo[4] == {"text": "photo of a sill", "image": data_uri(d)}
    assert echo[0] == {"text": "a black cat"}


def test_image_changes_the_score(main_server, server_images):
    """Guards against a serving path that silently drops the image (scores stuck where text-only would be)."""
    with_image = post(main_server, "/v1/rerank", {"query": QUERY, "documents": [{"text": "x", "image": b64(server_images[0])}]})
    without = post(main_server, "/v1/rerank", {"query": QUERY, "documents": [{"text": "x"}]})
    assert with_image.status_code == without.status_code == 200
    assert abs(with_image.json()["results"][0]["relevance_score"] - without.json()["results"][0]["relevance_score"]) > 1e-4


def test_instruction_reaches_the_model(main_server, server_reranker):
    instruction = "Given a product search query, retrieve product images and descriptions that match the query"
    r = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS[:2], "instruction": instruction})
    default = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS[:2]})
    lib = {x.index: x.score for x in server_reranker.rerank(QUERY, TEXTS[:2], instruction=instruction)}
    for i, s in scores_by_index(r.json()["results"]).items():
        assert abs(s - lib[i]) < 1e-6
    assert scores_by_index(r.json()["results"]) != scores_by_index(default.json()["results"])
    templ = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS[:2], "template": "product_search"})
    assert scores_by_index(templ.json()["results"]) == pytest.approx(scores_by_index(r.json()["results"]), abs=1e-6)


def test_aliases_answer_like_v1(main_server):
    first = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS})
    for path in ("/rerank", "/v2/rerank"):
        r = post(main_server, path, {"query": QUERY, "documents": TEXTS})
        assert r.status_code == 200
        assert scores_by_index(r.json()["results"]) == pytest.approx(scores_by_index(first.json()["results"]), abs=1e-6)


def test_top_n_and_threshold(main_server):
    full = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS}).json()["results"]
    top = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS, "top_n": 2}).json()["results"]
    assert [x["index"] for x in top] == [x["index"] for x in full[:2]]
    cut = sorted(x["relevance_score"] for x in full)[2]
    kept = post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS, "score_threshold": cut}).json()["results"]
    assert {x["index"] for x in kept} == {x["index"] for x in full if x["relevance_score"] >= cut}
    assert len(kept) == 3


def test_bad_documents_among_good_ones_fail_alone(main_server, server_reranker, server_images):
    documents = [
        "a black cat",
        {"text": "broken", "image": b64(b"this is not an image at all")},  # undecodable image
        "",                                                                   # empty document
        {"image": b64(server_images[0])},
        {"image": "/etc/passwd"},                                             # a path: refused by default
        [{"type": "image_url", "image_url": {"url": data_uri(server_images[1])}},
         {"type": "image_url", "image_url": {"url": data_uri(server_images[2])}}],  # two images in one item
        "coffee cup on a table",
    ]
    r = post(main_server, "/v1/rerank", {"query": QUERY, "documents": documents, "top_n": 1})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    errors = {x["index"]: x["error"] for x in results if "error" in x}
    assert set(errors) == {1, 2, 4, 5}
    assert "not a supported image" in errors[1]
    assert "empty" in errors[2]
    assert "--allow-local-dir" in errors[4]
    assert "at most one image" in errors[5]
    assert all(x["relevance_score"] == 0.0 for x in results if "error" in x)
    # top_n cuts the scored ones; failures are always listed, last, in request order
    assert [x["index"] for x in results[1:]] == [1, 2, 4, 5]
    good = server_reranker.rerank(QUERY, ["a black cat", server_images[0], "coffee cup on a table"])
    assert results[0]["index"] == [0, 3, 6][good[0].index]
    assert abs(results[0]["relevance_score"] - good[0].score) < 1e-6
    assert r.json()["usage"]["scored"] == 3


def test_bad_query_is_a_422_with_a_reason(main_server):
    cases = [
        ({"text": "   "}, "empty"),
        ({}, "empty"),
        ({"image": b64(b"nope")}, "not a supported image"),
        ({"image": "/etc/passwd"}, "allow-local-dir"),
        ([{"type": "image", "image": "data:text/plain;base64,aGk="}], "only image/* is accepted"),
    ]
    for query, needle in cases:
        r = post(main_server, "/v1/rerank", {"query": query, "documents": TEXTS})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["type"] == "invalid_query"
        assert needle in r.json()["error"]["message"]
    r = post(main_server, "/v1/rerank", {"query": "", "documents": TEXTS})  # caught by the schema itself
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"
    assert r.json()["error"]["message"].startswith("query")


def test_malformed_requests_are_422_json(main_server):
    cases = [
        {"query": QUERY},
        {"documents": TEXTS},
        {"query": QUERY, "documents": TEXTS, "top_n": -1},
        {"query": QUERY, "documents": [{"text": 3}]},
        {"query": QUERY, "documents": [[{"type": "audio", "url": "x"}]]},  # (a video part fails its own item: below)
        {"query": QUERY, "documents": TEXTS, "instruction": "   "},
        {"query": QUERY, "documents": TEXTS, "template": "no_such_template"},
    ]
    for body in cases:
        r = post(main_server, "/v1/rerank", body)
        assert r.status_code == 422, (body, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request" and err["message"]
    with main_server.client() as c:
        r = c.post("/v1/rerank", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"


def test_seed_api_rerank_shape(main_server, server_reranker, server_images):
    body = {
        "query": {"text": "how to replace a laptop hard drive", "image": None},
        "documents": [
            {"text": "Step 1: shut down and unplug the power...", "image": None},
            {"text": "SSD vs HDD comparison table...", "image": None},
            {"text": "a photo", "image": data_uri(server_images[0])},
        ],
        "mode": "single",
    }
    r = post(main_server, "/api/rerank", body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["mode"] == "single" and data["elapsed_ms"] > 0
    lib = server_reranker.rerank(
        body["query"]["text"],
        [body["documents"][0]["text"], body["documents"][1]["text"], {"text": "a photo", "image": server_images[0]}],
    )
    assert [x["index"] for x in data["results"]] == [x.index for x in lib]
    first = data["results"][0]
    assert abs(first["score"] - lib[0].score) < 1e-6
    assert first["rank"] == 1 and first["text"] == body["documents"][lib[0].index]["text"]
    assert math.isclose(1 / (1 + math.exp(first["no_logit"] - first["yes_logit"])), first["score"], abs_tol=1e-6)
    assert post(main_server, "/api/rerank", {**body, "mode": "batch"}).status_code == 200
    assert post(main_server, "/api/rerank", {**body, "mode": "other"}).status_code == 422


def test_analyze_shows_score_logits_and_prompt(main_server, server_reranker, server_images):
    body = {"query": "a cat", "document": {"text": "a black cat", "image": b64(server_images[1])}}
    r = post(main_server, "/v1/analyze", body)
    assert r.status_code == 200, r.text
    data = r.json()
    lib = server_reranker.rerank("a cat", [{"text": "a black cat", "image": server_images[1]}])[0]
    assert abs(data["score"] - lib.score) < 1e-6
    assert abs(data["yes_logit"] - lib.yes_logit) < 1e-5 and abs(data["no_logit"] - lib.no_logit) < 1e-5
    assert data["backend"] == "lychee"
    prompt = data["prompt"]
    assert "<Instruct>: Given a web search query" in prompt and "<Query>:a cat" in prompt
    assert "<|vision_start|><|image_pad|><|vision_end|>a black cat" in prompt
    assert prompt.count("<|image_pad|>") == 1  # placeholder, not the expanded visual tokens
    assert data["images"] == [{"side": "document", "width": 120, "height": 90}]
    assert {"type": "image"} in data["messages"][1]["content"]
    bad = post(main_server, "/v1/analyze", {"query": "a cat", "document": {"image": b64(b"junk")}})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_document"


def test_concurrent_requests_all_answer_exactly(main_server):
    """Many clients at once: the model thread serialises them and every answer is the sequential one."""
    reference = scores_by_index(post(main_server, "/v1/rerank", {"query": QUERY, "documents": TEXTS}).json()["results"])

    def one(i: int):
        docs = TEXTS[i % len(TEXTS):] + TEXTS[: i % len(TEXTS)]
        r = post(main_server, "/v1/rerank", {"query": QUERY, "documents": docs})
        return i, docs, r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(one, range(16)))
    for i, docs, status, body in outcomes:
        assert status == 200
        for item in body["results"]:
            # micro-batching changes batch composition: within the engine's batch-invariance bound
            assert abs(item["relevance_score"] - reference[TEXTS.index(docs[item["index"]])]) < 1e-5


def test_concurrent_requests_are_micro_batched_and_each_gets_its_own_scores(start_server, server_reranker):
    """Different queries arriving together share forward passes; each response is its own."""
    from lychee_rerank.serving.settings import ServerSettings

    live = start_server(ServerSettings(max_wait_ms=200, batch_size=16), server_reranker)
    queries = [f"query about {w}" for w in ("cats", "coffee", "cars", "rockets", "parks", "dogs")]
    docs = [[f"{w} document {j}" for j in range(3 + i)] for i, w in enumerate(("sofa", "cup", "road", "moon", "tree", "ball"))]

    def one(i: int):
        with live.client() as c:
            return i, c.post("/v1/rerank", json={"query": queries[i], "documents": docs[i]})

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(one, range(6)))
    for i, response in outcomes:
        assert response.status_code == 200, response.text
        got = {item["index"]: item["relevance_score"] for item in response.json()["results"]}
        assert sorted(got) == list(range(len(docs[i])))  # exactly its own documents
        expected = {r.index: r.score for r in server_reranker.rerank(queries[i], docs[i])}
        assert max(abs(got[j] - expected[j]) for j in got) < 1e-5
    with live.client() as c:
        metrics = c.get("/metrics").text
    shared = [line for line in metrics.splitlines() if line.startswith("lychee_coalesced_requests_sum")]
    count = [line for line in metrics.splitlines() if line.startswith("lychee_coalesced_requests_count")]
    assert float(shared[0].split()[-1]) > float(count[0].split()[-1])  # some pass served > 1 request
    assert "lychee_oom_backoffs_total 0.0" in metrics


def test_a_failing_shared_pass_does_not_sink_the_other_requests(server_reranker):
    """If a merged micro-batch fails, each request is retried alone; only the bad one fails."""
    import threading

    from lychee_rerank.serving.coalesce import Coalescer

    class Flaky:
        """The real reranker, except that any call containing 'poison' raises."""

        def rerank_many(self, calls, **kwargs):
            if any("poison" in str(c["documents"]) for c in calls):
                raise RuntimeError("backend failure on poison")
            return server_reranker.rerank_many(calls, **kwargs)

    coalescer = Coalescer(max_wait_ms=0)
    good = coalescer.add({"query": "cats", "documents": ["a cat", "a dog"]}, threading.Event())
    bad = coalescer.add({"query": "cars", "documents": ["poison"]}, threading.Event())
    results, shared = coalescer.run(Flaky(), good)
    assert shared == 2
    expected = {r.index: r.score for r in server_reranker.rerank("cats", ["a cat", "a dog"])}
    assert {r.index: r.score for r in results} == pytest.approx(expected, abs=1e-5)
    assert bad.done.is_set()
    with pytest.raises(RuntimeError, match="poison"):
        bad.get()


def test_a_video_fails_its_own_item_with_a_clear_error_never_a_score(main_server, server_reranker):
    """Video is not supported: a video document fails alone (200, its error), a video query is a 422."""
    clip = "data:video/mp4;base64,AAAAGGZ0eXBtcDQy"
    documents = [
        "a black cat",
        {"video": clip},                                                       # under its own key
        [{"type": "text", "text": "a clip"}, {"type": "video_url", "video_url": {"url": clip}}],  # a content part
        {"content": [{"type": "video", "video": clip}]},
        "coffee cup on a table",
    ]
    r = post(main_server, "/v1/rerank", {"query": QUERY, "documents": documents})
    assert r.status_code == 200, r.text
    errors = {x["index"]: x["error"] for x in r.json()["results"] if "error" in x}
    assert set(errors) == {1, 2, 3} and all("video input is not supported" in e for e in errors.values()), errors
    assert r.json()["usage"]["scored"] == 2
    for query in ({"video": clip}, [{"type": "video_url", "video_url": {"url": clip}}]):
        r = post(main_server, "/v1/rerank", {"query": query, "documents": ["a black cat"]})
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_query", r.text
        assert "video input is not supported" in r.json()["error"]["message"]
