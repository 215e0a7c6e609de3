"""The checks every family's `lychee serve` module makes (tests/serving/test_<family>.py), written once.

Each module keeps its own server fixture, checkpoint, inputs and expectations and calls these
helpers from its own tests, so a failure still names the family (and the test) it happened in.
The library's reranker is the yardstick throughout; scores are compared to ``TOL`` (another model
instance, other batch compositions: the FP32 parity tolerance), logits to 1e-4.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import httpx
import pytest

from ..qwen3_vl_support import library_scores, spread
from ..ray_support import assert_same_answers, comparable, serve_replicas
from .conftest import LiveServer, b64, data_uri, free_port, model_server, png, server_photo

TOL = 1e-5
LOGIT_TOL = 1e-4

# The inputs the text-only families (Qwen3-Reranker, cross-encoders) are served: an English and a
# Chinese question, texts in both languages, and a picture they must refuse.
TEXT_QUERY = "What is the capital of China?"
TEXT_QUERY_ZH = "中国的首都是哪里？"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]
PICTURE = png(server_photo(64, 48, seed=7))


def server_fixture(model_dir_fixture: str) -> Any:
    """A module-scoped fixture: a live server on the checkpoint of fixture ``model_dir_fixture``,
    which it loads itself, in the background, as `lychee serve --model DIR` does (the family found
    from the checkpoint). In a module: ``q3_server = server_fixture("qwen3_vl_dir")``."""

    @pytest.fixture(scope="module")
    def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
        with model_server(request.getfixturevalue(model_dir_fixture)) as live:
            yield live

    return server


def bytes_fixture(paths_fixture: str) -> Any:
    """A module-scoped fixture: the bytes of the files fixture ``paths_fixture`` lists (the family's PNGs)."""

    @pytest.fixture(scope="module")
    def read(request: pytest.FixtureRequest) -> list[bytes]:
        return [p.read_bytes() for p in request.getfixturevalue(paths_fixture)]

    return read


def post(live: LiveServer, path: str, body: Any) -> httpx.Response:
    with live.client() as c:
        return c.post(path, json=body)


def tokens(reranker: Any, query: Any, documents: Sequence[Any]) -> int:
    """The model's own prompt-token count over the pairs (image tokens included)."""
    return sum(r.tokens for r in reranker.rerank(query, documents))


def sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-value))


def failed_alone(item: dict, reason: str) -> None:
    """A document the family cannot read: its own error naming ``reason``, and no score for it."""
    assert reason in (item.get("error") or ""), item
    assert item.get("relevance_score", item.get("score")) == 0


def refused_query(r: httpx.Response, reason: str) -> None:
    """A query the family cannot read: the whole request is a 422 ``invalid_query`` naming ``reason``."""
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_query" and reason in error["message"], error


# --------------------------------------------------------------------------- service
def check_health_and_models(live: LiveServer, model_dir: Path, family: str) -> dict:
    """/health names the backend, family, checkpoint, device and dtype; /v1/models and /models list
    the one checkpoint with its family. Returns /health's body for the family's own checks."""
    with live.client() as c:
        health = c.get("/health").json()
        assert (health["status"], health["backend"], health["family"]) == ("ok", "lychee", family)
        assert (health["model"], health["device"], health["dtype"]) == (str(model_dir), "cpu", "float32")
        for path in ("/v1/models", "/models"):
            (card,) = c.get(path).json()["data"]
            assert (card["id"], card["family"]) == (str(model_dir), family)
    return health


# --------------------------------------------------------------------------- /v1/rerank (Cohere, Jina, vLLM, infinity)
def check_rerank(live: LiveServer, reranker: Any, query: Any, documents: list, library_documents: list | None = None, *,
                 min_spread: float, usage: tuple[int, int, int] | None = None,
                 paths: Sequence[str] = ("/v1/rerank", "/v2/rerank")) -> dict[int, float]:
    """``documents`` (as sent; ``library_documents`` as the library takes them, the same by default)
    score as the library scores them on each of ``paths``, best first; ``usage`` is (documents,
    scored, images), checked with the model's prompt-token count. Returns the library's scores."""
    library_documents = documents if library_documents is None else library_documents
    expected = library_scores(reranker, query, library_documents)
    assert spread(expected) > min_spread  # the documents score apart: an input lost on the way would show
    for path in paths:
        r = post(live, path, {"query": query, "documents": documents, "model": "anything"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert {x["index"]: x["relevance_score"] for x in body["results"]} == pytest.approx(expected, abs=TOL)
        assert [x["index"] for x in body["results"]] == sorted(expected, key=lambda i: -expected[i])
        if usage is not None:
            got = body["usage"]
            assert (got["documents"], got["scored"], got["images"]) == usage
            assert got["prompt_tokens"] == tokens(reranker, query, library_documents)
    return expected


def check_raw_scores(r: httpx.Response, library_results: list, raw: Callable[[Any], float], top_n: int | None = None) -> None:
    """infinity's ``raw_scores``: each result is the family's raw logit (``raw`` of the library's
    result), and its sigmoid the library's score; with ``top_n``, only the best ``top_n`` come back."""
    assert r.status_code == 200, r.text
    kept = [x for x in library_results if top_n is None or x.rank <= top_n]
    got = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
    if top_n is not None:
        assert len(got) == top_n and set(got) == {x.index for x in kept}
    assert got == pytest.approx({x.index: raw(x) for x in kept}, abs=LOGIT_TOL)
    assert {i: sigmoid(v) for i, v in got.items()} == pytest.approx({x.index: x.score for x in kept}, abs=TOL)


def image_documents(picture: bytes) -> list:
    """One picture in each shape a document can carry an image: Jina object, data: URI, text + image, OpenAI part."""
    return [{"image": b64(picture)}, data_uri(picture), {"text": "a drawing", "image": data_uri(picture)},
            [{"type": "image_url", "image_url": {"url": data_uri(picture)}}]]


def image_queries(picture: bytes) -> list:
    return [{"image": data_uri(picture)}, data_uri(picture), {"text": "this picture", "image": b64(picture)}]


def check_text_only_rerank(live: LiveServer, reranker: Any, query: str, texts: list[str], picture: bytes, reason: str,
                           paths: Sequence[str] = ("/v1/rerank", "/v2/rerank", "/rerank")) -> None:
    """A text-only family: an image document (every shape) between two texts fails alone with
    ``reason`` while the texts get the library's scores; an image query (every shape) is a 422."""
    expected = library_scores(reranker, query, [texts[0], texts[2]])
    for image_doc in image_documents(picture):
        for path in paths:
            r = post(live, path, {"query": query, "documents": [texts[0], image_doc, texts[2]]})
            assert r.status_code == 200, r.text
            items = {x["index"]: x for x in r.json()["results"]}
            failed_alone(items[1], reason)
            assert items[0].get("error") is None and items[2].get("error") is None
            assert [items[0]["relevance_score"], items[2]["relevance_score"]] == pytest.approx(
                [expected[0], expected[1]], abs=TOL)
    for image_query in image_queries(picture):
        refused_query(post(live, "/v1/rerank", {"query": image_query, "documents": texts[:2]}), reason)


# --------------------------------------------------------------------------- TEI /rerank
def check_tei_rerank(live: LiveServer, reranker: Any, query: str, texts: list[str]) -> dict[int, float]:
    """TEI's /rerank: a bare array, best first, with the library's scores and the texts asked for;
    ``raw_scores`` are the logits whose sigmoid is the score. Returns the library's scores."""
    expected = library_scores(reranker, query, texts)
    r = post(live, "/rerank", {"query": query, "texts": texts, "return_text": True, "truncate": False})
    assert r.status_code == 200, r.text
    ranked = r.json()
    assert [x["index"] for x in ranked] == sorted(expected, key=lambda i: -expected[i])  # a bare array, best first
    assert {x["index"]: x["score"] for x in ranked} == pytest.approx(expected, abs=TOL)
    assert all(x["text"] == texts[x["index"]] for x in ranked)
    raw = post(live, "/rerank", {"query": query, "texts": texts, "raw_scores": True}).json()
    assert {x["index"]: sigmoid(x["score"]) for x in raw} == pytest.approx(expected, abs=TOL)
    return expected


# --------------------------------------------------------------------------- vLLM /score
def check_score(live: LiveServer, reranker: Any, query: str, text_2: Any, library_documents: list, *,
                count_tokens: bool = True) -> dict[int, float]:
    """vLLM's /score and /v1/score, one query against ``text_2`` (as sent): the library's scores in
    input order, and (``count_tokens``) the model's prompt-token count. Returns the library's scores."""
    expected = library_scores(reranker, query, library_documents)
    for path in ("/score", "/v1/score"):
        r = post(live, path, {"model": "x", "text_1": query, "text_2": text_2})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert [d["index"] for d in data] == list(range(len(library_documents)))  # input order
        assert {d["index"]: d["score"] for d in data} == pytest.approx(expected, abs=TOL)
        if count_tokens:
            assert r.json()["usage"]["prompt_tokens"] == tokens(reranker, query, library_documents)
    return expected


def check_score_pairs(live: LiveServer, reranker: Any, path: str, text_1: list, text_2: list, library_pairs: list) -> None:
    """N pairs: text_1[i] against text_2[i] scores as the library scores ``library_pairs[i]``."""
    r = post(live, path, {"text_1": text_1, "text_2": text_2})
    assert r.status_code == 200, r.text
    want = [reranker.rerank(query, [document])[0].score for query, document in library_pairs]
    assert [d["score"] for d in r.json()["data"]] == pytest.approx(want, abs=TOL)


def check_text_only_score(live: LiveServer, reranker: Any, query: str, texts: list[str], picture: bytes, reason: str) -> None:
    """A text-only family on /score: an image part among the documents fails alone; an image text_1 is refused."""
    parts = [{"type": "text", "text": texts[0]}, {"type": "image_url", "image_url": {"url": data_uri(picture)}},
             {"type": "text", "text": texts[2]}]
    r = post(live, "/score", {"text_1": query, "text_2": {"content": parts}})
    assert r.status_code == 200, r.text
    data = {d["index"]: d for d in r.json()["data"]}
    failed_alone(data[1], reason)
    want = library_scores(reranker, query, [texts[0], texts[2]])
    assert [data[0]["score"], data[2]["score"]] == pytest.approx([want[0], want[1]], abs=TOL)
    refused_query(post(live, "/score", {"text_1": data_uri(picture), "text_2": texts[:2]}), reason)


# --------------------------------------------------------------------------- /api/rerank (the article's shape)
def yes_no_logits(result: Any) -> dict[str, float]:
    """The logits /api/rerank and /v1/analyze report for a yes/no (or True/False) family."""
    return {"yes_logit": result.yes_logit, "no_logit": result.no_logit}


def check_api_rerank(live: LiveServer, reranker: Any, query: str, documents: list[dict], library_documents: list, *,
                     logits: Callable[[Any], dict[str, float]] = yes_no_logits,
                     failed: tuple[int, str] | None = None) -> None:
    """/api/rerank, one text query: every document gets the library's score, rank and ``logits``;
    ``failed`` is (index, reason) of a document the family cannot read, which fails alone."""
    body = {"query": {"text": query, "image": None}, "documents": documents, "mode": "single"}
    r = post(live, "/api/rerank", body)
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    if failed is not None:
        index, reason = failed
        failed_alone(results.pop(index), reason)
    library = {x.index: x for x in reranker.rerank(query, library_documents)}
    assert set(results) == set(library)
    for i, x in results.items():
        assert x["score"] == pytest.approx(library[i].score, abs=TOL) and x["rank"] == library[i].rank
        want = logits(library[i])
        assert {k: x[k] for k in want} == pytest.approx(want, abs=LOGIT_TOL)


# --------------------------------------------------------------------------- /v1/analyze
def check_analyze(live: LiveServer, reranker: Any, query: Any, document: Any, library_document: Any, *,
                  logits: Callable[[Any], dict[str, float]] | None = yes_no_logits) -> dict:
    """/v1/analyze scores the pair as the library does (and reports its ``logits``); the backend is
    lychee. Returns the body for the family's own prompt checks."""
    r = post(live, "/v1/analyze", {"query": query, "document": document})
    assert r.status_code == 200, r.text
    data = r.json()
    lib = reranker.rerank(query, [library_document])[0]
    assert data["score"] == pytest.approx(lib.score, abs=TOL) and data["backend"] == "lychee"
    if logits is not None:
        want = logits(lib)
        assert {k: data[k] for k in want} == pytest.approx(want, abs=LOGIT_TOL)
    return data


def check_text_only_analyze(live: LiveServer, query: str, text: str, picture: bytes, reason: str) -> None:
    """/v1/analyze has one document: an image there is the request's error, as an image query is."""
    r = post(live, "/v1/analyze", {"query": query, "document": {"image": data_uri(picture)}})
    assert r.status_code == 422 and reason in r.json()["error"]["message"], r.text
    refused_query(post(live, "/v1/analyze", {"query": {"image": data_uri(picture)}, "document": text}), reason)


# --------------------------------------------------------------------------- Ray Serve
def check_ray_serve(live: LiveServer, model_dir: Path, family: str, requests: list[dict], *,
                    first_scores: dict[int, float] | None = None, note: str | None = None) -> None:
    """As tests/serving/test_ray_serve.py, on the family's checkpoint: two replicas answer
    ``requests`` as the single-process server ``live`` does, then under concurrent load; /health
    names the family (and carries ``note``); ``first_scores``: the library's scores for requests[0]."""
    pytest.importorskip("ray.serve")
    from lychee_rerank.serving.settings import ServerSettings

    settings = ServerSettings(backend="lychee", model=str(model_dir), device="cpu", dtype="float32",
                              host="127.0.0.1", port=free_port())
    with serve_replicas(settings) as ray_client, live.client() as one:
        health = ray_client.get("/health").json()
        assert health["family"] == family
        if note is not None:
            assert note in health["note"], health
        assert_same_answers(ray_client, one, requests, concurrent_calls=8, tol=TOL)
        if first_scores is not None:  # the Ray answers are the library's too (not only the single server's)
            _, first = comparable(ray_client.post("/v1/rerank", json=requests[0]))
            assert {x["index"]: x["relevance_score"] for x in first["results"]} == pytest.approx(first_scores, abs=TOL)
