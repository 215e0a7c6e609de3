"""jina-reranker-m0 through the engine equals a plain scorer written from its published modelling code (FP32, 1e-5).

The reference (``tests/official/jina_m0_reference.py``) is not the engine's code: one pair per call,
the published ``formatting_prompts_func`` string (document first), the transformers processor (pixel
budget 3,136 to 602,112, truncation to 10,239 ids), the score token 100 appended, the stock
``Qwen2VLForConditionalGeneration`` forward and its own ``Linear-ReLU-Linear`` head, ``sigmoid(x - 2.65)``.
The engine runs with its per-family defaults (the family found from config.json), batched, with and
without the shared-prefix KV cache, cold and with the vision cache warm.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.families import FAMILIES, detect
from lychee_rerank.inputs import Content, to_content
from tests.jina_m0_support import FAMILY, LICENCE  # noqa: F401 - fixtures come from the plugin

from .parity import DOCS_EN, DOCS_ZH, assert_spread, engine_scores

TOL = 1e-5

#: Documents that begin alike (over 16 tokens): the only case where a document-first prompt has a
#: prefix long enough for the shared-prefix KV cache.
SHARED = [f"Annual report of the Example Corporation for the fiscal year 2024, part {k}: {topic}"
          for k, topic in enumerate(["revenue grew by twelve percent", "a new factory opened in Shenzhen",
                                     "the board approved a dividend", "营业收入增长百分之十二"])]
LONG = " ".join(f"word{i % 97} plain text, number {i}." for i in range(1800))  # > 10,240 tokens


def calls(pngs: list[Path]) -> list[tuple[object, list]]:
    """(query, documents) of every parity call: T->T in English and Chinese, T->I, I->T, I->I, a shared prefix."""
    return [
        ("What is the capital of China?", DOCS_EN),
        ("中国的首都是哪里？", DOCS_ZH),
        ("a red circle on a blue background", [pngs[0], DOCS_EN[2], pngs[1], pngs[2]]),   # T -> I (and a text)
        (pngs[0], DOCS_EN[:5]),                                                         # I -> T
        (pngs[1], [pngs[0], pngs[2]]),                                                  # I -> I
        ("how did revenue change?", SHARED),
    ]


@pytest.fixture(scope="module")
def reference_scores(jina_m0_reference, jina_m0_pngs) -> list[list[float]]:
    return [jina_m0_reference.scores(q, docs) for q, docs in calls(jina_m0_pngs)]


def test_the_reference_scores_spread(reference_scores):
    assert_spread(reference_scores)


def test_the_family_is_found_from_config_json_and_its_licence_is_noticed(jina_m0_dir, caplog):
    config = json.loads((jina_m0_dir / "config.json").read_text())
    assert config["architectures"] == ["JinaVLForRanking"] and config["model_type"] == "qwen2_vl"
    assert detect(jina_m0_dir) is FAMILIES[FAMILY]
    assert FAMILIES[FAMILY].licence == LICENCE
    with caplog.at_level(logging.WARNING, logger="lychee_rerank"):
        rr = LycheeReranker.from_pretrained(jina_m0_dir, device="cpu", dtype="float32")
    notices = [r for r in caplog.records if r.name == "lychee_rerank" and r.levelno == logging.WARNING]
    assert any("CC-BY-NC-4.0" in r.getMessage() and "non-commercial" in r.getMessage() for r in notices), caplog.text
    info = rr.info
    assert info["family"] == FAMILY and info["licence"] == LICENCE
    assert "CC-BY-NC-4.0" in info["note"] and "non-commercial" in info["note"]
    assert rr.backend.default_instruction == ""  # the published model takes no instruction


def test_the_checkpoint_has_the_published_layout(jina_m0_dir):
    from safetensors import safe_open

    index = json.loads((jina_m0_dir / "model.safetensors.index.json").read_text())
    keys = set(index["weight_map"])
    assert {"score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias"} <= keys
    assert "lm_head.weight" not in keys and any(k.startswith("visual.") for k in keys)
    assert any(k.startswith("model.layers.") for k in keys)  # 4.x names, as the published weights
    with safe_open(str(jina_m0_dir / index["weight_map"]["score.0.weight"]), framework="pt") as f:
        hidden = json.loads((jina_m0_dir / "config.json").read_text())["hidden_size"]
        assert tuple(f.get_slice("score.0.weight").get_shape()) == (hidden, hidden)
    with safe_open(str(jina_m0_dir / index["weight_map"]["score.2.weight"]), framework="pt") as f:
        assert tuple(f.get_slice("score.2.weight").get_shape()) == (1, hidden)
    assert not (jina_m0_dir / "modeling.py").exists()  # the engine needs no remote code


def test_the_prompt_and_ids_are_the_published_ones(jina_m0_reranker, jina_m0_reference, jina_m0_pngs):
    backend = jina_m0_reranker.backend
    png = jina_m0_pngs[0]
    cases = [("What is the capital of China?", DOCS_EN[0]), ("中国的首都是哪里？", DOCS_ZH[1]), ("a red circle", png),
             (png, DOCS_EN[2]), (jina_m0_pngs[1], png)]
    for query, doc in cases:
        pair = backend.prepare(0, to_content(query), to_content(doc), None)
        expected = jina_m0_reference.inputs(query, doc)["input_ids"][0].tolist()
        assert pair.ids == expected and pair.ids[-1] == 100 and not pair.truncated, (query, doc)
    pair = backend.prepare(0, Content(text="What is the capital of China?"), Content(text=DOCS_EN[0]), None)
    assert pair.text == f"**Document**:\n{DOCS_EN[0]}\n**Query**:\nWhat is the capital of China?"
    image_pair = backend.prepare(0, to_content(jina_m0_pngs[1]), to_content("a cat"), None)
    assert image_pair.text == "**Document**:\na cat\n**Query**:\n<|vision_start|><|image_pad|><|vision_end|>"


@pytest.mark.parametrize("prefix_cache", [True, False], ids=["prefix-cache", "no-prefix-cache"])
@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_engine_equals_the_reference_cold_and_warm(jina_m0_dir, jina_m0_pngs, reference_scores, batch_size, prefix_cache):
    kwargs = {} if prefix_cache else {"prefix_cache": False}
    reranker = LycheeReranker.from_pretrained(jina_m0_dir, device="cpu", dtype="float32", **kwargs)
    for run in ("cold", "warm"):
        for (query, docs), expected in zip(calls(jina_m0_pngs), reference_scores):
            got = engine_scores(reranker, query, docs, batch_size)
            assert got == pytest.approx(expected, abs=TOL), (run, query, batch_size, prefix_cache)
    stats = reranker.backend.stats
    assert (stats["prefix_batches"] > 0) == prefix_cache, stats  # the SHARED call continued from its prefix
    assert stats["vision_cache_hits"] > 0  # the warm run read the cached image features


def test_an_over_long_pair_is_cut_as_published(jina_m0_reranker, jina_m0_reference):
    query = "what number comes last?"
    for doc in (LONG, "short"):
        expected_ids = jina_m0_reference.inputs(query, doc)["input_ids"][0].tolist()
        pair = jina_m0_reranker.backend.prepare(0, Content(text=query), Content(text=doc), None)
        assert pair.ids == expected_ids, doc[:20]
        assert pair.truncated == (doc is LONG)
    # The document alone is cut to 10,240 - 512 tokens; the query keeps its place after it.
    long_ids = jina_m0_reference.inputs(query, LONG)["input_ids"][0].tolist()
    assert 10240 - 512 < len(long_ids) < 10240 - 512 + 32 and long_ids[-1] == 100
    results = sorted(jina_m0_reranker.rerank(query, [LONG, "short"], batch_size=2), key=lambda r: r.index)
    assert results[0].truncated and not results[1].truncated
    assert [r.score for r in results] == pytest.approx([jina_m0_reference(query, LONG), jina_m0_reference(query, "short")], abs=TOL)
    # A long query has no cut of its own: the whole prompt is cut to 10,239 ids from the end, as the processor does.
    pair = jina_m0_reranker.backend.prepare(0, Content(text=LONG), Content(text="short"), None)
    assert pair.truncated and len(pair.ids) == 10240
    assert pair.ids == jina_m0_reference.inputs(LONG, "short")["input_ids"][0].tolist()


def test_a_corrupt_image_fails_alone(jina_m0_reranker, jina_m0_reference, jina_m0_pngs, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(jina_m0_pngs[0].read_bytes()[:60])  # a PNG header and nothing after it
    query = "a red circle on a blue background"
    results = sorted(jina_m0_reranker.rerank(query, [DOCS_EN[0], bad, jina_m0_pngs[1]]), key=lambda r: r.index)
    assert results[1].error and results[1].score == 0
    assert results[0].error is None and results[2].error is None
    expected = [jina_m0_reference(query, DOCS_EN[0]), jina_m0_reference(query, jina_m0_pngs[1])]
    assert [results[0].score, results[2].score] == pytest.approx(expected, abs=TOL)


def test_the_head_logit_and_bias_are_the_records_logits(jina_m0_reranker, jina_m0_reference):
    query, doc = "What is the capital of China?", DOCS_EN[0]
    (result,) = jina_m0_reranker.rerank(query, [doc])
    assert result.yes_logit == pytest.approx(jina_m0_reference.logit(query, doc), abs=1e-4)
    assert result.no_logit == pytest.approx(2.65)
    assert result.score == pytest.approx(1 / (1 + np.exp(-(result.yes_logit - result.no_logit))), abs=1e-6)


def test_an_instruction_is_not_part_of_the_input(jina_m0_reranker):
    query, docs = "What is the capital of China?", DOCS_EN[:3]
    plain = engine_scores(jina_m0_reranker, query, docs, 8)
    assert engine_scores(jina_m0_reranker, query, docs, 8, instruction="Find the passage.") == pytest.approx(plain, abs=1e-7)


def test_image_and_text_on_one_side_reach_the_model(jina_m0_reranker, jina_m0_pngs):
    # Not a published input (its sides are text or image); the image's placeholder comes before the text.
    document = to_content({"text": "a drawing", "image": jina_m0_pngs[0]})
    pair = jina_m0_reranker.backend.prepare(0, to_content("a red circle"), document, None)
    assert pair.text.startswith("**Document**:\n<|vision_start|><|image_pad|><|vision_end|>a drawing\n**Query**:\n")
    with_text = jina_m0_reranker.rerank("a red circle", [{"text": "a drawing", "image": jina_m0_pngs[0]}, jina_m0_pngs[0]])
    assert all(r.error is None for r in with_text)
    assert abs(with_text[0].score - with_text[1].score) > 1e-6


def test_generate_scoring_is_refused(jina_m0_dir):
    with pytest.raises(ValueError, match="yes/no reranker|not available"):
        LycheeReranker.from_pretrained(jina_m0_dir, device="cpu", dtype="float32", scoring="generate")


def test_a_checkpoint_without_the_score_head_is_refused(jina_m0_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "no-head"
    shutil.copytree(jina_m0_dir, copy)
    index = json.loads((copy / "model.safetensors.index.json").read_text())
    for shard in set(index["weight_map"].values()):
        tensors = load_file(str(copy / shard))
        save_file({k: v for k, v in tensors.items() if not k.startswith("score.")}, str(copy / shard), metadata={"format": "pt"})
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if not k.startswith("score.")}
    (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="no jina-reranker-m0 score head"):
        LycheeReranker.from_pretrained(copy, device="cpu", dtype="float32")


def test_the_head_runs_in_the_model_dtype(jina_m0_reranker):
    mlp = jina_m0_reranker.backend.model.score
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in mlp.parameters())


def test_an_image_query_after_a_long_document_keeps_the_image_and_cuts_the_document(jina_m0_reranker, jina_m0_reference, tmp_path):
    # 800x760 pixels: 756 visual tokens, so 9,728 document tokens + the image pass 10,239 ids. The
    # published right truncation would split the image (its processor refuses that); the engine cuts text.
    from PIL import Image

    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (760, 800, 3), dtype=np.uint8), "RGB").save(big)
    with pytest.raises(Exception):  # noqa: B017 - the published code has no answer for this pair
        jina_m0_reference(big, LONG)
    pair = jina_m0_reranker.backend.prepare(0, to_content(big), to_content(LONG), None)
    tokenizer = jina_m0_reranker.backend.tokenizer
    pads = pair.ids.count(tokenizer.convert_tokens_to_ids("<|image_pad|>"))
    assert pair.truncated and len(pair.ids) == 10240 and pads == 756 and pair.ids[-1] == 100
    tail = tokenizer.decode(pair.ids[-(pads + 8):-(pads + 2)])  # ... **Query**:\n<|vision_start|> | pads, end, 100
    assert tail.endswith("**Query**:\n<|vision_start|>"), tail
    results = sorted(jina_m0_reranker.rerank(big, [LONG, "short"]), key=lambda r: r.index)
    assert all(r.error is None for r in results) and results[0].truncated and not results[1].truncated
    assert results[1].score == pytest.approx(jina_m0_reference(big, "short"), abs=TOL)
