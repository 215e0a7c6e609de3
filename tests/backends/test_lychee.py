"""The model backend against the naive reference, plus its robustness paths."""

from __future__ import annotations

import pytest
import torch

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.lychee import LycheeBackend
from lychee_rerank.inputs import Content, to_content
from lychee_rerank.testing.reference import engine_input


TEXTS = [
    "a black cat sitting on a window sill",
    "coffee",
    "the quick brown fox jumps over the lazy dog " * 6,
    "一只黑猫趴在窗台上",
    "red car 1 2 3",
    "astronaut and rocket",
    "dog in the park",
    "商品 主图 白色",
]


def _combo(name, photos):
    """(query, documents) for each modality combination, as reference kwargs and engine inputs."""
    if name == "T->T":
        return {"query_text": "a cat on a window"}, [{"doc_text": t} for t in TEXTS]
    if name == "T->I":
        return {"query_text": "a cat on a window"}, [{"doc_image": p} for p in photos]
    if name == "I->T":
        return {"query_image": photos[1]}, [{"doc_text": t} for t in TEXTS]
    if name == "I+T->I+T":
        return (
            {"query_text": "which picture shows this cat?", "query_image": photos[0]},
            [{"doc_text": t, "doc_image": p} for t, p in zip(TEXTS, reversed(photos))],
        )
    raise AssertionError(name)


@pytest.mark.parametrize("combo", ["T->T", "T->I", "I->T", "I+T->I+T"])
def test_engine_matches_naive_reference_at_every_batch_size(reranker, naive, photos, combo):
    query, docs = _combo(combo, photos)
    expected = [naive.score(**query, **doc) for doc in docs]
    # The tiny model must give spread-out scores, or a mismatch could hide in a flat sigmoid.
    assert max(e[0] for e in expected) - min(e[0] for e in expected) > 0.05

    q = engine_input(query.get("query_text"), query.get("query_image"))
    documents = [engine_input(d.get("doc_text"), d.get("doc_image")) for d in docs]
    for batch_size in (1, 3, 8):
        results = sorted(reranker.rerank(q, documents, batch_size=batch_size), key=lambda r: r.index)
        assert [r.error for r in results] == [None] * len(docs)
        deltas = [abs(r.score - e[0]) for r, e in zip(results, expected)]
        assert max(deltas) <= 1e-5, (combo, batch_size, deltas)
        logit_deltas = [max(abs(r.yes_logit - e[1]), abs(r.no_logit - e[2])) for r, e in zip(results, expected)]
        assert max(logit_deltas) <= 1e-4, (combo, batch_size, logit_deltas)


def test_loaded_weights_are_the_checkpoint_weights(reranker, tiny_model_dir):
    """The 4.x key layout (model.*, visual.*) must load, not be silently re-initialised."""
    import json

    from safetensors.torch import load_file

    index = json.loads((tiny_model_dir / "model.safetensors.index.json").read_text())
    shard = index["weight_map"]["lm_head.weight"]
    saved = load_file(str(tiny_model_dir / shard))["lm_head.weight"]
    assert torch.equal(reranker.backend.model.lm_head.weight.detach().cpu(), saved)
    vis_key = next(k for k in index["weight_map"] if k.startswith("visual.") and k.endswith("proj.weight"))
    vis_saved = load_file(str(tiny_model_dir / index["weight_map"][vis_key]))[vis_key]
    vis_loaded = reranker.backend.model.state_dict()["model." + vis_key]
    assert torch.equal(vis_loaded, vis_saved)


def test_long_text_is_truncated_by_tokens_and_flagged(tiny_model_dir):
    rr = LycheeReranker.from_pretrained(tiny_model_dir, max_doc_tokens=16, max_query_tokens=8)
    long_doc = "the quick brown fox jumps over the lazy dog " * 20
    results = {r.index: r for r in rr.rerank("a cat", [long_doc, "short"])}
    assert results[0].truncated and not results[1].truncated
    # Same score as if the user had cut the text at 16 tokens themselves.
    tok = rr.backend.tokenizer
    cut = tok.decode(tok.encode(long_doc, add_special_tokens=False)[:16])
    assert results[0].score == pytest.approx(rr.score("a cat", cut), abs=1e-6)
    long_query = rr.rerank("cat " * 50, ["short"])
    assert long_query[0].truncated


def test_generate_mode_keeps_raw_text_and_scores_in_range(tiny_model_dir, photos):
    rr = LycheeReranker.from_pretrained(tiny_model_dir, scoring="generate")
    results = rr.rerank("a cat", ["a cat on a sill", photos[0], {"text": "dog", "image": photos[1]}], batch_size=2)
    assert len(results) == 3
    for r in results:
        assert r.raw_output is not None  # what the model wrote is kept, parsable or not
        assert 0.0 <= r.score <= 1.0
        assert r.yes_logit is None and r.error is None
        # a random model writes junk: an unparsable answer scores 0 and says so
        if r.evidence.get("unparsed"):
            assert r.score == 0.0
    assert rr.info["scoring"] == "generate"


def test_a_failing_pair_is_isolated_from_its_batch(reranker, photos, monkeypatch):
    """A pair that breaks the forward pass fails alone; its batch-mates keep their scores."""
    docs = ["alpha", "beta", "gamma", "delta"]
    clean = {r.index: r.score for r in reranker.rerank("q", docs, batch_size=4)}
    backend: LycheeBackend = reranker.backend
    original = backend._forward

    def flaky(batch, call):
        if any("gamma" in p.text for p in batch):
            raise RuntimeError("simulated kernel failure")
        return original(batch, call)

    monkeypatch.setattr(backend, "_forward", flaky)
    results = {r.index: r for r in reranker.rerank("q", docs, batch_size=4)}
    assert "simulated kernel failure" in results[2].error
    assert results[2].rank == 4 and results[2].score == 0.0
    for i in (0, 1, 3):
        assert results[i].error is None
        assert results[i].score == pytest.approx(clean[i], abs=1e-5)


def test_cuda_oom_halves_the_batch_and_loses_nothing(reranker, monkeypatch):
    """CUDA OOM cannot happen on this CPU machine, so it is simulated (the one allowed mock)."""
    docs = [f"document number {i}" for i in range(8)]
    clean = {r.index: r.score for r in reranker.rerank("q", docs, batch_size=8)}
    backend: LycheeBackend = reranker.backend
    original = backend._forward
    sizes = []

    def oom_above_two(batch, call):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(batch, call)

    monkeypatch.setattr(backend, "_forward", oom_above_two)
    results = reranker.rerank("q", docs, batch_size=8)
    assert sizes[:3] == [8, 4, 2]
    assert sorted(r.index for r in results) == list(range(8))  # none lost, none duplicated
    for r in results:
        assert r.error is None and r.score == pytest.approx(clean[r.index], abs=1e-5)


def test_a_failure_while_building_the_shared_prefix_loses_nothing(reranker, monkeypatch):
    """The shared prefix serves every pair; CUDA OOM while building it (simulated: the one allowed
    mock) used to fail the whole call. Now the pairs are scored in full, with the same scores."""
    docs = [f"a photo of cat number {i} on a sofa" for i in range(6)]
    backend: LycheeBackend = reranker.backend
    before = backend.stats["prefix_batches"]
    clean = {r.index: r.score for r in reranker.rerank("a cat on a sofa", docs, batch_size=3)}
    assert backend.stats["prefix_batches"] > before  # the path this test breaks is taken
    original, calls = backend._positions, []

    def oom_on_the_prefix(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the prefix is built before any batch
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(backend, "_positions", oom_on_the_prefix)
    fallbacks = backend.stats["prefix_fallbacks"]
    results = reranker.rerank("a cat on a sofa", docs, batch_size=3)
    assert backend.stats["prefix_fallbacks"] == fallbacks + 1
    assert sorted(r.index for r in results) == list(range(6))
    for r in results:
        assert r.error is None and r.score == pytest.approx(clean[r.index], abs=1e-5)


def test_progress_reports_every_document(reranker):
    calls = []
    reranker.rerank("q", [f"d{i}" for i in range(7)], batch_size=3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 7), (6, 7), (7, 7)]


def test_yes_no_must_be_single_tokens():
    from lychee_rerank.backends.families.base import single_token_id

    class Splitting:
        def encode(self, word, add_special_tokens=False):
            return [1, 2]

    with pytest.raises(ValueError, match="one token"):
        single_token_id(Splitting(), "yes")


def test_info_and_attributes(reranker):
    info = reranker.info
    assert info["backend"] == "lychee" and info["device"] == "cpu"
    assert reranker.dtype == "float32" and reranker.attn_implementation == "sdpa"
    assert "lychee" in repr(reranker)


def test_content_objects_pass_through(reranker, photos):
    a = reranker.rerank(Content(text="cat"), [to_content(photos[0]), Content(text="dog", image=photos[1])])
    b = reranker.rerank("cat", [photos[0], {"text": "dog", "image": photos[1]}])
    assert [(r.index, r.score) for r in a] == [(r.index, r.score) for r in b]


def test_pixel_budget_matches_the_published_scripts(reranker, naive):
    """A 1920x1080 photo must become at most 1280 visual tokens, in engine and reference alike."""
    from ..conftest import make_photo

    big = make_photo(1920, 1080, seed=3)
    ref = naive.score(query_text="q", doc_image=big)
    assert 1000 < naive.last_image_tokens <= 1280
    backend = reranker.backend
    inputs = backend._encode([backend.prepare(0, Content(text="q"), to_content(big), "i", False)])
    assert int(inputs["image_grid_thw"].prod(-1).sum()) // 4 == naive.last_image_tokens
    assert reranker.score("q", big) == pytest.approx(ref[0], abs=1e-5)
