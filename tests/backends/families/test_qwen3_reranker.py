"""Qwen3-Reranker through the engine equals its official README code, run unchanged (FP32, 1e-5).

The reference is the "Reranker Model / Transformers Usage" code of QwenLM/Qwen3-Embedding's README,
vendored unchanged in ``tests/official/qwen3_reranker_readme.py`` and driven in-process on the
project's transformers (``tests/official/run_qwen3_reranker.py``): each call's pairs go through
``format_instruction``, ``process_inputs`` and ``compute_logits`` in one batch, as the README does.
The engine runs with its per-family defaults and no extra arguments (the family found from
config.json): default instruction, the 8,192-id budget, yes/no head.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.families import FAMILIES, detect
from lychee_rerank.inputs import Content, InputError
from lychee_rerank.serving.settings import ServerSettings
from tests.qwen3_reranker_support import DEFAULT_INSTRUCTION, FAMILY
from tests.serving.conftest import LiveServer, data_uri

from .parity import DOCS_EN, DOCS_ZH, assert_spread, engine_scores, noise_png

TOL = 1e-5

CALLS = [
    ("What is the capital of China?", DOCS_EN, None),                                       # README default instruction
    ("Explain gravity", DOCS_EN, "Given a question, find the passage that explains the physics"),
    ("中国的首都是哪里？", DOCS_ZH, None),
    ("中国的首都是哪里？", DOCS_ZH, "给定一个中文问题，检索能回答该问题的段落"),
    ("a cat", DOCS_EN[2:5] + DOCS_ZH[1:2], "Find the passage about animals"),
]
LONG = " ".join(f"word{i % 97} plain text, number {i}." for i in range(1400))  # > 8,192 tokens


@pytest.fixture(scope="module")
def readme_scores(qwen3_reranker_readme) -> list[list[float]]:
    return [qwen3_reranker_readme.scores(q, docs, instruction) for q, docs, instruction in CALLS]


@pytest.fixture(scope="module")
def rr(qwen3_reranker_dir) -> LycheeReranker:
    return LycheeReranker.from_pretrained(qwen3_reranker_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> Path:
    return noise_png(tmp_path_factory.mktemp("q3r") / "picture.png")


def test_the_readme_scores_spread(readme_scores):
    assert_spread(readme_scores)


def test_the_family_is_found_from_config_json(qwen3_reranker_dir, rr):
    assert detect(qwen3_reranker_dir) is FAMILIES[FAMILY]
    assert rr.info["family"] == FAMILY and rr.backend.default_instruction == DEFAULT_INSTRUCTION
    assert FAMILIES[FAMILY].licence == "Apache-2.0"


def test_the_prompt_and_ids_are_the_readmes(rr, qwen3_reranker_readme):
    readme = qwen3_reranker_readme.module
    for query, docs, instruction in CALLS:
        expected_ids = qwen3_reranker_readme.ids(query, docs, instruction)
        for k, doc in enumerate(docs):
            pair = rr.backend.prepare(k, Content(text=query), Content(text=doc), instruction)
            assert pair.text == readme.prefix + readme.format_instruction(instruction, query, doc) + readme.suffix
            assert pair.ids == expected_ids[k] and not pair.truncated


@pytest.mark.parametrize("prefix_cache", [True, False], ids=["prefix-cache", "no-prefix-cache"])
@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_engine_equals_the_readme_cold_and_warm(qwen3_reranker_dir, readme_scores, batch_size, prefix_cache):
    kwargs = {} if prefix_cache else {"prefix_cache": False}
    reranker = LycheeReranker.from_pretrained(qwen3_reranker_dir, device="cpu", dtype="float32", **kwargs)
    assert reranker.info["family"] == FAMILY
    for run in ("cold", "warm"):
        for (query, docs, instruction), expected in zip(CALLS, readme_scores):
            got = engine_scores(reranker, query, docs, batch_size, instruction=instruction)
            assert got == pytest.approx(expected, abs=TOL), (run, query, instruction, batch_size, prefix_cache)
    stats = reranker.backend.stats
    assert (stats["prefix_batches"] > 0) == prefix_cache, stats


def test_a_pair_over_8192_tokens_is_cut_by_the_readme_rule(rr, qwen3_reranker_readme):
    query = "what number comes last?"
    expected = qwen3_reranker_readme.scores(query, [LONG, "short"])
    expected_ids = qwen3_reranker_readme.ids(query, [LONG, "short"])
    assert len(expected_ids[0]) == 8192  # the README's max_length: the long pair is cut
    results = sorted(rr.rerank(query, [LONG, "short"], batch_size=2), key=lambda r: r.index)
    assert results[0].truncated and not results[1].truncated
    pair = rr.backend.prepare(0, Content(text=query), Content(text=LONG), None)
    assert pair.truncated and pair.ids == expected_ids[0]  # the very ids the README keeps (suffix included)
    assert rr.backend.prepare(1, Content(text=query), Content(text="short"), None).ids == expected_ids[1]
    assert [r.score for r in results] == pytest.approx(expected, abs=TOL)


def test_an_image_document_fails_alone_and_an_image_query_is_refused(rr, qwen3_reranker_readme, png):
    query = "What is the capital of China?"
    results = sorted(rr.rerank(query, [DOCS_EN[0], png, DOCS_EN[1]]), key=lambda r: r.index)
    assert "reads text only" in (results[1].error or "") and results[1].score == 0
    assert results[0].error is None and results[2].error is None
    expected = qwen3_reranker_readme.scores(query, [DOCS_EN[0], DOCS_EN[1]])
    assert [results[0].score, results[2].score] == pytest.approx(expected, abs=TOL)
    with pytest.raises(InputError, match="reads text only"):
        rr.rerank(png, DOCS_EN[:2])
    with pytest.raises(InputError, match="reads text only"):
        rr.rerank({"text": "a cat", "image": png}, DOCS_EN[:2])


def test_the_http_server_refuses_an_image_query_and_fails_an_image_document_alone(rr, png):
    from lychee_rerank.serving.app import create_app

    live = LiveServer(create_app(ServerSettings(), rr)).start()
    try:
        image = data_uri(png.read_bytes())
        with live.client() as c:
            assert c.get("/health").json()["family"] == FAMILY
            r = c.post("/v1/rerank", json={"query": {"image": image}, "documents": DOCS_EN[:2]})
            assert r.status_code == 422, r.text
            assert "reads text only" in r.json()["error"]["message"]
            r = c.post("/v1/rerank", json={"query": "What is the capital of China?",
                                           "documents": [DOCS_EN[0], {"image": image}, DOCS_EN[1]]})
            assert r.status_code == 200, r.text
            items = {x["index"]: x for x in r.json()["results"]}
            assert "reads text only" in (items[1].get("error") or ""), items[1]
            assert items[0].get("error") is None and items[2].get("error") is None
            library = {x.index: x.score for x in rr.rerank("What is the capital of China?", [DOCS_EN[0], DOCS_EN[1]])}
            assert [items[0]["relevance_score"], items[2]["relevance_score"]] == pytest.approx(
                [library[0], library[1]], abs=TOL)
    finally:
        live.stop()
