"""Sequence-classification cross-encoders through the engine equal sentence-transformers'
``CrossEncoder.predict`` (6.3, run unchanged) within 1e-5 in FP32.

The reference loads the tiny checkpoint (published ms-marco-MiniLM-L6-v2 layout, real
bert-base-uncased vocabulary) through its own ordinary path; the engine runs with no extra
arguments (the family found from config.json). Checked: the token ids of every pair (pair
encoding, ``longest_first`` truncation at CrossEncoder's max length), the scores at batch sizes
1/3/8 cold and warm for English and Chinese texts, over-long documents and queries (scored,
``truncated``), the activation CrossEncoder picks per config (sigmoid, a saved Identity, an
untrusted path, several labels refused), images (a document fails alone, a query is refused), and
that a pair's score does not depend on its batch.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.families import FAMILIES, detect
from lychee_rerank.inputs import Content, InputError
from tests.cross_encoder_support import FAMILY, TEXT_ONLY, reference, tiny_cross_encoder_checkpoint

from .parity import DOCS_EN, DOCS_ZH, assert_spread, engine_scores, noise_png

TOL = 1e-5

CALLS = [
    ("What is the capital of China?", DOCS_EN),
    ("Explain gravity", DOCS_EN),
    ("中国的首都是哪里？", DOCS_ZH),
    ("a cat", DOCS_EN[2:5] + DOCS_ZH[1:2]),
]
LONG = " ".join(f"word{i % 97} plain text, number {i}." for i in range(400))  # > 512 tokens
LONG_ZH = "北京是中国的首都，" * 120  # > 512 tokens (one a character)


def predict(ce, query: str, docs: list[str]) -> list[float]:
    return [float(x) for x in ce.predict([[query, d] for d in docs], batch_size=32)]


@pytest.fixture(scope="module")
def expected(cross_encoder_reference) -> list[list[float]]:
    return [predict(cross_encoder_reference, q, docs) for q, docs in CALLS]


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> Path:
    return noise_png(tmp_path_factory.mktemp("ce") / "picture.png")


def test_the_reference_scores_spread(expected):
    assert_spread(expected, low=0.3, high=0.7)


def test_the_checkpoint_has_the_published_layout(cross_encoder_dir):
    files = {p.name for p in cross_encoder_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
            "special_tokens_map.json"} <= files
    config = json.loads((cross_encoder_dir / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["vocab_size"] == 30522
    assert len((cross_encoder_dir / "vocab.txt").read_text().splitlines()) == 30522


def test_the_family_is_found_from_config_json(cross_encoder_dir, cross_encoder_reranker):
    assert detect(cross_encoder_dir) is FAMILIES[FAMILY]
    info = cross_encoder_reranker.info
    assert (info["backend"], info["family"], info["device"], info["dtype"]) == ("lychee", FAMILY, "cpu", "float32")
    assert (info["activation"], info["max_length"]) == ("Sigmoid", 512)
    # The parity tests below run the packed CPU forward (no padding, the last layer on [CLS] only).
    assert (info["forward"], info["last_layer"]) == ("packed (real tokens only)", "[CLS] only")
    assert "ignored" in info["instruction"] and cross_encoder_reranker.backend.default_instruction == ""
    # Any *ForSequenceClassification is this family; --family names it for a checkpoint whose config does not.
    assert detect(cross_encoder_dir, FAMILY) is FAMILIES[FAMILY]


def test_the_token_ids_are_crossencoders(cross_encoder_reranker, cross_encoder_reference):
    backend = cross_encoder_reranker.backend
    both_long = (LONG + " " + LONG, [LONG_ZH, "short", LONG, LONG * 3, LONG_ZH * 5])  # every side over the budget
    for query, docs in [*CALLS, ("what number comes last?", [LONG, "short"]), (LONG, ["short", LONG_ZH]), both_long,
                        (LONG_ZH, [LONG_ZH + "。", LONG_ZH[:-1], LONG_ZH])]:  # ties and off-by-one lengths
        pairs = backend._tokenize(0, docs, query)
        for pair, doc in zip(pairs, docs):
            want = cross_encoder_reference.preprocess([[query, doc]])
            assert pair.features["input_ids"] == want["input_ids"][0].tolist()
            assert pair.features["token_type_ids"] == want["token_type_ids"][0].tolist()


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_engine_equals_crossencoder_predict_cold_and_warm(cross_encoder_dir, expected, batch_size):
    reranker = LycheeReranker.from_pretrained(cross_encoder_dir, device="cpu", dtype="float32")
    assert reranker.info["family"] == FAMILY
    for run in ("cold", "warm"):
        for (query, docs), want in zip(CALLS, expected):
            got = engine_scores(reranker, query, docs, batch_size)
            assert got == pytest.approx(want, abs=TOL), (run, query, batch_size)
    assert reranker.backend.stats["batches"] > 0


def test_scores_do_not_depend_on_batch_size_or_token_budget(cross_encoder_dir, cross_encoder_reranker):
    docs = DOCS_EN + DOCS_ZH + [LONG[:300], LONG_ZH[:80]]
    query = "What is the capital of China?"
    one = engine_scores(cross_encoder_reranker, query, docs, batch_size=1)
    assert engine_scores(cross_encoder_reranker, query, docs, batch_size=64) == pytest.approx(one, abs=TOL)
    tight = LycheeReranker.from_pretrained(cross_encoder_dir, device="cpu", dtype="float32", max_batch_tokens=128)
    assert engine_scores(tight, query, docs, batch_size=64) == pytest.approx(one, abs=TOL)
    assert tight.backend.stats["padded_tokens"] <= 128 * tight.backend.stats["batches"]
    # Requests sharing batches (server micro-batching) get their own scores.
    many = cross_encoder_reranker.rerank_many([{"query": query, "documents": docs}, {"query": "一只猫", "documents": DOCS_ZH}])
    assert [r.score for r in sorted(many[0], key=lambda r: r.index)] == pytest.approx(one, abs=TOL)
    assert [r.score for r in sorted(many[1], key=lambda r: r.index)] == pytest.approx(
        engine_scores(cross_encoder_reranker, "一只猫", DOCS_ZH, batch_size=1), abs=TOL)


@pytest.mark.parametrize("batch_size,budget", [(32, 16384), (8, 16384), (64, 600), (3, None)])
def test_batches_keep_the_limits_and_pad_less_than_fixed_chunks(cross_encoder_reranker, batch_size, budget):
    from lychee_rerank.backends.cross_encoder import _Pair

    backend = cross_encoder_reranker.backend
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in np.clip(rng.lognormal(np.log(90), 0.6, 100), 10, 512)]
    pairs = [_Pair(0, i, {"input_ids": [1] * n}, False) for i, n in enumerate(lengths)]
    saved = backend.max_batch_tokens, backend.batch_overhead_tokens, backend.packed
    # The padded forward's batches (as on CUDA or with packed=False), at the CPU cost of a MiniLM-size forward.
    backend.max_batch_tokens, backend.batch_overhead_tokens, backend.packed = budget, 64.0, None
    try:
        batches = backend.batches(pairs, batch_size)
        chunks = backend._chunks(sorted(pairs, key=lambda p: -p.length), batch_size)
    finally:
        backend.max_batch_tokens, backend.batch_overhead_tokens, backend.packed = saved
    assert sorted(p.slot for b in batches for p in b) == list(range(100))  # every pair once
    for b in batches:
        assert len(b) <= batch_size
        assert len(b) == 1 or budget is None or len(b) * max(p.length for p in b) <= budget

    def padded(bs):
        return sum(len(b) * max(p.length for p in b) for b in bs)

    assert padded(batches) <= padded(chunks)
    if batch_size == 32:
        assert padded(batches) < 0.9 * padded(chunks)  # the long tail no longer pads whole chunks


def test_an_instruction_is_ignored(cross_encoder_reranker, expected):
    got = engine_scores(cross_encoder_reranker, CALLS[0][0], CALLS[0][1], instruction="Find the passage about animals")
    assert got == pytest.approx(expected[0], abs=TOL)


def test_over_long_pairs_are_scored_truncated_as_crossencoder_cuts_them(cross_encoder_reranker, cross_encoder_reference):
    for query, docs in [("what number comes last?", [LONG, "short", LONG_ZH]), (LONG, ["short", LONG_ZH, LONG * 2])]:
        want = predict(cross_encoder_reference, query, docs)
        results = sorted(cross_encoder_reranker.rerank(query, docs, batch_size=2), key=lambda r: r.index)
        assert [r.error for r in results] == [None] * len(docs)
        assert [r.score for r in results] == pytest.approx(want, abs=TOL)
        long_query = len(query) > 1000
        assert [r.truncated for r in results] == [long_query or len(d) > 1000 for d in docs]
        assert all(r.tokens <= 512 for r in results)


def test_a_huge_document_costs_its_kept_tokens(cross_encoder_reranker, cross_encoder_reference):
    huge = "plain text, " * 400_000  # 4.8 MB
    started = time.perf_counter()
    (result,) = cross_encoder_reranker.rerank("what is this?", [huge])
    assert time.perf_counter() - started < 10
    assert result.error is None and result.truncated and result.tokens == 512
    assert result.score == pytest.approx(predict(cross_encoder_reference, "what is this?", [huge[:20_000]])[0], abs=TOL)


def test_an_image_document_fails_alone_and_an_image_query_is_refused(cross_encoder_reranker, cross_encoder_reference, png):
    query = "What is the capital of China?"
    results = sorted(cross_encoder_reranker.rerank(query, [DOCS_EN[0], png, DOCS_EN[1],
                                                          {"text": "a picture", "image": png}]), key=lambda r: r.index)
    for bad in (results[1], results[3]):
        assert TEXT_ONLY in (bad.error or "") and bad.score == 0
    assert results[0].error is None and results[2].error is None
    want = predict(cross_encoder_reference, query, [DOCS_EN[0], DOCS_EN[1]])
    assert [results[0].score, results[2].score] == pytest.approx(want, abs=TOL)
    with pytest.raises(InputError, match=TEXT_ONLY):
        cross_encoder_reranker.rerank(png, DOCS_EN[:2])
    with pytest.raises(InputError, match=TEXT_ONLY):
        cross_encoder_reranker.rerank({"text": "a cat", "image": png}, DOCS_EN[:2])
    # Handed to the backend directly (no engine check), an image is still that pair's error.
    image = Content(image=Image.open(png))
    scores = cross_encoder_reranker.backend.score_pairs(Content(text=query), [Content(text="x"), image], instruction=None)
    assert scores[0].error is None and TEXT_ONLY in scores[1].error


@pytest.mark.parametrize("packed", [True, False])
def test_a_failing_pair_does_not_sink_its_batch(cross_encoder_dir, monkeypatch, packed):
    reranker = LycheeReranker.from_pretrained(cross_encoder_dir, device="cpu", dtype="float32", packed=packed)
    backend = reranker.backend
    embeddings = backend.model.bert.embeddings  # the first module of the packed and of the padded forward
    real = embeddings.forward

    def forward(input_ids=None, **kwargs):
        if any("poison" in backend.tokenizer.decode(row) for row in input_ids.tolist()):
            raise RuntimeError("boom")
        return real(input_ids=input_ids, **kwargs)

    monkeypatch.setattr(embeddings, "forward", forward)
    docs = ["The capital of China is Beijing.", "poison pill document", "a black cat"]
    results = sorted(reranker.rerank("q", docs, batch_size=8), key=lambda r: r.index)
    assert "boom" in (results[1].error or "")
    assert results[0].error is None and results[2].error is None
    monkeypatch.setattr(embeddings, "forward", real)
    clean = engine_scores(reranker, "q", [docs[0], docs[2]])
    assert [results[0].score, results[2].score] == pytest.approx(clean, abs=TOL)


# --------------------------------------------------------------------------- activations
@pytest.mark.parametrize("activation", ["identity", "sigmoid"])
def test_a_saved_activation_is_applied_as_crossencoder_applies_it(tmp_path_factory, activation):
    model_dir = tiny_cross_encoder_checkpoint(tmp_path_factory, seed=1, activation=activation)
    ce = reference(model_dir)
    reranker = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    assert reranker.info["activation"] == type(ce.activation_fn).__name__ == activation.capitalize()
    for query, docs in CALLS[:3]:
        want = predict(ce, query, docs)
        assert engine_scores(reranker, query, docs, batch_size=3) == pytest.approx(want, abs=TOL)
    results = reranker.rerank(CALLS[0][0], CALLS[0][1])
    for r in results:
        assert r.evidence["logit"] == pytest.approx(r.yes_logit) and r.no_logit == 0
    if activation == "identity":  # ms-marco's own config: raw logits, outside 0-1
        assert min(r.score for r in results) < 0 or max(r.score for r in results) > 1
        assert all(r.score == pytest.approx(r.yes_logit, abs=1e-6) for r in results)
    else:
        assert all(r.score == pytest.approx(1 / (1 + np.exp(-r.yes_logit)), abs=1e-6) for r in results)


@pytest.mark.parametrize("architecture", ["xlm-roberta", "roberta", "electra"])
def test_other_bert_layout_heads_equal_crossencoder_predict_packed_and_padded(tmp_path_factory, architecture):
    """bge-reranker's class (XLMRobertaForSequenceClassification: an MLP head on <s>, positions after
    the pad id), RoBERTa's, and ELECTRA's (a projection after the embeddings, a GELU head), here on
    the BERT vocabulary: detected, and the same scores through the packed forward and the padded one."""
    model_dir = tiny_cross_encoder_checkpoint(tmp_path_factory, seed=3, architecture=architecture)
    assert detect(model_dir) is FAMILIES[FAMILY]
    ce = reference(model_dir)
    packed = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    padded = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32", packed=False)
    assert (packed.info["forward"], packed.info["last_layer"]) == ("packed (real tokens only)", "[CLS] only")
    assert (padded.info["forward"], padded.info["last_layer"]) == ("padded", "feed-forward on [CLS] only")
    flat = []
    for query, docs in CALLS + [("what number comes last?", [LONG, "short", LONG_ZH])]:
        want = predict(ce, query, docs)
        flat += want
        for batch_size in (1, 3, 8):
            for reranker in (packed, padded):
                got = engine_scores(reranker, query, docs, batch_size)
                assert got == pytest.approx(want, abs=TOL), (reranker.info["forward"], query, batch_size)
    assert np.std(flat) > 0.05, flat


def test_the_packed_forward_computes_real_tokens_only_and_equals_the_padded_one(cross_encoder_dir, cross_encoder_reranker):
    docs = DOCS_EN + DOCS_ZH + [LONG, LONG_ZH[:80], "short"]
    padded = LycheeReranker.from_pretrained(cross_encoder_dir, device="cpu", dtype="float32", packed=False)
    backend = cross_encoder_reranker.backend
    before = dict(backend.stats)
    for batch_size in (1, 4, 32):
        got = engine_scores(cross_encoder_reranker, "What is the capital of China?", docs, batch_size)
        assert got == pytest.approx(engine_scores(padded, "What is the capital of China?", docs, batch_size), abs=TOL)
    computed = backend.stats["computed_tokens"] - before.get("computed_tokens", 0)
    padded_tokens = backend.stats["padded_tokens"] - before.get("padded_tokens", 0)
    lengths = [p.length for p in backend._tokenize(0, docs, "What is the capital of China?")]
    assert computed == 3 * sum(lengths) < padded_tokens  # no padding computed, at any batch size
    assert padded.backend.stats["computed_tokens"] == padded.backend.stats["padded_tokens"]


def test_the_packed_forward_is_used_only_for_the_layout_it_reads():
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    from lychee_rerank.backends.packed_encoder import PackedEncoder

    small = dict(vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_labels=1)
    assert PackedEncoder.attach(BertForSequenceClassification(BertConfig(**small)).eval()) is not None
    assert PackedEncoder.attach(BertForSequenceClassification(BertConfig(**small, is_decoder=True)).eval()) is None
    assert PackedEncoder.attach(BertModel(BertConfig(**small)).eval()) is None  # not a classification head it knows


def test_an_untrusted_activation_path_falls_back_as_crossencoder_does(tmp_path_factory):
    base = tiny_cross_encoder_checkpoint(tmp_path_factory, seed=1, activation="identity")
    model_dir = tmp_path_factory.mktemp("ce-untrusted") / "model"
    shutil.copytree(base, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["sentence_transformers"]["activation_fn"] = "somewhere.custom.Activation"
    (model_dir / "config.json").write_text(json.dumps(config))
    ce = reference(model_dir)
    reranker = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    assert reranker.info["activation"] == type(ce.activation_fn).__name__ == "Sigmoid"
    assert engine_scores(reranker, *CALLS[0]) == pytest.approx(predict(ce, *CALLS[0]), abs=TOL)


def test_a_checkpoint_with_several_labels_is_refused_clearly(tmp_path_factory):
    model_dir = tiny_cross_encoder_checkpoint(tmp_path_factory, seed=2, num_labels=3)
    ce = reference(model_dir)
    with pytest.raises(ValueError, match="num_labels=1"):
        ce.rank("q", ["a", "b"])  # CrossEncoder cannot rank by it either
    with pytest.raises(ValueError, match="3 labels"):
        LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")


def test_a_max_length_option_cuts_as_crossencoder_max_length(cross_encoder_dir):
    ce = reference(cross_encoder_dir, max_length=24)
    reranker = LycheeReranker.from_pretrained(cross_encoder_dir, device="cpu", dtype="float32", max_length=24)
    assert reranker.info["max_length"] == 24
    results = sorted(reranker.rerank(CALLS[0][0], CALLS[0][1]), key=lambda r: r.index)
    assert [r.score for r in results] == pytest.approx(predict(ce, *CALLS[0]), abs=TOL)
    assert any(r.truncated for r in results) and all(r.tokens <= 24 for r in results)


def test_a_sentence_transformers_saved_directory_keeps_its_max_length_and_activation(cross_encoder_dir, tmp_path):
    """``CrossEncoder.save`` writes modules.json, sentence_bert_config.json (max_seq_length) and
    config_sentence_transformers.json (activation_fn): both read them back the same way."""
    import torch.nn as nn

    saved = tmp_path / "saved"
    reference(cross_encoder_dir, max_length=40, activation_fn=nn.Identity()).save(str(saved))
    assert (saved / "modules.json").is_file()
    ce = reference(saved)
    reranker = LycheeReranker.from_pretrained(saved, device="cpu", dtype="float32")
    assert (reranker.info["max_length"], reranker.info["activation"]) == (40, type(ce.activation_fn).__name__) == (40, "Identity")
    for query, docs in CALLS[:2] + [("what number comes last?", [LONG, "short"])]:
        assert engine_scores(reranker, query, docs) == pytest.approx(predict(ce, query, docs), abs=TOL)


def test_fine_tuning_does_not_apply(cross_encoder_reranker):
    with pytest.raises(ValueError, match="fine-tuning does not apply to the cross_encoder family"):
        cross_encoder_reranker.backend.training_view()


def test_scores_are_float32_on_cpu(cross_encoder_reranker):
    assert next(cross_encoder_reranker.backend.model.parameters()).dtype == torch.float32


def test_the_builder_entry_point_writes_a_loadable_checkpoint(tmp_path, capsys):
    from lychee_rerank.testing.tiny_cross_encoder import main

    main([str(tmp_path / "ce"), "--seed", "4", "--activation", "identity"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "ce")
    config = json.loads((tmp_path / "ce" / "config.json").read_text())
    assert config["sentence_transformers"]["activation_fn"] == "torch.nn.modules.linear.Identity"
    assert detect(tmp_path / "ce") is FAMILIES[FAMILY]
