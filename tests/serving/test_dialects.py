"""Other servers' dialects, spoken to by their own client libraries over real HTTP on loopback.

infinity_client (infinity), ``rerankers``' text-embeddings-inference provider (TEI), the Cohere
SDK (v1 with ``rank_fields``), and raw vLLM ``/score`` / multimodal ``/v1/rerank`` requests.
Every score must equal the library's for the same inputs, and usage tokens the model's count.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.testing.reference import NaiveReference

from .conftest import LiveServer, data_uri

QUERY = "a black cat sleeping on a window sill"
TEXTS = ["a black cat", "red car 1 2 3", "coffee cup on a table", "the quick brown fox", "一只黑猫趴在窗台上"]


@pytest.fixture(scope="module")
def dialect_server(server_model_dir: Path):
    """`lychee serve` as users start it: the tiny model loaded by the server itself."""
    from lychee_rerank.serving.app import create_app

    settings = ServerSettings(backend="lychee", model=str(server_model_dir), device="cpu", dtype="float32", batch_size=8)
    live = LiveServer(create_app(settings)).start()
    live.wait_healthy()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def naive(server_model_dir: Path) -> NaiveReference:
    return NaiveReference(server_model_dir)


def library(reranker, query, docs) -> dict[int, float]:
    return {r.index: r.score for r in reranker.rerank(query, docs, batch_size=8)}


def reference_tokens(naive: NaiveReference, query: str, docs: list[str]) -> int:
    """Prompt tokens counted independently: the processor on each hand-written prompt."""
    total = 0
    for doc in docs:
        naive.score(query_text=query, doc_text=doc)
        total += naive.last_prompt_tokens
    return total


# --------------------------------------------------------------------------- infinity
def test_infinity_client_reads_usage_tokens_and_scores(dialect_server, server_reranker, naive):
    from infinity_client import Client
    from infinity_client.api.default import rerank
    from infinity_client.models import RerankInput

    client = Client(base_url=dialect_server.url, timeout=60)
    result = rerank.sync(
        client=client, body=RerankInput(query=QUERY, documents=TEXTS, return_documents=True, model="lychee")
    )
    assert result is not None and not hasattr(result, "detail"), result  # KeyError 'prompt_tokens' before
    lib = library(server_reranker, QUERY, TEXTS)
    assert [r.index for r in result.results] == sorted(lib, key=lambda i: -lib[i])
    for r in result.results:
        assert r.relevance_score == pytest.approx(lib[r.index], abs=1e-6)
        assert r.document == {"text": TEXTS[r.index]}  # the client parses it as a plain dict
    expected = reference_tokens(naive, QUERY, TEXTS)
    assert result.usage.prompt_tokens == expected
    assert result.usage.total_tokens == expected

    raw = rerank.sync(client=client, body=RerankInput(query=QUERY, documents=TEXTS, raw_scores=True))
    for r in raw.results:  # raw = yes - no logit; sigmoid of it is the library's p(yes)
        assert 1 / (1 + math.exp(-r.relevance_score)) == pytest.approx(lib[r.index], abs=1e-6)


def test_usage_counts_every_pair_even_with_top_n(dialect_server, naive):
    with dialect_server.client() as c:
        body = c.post("/v1/rerank", json={"query": QUERY, "documents": TEXTS, "top_n": 1}).json()
    assert len(body["results"]) == 1
    assert body["usage"]["prompt_tokens"] == reference_tokens(naive, QUERY, TEXTS)


def test_image_tokens_are_counted(dialect_server, naive, server_images):
    import io

    image = server_images[1]
    with dialect_server.client() as c:
        body = c.post("/v1/rerank", json={"query": QUERY, "documents": [{"text": "a cat", "image": data_uri(image)}]}).json()
    naive.score(query_text=QUERY, doc_text="a cat", doc_image=Image.open(io.BytesIO(image)).convert("RGB"))
    assert naive.last_image_tokens > 0
    assert body["usage"]["prompt_tokens"] == naive.last_prompt_tokens


# --------------------------------------------------------------------------- TEI
def test_rerankers_tei_provider(dialect_server, server_reranker):
    from rerankers import Reranker

    ranker = Reranker(
        "lychee", model_type="text-embeddings-inference", api_key="unused", url=f"{dialect_server.url}/rerank", verbose=0
    )
    ranked = ranker.rank(QUERY, TEXTS)
    lib = library(server_reranker, QUERY, TEXTS)
    assert len(ranked.results) == len(TEXTS)
    assert [r.document.text for r in ranked.results] == [TEXTS[i] for i in sorted(lib, key=lambda i: -lib[i])]
    for r in ranked.results:
        assert r.score == pytest.approx(lib[TEXTS.index(r.document.text)], abs=1e-6)


def test_tei_request_shape_and_raw_scores(dialect_server, server_reranker):
    """The exact body LlamaIndex's TextEmbeddingInference and Haystack send (422 before)."""
    body = {"query": QUERY, "texts": TEXTS, "raw_scores": False, "return_text": False, "truncate": False,
            "truncation_direction": "right"}
    with dialect_server.client() as c:
        plain = c.post("/rerank", json=body)
        raw = c.post("/rerank", json={**body, "raw_scores": True, "return_text": True})
        cohere_shape = c.post("/rerank", json={"query": QUERY, "documents": TEXTS})
    assert plain.status_code == 200, plain.text
    items = plain.json()
    assert isinstance(items, list) and len(items) == len(TEXTS)
    assert all(set(x) == {"index", "score"} for x in items)
    scores = [x["score"] for x in items]
    assert scores == sorted(scores, reverse=True)
    lib = server_reranker.rerank(QUERY, TEXTS, batch_size=8)
    by_index = {r.index: r for r in lib}
    for x in items:
        assert x["score"] == pytest.approx(by_index[x["index"]].score, abs=1e-6)
    for x in raw.json():
        r = by_index[x["index"]]
        assert x["text"] == TEXTS[x["index"]]
        assert x["score"] == pytest.approx(r.yes_logit - r.no_logit, abs=1e-4)
    assert "results" in cohere_shape.json()  # documents present: still the Cohere shape


def test_tei_bad_text_fails_alone(dialect_server):
    with dialect_server.client() as c:
        r = c.post("/rerank", json={"query": QUERY, "texts": ["a black cat", ""]})
    assert r.status_code == 200, r.text
    items = r.json()
    assert items[0]["index"] == 0 and "error" not in items[0]
    assert items[-1]["index"] == 1 and items[-1]["score"] == 0 and "empty" in items[-1]["error"]


# --------------------------------------------------------------------------- Cohere
def test_cohere_sdk_rank_fields(dialect_server, server_reranker):
    import cohere

    co = cohere.Client(api_key="unused", base_url=dialect_server.url, timeout=60)
    docs = [{"title": f"doc {i}", "body": text} for i, text in enumerate(TEXTS)]
    response = co.rerank(model="lychee", query=QUERY, documents=docs, rank_fields=["body"], return_documents=True)
    lib = library(server_reranker, QUERY, TEXTS)
    assert len(response.results) == len(TEXTS)
    for r in response.results:  # scored as the body text, not as an empty document
        assert r.relevance_score == pytest.approx(lib[r.index], abs=1e-6)
        assert r.document.text == TEXTS[r.index]
    both = co.rerank(model="lychee", query=QUERY, documents=docs[:2], rank_fields=["title", "body"])
    lib2 = library(server_reranker, QUERY, [f"title: doc {i}\nbody: {TEXTS[i]}" for i in range(2)])
    for r in both.results:
        assert r.relevance_score == pytest.approx(lib2[r.index], abs=1e-6)


def test_cohere_v2_client(dialect_server, server_reranker):
    import cohere

    co = cohere.ClientV2(api_key="unused", base_url=dialect_server.url, timeout=60)
    response = co.rerank(model="lychee", query=QUERY, documents=TEXTS, top_n=2)
    lib = library(server_reranker, QUERY, TEXTS)
    assert [r.index for r in response.results] == sorted(lib, key=lambda i: -lib[i])[:2]


# --------------------------------------------------------------------------- vLLM
def test_vllm_top_n_zero_means_all(dialect_server):
    with dialect_server.client() as c:
        r = c.post("/v1/rerank", json={"model": "m", "query": QUERY, "documents": TEXTS, "top_n": 0})
    assert r.status_code == 200
    assert len(r.json()["results"]) == len(TEXTS)  # [] before


@pytest.mark.parametrize("path", ["/score", "/v1/score"])
def test_vllm_score_one_against_many(dialect_server, server_reranker, naive, path):
    with dialect_server.client() as c:
        r = c.post(path, json={"model": "lychee", "text_1": QUERY, "text_2": TEXTS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"id", "object", "created", "model", "data", "usage"} <= set(body)
    assert body["object"] == "list" and isinstance(body["created"], int)
    lib = library(server_reranker, QUERY, TEXTS)
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))  # input order
    for d in body["data"]:
        assert d["object"] == "score"
        assert d["score"] == pytest.approx(lib[d["index"]], abs=1e-6)
    assert body["usage"]["prompt_tokens"] == reference_tokens(naive, QUERY, TEXTS)


def test_vllm_score_pairs_and_list_of_one(dialect_server, server_reranker):
    queries = ["a black cat", "a red car"]
    docs = ["a cat on a sill", "a red sports car"]
    with dialect_server.client() as c:
        pairs = c.post("/score", json={"text_1": queries, "text_2": docs}).json()
        one = c.post("/score", json={"text_1": [QUERY], "text_2": TEXTS[:2]}).json()
        bad = c.post("/score", json={"text_1": queries, "text_2": TEXTS[:3]})
    for d in pairs["data"]:
        i = d["index"]
        assert d["score"] == pytest.approx(server_reranker.score(queries[i], docs[i]), abs=1e-6)
    assert [d["score"] for d in one["data"]] == pytest.approx([server_reranker.score(QUERY, t) for t in TEXTS[:2]], abs=1e-6)
    assert bad.status_code == 422 and "text_1 has 2 items and text_2 3" in bad.json()["error"]["message"]


def test_vllm_score_pairs_a_bad_text_1_fails_only_its_pairs(dialect_server, server_reranker):
    """Pairs mode: an empty query is its pair's error; the other pairs are still scored."""
    queries = ["a black cat", "   ", "a red car"]
    docs = ["a cat on a sill", "anything", "a red sports car"]
    with dialect_server.client() as c:
        r = c.post("/score", json={"text_1": queries, "text_2": docs})
        alone = c.post("/score", json={"text_1": "   ", "text_2": docs})
    assert r.status_code == 200, r.text
    data = {d["index"]: d for d in r.json()["data"]}
    assert "empty" in data[1]["error"]
    for i in (0, 2):
        assert data[i].get("error") is None
        assert data[i]["score"] == pytest.approx(server_reranker.score(queries[i], docs[i]), abs=1e-6)
    assert alone.status_code == 422  # one query for every document: the request itself is bad


def test_vllm_multimodal_score_and_rerank(dialect_server, server_reranker, server_images):
    import io

    parts = [
        {"type": "image_url", "image_url": {"url": data_uri(server_images[0])}},
        {"type": "text", "text": "a black cat"},
        {"type": "image_url", "image_url": {"url": data_uri(server_images[2])}},
    ]
    with dialect_server.client() as c:
        score = c.post("/v1/score", json={"text_1": QUERY, "text_2": {"content": parts}})
        rerank = c.post("/v1/rerank", json={"query": QUERY, "documents": {"content": parts}, "return_documents": True})
    assert score.status_code == 200, score.text
    assert rerank.status_code == 200, rerank.text
    images = [Image.open(io.BytesIO(server_images[i])).convert("RGB") for i in (0, 2)]
    lib = library(server_reranker, QUERY, [{"image": images[0]}, "a black cat", {"image": images[1]}])
    assert [d["score"] for d in score.json()["data"]] == pytest.approx([lib[0], lib[1], lib[2]], abs=1e-5)
    results = rerank.json()["results"]
    assert len(results) == 3  # each part is one document
    for r in results:
        assert r["relevance_score"] == pytest.approx(lib[r["index"]], abs=1e-5)
        if r["index"] == 1:
            assert r["document"] == {"text": "a black cat"}
        else:
            assert r["document"] == {"multi_modal": parts[r["index"]]}


def test_models_listing(dialect_server, server_model_dir):
    with dialect_server.client() as c:
        for path in ("/v1/models", "/models"):
            body = c.get(path).json()
            assert body["object"] == "list"
            (card,) = body["data"]
            assert card["id"] == str(server_model_dir) and card["object"] == "model"
            assert card["owned_by"] and isinstance(card["created"], int)
            assert card["family"] == "qwen2_5_vl"


# --------------------------------------------------------------------------- lite backend
def test_lite_backend_raw_scores_and_documented_token_count(start_server, tmp_path):
    """Lite has no logits or tokenizer: raw is log(p/(1-p)) of its score; tokens count words (+1 per image)."""
    from lychee_rerank import LycheeReranker
    from lychee_rerank.backends.lite import LiteBackend

    lite = LycheeReranker(LiteBackend(cache_dir=tmp_path / "lite-cache"))
    live = start_server(ServerSettings(), lite)
    query, texts = "red exit sign", ["a red exit sign above the door", "一杯咖啡", "coffee cup"]
    with live.client() as c:
        raw = c.post("/rerank", json={"query": query, "texts": texts, "raw_scores": True}).json()
        cohere = c.post("/v1/rerank", json={"query": query, "documents": texts, "top_n": 1}).json()
    lib = library(lite, query, texts)
    for item in raw:
        p = lib[item["index"]]
        p = min(max(p, 1e-7), 1 - 1e-7)  # a calibrated 0 or 1 is clipped, as documented
        assert item["score"] == pytest.approx(math.log(p / (1 - p)), abs=1e-4)
    words = {"red exit sign": 3, texts[0]: 7, texts[1]: 1, texts[2]: 2}  # runs of \w; CJK without spaces is one run
    assert cohere["usage"]["prompt_tokens"] == sum(words[query] + words[t] for t in texts)
    assert len(cohere["results"]) == 1


def test_vllm_score_many_pairs_stays_within_the_queue_and_the_limit(start_server, server_reranker):
    """N distinct pairs are N scoring calls: they must not fill max_queue (503) or dodge max_documents."""
    live = start_server(ServerSettings(max_queue=2, max_documents=6), server_reranker)
    queries = [f"query {i}" for i in range(6)]
    docs = [f"document {i}" for i in range(6)]
    with live.client() as c:
        ok = c.post("/score", json={"text_1": queries, "text_2": docs})
        over = c.post("/score", json={"text_1": queries + ["q"], "text_2": docs + ["d"]})
    assert ok.status_code == 200, ok.text
    for d in ok.json()["data"]:
        assert d["score"] == pytest.approx(server_reranker.score(queries[d["index"]], docs[d["index"]]), abs=1e-6)
    assert over.status_code == 413 and over.json()["error"]["limit"] == "max_documents"
